"""The paper's four tables (Appendix B): candidates matched with SIMBAD and H16, and written.

`crossmatch_candidates` matches the candidates (and the rejected spectra) with a SIMBAD and an
H16 catalogue, groups the multiple exposures and puts every row in one category; the
`CrossmatchResult` it returns gives the four tables by name (`tables()`), and `write_tables`
writes them, with all rows as ``crossmatch.*``, in each export format.

Every candidate is in exactly one of ``known_h16`` (an H16 object within the H16 radius),
``new_in_simbad`` (not in H16, a SIMBAD object within the SIMBAD radius) and ``new_unknown``
(neither); ``rejected`` holds the spectra a reviewer rejected: every spectrum of the pool the
oracle labelled non-target. Those were shown to the oracle as possible targets (the query
strategy's picks, predicted or near-predicted emission), and the reviewer's label overrules the
CNN, so they are never candidates.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vo_al.core.export.catalogue import to_astropy_table, write_catalogue
from vo_al.core.export.formats import EXPORT_FORMATS, TABLE_FORMATS, parse_formats
from vo_al.core.xmatch.groups import (DEFAULT_GROUP_RADIUS, group_by_designation,
                                      group_by_position, group_summary, grouped_sizes)
from vo_al.core.xmatch.h16 import DEFAULT_H16_RADIUS
from vo_al.core.xmatch.match import DEFAULT_SIMBAD_RADIUS, check_radius, crossmatch
from vo_al.core.xmatch.simbad import simbad_links

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
    """Match candidates (a column dict, session.candidates.candidate_table) with SIMBAD and H16.

    simbad / h16: catalogue objects (TapCatalogue / LocalCatalogue) or None (not matched:
    the H16 columns stay empty and nothing is 'known_h16'). `rejected` (rejected_table) rows are
    matched too and go to the 'rejected' table whatever they match. Adds per row: simbad_*
    (id, otype, sep, n, ra, dec), h16_* (same, plus Halpha_type), group_designation,
    group_designation_size, group_position, group_position_size, simbad_url, simbad_id_url,
    category.
    """
    from astropy.table import vstack

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
    table["group_designation_size"] = grouped_sizes(gd)
    table["group_position"] = gp
    table["group_position_size"] = grouped_sizes(gp)
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


def write_tables(result: CrossmatchResult, out_dir, formats=EXPORT_FORMATS,
                 stem: str = "") -> list[Path]:
    """The four tables (and all rows in 'crossmatch.*') in each format; returns the paths."""
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
