"""SAMP messages vo-al sends and receives: builders and strict parsers, no networking.

Builders return ``{"samp.mtype": ..., "samp.params": {...}}`` maps whose values are all strings,
lists or maps (SAMP allows nothing else). Parsers take the ``samp.params`` of an incoming message
and either return plain Python values or raise `SampMessageError` naming what is wrong; the
client answers such a call with ``samp.error`` and carries on.
"""

from __future__ import annotations

import math
from pathlib import Path
from urllib.parse import urlparse

from vo_al.core.base.errors import SampMessageError

POINT_AT_SKY = "coord.pointAt.sky"
GET_SKY = "coord.get.sky"
SPECTRUM_LOAD = "spectrum.load.ssa-generic"
TABLE_LOAD = "table.load.votable"
TABLE_HIGHLIGHT = "table.highlight.row"
TABLE_SELECT = "table.select.rowList"
PING = "samp.app.ping"

#: URL schemes vo-al sends and accepts (no javascript:, data:, ftp:, ...)
ALLOWED_SCHEMES = ("http", "https", "file")
#: the largest row list vo-al accepts in one table.select.rowList
MAX_ROWS = 1_000_000


def check_url(url, what: str = "url") -> str:
    """The URL if it is an http(s) or file URL, else SampMessageError."""
    if not isinstance(url, str) or not url.strip():
        raise SampMessageError(what, url, "must be a non-empty http(s) or file URL")
    url = url.strip()
    if len(url) > 8192:
        raise SampMessageError(what, url[:80] + "...", "is longer than 8192 characters")
    parsed = urlparse(url)
    if parsed.scheme.lower() not in ALLOWED_SCHEMES:
        raise SampMessageError(what, url, f"scheme must be one of {', '.join(ALLOWED_SCHEMES)}")
    if parsed.scheme.lower() in ("http", "https") and not parsed.netloc:
        raise SampMessageError(what, url, "has no host")
    if any(ord(c) < 32 for c in url):
        raise SampMessageError(what, url, "contains control characters")
    return url


def source_url(source) -> str:
    """A pool row's source as a URL another tool can load: an access URL as it is, a local path
    (what `vo-al ingest` records) as an absolute file:// URL. SampMessageError when neither."""
    text = str(source or "").strip()
    if text and "://" not in text and not text.lower().startswith("file:"):
        from vo_al.core.spectra.readers import source_part

        file, part = source_part(text)
        if part is not None:
            # a URL can name the file, not one spectrum inside it
            raise SampMessageError("source", text, f"is spectrum {part} of the file {file}, "
                                   "which holds several; a tool loads whole files")
        text = Path(text).expanduser().resolve().as_uri()
    return check_url(text, "source")


def _fmt(value: float) -> str:
    return repr(float(value))


def _check_position(ra, dec) -> tuple[float, float]:
    try:
        ra, dec = float(ra), float(dec)
    except (TypeError, ValueError):
        raise SampMessageError("ra/dec", (ra, dec), "must be numbers (degrees)") from None
    if not (math.isfinite(ra) and math.isfinite(dec)) or not -90.0 <= dec <= 90.0:
        raise SampMessageError("ra/dec", (ra, dec), "must be finite, with -90 <= dec <= 90")
    return ra % 360.0, dec


# ----------------------------------------------------------------------------- builders
def point_at_sky(ra, dec) -> dict:
    ra, dec = _check_position(ra, dec)
    return {"samp.mtype": POINT_AT_SKY, "samp.params": {"ra": _fmt(ra), "dec": _fmt(dec)}}


def spectrum_meta(url: str, name: str | None = None, ra=None, dec=None,
                  fmt: str = "application/fits", extra: dict | None = None) -> dict:
    """The ``meta`` map SPLAT-VO needs: Access.Format, Access.Reference, Target.Name (+ Pos)."""
    meta = {"Access.Format": fmt, "Access.Reference": url}
    if name:
        meta["Target.Name"] = str(name)
    if ra is not None and dec is not None:
        try:
            ra, dec = _check_position(ra, dec)
        except SampMessageError:
            pass                        # a candidate without a position still has a spectrum
        else:
            meta["Target.Pos"] = f"{_fmt(ra)} {_fmt(dec)}"
    for key, value in (extra or {}).items():
        meta[str(key)] = str(value)
    return meta


_VOTABLE_SUFFIXES = (".vot", ".xml", ".votable", ".vot.gz", ".xml.gz")


def spectrum_access(url: str, raw: bytes | None = None) -> tuple[str, dict]:
    """(Access.Format, further meta) for sending the spectrum at `url` to SPLAT-VO.

    The format is what the file is, where its bytes `raw` are at hand (a local file, the
    harvest's cached copy): FITS or VOTable, and for an SDM table its axes, as SPLAT reads them
    from the meta (`vox:spectrum_axes` 'spectral flux [error]', `vox:spectrum_units`, and the
    Dataset.SpectralAxis / Dataset.FluxAxis column names). Without the bytes: the FORMAT a
    DataLink/SODA URL asks for, else the URL's suffix, else FITS (what archives serve)."""
    from urllib.parse import parse_qsl, urlparse

    if raw is not None:
        from vo_al.core.spectra.sdm import sdm_axes

        axes = sdm_axes(raw)
        if axes is not None:
            columns = [axes.spectral, axes.flux] + ([axes.error] if axes.error else [])
            extra = {"vox:spectrum_axes": " ".join(columns),
                     "Dataset.SpectralAxis": axes.spectral, "Dataset.FluxAxis": axes.flux}
            # SPLAT splits on white space: the spectral unit, then the flux unit if any
            units = [u for u in (axes.spectral_unit, axes.flux_unit) if u]
            if axes.spectral_unit and not any(" " in u for u in units):
                extra["vox:spectrum_units"] = " ".join(units)
            return axes.mime, extra
        return ("application/fits" if raw.startswith(b"SIMPLE  =") else
                "application/x-votable+xml"), {}
    parsed = urlparse(url)
    for key, value in parse_qsl(parsed.query):
        if key.upper() == "FORMAT" and value.strip():
            return value.strip(), {}
    if parsed.path.lower().endswith(_VOTABLE_SUFFIXES):
        return "application/x-votable+xml", {}
    return "application/fits", {}


def spectrum_load(url: str, name: str | None = None, ra=None, dec=None,
                  fmt: str = "application/fits", spectrum_id: str | None = None,
                  extra_meta: dict | None = None) -> dict:
    url = check_url(url)
    params = {"url": url, "meta": spectrum_meta(url, name, ra, dec, fmt, extra_meta)}
    if spectrum_id:
        params["spectrum-id"] = str(spectrum_id)
    if name:
        params["name"] = str(name)
    return {"samp.mtype": SPECTRUM_LOAD, "samp.params": params}


def table_load(url: str, table_id: str, name: str | None = None) -> dict:
    params = {"url": check_url(url), "table-id": str(table_id)}
    if name:
        params["name"] = str(name)
    return {"samp.mtype": TABLE_LOAD, "samp.params": params}


def table_highlight(url: str, table_id: str, row: int) -> dict:
    return {"samp.mtype": TABLE_HIGHLIGHT,
            "samp.params": {"url": check_url(url), "table-id": str(table_id), "row": str(int(row))}}


def table_select(url: str, table_id: str, rows) -> dict:
    return {"samp.mtype": TABLE_SELECT,
            "samp.params": {"url": check_url(url), "table-id": str(table_id),
                            "row-list": [str(int(r)) for r in rows]}}


# ----------------------------------------------------------------------------- parsers
def _params(params) -> dict:
    if not isinstance(params, dict):
        raise SampMessageError("samp.params", params, "must be a map")
    return params


def _row(value, n_rows: int, what: str = "row") -> int:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise SampMessageError(what, value, "must be an integer (as a SAMP string)")
    text = str(value).strip()
    if not text or len(text) > 20 or not text.lstrip("+-").isdigit():
        raise SampMessageError(what, value, "must be an integer (as a SAMP string)")
    row = int(text)
    if not 0 <= row < n_rows:
        raise SampMessageError(what, value, f"must be in 0..{n_rows - 1}")
    return row


def is_our_table(params, table_id: str, url: str | None) -> bool:
    """Whether a table.* message is about our table: same table-id, or else the same URL."""
    params = _params(params)
    tid, turl = params.get("table-id"), params.get("url")
    if tid is None and turl is None:
        raise SampMessageError("table-id/url", None, "one of them is required")
    for key, value in (("table-id", tid), ("url", turl)):
        if value is not None and not isinstance(value, str):
            raise SampMessageError(key, value, "must be a string")
    if tid is not None:
        return tid == table_id
    check_url(turl)
    return url is not None and turl == url


def parse_highlight(params, n_rows: int) -> int:
    return _row(_params(params).get("row"), n_rows)


def parse_select(params, n_rows: int) -> list[int]:
    rows = _params(params).get("row-list")
    if not isinstance(rows, list):
        raise SampMessageError("row-list", rows, "must be a list of integers")
    if len(rows) > min(n_rows, MAX_ROWS):
        raise SampMessageError("row-list", f"<{len(rows)} rows>",
                               f"has more rows than the table ({n_rows})")
    return sorted({_row(r, n_rows, "row-list item") for r in rows})


def parse_point(params) -> tuple[float, float]:
    params = _params(params)
    for key in ("ra", "dec"):
        if not isinstance(params.get(key), (str, int, float)) or isinstance(params.get(key), bool):
            raise SampMessageError(key, params.get(key), "must be a number in degrees")
        if isinstance(params[key], str) and len(params[key]) > 64:
            raise SampMessageError(key, params[key][:64] + "...", "is too long")
    return _check_position(params["ra"], params["dec"])
