"""The catalogues a cross-match asks: a file or arrays in memory, or a table behind a TAP service.

Both answer `pairs(ra, dec, radius)` (every candidate-object pair within `radius` arcsec, as
`match.Pairs`), so the match itself is the same for both:

* `LocalCatalogue`: a file (VOTable, FITS, CSV, ECSV; `read_table`) or arrays, matched through
  declination zones (`zones.ZoneIndex`: the catalogue sorted by zone and RA once per zone
  height and kept on the catalogue; exact Vincenty separations). Besides `pairs` it answers
  `nearest_pairs` (the nearest object per candidate and the count within the radius) and
  `counts_within` (counts per radius), which `match.crossmatch` and `match.radius_scan` use
  instead of building every pair's columns; their numbers equal those from `pairs`. The
  position, id and type columns of a file are guessed from their usual names (`RA_NAMES`,
  `DEC_NAMES`, `ID_NAMES`, `OTYPE_NAMES`) unless named; its positions are read by
  `positions.table_positions` (degrees, or sexagesimal text). A row whose position is missing,
  not a coordinate or off the sky is skipped: the catalogue keeps the others, lists the
  skipped rows in `skipped` and warns once (`SkippedRowsWarning`, naming the file, the count
  and the first rows); a catalogue with no usable row at all is refused (TableRowError).
* `TapCatalogue`: a TAP service, e.g. SIMBAD (`basic`: main_id, ra, dec, otype, the
  `SIMBAD_COLUMNS` at `SIMBAD_TAP_URL`) or the local DaCHS's `lamost.simbad_like`
  (`SIMBAD_LIKE_COLUMNS`); `CatalogueColumns` says where a table keeps what a match needs. The
  candidates are uploaded (TAP_UPLOAD, pyvo `uploads=`) and joined with
  ``1=CONTAINS(POINT(object), CIRCLE(candidate, r))``, in batches; a batch whose result the
  server truncated (OVERFLOW) is split in two and asked again. A service that announces no
  upload method is asked with batched ``WHERE CONTAINS(...) OR CONTAINS(...)`` queries instead
  (`upload=False` forces that route). Separations are computed here from the returned
  positions, not taken from the server.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vo_al.core.base.errors import ParameterError, TableRowError, VOQueryError
from vo_al.core.base.sky import separation_arcsec
from vo_al.core.export.formats import read_table_file
from vo_al.core.xmatch.match import Pairs, check_positions, check_radius, sky_coords
from vo_al.core.xmatch.positions import (SkippedRow, SkippedRowsWarning, degrees, filled,
                                         skipped_note, table_positions)
from vo_al.core.xmatch.zones import MAX_TRIED, ZoneIndex

# SIMBAD's TAP service: TapCatalogue's default, with SIMBAD_COLUMNS
SIMBAD_TAP_URL = "http://simbad.cds.unistra.fr/simbad/sim-tap"


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

# ---------------------------------------------------------------- columns of a local file

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


def read_table(path, fmt: str | None = None):
    """Any local catalogue file as an astropy Table: VOTable, FITS, CSV or ECSV
    (`export.formats.read_table_file`: a ParameterError naming the file otherwise)."""
    return read_table_file(path, "catalogue", fmt)


# ---------------------------------------------------------------- a catalogue in memory

class LocalCatalogue:
    """A catalogue in memory (from a file or arrays), matched through declination zones."""

    # zone indexes kept per catalogue: one per radius asked (a match and a radius scan)
    MAX_ZONE_INDEXES = 2
    max_tried = MAX_TRIED      # pairs whose separation is computed at once (zones.ZoneIndex)

    def __init__(self, ra, dec, ids=None, otypes=None, name: str = "catalogue",
                 extra: dict | None = None, skipped=()):
        self.ra, self.dec = check_positions(ra, dec, "position of catalogue row")
        n = self.ra.size
        # asarray, not astype: a catalogue of a million ids is not copied
        self.ids = np.asarray(ids, dtype=str) if ids is not None else np.arange(n).astype(str)
        self.otypes = np.asarray(otypes, dtype=str) if otypes is not None else np.full(n, "")
        self.name = name
        self.extra = {k: np.asarray(v) for k, v in (extra or {}).items()}
        self.skipped: tuple[SkippedRow, ...] = tuple(skipped)   # rows of the file left out
        self._sky = None
        self._zones: dict[float, ZoneIndex] = {}
        self._zones_lock = threading.Lock()     # a job thread and the app may both match

    def __len__(self) -> int:
        return self.ra.size

    @property
    def sky(self):
        """The catalogue's positions as an astropy SkyCoord (built once, when first asked)."""
        if self._sky is None:
            self._sky = sky_coords(self.ra, self.dec)
        return self._sky

    def zone_index(self, radius: float) -> ZoneIndex:
        """The catalogue sorted by declination zones as high as `radius` (arcsec), kept for
        the next request at that radius."""
        with self._zones_lock:
            index = self._zones.get(radius)
            if index is None:
                while len(self._zones) >= self.MAX_ZONE_INDEXES:
                    self._zones.pop(next(iter(self._zones)))        # the oldest goes
                index = self._zones[radius] = ZoneIndex(self.ra, self.dec, radius / 3600.0)
            return index

    def _near(self, ra, dec, radius: float):
        """Checked radius and positions, and the chunks of (candidate, object, sep) pairs."""
        radius = check_radius(radius)
        ra, dec = check_positions(ra, dec)
        chunks = (self.zone_index(radius).pairs_within(ra, dec, radius, self.max_tried)
                  if ra.size and len(self) else iter(()))
        return radius, ra, dec, chunks

    def _pairs_of(self, cand, obj, sep, radius: float) -> Pairs:
        """Pairs sorted by candidate, then separation, then catalogue row."""
        order = np.lexsort((obj, sep, cand))
        cand, obj, sep = cand[order], obj[order], sep[order]
        return Pairs(cand, sep, self.ids[obj], self.otypes[obj], self.ra[obj], self.dec[obj],
                     {k: v[obj] for k, v in self.extra.items()}, radius)

    def pairs(self, ra, dec, radius: float) -> Pairs:
        radius, ra, dec, chunks = self._near(ra, dec, radius)
        parts = list(chunks)
        if not parts:
            return Pairs.empty(radius)
        return self._pairs_of(*(np.concatenate(column) for column in zip(*parts)), radius)

    def nearest_pairs(self, ra, dec, radius: float) -> tuple[Pairs, np.ndarray]:
        """The pair of each candidate with its nearest object within `radius` (ties: the
        first catalogue row), and per candidate the count of objects within it: what
        `match.nearest` makes of `pairs`, without every pair's columns."""
        radius, ra, dec, chunks = self._near(ra, dec, radius)
        counts = np.zeros(ra.size, np.int64)
        best_sep = np.full(ra.size, np.inf)
        best_obj = np.full(ra.size, -1, np.int64)
        for cand, obj, sep in chunks:
            counts += np.bincount(cand, minlength=ra.size)
            order = np.lexsort((obj, sep, cand))
            cand, obj, sep = cand[order], obj[order], sep[order]
            first = np.r_[True, cand[1:] != cand[:-1]]      # this chunk's nearest per candidate
            cand, obj, sep = cand[first], obj[first], sep[first]
            held_sep, held_obj = best_sep[cand], best_obj[cand]
            better = (sep < held_sep) | ((sep == held_sep) & (obj < held_obj))
            best_sep[cand[better]], best_obj[cand[better]] = sep[better], obj[better]
        found = np.flatnonzero(best_obj >= 0)
        return self._pairs_of(found, best_obj[found], best_sep[found], radius), counts

    def counts_within(self, ra, dec, radii) -> np.ndarray:
        """Objects within each radius (arcsec) per candidate: an int64 array of
        len(radii) × candidates, from one pass at the largest radius."""
        radii = np.asarray([check_radius(r, "radii") for r in radii], float)
        if radii.size == 0:
            raise ParameterError("radii", list(radii), "at least one radius")
        ra, dec = check_positions(ra, dec)
        _, _, _, chunks = self._near(ra, dec, float(radii.max()))
        ascending = np.argsort(radii, kind="stable")
        counts = np.zeros(radii.size * ra.size, np.int64)
        for cand, _, sep in chunks:
            # the smallest radius each pair lies within (sep <= radius, as Pairs.within)
            smallest = np.searchsorted(radii[ascending], sep, "left")
            counts += np.bincount(smallest * ra.size + cand, minlength=counts.size)
        by_ascending = np.cumsum(counts.reshape(radii.size, ra.size), axis=0)
        out = np.empty_like(by_ascending)
        out[ascending] = by_ascending
        return out

    @classmethod
    def from_table(cls, table, name: str = "catalogue", ra: str | None = None,
                   dec: str | None = None, id: str | None = None, otype: str | None = None,
                   extra: list | None = None, source: str | None = None) -> "LocalCatalogue":
        """From an astropy Table; columns guessed (ra/RAJ2000/..., main_id/designation/...).

        Positions as `table_positions` reads them; rows without a usable one are skipped with
        a SkippedRowsWarning (`skipped` lists them), and TableRowError (naming `source`, the
        file, or `name`) when no row is usable. The ids stay those of the kept rows."""
        where = source or name
        ra = ra or _guess(table, RA_NAMES, "RA", where)
        dec = dec or _guess(table, DEC_NAMES, "Dec", where)
        id = id or _guess(table, ID_NAMES, None, where)
        otype = otype or _guess(table, OTYPE_NAMES, None, where)
        ra_v, dec_v, skipped = table_positions(table, ra, dec)
        keep = np.ones(len(table), bool)
        if skipped:
            if len(skipped) == len(table):
                first = skipped[0]
                raise TableRowError(where, f"row {first.row}", first.column, first.value,
                                    f"{first.reason}; no row of the catalogue has a usable "
                                    "position")
            keep[[s.row - 1 for s in skipped]] = False
            warnings.warn(skipped_note(where, skipped, len(table)), SkippedRowsWarning,
                          stacklevel=2)
        cols = {c: filled(table[c])[keep] for c in (extra or []) if c in table.colnames}
        return cls(ra_v[keep], dec_v[keep], filled(table[id])[keep] if id else None,
                   filled(table[otype])[keep] if otype else None, name=name, extra=cols,
                   skipped=skipped)

    @classmethod
    def from_file(cls, path, fmt: str | None = None, name: str | None = None,
                  **columns) -> "LocalCatalogue":
        """Read a VOTable, FITS, CSV or ECSV file (format from `fmt` or the suffix);
        `columns`: ra=, dec=, id=, otype=, extra= as in from_table."""
        return cls.from_table(read_table(path, fmt), name=name or Path(path).name,
                              source=str(path), **columns)


# ---------------------------------------------------------------- a catalogue behind TAP

class TapCatalogue:
    """A catalogue behind a TAP service: SIMBAD by default (basic: main_id, ra, dec, otype).

    upload: True (TAP_UPLOAD; error if the service has none), False (batched OR'd CONTAINS
    queries), None (upload when the capabilities announce an upload method).
    """

    def __init__(self, service=SIMBAD_TAP_URL, columns: CatalogueColumns = SIMBAD_COLUMNS,
                 *, session=None, upload: bool | None = None, batch_size: int = 5000,
                 or_batch_size: int = 50, maxrec: int | None = 1_000_000, name: str | None = None):
        from vo_al.core.vo.query import as_service, make_session
        from vo_al.core.vo.services import TAP

        self.service = as_service(service, TAP)
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

        from vo_al.core.vo.query import results_table, wrap_error

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DALOverflowWarning)
                results = self._tap().run_sync(adql, maxrec=self.maxrec, uploads=uploads)
        except Exception as exc:                   # noqa: BLE001 - wrapped into a typed error
            raise wrap_error(exc, self.service.url, adql) from exc
        return results_table(results, self.service.url, adql, mode="sync", maxrec=self.maxrec)

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
        ra, dec = check_positions(ra, dec)
        if ra.size == 0:
            return Pairs.empty(radius)
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
        objects = LocalCatalogue(degrees(table["obj_ra"]), degrees(table["obj_dec"]),
                                 filled(table["obj_id"]), filled(table["obj_otype"]))
        p = objects.pairs(ra[rows], dec[rows], radius)
        sub = Table({"obj_id": p.obj_id, "obj_ra": p.obj_ra, "obj_dec": p.obj_dec,
                     "obj_otype": p.obj_otype})
        return rows[p.cand], sub


def _merge_pairs(parts, ra, dec, radius) -> Pairs:
    """One Pairs from the batches' (candidate rows, object table) answers, sorted by
    candidate, then separation, then object id."""
    if not parts:
        return Pairs.empty(radius)
    cand = np.concatenate([p[0] for p in parts])
    col = lambda name, conv: np.concatenate([conv(p[1][name]) for p in parts])  # noqa: E731
    obj_ra, obj_dec = col("obj_ra", degrees), col("obj_dec", degrees)
    obj_id = col("obj_id", lambda c: np.asarray(filled(c)).astype(str))
    otype = col("obj_otype", lambda c: np.asarray(filled(c)).astype(str))
    sep = separation_arcsec(ra[cand], dec[cand], obj_ra, obj_dec) if cand.size else np.empty(0)
    keep = sep <= radius                 # the server's CONTAINS may differ in the last bit
    order = np.lexsort((obj_id[keep], sep[keep], cand[keep]))
    pick = lambda a: a[keep][order]  # noqa: E731
    return Pairs(pick(cand), pick(sep), pick(obj_id), pick(otype), pick(obj_ra), pick(obj_dec),
                 {}, radius)
