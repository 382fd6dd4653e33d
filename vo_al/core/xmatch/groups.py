"""Multiple exposures: which candidate spectra are the same star observed several times.

The same star observed several times gives several candidate spectra. Two groupings, each a
group id 1..k per row numbered in order of first appearance: `group_by_designation` (the same
LAMOST designation) and `group_by_position`, a friends-of-friends internal match at 5"
(connected components of the "closer than 5"" graph: two spectra 4" apart each from a third
are one group even when 8" apart from each other). `group_sizes`, `grouped_sizes` and
`group_summary` count them.
"""

from __future__ import annotations

import numpy as np

from vo_al.core.xmatch.match import check_positions, check_radius, sky_coords

DEFAULT_GROUP_RADIUS = 5.0                   # arcsec, internal match of multiple exposures


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
    ra, dec = check_positions(ra, dec)
    n = ra.size
    if n == 0:
        return np.empty(0, np.int64)
    sky = sky_coords(ra, dec)
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


def grouped_sizes(groups) -> np.ndarray:
    """Per row: how many rows share its group, and 0 for the rows in group 0 (not grouped, as
    the rejected spectra of a cross-match are)."""
    groups = np.asarray(groups)
    sizes = np.zeros(groups.size, np.int64)
    sel = groups > 0
    sizes[sel] = group_sizes(groups[sel])
    return sizes


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
