"""Cross-match candidates with SIMBAD, H16 or any catalogue (paper Appendix B).

One interface, two routes. A catalogue object answers `pairs(ra, dec, radius)`: every
(candidate, object) pair closer than `radius` arcsec, with the object's id, type and position.
Everything else (nearest match, count within the radius, radius scan) is computed from the pairs,
here, the same way for both routes, so both give the same numbers for the same objects:

* `TapCatalogue`: a TAP service, e.g. SIMBAD (`basic`: main_id, ra, dec, otype) or the local
  DaCHS's `lamost.simbad_like`. The candidates are uploaded (TAP_UPLOAD, pyvo `uploads=`) and
  joined with ``1=CONTAINS(POINT(object), CIRCLE(candidate, r))``, in batches; a batch whose
  result the server truncated (OVERFLOW) is split in two and asked again. A service that
  announces no upload method is asked with batched ``WHERE CONTAINS(...) OR CONTAINS(...)``
  queries instead (`upload=False` forces that route). Separations are computed here from the
  returned positions (astropy), not taken from the server.
* `LocalCatalogue`: a file (VOTable, FITS, CSV, ECSV) or arrays, matched with astropy's
  `SkyCoord.search_around_sky` (a k-d tree kept on the catalogue's coordinates).

Radii are in arcsec and must lie in [5, 300] (the range the paper tried): `check_radius`
raises a ParameterError naming the value otherwise. Defaults: 20" for SIMBAD, 5" for H16
(whose positions differ from the FITS headers by up to 4.96").

Multiple exposures (`group_by_designation`, `group_by_position`): the same star observed
several times gives several candidate spectra. Groups by designation, and groups by a
friends-of-friends internal match at 5" (connected components of the "closer than 5"" graph:
two spectra 4" apart each from a third are one group even when 8" apart from each other).

The four tables of the paper (`split_tables`): every candidate is in exactly one of
``known_h16`` (an H16 object within the H16 radius), ``new_in_simbad`` (not in H16, a SIMBAD
object within the SIMBAD radius), ``new_unknown`` (neither); ``rejected`` holds the spectra a
reviewer rejected: every spectrum of the pool the oracle labelled non-target. Those were shown
to the oracle as possible targets (the query strategy's picks, predicted or near-predicted
emission), and the reviewer's label overrules the CNN, so they are never candidates.
"""

from __future__ import annotations

import urllib.parse
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vo_al.core.export.formats import EXPORT_FORMATS, TABLE_FORMATS, format_of, parse_formats
from vo_al.core.base.sky import separation_arcsec
from vo_al.core.base.errors import ParameterError, VOQueryError

MIN_RADIUS, MAX_RADIUS = 5.0, 300.0          # arcsec, the range the paper tried
DEFAULT_SIMBAD_RADIUS = 20.0                 # arcsec, the paper's choice
DEFAULT_H16_RADIUS = 5.0                     # arcsec, H16 vs FITS header offsets <= 4.96"
DEFAULT_GROUP_RADIUS = 5.0                   # arcsec, internal match of multiple exposures
SCAN_RADII = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300)

SIMBAD_TAP_URL = "http://simbad.cds.unistra.fr/simbad/sim-tap"
SIMBAD_COO_URL = "http://simbad.cds.unistra.fr/simbad/sim-coo"
SIMBAD_ID_URL = "http://simbad.cds.unistra.fr/simbad/sim-id"


def check_radius(radius, name: str = "radius") -> float:
    """`radius` in arcsec as a float; ParameterError naming the value unless 5 <= r <= 300."""
    try:
        r = float(radius)
    except (TypeError, ValueError):
        raise ParameterError(name, radius, f"a number of arcsec between {MIN_RADIUS:g} and "
                                           f"{MAX_RADIUS:g}") from None
    if not (MIN_RADIUS <= r <= MAX_RADIUS):
        raise ParameterError(name, radius, f"a radius in arcsec between {MIN_RADIUS:g} and "
                                           f"{MAX_RADIUS:g}")
    return r


# ---------------------------------------------------------------- catalogue routes

@dataclass(frozen=True)
class CatalogueColumns:
    """Where a TAP table keeps what a match needs (names as the service spells them)."""

    table: str = "basic"
    id: str = "main_id"
    ra: str = "ra"
    dec: str = "dec"
    otype: str = "otype"


SIMBAD_COLUMNS = CatalogueColumns()                          # SIMBAD TAP: basic
SIMBAD_LIKE_COLUMNS = CatalogueColumns("lamost.simbad_like")  # the local DaCHS's stand-in


@dataclass
class Pairs:
    """Every (candidate, object) pair within a radius; object columns aligned with the pairs."""

    cand: np.ndarray                 # candidate row, int64
    sep: np.ndarray                  # separation in arcsec, float64
    obj_id: np.ndarray               # str
    obj_otype: np.ndarray            # str
    obj_ra: np.ndarray               # deg
    obj_dec: np.ndarray              # deg
    extra: dict = field(default_factory=dict)    # further object columns (local catalogues)
    radius: float = 0.0

    def within(self, radius: float) -> "Pairs":
        keep = self.sep <= radius
        return Pairs(self.cand[keep], self.sep[keep], self.obj_id[keep], self.obj_otype[keep],
                     self.obj_ra[keep], self.obj_dec[keep],
                     {k: v[keep] for k, v in self.extra.items()}, radius)


def _empty_pairs(radius: float) -> Pairs:
    e = np.empty(0)
    return Pairs(np.empty(0, np.int64), e, np.empty(0, str), np.empty(0, str), e, e, {}, radius)


def _coords(ra, dec):
    from astropy.coordinates import SkyCoord

    return SkyCoord(ra=np.asarray(ra, float), dec=np.asarray(dec, float), unit="deg",
                    frame="icrs")


def _separations(ra1, dec1, ra2, dec2) -> np.ndarray:
    """Angular separation in arcsec, vectorised (an empty array for no pairs)."""
    if len(ra1) == 0:
        return np.empty(0)
    return separation_arcsec(ra1, dec1, ra2, dec2)


def _check_positions(ra, dec) -> tuple[np.ndarray, np.ndarray]:
    ra = np.asarray(ra, dtype=float).reshape(-1)
    dec = np.asarray(dec, dtype=float).reshape(-1)
    if ra.shape != dec.shape:
        raise ParameterError("positions", (ra.size, dec.size), "as many RA as Dec values")
    bad = ~(np.isfinite(ra) & np.isfinite(dec)) | (np.abs(dec) > 90)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ParameterError(f"position of candidate row {i}", (ra[i], dec[i]),
                             "finite RA and Dec in degrees, |Dec| <= 90")
    return ra, dec


class LocalCatalogue:
    """A catalogue in memory (from a file or arrays), matched with astropy SkyCoord."""

    def __init__(self, ra, dec, ids=None, otypes=None, name: str = "catalogue",
                 extra: dict | None = None):
        self.ra, self.dec = _check_positions(ra, dec)
        n = self.ra.size
        self.ids = (np.asarray(ids).astype(str) if ids is not None
                    else np.array([str(i) for i in range(n)]))
        self.otypes = np.asarray(otypes).astype(str) if otypes is not None else np.full(n, "")
        self.name = name
        self.extra = {k: np.asarray(v) for k, v in (extra or {}).items()}
        self._sky = None

    def __len__(self) -> int:
        return self.ra.size

    @property
    def sky(self):
        if self._sky is None:                 # the k-d tree is cached on this object
            self._sky = _coords(self.ra, self.dec)
        return self._sky

    @classmethod
    def from_table(cls, table, name: str = "catalogue", ra: str | None = None,
                   dec: str | None = None, id: str | None = None, otype: str | None = None,
                   extra: list | None = None) -> "LocalCatalogue":
        """From an astropy Table; columns guessed (ra/RAJ2000/..., main_id/designation/...)."""
        ra = ra or _guess(table, RA_NAMES, "RA", name)
        dec = dec or _guess(table, DEC_NAMES, "Dec", name)
        id = id or _guess(table, ID_NAMES, None, name)
        otype = otype or _guess(table, OTYPE_NAMES, None, name)
        ra_v, dec_v = _degrees(table[ra]), _degrees(table[dec])
        cols = {c: _filled(table[c]) for c in (extra or []) if c in table.colnames}
        return cls(ra_v, dec_v, _filled(table[id]) if id else None,
                   _filled(table[otype]) if otype else None, name=name, extra=cols)

    @classmethod
    def from_file(cls, path, fmt: str | None = None, name: str | None = None,
                  **columns) -> "LocalCatalogue":
        """Read a VOTable, FITS, CSV or ECSV file (format from `fmt` or the suffix);
        `columns`: ra=, dec=, id=, otype=, extra= as in from_table."""
        return cls.from_table(read_table(path, fmt), name=name or Path(path).name, **columns)

    def pairs(self, ra, dec, radius: float) -> Pairs:
        from astropy import units as u

        radius = check_radius(radius)
        ra, dec = _check_positions(ra, dec)
        if ra.size == 0 or len(self) == 0:
            return _empty_pairs(radius)
        cands = _coords(ra, dec)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            # the k-d tree is built on (and cached with) the catalogue's coordinates
            i_cand, i_obj, sep, _ = self.sky.search_around_sky(cands, radius * u.arcsec)
        order = np.lexsort((i_obj, sep.arcsec, i_cand))
        i_cand, i_obj, sep = i_cand[order], i_obj[order], sep.arcsec[order]
        return Pairs(i_cand.astype(np.int64), sep, self.ids[i_obj], self.otypes[i_obj],
                     self.ra[i_obj], self.dec[i_obj],
                     {k: v[i_obj] for k, v in self.extra.items()}, radius)


RA_NAMES = ("ra", "raj2000", "ra_icrs", "_raj2000", "radeg", "ra_deg")
DEC_NAMES = ("dec", "dej2000", "de_icrs", "_dej2000", "decdeg", "dec_deg", "decj2000")
ID_NAMES = ("main_id", "designation", "id", "name", "source_id", "obsid", "objid")
OTYPE_NAMES = ("otype", "main_type", "objtype_hou", "objtype", "type", "class")


def _guess(table, names, what, where):
    lower = {c.lower(): c for c in table.colnames}
    for n in names:
        if n in lower:
            return lower[n]
    if what is not None:
        raise ParameterError(f"{what} column of {where}", table.colnames,
                             f"one of {', '.join(names)} (or name it explicitly)")
    return None


def _filled(col) -> np.ndarray:
    if getattr(col, "mask", None) is not None and np.any(col.mask):
        fill = "" if col.dtype.kind in "US O" else np.nan
        if col.dtype.kind in "iub":
            col = col.astype(float)
        return np.asarray(col.filled(fill))
    return np.asarray(col)


def _degrees(col) -> np.ndarray:
    unit = getattr(col, "unit", None)
    values = np.asarray(_filled(col), dtype=float)
    if unit is not None and str(unit) not in ("", "deg"):
        from astropy import units as u

        try:
            values = (values * u.Unit(unit)).to_value(u.deg)
        except (u.UnitsError, ValueError):
            pass
    return values


def read_table(path, fmt: str | None = None):
    """Any local catalogue file as an astropy Table: VOTable, FITS, CSV or ECSV."""
    from astropy.table import Table

    path = Path(path)
    if not path.is_file():
        raise ParameterError("catalogue", str(path), "an existing VOTable, FITS, CSV or ECSV "
                                                     "file")
    known = format_of(path)
    fmt = fmt or (known.astropy if known else None)
    if fmt is None:
        raise ParameterError("catalogue", str(path), "a .vot/.xml/.fits/.csv/.ecsv file (or "
                                                     "give the format)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")          # VOTable/FITS unit warnings
            return Table.read(path, format=fmt)
    except Exception as exc:                         # noqa: BLE001 - any reader failure
        raise ParameterError("catalogue", str(path), f"a readable {fmt} table "
                                                     f"({type(exc).__name__}: {exc})") from exc


class TapCatalogue:
    """A catalogue behind a TAP service: SIMBAD by default (basic: main_id, ra, dec, otype).

    upload: True (TAP_UPLOAD; error if the service has none), False (batched OR'd CONTAINS
    queries), None (upload when the capabilities announce an upload method).
    """

    def __init__(self, service=SIMBAD_TAP_URL, columns: CatalogueColumns = SIMBAD_COLUMNS,
                 *, session=None, upload: bool | None = None, batch_size: int = 5000,
                 or_batch_size: int = 50, maxrec: int | None = 1_000_000, name: str | None = None):
        from vo_al.core.vo.query import _as_service, make_session
        from vo_al.core.vo.services import TAP

        self.service = _as_service(service, TAP)
        self.columns = columns
        self.session = session if session is not None else make_session(timeout=(10.0, 300.0))
        self.upload = upload
        self.batch_size = int(batch_size)
        self.or_batch_size = int(or_batch_size)
        self.maxrec = maxrec
        self.name = name or f"{self.service.url} {columns.table}"
        self.route = None                       # 'upload' or 'or-circles' once used
        if self.batch_size < 1 or self.or_batch_size < 1:
            raise ParameterError("batch_size", (batch_size, or_batch_size), "numbers >= 1")

    def _tap(self):
        import pyvo

        return pyvo.dal.TAPService(self.service.url, session=self.session)

    def supports_upload(self) -> bool:
        """Whether the service's capabilities announce a TAP_UPLOAD method."""
        from vo_al.core.vo.query import wrap_error

        try:
            return bool(self._tap().upload_methods)
        except Exception as exc:                   # noqa: BLE001 - typed error below
            raise wrap_error(exc, self.service.url, "capabilities") from exc

    def _run(self, adql: str, uploads: dict | None = None):
        from pyvo.dal.exceptions import DALOverflowWarning

        from vo_al.core.vo.query import _to_table, wrap_error

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DALOverflowWarning)
                results = self._tap().run_sync(adql, maxrec=self.maxrec, uploads=uploads)
        except Exception as exc:                   # noqa: BLE001 - wrapped into a typed error
            raise wrap_error(exc, self.service.url, adql) from exc
        return _to_table(results, self.service.url, adql, mode="sync", maxrec=self.maxrec)

    def upload_adql(self, radius: float, upload_name: str = "cand") -> str:
        c = self.columns
        r = radius / 3600.0
        return (f"SELECT u.cand_row, s.{c.id} AS obj_id, s.{c.ra} AS obj_ra, "
                f"s.{c.dec} AS obj_dec, s.{c.otype} AS obj_otype "
                f"FROM TAP_UPLOAD.{upload_name} AS u JOIN {c.table} AS s "
                f"ON 1=CONTAINS(POINT('ICRS', s.{c.ra}, s.{c.dec}), "
                f"CIRCLE('ICRS', u.ra, u.dec, {r!r}))")

    def circles_adql(self, ra, dec, radius: float) -> str:
        c = self.columns
        r = radius / 3600.0
        conds = " OR ".join(
            f"1=CONTAINS(POINT('ICRS', {c.ra}, {c.dec}), CIRCLE('ICRS', {a!r}, {d!r}, {r!r}))"
            for a, d in zip(map(float, ra), map(float, dec)))
        return (f"SELECT {c.id} AS obj_id, {c.ra} AS obj_ra, {c.dec} AS obj_dec, "
                f"{c.otype} AS obj_otype FROM {c.table} WHERE {conds}")

    def pairs(self, ra, dec, radius: float) -> Pairs:
        radius = check_radius(radius)
        ra, dec = _check_positions(ra, dec)
        if ra.size == 0:
            return _empty_pairs(radius)
        use_upload = self.upload if self.upload is not None else self.supports_upload()
        self.route = "upload" if use_upload else "or-circles"
        parts = []
        if use_upload:
            for start in range(0, ra.size, self.batch_size):
                rows = np.arange(start, min(ra.size, start + self.batch_size))
                parts.extend(self._upload_batch(rows, ra, dec, radius))
        else:
            for start in range(0, ra.size, self.or_batch_size):
                rows = np.arange(start, min(ra.size, start + self.or_batch_size))
                parts.append(self._circles_batch(rows, ra, dec, radius))
        return _merge_pairs(parts, ra, dec, radius)

    def _upload_batch(self, rows, ra, dec, radius):
        from astropy.table import Table

        upload = Table({"cand_row": rows.astype(np.int64), "ra": ra[rows], "dec": dec[rows]})
        adql = self.upload_adql(radius)
        table = self._run(adql, uploads={"cand": upload})
        if table.meta.get("overflow"):
            if rows.size == 1:
                raise VOQueryError(self.service.url, adql, f"more than {self.maxrec} objects "
                                   f"within {radius:g} arcsec of one candidate: truncated")
            half = rows.size // 2
            return (self._upload_batch(rows[:half], ra, dec, radius)
                    + self._upload_batch(rows[half:], ra, dec, radius))
        return [(np.asarray(table["cand_row"], dtype=np.int64), table)]

    def _circles_batch(self, rows, ra, dec, radius):
        from astropy.table import Table

        adql = self.circles_adql(ra[rows], dec[rows], radius)
        table = self._run(adql)
        if table.meta.get("overflow"):
            raise VOQueryError(self.service.url, adql, "result truncated (OVERFLOW): use a "
                                                       "smaller or_batch_size")
        # objects -> the candidates of this batch they lie near (a local match)
        objects = LocalCatalogue(_degrees(table["obj_ra"]), _degrees(table["obj_dec"]),
                                 _filled(table["obj_id"]), _filled(table["obj_otype"]))
        p = objects.pairs(ra[rows], dec[rows], radius)
        sub = Table({"obj_id": p.obj_id, "obj_ra": p.obj_ra, "obj_dec": p.obj_dec,
                     "obj_otype": p.obj_otype})
        return rows[p.cand], sub


def _merge_pairs(parts, ra, dec, radius) -> Pairs:
    if not parts:
        return _empty_pairs(radius)
    cand = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, np.int64)
    col = lambda name, conv: np.concatenate([conv(p[1][name]) for p in parts])  # noqa: E731
    obj_ra, obj_dec = col("obj_ra", _degrees), col("obj_dec", _degrees)
    obj_id = col("obj_id", lambda c: np.asarray(_filled(c)).astype(str))
    otype = col("obj_otype", lambda c: np.asarray(_filled(c)).astype(str))
    sep = _separations(ra[cand], dec[cand], obj_ra, obj_dec)
    keep = sep <= radius                 # the server's CONTAINS may differ in the last bit
    order = np.lexsort((obj_id[keep], sep[keep], cand[keep]))
    pick = lambda a: a[keep][order]  # noqa: E731
    return Pairs(pick(cand), pick(sep), pick(obj_id), pick(otype), pick(obj_ra), pick(obj_dec),
                 {}, radius)


# ---------------------------------------------------------------- results

@dataclass
class MatchResult:
    """Per candidate: the nearest object within the radius and how many objects lie within it."""

    n_match: np.ndarray              # objects within the radius (int)
    sep: np.ndarray                  # arcsec to the nearest, NaN when none
    match_id: np.ndarray             # '' when none
    otype: np.ndarray                # '' when none
    match_ra: np.ndarray
    match_dec: np.ndarray
    radius: float
    catalogue: str
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.n_match.size

    @property
    def matched(self) -> np.ndarray:
        return self.n_match > 0

    def columns(self, prefix: str) -> dict:
        cols = {f"{prefix}_id": self.match_id, f"{prefix}_otype": self.otype,
                f"{prefix}_sep": self.sep, f"{prefix}_n": self.n_match,
                f"{prefix}_ra": self.match_ra, f"{prefix}_dec": self.match_dec}
        cols.update({f"{prefix}_{k}": v for k, v in self.extra.items()})
        return cols


def nearest(pairs: Pairs, n: int, catalogue: str = "") -> MatchResult:
    """The nearest object per candidate (pairs sorted by candidate then separation)."""
    counts = np.bincount(pairs.cand, minlength=n).astype(np.int64) if n else np.zeros(0, int)
    first = np.flatnonzero(np.r_[True, pairs.cand[1:] != pairs.cand[:-1]]) if pairs.cand.size \
        else np.empty(0, int)
    rows = pairs.cand[first]
    sep = np.full(n, np.nan)
    sep[rows] = pairs.sep[first]

    def spread(values, fill):
        out = np.full(n, fill, dtype=values.dtype if values.dtype.kind != "U" else object)
        out[rows] = values[first]
        return out.astype(str) if values.dtype.kind == "U" or fill == "" else out

    extra = {k: spread(v, "" if v.dtype.kind in "US" else np.nan)
             for k, v in pairs.extra.items()}
    return MatchResult(counts, sep, spread(pairs.obj_id, ""), spread(pairs.obj_otype, ""),
                       spread(pairs.obj_ra, np.nan), spread(pairs.obj_dec, np.nan),
                       pairs.radius, catalogue, extra)


def crossmatch(catalogue, ra, dec, radius: float = DEFAULT_SIMBAD_RADIUS) -> MatchResult:
    """Nearest object, its separation (arcsec), id and type, and the count within `radius`."""
    ra, dec = _check_positions(ra, dec)
    pairs = catalogue.pairs(ra, dec, check_radius(radius))
    return nearest(pairs, ra.size, getattr(catalogue, "name", ""))


def radius_scan(catalogue, ra, dec, radii=SCAN_RADII):
    """Match counts per radius (one query at the largest radius); an astropy Table.

    Columns: radius (arcsec), n_matched (candidates with >= 1 object), fraction_matched,
    n_pairs (candidate-object pairs), mean_objects (per candidate), n_multiple (candidates
    with >= 2 objects), new_matched (n_matched gained since the previous radius).
    """
    from astropy.table import Table

    radii = sorted(check_radius(r, "radii") for r in radii)
    if not radii:
        raise ParameterError("radii", radii, "at least one radius")
    ra, dec = _check_positions(ra, dec)
    pairs = catalogue.pairs(ra, dec, radii[-1])
    n = max(ra.size, 1)
    rows = []
    for r in radii:
        p = pairs.within(r)
        counts = np.bincount(p.cand, minlength=ra.size)
        rows.append((r, int((counts > 0).sum()), int(p.cand.size), int((counts > 1).sum())))
    t = Table(rows=rows, names=("radius", "n_matched", "n_pairs", "n_multiple"))
    t["fraction_matched"] = t["n_matched"] / n
    t["mean_objects"] = t["n_pairs"] / n
    t["new_matched"] = np.diff(np.r_[0, t["n_matched"]])
    t["radius"].unit = "arcsec"
    t.meta.update(catalogue=getattr(catalogue, "name", ""), n_candidates=int(ra.size))
    return t


def plot_radius_scan(scan, path, chosen: float | None = DEFAULT_SIMBAD_RADIUS,
                     title: str | None = None) -> Path:
    """PNG of the radius scan: candidates matched and objects per candidate vs radius."""
    # a bare Figure (no pyplot): drawn by the Agg canvas whatever backend a GUI has chosen
    from matplotlib.figure import Figure

    from vo_al.core.base.atomic import atomic_write_bytes

    fig = Figure(figsize=(6.4, 4.2), dpi=100)
    ax = fig.add_subplot()
    r = np.asarray(scan["radius"], float)
    ax.plot(r, scan["n_matched"], "o-", label="candidates with a match")
    ax.plot(r, scan["n_pairs"], "s--", label="objects within the radius (all pairs)")
    if chosen is not None:
        ax.axvline(chosen, color="grey", ls=":", label=f'chosen radius {chosen:g}"')
    ax.set_xscale("log")
    ax.set_xticks(r)
    ax.set_xticklabels([f"{x:g}" for x in r], fontsize=8)
    ax.set_xlabel("radius (arcsec)")
    ax.set_ylabel("count")
    ax.set_title(title or f"Radius scan: {scan.meta.get('catalogue', '')} "
                          f"({scan.meta.get('n_candidates', '?')} candidates)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


# ---------------------------------------------------------------- multiple exposures

def _first_seen_ids(keys) -> np.ndarray:
    """Group ids 1..k numbered in order of first appearance."""
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    rank = np.empty(first.size, np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(1, first.size + 1)
    return rank[inverse.reshape(-1)]


def group_by_designation(designation) -> np.ndarray:
    """Group id (1..k, first-seen order) per row; an empty designation is a group of its own."""
    d = np.asarray(designation).astype(str)
    keys = np.array([s.strip() or f"\0row{i}" for i, s in enumerate(d)], dtype=object) \
        if d.size else np.empty(0, str)
    return _first_seen_ids(keys.astype(str)) if d.size else np.empty(0, np.int64)


def group_by_position(ra, dec, radius: float = DEFAULT_GROUP_RADIUS) -> np.ndarray:
    """Friends-of-friends group id (1..k, first-seen order): connected within `radius` arcsec."""
    from astropy import units as u
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    radius = check_radius(radius, "group radius")
    ra, dec = _check_positions(ra, dec)
    n = ra.size
    if n == 0:
        return np.empty(0, np.int64)
    sky = _coords(ra, dec)
    i, j, _, _ = sky.search_around_sky(sky, radius * u.arcsec) if n > 1 else \
        (np.zeros(1, int), np.zeros(1, int), None, None)
    graph = coo_matrix((np.ones(i.size, np.int8), (i, j)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return _first_seen_ids(labels)


def group_sizes(groups) -> np.ndarray:
    """Per row: how many rows share its group."""
    groups = np.asarray(groups)
    if groups.size == 0:
        return np.empty(0, np.int64)
    _, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    return counts[inverse.reshape(-1)]


def group_summary(groups) -> dict:
    """n_rows, n_groups, n_multiple (groups of > 1 row), largest, histogram {size: groups}."""
    groups = np.asarray(groups)
    if groups.size == 0:
        return {"n_rows": 0, "n_groups": 0, "n_multiple": 0, "largest": 0, "histogram": {}}
    _, counts = np.unique(groups, return_counts=True)
    sizes, how_many = np.unique(counts, return_counts=True)
    return {"n_rows": int(groups.size), "n_groups": int(counts.size),
            "n_multiple": int((counts > 1).sum()), "largest": int(counts.max()),
            "histogram": {int(s): int(k) for s, k in zip(sizes, how_many)}}


# ---------------------------------------------------------------- links

def simbad_coo_url(ra: float, dec: float, radius: float = DEFAULT_SIMBAD_RADIUS) -> str:
    """SIMBAD's page of every object within `radius` arcsec of (ra, dec)."""
    coord = urllib.parse.quote_plus(f"{float(ra):.6f} {float(dec):+.6f}")
    return f"{SIMBAD_COO_URL}?Coord={coord}&Radius={float(radius):g}&Radius.unit=arcsec"


def simbad_id_url(main_id: str) -> str:
    """SIMBAD's page of one object by its identifier."""
    return f"{SIMBAD_ID_URL}?Ident={urllib.parse.quote_plus(str(main_id))}"


def simbad_links(ra, dec, radius: float, main_ids=None) -> tuple[np.ndarray, np.ndarray]:
    """(sim-coo URL per row, sim-id URL per row or '' where no main id)."""
    coo = np.array([simbad_coo_url(a, d, radius) for a, d in zip(ra, dec)], dtype=object)
    ids = main_ids if main_ids is not None else [""] * len(coo)
    by_id = np.array([simbad_id_url(m) if str(m).strip() else "" for m in ids], dtype=object)
    return coo.astype(str), by_id.astype(str)


# ---------------------------------------------------------------- H16

H16_COLUMNS = ("designation", "ra", "dec", "w1", "w1_err", "h", "h_err", "k", "k_err",
               "Halpha_type", "objtype_Hou", "objtype_SIMBAD")
H16_EXTRA = ("Halpha_type", "objtype_Hou", "objtype_SIMBAD")
H16_INFO = {
    "designation": ("meta.id;meta.main", "LAMOST designation (H16 gives objects, not spectra)"),
    "ra": ("pos.eq.ra;meta.main", "Right ascension (J2000) in H16"),
    "dec": ("pos.eq.dec;meta.main", "Declination (J2000) in H16"),
    "w1": ("phot.mag;em.IR.3-4um", "WISE W1 magnitude"),
    "w1_err": ("stat.error;phot.mag;em.IR.3-4um", "Error of W1"),
    "h": ("phot.mag;em.IR.H", "2MASS H magnitude"),
    "h_err": ("stat.error;phot.mag;em.IR.H", "Error of H"),
    "k": ("phot.mag;em.IR.K", "2MASS Ks magnitude"),
    "k_err": ("stat.error;phot.mag;em.IR.K", "Error of Ks"),
    "Halpha_type": ("src.class", "H-alpha profile type (H16)"),
    "objtype_Hou": ("src.class", "Object type given by Hou et al. (2016)"),
    "objtype_SIMBAD": ("src.class", "SIMBAD object type quoted by H16"),
}


def load_h16(path):
    """Hou et al. (2016) table as published (CSV, '-' = missing -> masked); or VOTable/FITS/ECSV.

    Returns an astropy Table with units on ra/dec (deg) and the magnitudes (mag).
    """
    from astropy.table import MaskedColumn, Table

    path = Path(path)
    if path.suffix.lower() == ".csv":
        if not path.is_file():
            raise ParameterError("H16 catalogue", str(path), "an existing file")
        try:
            table = Table.read(path, format="ascii.csv", fill_values=[("-", "0"), ("", "0")],
                               fill_include_names=None)
        except Exception as exc:                     # noqa: BLE001
            raise ParameterError("H16 catalogue", str(path),
                                 f"a readable CSV ({type(exc).__name__}: {exc})") from exc
    else:
        table = read_table(path)
    missing = [c for c in ("designation", "ra", "dec") if c not in table.colnames]
    if missing:
        raise ParameterError("H16 catalogue", str(path), f"columns {', '.join(missing)} "
                                                         f"(has {', '.join(table.colnames)})")
    for c in table.colnames:
        if not isinstance(table[c], MaskedColumn):
            table[c] = MaskedColumn(table[c], mask=np.zeros(len(table), bool))
    for c in ("w1", "w1_err", "h", "h_err", "k", "k_err"):
        if c in table.colnames:
            if table[c].dtype.kind not in "f":
                table[c] = MaskedColumn(np.asarray(table[c].filled(0), float),
                                        mask=table[c].mask)
            table[c].unit = "mag"
    table["ra"].unit = table["dec"].unit = "deg"
    for name, (ucd, description) in H16_INFO.items():
        if name in table.colnames:
            table[name].meta["ucd"] = ucd
            table[name].description = description
    table.meta["catalogue"] = "H16 (Hou et al. 2016, LAMOST DR2 emission-line stars)"
    return table


def h16_catalogue(table_or_path) -> LocalCatalogue:
    """H16 as a LocalCatalogue: id = designation, type = objtype_Hou, plus Hα type."""
    table = table_or_path if hasattr(table_or_path, "colnames") else load_h16(table_or_path)
    otype = "objtype_Hou" if "objtype_Hou" in table.colnames else None
    return LocalCatalogue.from_table(table, name="H16", ra="ra", dec="dec", id="designation",
                                     otype=otype, extra=["Halpha_type"])



# ---------------------------------------------------------------- the paper's four tables

TABLE_NAMES = ("known_h16", "new_in_simbad", "new_unknown", "rejected")
TABLE_TITLES = {
    "known_h16": "Candidates known in H16 (Hou et al. 2016)",
    "new_in_simbad": "New candidates (not in H16) with a SIMBAD object within the radius",
    "new_unknown": "New candidates with no H16 and no SIMBAD object within the radius",
    "rejected": "Spectra the oracle/reviewer labelled non-target (rejected)",
}


@dataclass
class CrossmatchResult:
    """Candidates (and rejected spectra) with SIMBAD/H16 matches, groups and categories."""

    table: object                    # astropy Table, one row per spectrum
    params: dict
    groups: dict                     # {'designation': group_summary, 'position': ...}

    def tables(self) -> dict:
        """The four tables of the paper by name (astropy Tables)."""
        cat = np.asarray(self.table["category"]).astype(str)
        return {name: self.table[cat == name] for name in TABLE_NAMES}

    def counts(self) -> dict:
        return {name: len(t) for name, t in self.tables().items()}


def crossmatch_candidates(candidates: dict, simbad=None, h16=None, *,
                          radius: float = DEFAULT_SIMBAD_RADIUS,
                          h16_radius: float = DEFAULT_H16_RADIUS,
                          group_radius: float = DEFAULT_GROUP_RADIUS,
                          rejected: dict | None = None, params: dict | None = None
                          ) -> CrossmatchResult:
    """Match candidates (a column dict, candidates.candidate_table) with SIMBAD and H16.

    simbad / h16: catalogue objects (TapCatalogue / LocalCatalogue) or None (not matched:
    the H16 columns stay empty and nothing is 'known_h16'). `rejected` (rejected_table) rows are
    matched too and go to the 'rejected' table whatever they match. Adds per row: simbad_*
    (id, otype, sep, n, ra, dec), h16_* (same, plus Halpha_type), group_designation,
    group_designation_size, group_position, group_position_size, simbad_url, simbad_id_url,
    category.
    """
    from astropy.table import vstack

    from vo_al.core.export.catalogue import to_astropy_table

    radius = check_radius(radius, "radius")
    h16_radius = check_radius(h16_radius, "h16 radius")
    group_radius = check_radius(group_radius, "group radius")
    parts = [to_astropy_table(candidates)]
    if rejected is not None and len(rejected["ra"]):
        parts.append(to_astropy_table(rejected))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # meta merge
        table = vstack(parts, metadata_conflicts="silent") if len(parts) > 1 else parts[0]
    n_cand = len(candidates["ra"])
    is_rejected = np.arange(len(table)) >= n_cand
    ra = np.asarray(table["ra"], float)
    dec = np.asarray(table["dec"], float)
    known = np.zeros(len(table), bool)
    in_simbad = np.zeros(len(table), bool)
    if simbad is not None:
        m = crossmatch(simbad, ra, dec, radius)
        for k, v in m.columns("simbad").items():
            table[k] = v
        in_simbad = m.matched
    if h16 is not None:
        m = crossmatch(h16, ra, dec, h16_radius)
        for k, v in m.columns("h16").items():
            table[k] = v
        known = m.matched
    # multiple exposures: over the candidates only (rejected rows get group 0)
    gd = np.zeros(len(table), np.int64)
    gp = np.zeros(len(table), np.int64)
    gd[:n_cand] = group_by_designation(np.asarray(table["designation"][:n_cand]).astype(str))
    gp[:n_cand] = group_by_position(ra[:n_cand], dec[:n_cand], group_radius)
    table["group_designation"] = gd
    table["group_designation_size"] = np.where(gd > 0, _sizes_or_zero(gd), 0)
    table["group_position"] = gp
    table["group_position_size"] = np.where(gp > 0, _sizes_or_zero(gp), 0)
    ids = table["simbad_id"] if "simbad_id" in table.colnames else None
    table["simbad_url"], table["simbad_id_url"] = simbad_links(ra, dec, radius, ids)
    category = np.where(is_rejected, "rejected",
                        np.where(known, "known_h16",
                                 np.where(in_simbad, "new_in_simbad", "new_unknown")))
    table["category"] = category
    run = {"simbad_radius_arcsec": radius, "h16_radius_arcsec": h16_radius,
           "group_radius_arcsec": group_radius,
           "simbad_catalogue": getattr(simbad, "name", "none") if simbad is not None else "none",
           "h16_catalogue": getattr(h16, "name", "none") if h16 is not None else "none"}
    if simbad is not None and getattr(simbad, "route", None):
        run["simbad_route"] = simbad.route
    run.update(params or {})
    groups = {"designation": group_summary(gd[:n_cand]), "position": group_summary(gp[:n_cand])}
    run.update(n_candidates=int(n_cand), n_rejected=int(is_rejected.sum()),
               n_groups_designation=groups["designation"]["n_groups"],
               n_groups_position=groups["position"]["n_groups"])
    table.meta.clear()
    return CrossmatchResult(table, run, groups)


def _sizes_or_zero(groups: np.ndarray) -> np.ndarray:
    sizes = np.zeros(groups.size, np.int64)
    sel = groups > 0
    sizes[sel] = group_sizes(groups[sel])
    return sizes


def write_tables(result: CrossmatchResult, out_dir, formats=EXPORT_FORMATS,
                 stem: str = "") -> list[Path]:
    """The four tables (and all rows in 'crossmatch.*') in each format; returns the paths."""
    from vo_al.core.export.catalogue import write_catalogue

    formats = parse_formats(formats, "format")
    out_dir = Path(out_dir)
    written = []
    named = {"crossmatch": result.table, **result.tables()}
    for name, table in named.items():
        params = dict(result.params, table=name,
                      description=TABLE_TITLES.get(name, "All candidates and rejected spectra "
                                                         "with their cross-matches"))
        for fmt in formats:
            suffix = TABLE_FORMATS[fmt].suffix
            written.append(write_catalogue(table, out_dir / f"{stem}{name}{suffix}", fmt, params))
    return written
