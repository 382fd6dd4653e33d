"""Spectra in the IVOA Spectral Data Model (SDM) as real VO services serve them.

DaCHS and other SSAP/DataLink servers write a spectrum as a table of pixels: a FITS binary table
(one row per pixel, or one row of array columns) or a VOTable (TABLEDATA, BINARY or BINARY2),
with the SSA/SDM metadata as PARAMs or FITS keywords (the Ondřejov CCD700 archive: columns
`spectral` in air Å and `flux`, DS_IDPUB, OBJECT, RA, DEC, TMID).

Columns are found as SPLAT-VO finds them: by utype first (case-insensitive, any namespace
prefix — `spec:`, `ssa:`, `sed:` or none — with or without the leading `Spectrum.`), then by the
UCD's primary word (`em.wl`, `em.freq`, `em.energy`, `em.wavenumber`; `phot.flux*`,
`phot.count`; `stat.error` with a flux UCD for the error), then by a list of common names. The
spectral axis is converted with astropy.units (Å, nm, µm, m; frequency, energy and wavenumber
through the spectral equivalencies) and sorted ascending; a flux error column, when present,
gives the inverse variance. Air or vacuum comes from what the file states (media.py): the
spectral column's description or UCD, keywords AIRORVAC/VACUUM/TCTYPn, else the caller's
setting.

Errors: NotSpectrum with the reason (read_spectrum adds the file); a table without a spectral
or flux column names the columns it has.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

import numpy as np

from vo_al.core.base.parsing import library_parse
from vo_al.core.base.sky import sexagesimal_degrees
from vo_al.core.spectra.fits_header import NotSpectrum, finite_number
from vo_al.core.spectra.media import (medium_in_keywords, medium_in_text, medium_in_ucd,
                                      settle_medium, to_vacuum)
from vo_al.core.spectra.record import Spectrum, SpectrumMeta

SDM_FITS = "sdm-fits"
SDM_VOTABLE = "sdm-votable"

# utype local names (lower case, namespace and a leading 'spectrum.' or 'segment.' removed)
_SPECTRAL_UTYPES = ("data.spectralaxis.value", "points.spectralcoord.value",
                    "spectralaxis.value")
_FLUX_UTYPES = ("data.fluxaxis.value", "points.flux.value", "fluxaxis.value")
_ERROR_UTYPES = ("data.fluxaxis.accuracy.staterror", "points.flux.accuracy.staterror",
                 "fluxaxis.accuracy.staterror", "data.fluxaxis.accuracy.staterrlow")
_SPECTRAL_UCDS = ("em.wl", "em.freq", "em.energy", "em.wavenumber")
# common column names, in the order they are tried (SPLAT-VO's and the surveys' own)
_SPECTRAL_NAMES = ("spectral", "wavelength", "wave", "wavelen", "lambda", "wl", "wavel",
                   "frequency", "freq", "energy")
_FLUX_NAMES = ("flux", "flux_density", "fluxdensity", "flam", "fnu", "counts", "count",
               "intensity", "spec", "data", "f")
_ERROR_NAMES = ("flux_error", "fluxerror", "flux_err", "fluxerr", "error", "err", "sigma",
                "staterror", "stat_error", "uncertainty", "e_flux")
_IVAR_NAMES = ("ivar", "inverse_variance", "flux_ivar")
_ANGSTROM_RANGE = (1000.0, 100000.0)       # without a unit, only values in this range are Å
_CCD700 = re.compile(r"ccd\s*-?700|coude\s*700|coude700|/ccd700/", re.IGNORECASE)
_LAMOST = re.compile(r"\blamost\b", re.IGNORECASE)
_RA_DEC_PAIR = re.compile(r"^\s*([-+0-9.eE]+)[\s,]+([-+0-9.eE]+)\s*$")


def utype_key(utype) -> str:
    """'spec:Spectrum.Data.SpectralAxis.Value' -> 'data.spectralaxis.value'."""
    local = str(utype or "").strip().split(":")[-1].lower()
    for prefix in ("spectrum.", "segment."):
        if local.startswith(prefix):
            local = local[len(prefix):]
    return local


@dataclass
class Column:
    """One table column as SDM rules see it."""

    name: str
    values: np.ndarray
    unit: str = ""
    ucd: str = ""
    utype: str = ""
    description: str = ""

    @property
    def ucd_words(self) -> list[str]:
        return [w.strip().lower() for w in self.ucd.split(";") if w.strip()]


@dataclass
class SdmTable:
    """What a reader needs from a serialisation: columns, params (utype key or lower-case name
    -> value) and FITS-like keywords (upper-case -> value), for metadata and the medium."""

    columns: list[Column]
    params: dict = field(default_factory=dict)
    keywords: dict = field(default_factory=dict)

    def param(self, *keys):
        for key in keys:
            value = self.params.get(key)
            if isinstance(value, np.ndarray):
                if value.size == 0 or np.ma.getmaskarray(value).all():
                    continue
                return value
            if value is None or (isinstance(value, str) and not value.strip()) or \
                    _is_nan(value):
                continue
            return value
        return None


# ---------------------------------------------------------------- public API

def spectrum_from_sdm(table: SdmTable, reader: str, name: str, source: str,
                      medium: str | None = None,
                      medium_origin: str = "the medium setting") -> Spectrum:
    """A Spectrum from an SDM table (NotSpectrum why not)."""
    spectral, flux = _find_axes(table)
    wavelength = _to_angstrom(spectral, table)
    flux_values = _float_values(flux, "flux")
    ivar = _ivar(table, flux, flux_values)
    order = np.argsort(wavelength, kind="stable")
    if not np.all(order == np.arange(order.size)):        # a frequency axis runs the other way
        wavelength, flux_values = wavelength[order], flux_values[order]
        ivar = None if ivar is None else ivar[order]
    if wavelength.size < 2 or not np.all(np.diff(wavelength) > 0):
        raise NotSpectrum(f"the spectral column {spectral.name!r} is not strictly monotonic "
                          "(repeated or unordered values)")
    statements = [medium_in_text(spectral.description, f"column {spectral.name!r} description"),
                  medium_in_ucd(spectral.ucd, f"column {spectral.name!r}")]
    statements += medium_in_keywords(table.keywords.get)
    statements.append(medium_in_text(table.param("char.spectralaxis.calibration.description",
                                                 "airorvac"), "param"))
    file_medium, reason = settle_medium(statements, medium, medium_origin)
    finite = np.isfinite(flux_values)
    if not finite.any():
        raise NotSpectrum("flux has no finite value")
    mask = ~finite if ivar is None else (~finite | ~(ivar > 0))
    meta = _meta(table, name, source)
    return Spectrum(to_vacuum(wavelength, file_medium), flux_values, ivar, mask,
                    _instrument(table, meta), meta, reader=reader, medium=file_medium,
                    medium_reason=reason, flux_unit=flux.unit.strip())


def read_sdm_fits(raw: bytes, name: str, source: str, medium: str | None = None,
                  medium_origin: str = "the medium setting") -> Spectrum:
    """An SDM FITS binary table (the first extension with a spectral and a flux column)."""
    tables = _fits_tables(raw)
    if not tables:
        raise NotSpectrum("no binary table extension: not an SDM spectrum")
    return _first_spectrum(tables, SDM_FITS, name, source, medium, medium_origin)


def read_sdm_votable(raw: bytes, name: str, source: str, medium: str | None = None,
                     medium_origin: str = "the medium setting") -> Spectrum:
    """An SDM VOTable (any serialisation); the first table with a spectral and a flux column."""
    tables = _votable_tables(raw)
    if not tables:
        raise NotSpectrum("a VOTable without a table: not a spectrum")
    return _first_spectrum(tables, SDM_VOTABLE, name, source, medium, medium_origin)


def _fits_tables(raw: bytes) -> list[SdmTable]:
    """Every binary table extension of FITS bytes, as SdmTables."""
    from astropy.io import fits

    with library_parse(fits.verify.VerifyWarning), \
            fits.open(io.BytesIO(raw), memmap=False) as hdul:
        return [_fits_table(hdu, hdul[0].header) for hdu in hdul[1:]
                if isinstance(hdu, fits.BinTableHDU)]


def _votable_tables(raw: bytes) -> list[SdmTable]:
    """Every table of VOTable bytes, as SdmTables with the document's and resource's PARAMs."""
    from astropy.io.votable import parse
    from astropy.io.votable.exceptions import VOWarning
    from astropy.units import UnitsWarning

    # VOUnit's complaints about 'Angstrom' and 'erg' (what DaCHS writes) are not ours
    with library_parse(VOWarning, UnitsWarning):
        try:
            document = parse(io.BytesIO(raw), verify="ignore")
        except Exception as exc:           # noqa: BLE001 - expat or astropy on a broken document
            raise NotSpectrum(f"not a readable VOTable ({type(exc).__name__}: {exc})") from None
    top = _params(document.params)
    return [_votable_table(table, {**top, **_params(resource.params)})
            for resource in document.resources for table in resource.tables]


# ---------------------------------------------------------------- serialisations

def _first_spectrum(tables, reader, name, source, medium, medium_origin) -> Spectrum:
    reasons = []
    for table in tables:
        try:
            _find_axes(table)
        except NotSpectrum as exc:
            reasons.append(exc)
            continue
        return spectrum_from_sdm(table, reader, name, source, medium, medium_origin)
    if len(tables) == 1:
        raise reasons[0]
    shown = "; ".join(f"table {i + 1}: {', '.join(c.name for c in t.columns) or 'none'}"
                      for i, t in enumerate(tables))
    raise NotSpectrum(f"no recognisable spectral and flux columns (by SDM utype, UCD em.wl/"
                      f"em.freq/phot.flux*, or name) in {shown}")


def _fits_table(hdu, primary) -> SdmTable:
    header = hdu.header
    data = hdu.data
    columns = []
    n_rows = 0 if data is None else len(data)
    for i, col in enumerate(hdu.columns, start=1):
        values = np.asarray(data.field(i - 1)) if data is not None else np.array([])
        if n_rows == 1 and values.ndim > 1:
            values = values.reshape(-1)                   # one row of array columns
        elif values.ndim > 1:
            if values.shape[1:] == (1,) * (values.ndim - 1):
                values = values.reshape(-1)
            else:
                raise NotSpectrum(f"binary table of {n_rows} rows of array columns "
                                  f"({col.name} holds {values.shape[1:]} per row): {n_rows} "
                                  "spectra, not one")
        description = header.get(f"TCOMM{i}") or header.comments[f"TTYPE{i}"]
        columns.append(Column(name=str(col.name), values=values, unit=str(col.unit or ""),
                              ucd=str(header.get(f"TUCD{i}", "") or ""),
                              utype=str(header.get(f"TUTYP{i}", "") or ""),
                              description=str(description or "")))
    keywords = {}
    for source in (primary, header):                      # the extension's cards win
        for key, value in source.items():
            if key and key not in ("COMMENT", "HISTORY", ""):
                keywords[key.upper()] = value
    params = {}
    # the SDM FITS serialisation keeps SDM meta in keywords; the ones vo-al uses, as params
    for key, param in (("DS_IDPUB", "curation.publisherdid"), ("OBJECT", "target.name"),
                       ("REDSHIFT", "target.redshift"), ("DER_SNR", "derived.snr"),
                       ("TMID", "char.timeaxis.coverage.location.value"),
                       ("INSTRUME", "dataid.instrument"), ("TITLE", "dataid.title")):
        if key in keywords:
            params[param] = keywords[key]
    return SdmTable(columns, params, keywords)


def _params(entries) -> dict:
    out = {}
    for param in entries:
        value = param.value
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if np.ma.is_masked(value):
            value = None
        if param.utype:
            out.setdefault(utype_key(param.utype), value)
        if param.name:
            out.setdefault(str(param.name).lower(), value)
    return out


def _votable_table(table, outer: dict) -> SdmTable:
    params = {**outer, **_params(table.params)}
    # FIELDref utypes in GROUPs (the SDM groups) count where a FIELD has none of its own
    ref_utypes = {}
    for group in _iter_groups(table.groups):
        for entry in group.entries:
            ref, utype = getattr(entry, "ref", None), getattr(entry, "utype", None)
            if ref and utype:
                ref_utypes.setdefault(ref, utype)
    array = table.array
    columns = []
    for f in table.fields:
        values = array[f.ID] if f.ID in array.dtype.names else array[f.name]
        values = np.ma.filled(np.ma.asarray(values).astype(float), np.nan) \
            if _numeric(values) else np.asarray(values)
        if values.ndim > 1 and len(values) == 1:
            values = values.reshape(-1)
        columns.append(Column(name=str(f.name or f.ID), values=values,
                              unit=_unit_string(f.unit), ucd=str(f.ucd or ""),
                              utype=str(f.utype or ref_utypes.get(f.ID, "") or ""),
                              description=str(f.description or "")))
    keywords = {str(k).upper(): v for k, v in params.items()
                if str(k).upper() in ("AIRORVAC", "VACUUM")}
    return SdmTable(columns, params, keywords)


def _unit_string(unit) -> str:
    """A FIELD's unit as VOUnit text (what a VOTable carries; no spaces, as SPLAT splits
    vox:spectrum_units on them); astropy has parsed it already."""
    if unit is None:
        return ""
    from astropy.units import UnitsWarning

    with library_parse(UnitsWarning):                   # 'Angstrom' is deprecated VOUnit
        try:
            return unit.to_string(format="vounit")
        except (AttributeError, ValueError):
            return str(unit)


def _iter_groups(groups):
    for group in groups:
        yield group
        yield from _iter_groups([e for e in group.entries if hasattr(e, "entries")])


def _numeric(values) -> bool:
    return np.asarray(values).dtype.kind in "fiub"


# ---------------------------------------------------------------- columns

def _find_axes(table: SdmTable) -> tuple[Column, Column]:
    spectral = _by_utype(table, _SPECTRAL_UTYPES) or _by_ucd(table, _spectral_ucd) or \
        _by_name(table, _SPECTRAL_NAMES)
    flux = _by_utype(table, _FLUX_UTYPES) or _by_ucd(table, _flux_ucd) or \
        _by_name(table, _FLUX_NAMES, exclude=spectral)
    if spectral is None or flux is None or spectral is flux:
        missing = " and ".join(w for w, c in (("spectral", spectral), ("flux", flux))
                               if c is None) or "distinct spectral and flux"
        raise NotSpectrum(f"no {missing} column (by SDM utype, UCD em.wl/em.freq/phot.flux*, "
                          f"or name) among {', '.join(c.name for c in table.columns) or 'none'}")
    for column in (spectral, flux):
        if column.values.ndim != 1 or not _numeric(column.values):
            raise NotSpectrum(f"column {column.name!r} is not a 1-D numeric column")
    if spectral.values.shape != flux.values.shape:
        raise NotSpectrum(f"columns {spectral.name!r} ({spectral.values.size}) and "
                          f"{flux.name!r} ({flux.values.size}) differ in length")
    return spectral, flux


def _by_utype(table: SdmTable, keys) -> Column | None:
    return next((c for c in table.columns if utype_key(c.utype) in keys), None)


def _by_ucd(table: SdmTable, test) -> Column | None:
    return next((c for c in table.columns if c.ucd_words and test(c.ucd_words)), None)


def _by_name(table: SdmTable, names, exclude: Column | None = None) -> Column | None:
    lower = {}
    for c in table.columns:
        if c is not exclude:
            lower.setdefault(c.name.strip().lower(), c)
    return next((lower[n] for n in names if n in lower), None)


def _spectral_ucd(words) -> bool:
    return words[0] in _SPECTRAL_UCDS


def _flux_ucd(words) -> bool:
    return (words[0].startswith("phot.flux") or words[0] == "phot.count") and \
        "stat.error" not in words


def _error_ucd(words) -> bool:
    return words[0] == "stat.error" and any(w.startswith(("phot.flux", "phot.count"))
                                            for w in words[1:])


def _float_values(column: Column, what: str) -> np.ndarray:
    values = np.ma.filled(np.ma.asarray(column.values).astype(np.float64), np.nan)
    return np.asarray(values, dtype=np.float64)


def _unit_text(table: SdmTable, column: Column) -> str:
    return column.unit.strip() or str(table.param("char.spectralaxis.unit") or "").strip()


def _to_angstrom(column: Column, table: SdmTable) -> np.ndarray:
    from astropy import units as u

    values = _float_values(column, "spectral")
    if not np.all(np.isfinite(values)):
        raise NotSpectrum(f"the spectral column {column.name!r} has undefined values")
    text = _unit_text(table, column)
    if not text:
        if values.size and _ANGSTROM_RANGE[0] < values.min() and \
                values.max() < _ANGSTROM_RANGE[1]:
            return values
        raise NotSpectrum(f"the spectral column {column.name!r} has no unit and its values "
                          f"({values.min():.4g}-{values.max():.4g}) are not Angstrom")
    try:
        with library_parse(u.UnitsWarning):
            unit = u.Unit(text, parse_strict="raise")
    except ValueError:
        try:
            unit = u.Unit(text, format="fits")
        except ValueError:
            raise NotSpectrum(f"the spectral column {column.name!r} has the unit {text!r}, "
                              "which is not a unit astropy knows") from None
    try:
        angstrom = (values * unit).to(u.AA, equivalencies=u.spectral()).value
    except u.UnitConversionError:
        raise NotSpectrum(f"the spectral column {column.name!r} is in {text!r}, not a "
                          "wavelength, frequency, energy or wavenumber") from None
    return np.asarray(angstrom, dtype=np.float64)


def _error_column(table: SdmTable) -> Column | None:
    return _by_utype(table, _ERROR_UTYPES) or _by_ucd(table, _error_ucd) or \
        _by_name(table, _ERROR_NAMES)


def _ivar(table: SdmTable, flux: Column, flux_values: np.ndarray) -> np.ndarray | None:
    error = _error_column(table)
    if error is not None and error.values.shape == flux.values.shape and \
            _numeric(error.values):
        sigma = _float_values(error, "error")
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(sigma > 0, 1.0 / sigma ** 2, 0.0)
    ivar = _by_name(table, _IVAR_NAMES)
    if ivar is not None and ivar.values.shape == flux.values.shape and _numeric(ivar.values):
        values = _float_values(ivar, "ivar")
        return np.where(np.isfinite(values), values, 0.0)
    return None


# ---------------------------------------------------------------- metadata

def _is_nan(value) -> bool:
    return isinstance(value, float) and value != value


def _position(table: SdmTable) -> tuple[float, float]:
    """(ra, dec) in degrees from the SDM location, the target position, or RA/DEC keywords
    (degrees, or sexagesimal hours and degrees as the Ondřejov headers write them)."""
    for key in ("char.spatialaxis.coverage.location.value", "target.pos"):
        value = table.param(key)
        if value is None:
            continue
        if isinstance(value, str):
            match = _RA_DEC_PAIR.match(value)
            if match:
                return finite_number(match.group(1)), finite_number(match.group(2))
            continue
        values = np.ma.filled(np.ma.asarray(value, dtype=float), np.nan).ravel()
        if values.size == 2 and np.all(np.isfinite(values)):
            return float(values[0]), float(values[1])
    ra = _angle(table.keywords.get("RA", table.param("ra")), hours=True)
    dec = _angle(table.keywords.get("DEC", table.param("dec")), hours=False)
    return ra, dec


def _angle(value, hours: bool) -> float:
    if value is None:
        return float("nan")
    if isinstance(value, str) and re.search(r"[:\s]", value.strip()):
        return sexagesimal_degrees(value, hours)
    return finite_number(value)


def _meta(table: SdmTable, name: str, source: str) -> SpectrumMeta:
    ra, dec = _position(table)
    if not (0.0 <= ra <= 360.0):
        ra = float("nan")
    if not (-90.0 <= dec <= 90.0):
        dec = float("nan")
    return SpectrumMeta(
        name=name,
        designation=str(table.param("target.name", "object") or "").strip(),
        ra=ra, dec=dec,
        obsid=str(table.param("curation.publisherdid", "dataid.creatordid", "ssa_pubdid")
                  or "").strip(),
        cls=str(table.param("target.class") or "").strip(),
        z=finite_number(table.param("target.redshift")),
        snr=finite_number(table.param("derived.snr")),
        source=source,
    )


def _instrument(table: SdmTable, meta: SpectrumMeta) -> str:
    """'ccd700' for an Ondřejov CCD700 spectrum (its resolution is degraded to LAMOST's),
    'lamost' for LAMOST, 'other' for the rest."""
    said = " ".join(str(v) for v in (table.param("dataid.instrument", "instrume"),
                                     table.keywords.get("INSTRUME"), meta.obsid,
                                     table.param("dataid.collection")) if v)
    if _CCD700.search(said):
        return "ccd700"
    if _LAMOST.search(said):
        return "lamost"
    return "other"


# ---------------------------------------------------------------- what a receiver needs to know

@dataclass
class SdmAxes:
    """The columns an SDM file's spectrum is in: what SPLAT-VO's `spectrum.load.ssa-generic`
    meta names (vox:spectrum_axes, vox:spectrum_units, Dataset.SpectralAxis/FluxAxis)."""

    mime: str                       # application/fits or application/x-votable+xml
    spectral: str
    flux: str
    error: str | None = None
    spectral_unit: str = ""
    flux_unit: str = ""


def sdm_axes(raw: bytes) -> SdmAxes | None:
    """The axes of an SDM spectrum in the bytes of a (decompressed) file; None where the bytes
    are no SDM table (a native LAMOST/CCD700 image, not a spectrum at all)."""
    try:
        if raw.startswith(b"SIMPLE  ="):
            tables, mime = _fits_tables(raw), "application/fits"
        else:
            tables, mime = _votable_tables(raw), "application/x-votable+xml"
    except Exception:                      # noqa: BLE001 - whatever it is, it is no SDM table
        return None
    for table in tables:
        try:
            spectral, flux = _find_axes(table)
        except NotSpectrum:
            continue
        error = _error_column(table)
        return SdmAxes(mime, spectral.name, flux.name, error.name if error else None,
                       _unit_text(table, spectral), flux.unit)
    return None
