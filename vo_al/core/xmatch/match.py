"""Matching candidates with a catalogue: the pairs within a radius, the nearest object, the count.

A catalogue object (`catalogues.LocalCatalogue`, `catalogues.TapCatalogue`, or anything with the
same method) answers `pairs(ra, dec, radius)`: every (candidate, object) pair closer than
`radius` arcsec, as `Pairs`. Everything else is computed from the pairs, here, the same way for
every route, so all routes give the same numbers for the same objects: `crossmatch` (and
`nearest`) the nearest object per candidate, its separation, id and type and the count within
the radius (`MatchResult`); `radius_scan` the match counts per radius from one request at the
largest radius. A catalogue that can say more cheaply may also answer
`nearest_pairs(ra, dec, radius)` (the nearest pair per candidate and the counts) and
`counts_within(ra, dec, radii)` (counts per radius); `LocalCatalogue` does, since building the
id, type and position columns of every pair costs more than the match itself, and its answers
equal what these functions make of its `pairs`.

Radii are in arcsec and must lie in [5, 300] (the range the paper tried): `check_radius`
raises a ParameterError naming the value otherwise. `check_positions` does the same for
candidate or catalogue positions, and `sky_coords` makes an astropy SkyCoord of positions (what
`groups` matches with search_around_sky).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vo_al.core.base.errors import ParameterError

MIN_RADIUS, MAX_RADIUS = 5.0, 300.0          # arcsec, the range the paper tried
DEFAULT_SIMBAD_RADIUS = 20.0                 # arcsec, the paper's choice
SCAN_RADII = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300)


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


def check_positions(ra, dec, what: str = "position of candidate row"
                    ) -> tuple[np.ndarray, np.ndarray]:
    """RA and Dec (degrees) as flat float arrays; ParameterError naming the first bad row
    ("position of candidate row 3", or of what `what` says the positions are)."""
    ra = np.asarray(ra, dtype=float).reshape(-1)
    dec = np.asarray(dec, dtype=float).reshape(-1)
    if ra.shape != dec.shape:
        raise ParameterError("positions", (ra.size, dec.size), "as many RA as Dec values")
    bad = ~(np.isfinite(ra) & np.isfinite(dec)) | (np.abs(dec) > 90)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ParameterError(f"{what} {i}", (float(ra[i]), float(dec[i])),
                             "finite RA and Dec in degrees, |Dec| <= 90")
    return ra, dec


def sky_coords(ra, dec):
    """ICRS SkyCoord of positions in degrees (what search_around_sky builds its k-d tree on)."""
    from astropy.coordinates import SkyCoord

    return SkyCoord(ra=np.asarray(ra, float), dec=np.asarray(dec, float), unit="deg",
                    frame="icrs")


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

    @classmethod
    def empty(cls, radius: float) -> "Pairs":
        e = np.empty(0)
        return cls(np.empty(0, np.int64), e, np.empty(0, str), np.empty(0, str), e, e, {}, radius)

    def select(self, keep, radius: float | None = None) -> "Pairs":
        """The pairs where the boolean mask `keep` is true; the radius kept unless given."""
        return Pairs(self.cand[keep], self.sep[keep], self.obj_id[keep], self.obj_otype[keep],
                     self.obj_ra[keep], self.obj_dec[keep],
                     {k: v[keep] for k, v in self.extra.items()},
                     self.radius if radius is None else radius)

    def within(self, radius: float) -> "Pairs":
        return self.select(self.sep <= radius, radius)


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


def nearest(pairs: Pairs, n: int, catalogue: str = "", counts=None) -> MatchResult:
    """The nearest object per candidate (pairs sorted by candidate then separation).

    counts: the objects within the radius per candidate, when `pairs` holds only each
    candidate's nearest pair (a catalogue's `nearest_pairs`); counted from the pairs otherwise.
    """
    if counts is not None:
        counts = np.asarray(counts, dtype=np.int64)
    else:
        counts = np.bincount(pairs.cand, minlength=n).astype(np.int64) if n else \
            np.zeros(0, np.int64)
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
    ra, dec = check_positions(ra, dec)
    radius = check_radius(radius)
    name = getattr(catalogue, "name", "")
    if hasattr(catalogue, "nearest_pairs"):
        pairs, counts = catalogue.nearest_pairs(ra, dec, radius)
        return nearest(pairs, ra.size, name, counts)
    return nearest(catalogue.pairs(ra, dec, radius), ra.size, name)


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
    ra, dec = check_positions(ra, dec)
    if hasattr(catalogue, "counts_within"):
        per_radius = catalogue.counts_within(ra, dec, radii)
    else:
        pairs = catalogue.pairs(ra, dec, radii[-1])
        per_radius = [np.bincount(pairs.within(r).cand, minlength=ra.size) for r in radii]
    n = max(ra.size, 1)
    rows = [(r, int((counts > 0).sum()), int(counts.sum()), int((counts > 1).sum()))
            for r, counts in zip(radii, per_radius)]
    t = Table(rows=rows, names=("radius", "n_matched", "n_pairs", "n_multiple"))
    t["fraction_matched"] = t["n_matched"] / n
    t["mean_objects"] = t["n_pairs"] / n
    t["new_matched"] = np.diff(np.r_[0, t["n_matched"]])
    t["radius"].unit = "arcsec"
    t.meta.update(catalogue=getattr(catalogue, "name", ""), n_candidates=int(ra.size))
    return t
