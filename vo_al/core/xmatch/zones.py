"""Every pair of sky positions within a radius, found through declination zones.

The zones algorithm (Gray, Nieto-Santisteban & Szalay 2007, "The Zones Algorithm for Finding
Points-Near-a-Point or Cross-Matching Spatial Datasets"): the catalogue is cut into declination
bands ("zones") of one height and sorted by (zone, RA) once (`ZoneIndex`, what a
`LocalCatalogue` keeps per zone height). A candidate's neighbours within r then lie in the
zones its declination ± r touches and, in each, in one RA interval of half-width
asin(sin r / cos dec) (the whole zone when the circle reaches a pole), cut in two where it
crosses RA 0/360: two binary searches per zone and interval, no tree to walk. Every object in
those intervals gets its exact separation (`base.sky.separation_arcsec`, Vincenty), and only
those within r are kept, so the intervals may be (and are, by `MARGIN_DEG`) a little wider than
the circle: the pairs are exactly those with separation <= r.

With zones as high as the radius, a candidate reads 3 zones of height r over 2r of RA (6 r²
for the π r² it keeps): about twice the pairs it keeps. The pairs come in chunks of at most `max_tried` tried pairs, so memory stays
bounded however many objects lie within the radius.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from vo_al.core.base.sky import separation_arcsec

# the sort key is zone * ZONE_STRIDE + RA: above 360 so zones never overlap
ZONE_STRIDE = 400.0
# widening of every zone and RA interval (deg): far above the key's rounding (~1e-8 deg at
# the 130 000 zones of a 5" height), far below any radius; the exact separation decides
MARGIN_DEG = 1e-6
MAX_TRIED = 1 << 19          # tried pairs per chunk (~80 MB of temporaries)


def _wrapped(ra: np.ndarray) -> np.ndarray:
    """RA in [0, 360] (360 itself kept where a tiny negative value wraps to it)."""
    return np.mod(ra, 360.0)


class ZoneIndex:
    """Catalogue positions sorted by (declination zone, RA) for one zone height (degrees)."""

    def __init__(self, ra: np.ndarray, dec: np.ndarray, height_deg: float):
        self.ra, self.dec = ra, dec               # the catalogue's own arrays (not copied)
        self.height = float(height_deg)
        key = np.floor((dec + 90.0) / self.height) * ZONE_STRIDE + _wrapped(ra)
        self.order = np.argsort(key)              # sorted position -> catalogue row
        self.key = key[self.order]

    def __len__(self) -> int:
        return self.key.size

    def _intervals(self, ra, dec, radius_deg):
        """(candidate row, first, end) of every sorted-key interval a candidate must read."""
        r, h, m = radius_deg, self.height, MARGIN_DEG
        ra_w = _wrapped(ra)
        sin_r, cos_dec = np.sin(np.radians(r)), np.cos(np.radians(dec))
        # the circle reaches a pole: every RA of the zones it touches
        whole = np.abs(dec) + r + m >= 90.0
        with np.errstate(divide="ignore", invalid="ignore"):
            half = np.degrees(np.arcsin(np.where(whole, 0.0, np.minimum(sin_r / cos_dec, 1.0))
                                        )) + m
        lo = np.where(whole, 0.0, ra_w - half)
        hi = np.where(whole, 360.0, ra_w + half)
        z_first = np.floor((dec - r - m + 90.0) / h)
        z_span = np.floor((dec + r + m + 90.0) / h) - z_first      # zones after the first
        n_zones = int(z_span.max()) + 1
        # candidates in key order, so the searches below walk the catalogue forward
        lo_key = z_first * ZONE_STRIDE + np.maximum(lo, 0.0)
        by_key = np.argsort(lo_key)
        lo_key, span = lo_key[by_key], z_span[by_key]
        hi_key = (z_first * ZONE_STRIDE + np.minimum(hi, 360.0))[by_key]
        rows, firsts, ends = [], [], []

        def search(cands, lo_k, hi_k, spans):
            for z in range(n_zones):
                a = np.searchsorted(self.key, lo_k + z * ZONE_STRIDE, "left")
                b = np.searchsorted(self.key, hi_k + z * ZONE_STRIDE, "right")
                rows.append(cands)
                firsts.append(a)
                ends.append(np.where(spans >= z, b, a))     # beyond its last zone: none

        search(by_key, lo_key, hi_key, span)
        # the part of an RA interval beyond 0 or 360, from the other end (half <= 90 deg, so
        # the two parts never overlap)
        cross = np.flatnonzero((lo < 0) | (hi > 360.0))
        if cross.size:
            below = lo[cross] < 0
            base = z_first[cross] * ZONE_STRIDE
            search(cross, base + np.where(below, lo[cross] + 360.0, 0.0),
                   base + np.where(below, 360.0, hi[cross] - 360.0), z_span[cross])
        return np.concatenate(rows), np.concatenate(firsts), np.concatenate(ends)

    def pairs_within(self, ra, dec, radius_arcsec: float,
                     max_tried: int = MAX_TRIED) -> Iterator[tuple[np.ndarray, ...]]:
        """(candidate row, catalogue row, separation in arcsec; int64, int64, float64) of every
        pair with separation <= radius_arcsec, in chunks of at most `max_tried` tried pairs (unordered; no chunk
        is empty)."""
        ra, dec = np.asarray(ra, float), np.asarray(dec, float)
        if ra.size == 0 or len(self) == 0:
            return
        cand, first, end = self._intervals(ra, dec, radius_arcsec / 3600.0)
        length = end - first
        keep = length > 0
        cand, first, length = cand[keep], first[keep], length[keep]
        if length.size and length.max() > max_tried:      # an interval longer than a chunk
            pieces = -(-length // max_tried)
            offset = (np.arange(pieces.sum()) - np.repeat(np.cumsum(pieces) - pieces, pieces)
                      ) * max_tried
            cand, first = np.repeat(cand, pieces), np.repeat(first, pieces) + offset
            length = np.minimum(np.repeat(length, pieces) - offset, max_tried)
        total = np.cumsum(length)           # tried pairs up to and including each interval
        start = 0
        while start < length.size:
            done = int(total[start - 1]) if start else 0
            stop = int(np.searchsorted(total, done + max_tried, "right"))
            c, f, n = cand[start:stop], first[start:stop], length[start:stop]
            start = stop
            begin = np.cumsum(n) - n
            sorted_pos = np.arange(int(n.sum())) - np.repeat(begin - f, n)
            rows = np.repeat(c, n)
            objs = self.order[sorted_pos]
            sep = separation_arcsec(ra[rows], dec[rows], self.ra[objs], self.dec[objs])
            near = sep <= radius_arcsec
            if near.any():
                yield rows[near], objs[near], sep[near]
