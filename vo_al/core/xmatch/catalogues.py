"""The catalogues a cross-match asks: a file or arrays in memory, or a table behind a TAP service.

Both answer `pairs(ra, dec, radius)` (every candidate-object pair within `radius` arcsec, as
`match.Pairs`), so the match itself is the same for both:

* `LocalCatalogue`: a file (VOTable, FITS, CSV, ECSV; `read_table`) or arrays, matched with
  astropy's `SkyCoord.search_around_sky` (a k-d tree kept on the catalogue's coordinates). The
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
    """A catalogue in memory (from a file or arrays), matched with astropy SkyCoord."""

    def __init__(self, ra, dec, ids=None, otypes=None, name: str = "catalogue",
                 extra: dict | None = None, skipped=()):
        self.ra, self.dec = check_positions(ra, dec, "position of catalogue row")
        n = self.ra.size
        self.ids = (np.asarray(ids).astype(str) if ids is not None
                    else np.array([str(i) for i in range(n)]))
        self.otypes = np.asarray(otypes).astype(str) if otypes is not None else np.full(n, "")
        self.name = name
        self.extra = {k: np.asarray(v) for k, v in (extra or {}).items()}
        self.skipped: tuple[SkippedRow, ...] = tuple(skipped)   # rows of the file left out
        self._sky = None

    def __len__(self) -> int:
        return self.ra.size

    @property
    def sky(self):
        if self._sky is None:                 # the k-d tree is cached on this object
            self._sky = sky_coords(self.ra, self.dec)
        return self._sky

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

    def pairs(self, ra, dec, radius: float) -> Pairs:
        from astropy import units as u

        radius = check_radius(radius)
        ra, dec = check_positions(ra, dec)
        if ra.size == 0 or len(self) == 0:
            return Pairs.empty(radius)
        cands = sky_coords(ra, dec)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            # the k-d tree is built on (and cached with) the catalogue's coordinates
            i_cand, i_obj, sep, _ = self.sky.search_around_sky(cands, radius * u.arcsec)
        order = np.lexsort((i_obj, sep.arcsec, i_cand))
        i_cand, i_obj, sep = i_cand[order], i_obj[order], sep.arcsec[order]
        return Pairs(i_cand.astype(np.int64), sep, self.ids[i_obj], self.otypes[i_obj],
                     self.ra[i_obj], self.dec[i_obj],
                     {k: v[i_obj] for k, v in self.extra.items()}, radius)


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
