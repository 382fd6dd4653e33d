"""The cross-match of candidates with SIMBAD, H16 or any catalogue (paper Appendix B).

Works on tables (column dicts, astropy Tables), never on a session or a pool.

- `match`: the pairs within a radius, the nearest object and the count per candidate
  (`crossmatch`), the radius scan; the radius range and `check_radius`
- `catalogues`: the catalogues a match asks: a file or arrays (`LocalCatalogue`) or a TAP table
  (`TapCatalogue`, upload or OR'd circles); `read_table` and the column-name guessing
- `positions`: a table's RA and Dec, as degrees or sexagesimal text (`table_positions`); the
  rows without a usable one are skipped with a `SkippedRowsWarning`
- `simbad`: links to SIMBAD's pages, and the one route to a cross-match's SIMBAD
  (`SimbadRoute`, `simbad_catalogue`) for the command line and the app
- `h16`: Hou et al. (2016)'s table read as published, and as a catalogue
- `groups`: multiple exposures grouped by designation and by a friends-of-friends match
- `tables`: the paper's four tables (`crossmatch_candidates`, `write_tables`)
- `plot`: the radius scan as a PNG
"""

from vo_al.core.xmatch.catalogues import (DEC_NAMES, ID_NAMES, OTYPE_NAMES, RA_NAMES,
                                          SIMBAD_COLUMNS, SIMBAD_LIKE_COLUMNS, SIMBAD_TAP_URL,
                                          CatalogueColumns, LocalCatalogue, TapCatalogue,
                                          read_table)
from vo_al.core.xmatch.groups import (DEFAULT_GROUP_RADIUS, group_by_designation,
                                      group_by_position, group_sizes, group_summary,
                                      grouped_sizes)
from vo_al.core.xmatch.h16 import (DEFAULT_H16_RADIUS, H16_COLUMNS, H16_EXTRA, H16_INFO,
                                   h16_catalogue, load_h16)
from vo_al.core.xmatch.match import (DEFAULT_SIMBAD_RADIUS, MAX_RADIUS, MIN_RADIUS, SCAN_RADII,
                                     MatchResult, Pairs, check_positions, check_radius,
                                     crossmatch, nearest, radius_scan, sky_coords)
from vo_al.core.xmatch.plot import plot_radius_scan
from vo_al.core.xmatch.positions import (SkippedRow, SkippedRowsWarning, skipped_note,
                                         table_positions)
from vo_al.core.xmatch.simbad import (SIMBAD_COO_URL, SIMBAD_ID_URL, SIMBAD_ROUTE_SOURCES,
                                      TAP_ROUTE_SOURCES, SimbadRoute, is_tap_url,
                                      simbad_catalogue, simbad_coo_url, simbad_id_url,
                                      simbad_links)
from vo_al.core.xmatch.tables import (TABLE_NAMES, TABLE_TITLES, CrossmatchResult,
                                      crossmatch_candidates, write_tables)

__all__ = [
    # match
    "DEFAULT_SIMBAD_RADIUS", "MAX_RADIUS", "MIN_RADIUS", "SCAN_RADII", "MatchResult", "Pairs",
    "check_positions", "check_radius", "crossmatch", "nearest", "radius_scan", "sky_coords",
    # catalogues
    "DEC_NAMES", "ID_NAMES", "OTYPE_NAMES", "RA_NAMES", "SIMBAD_COLUMNS", "SIMBAD_LIKE_COLUMNS",
    "SIMBAD_TAP_URL", "CatalogueColumns", "LocalCatalogue", "TapCatalogue", "read_table",
    # positions
    "SkippedRow", "SkippedRowsWarning", "skipped_note", "table_positions",
    # simbad
    "SIMBAD_COO_URL", "SIMBAD_ID_URL", "SIMBAD_ROUTE_SOURCES", "TAP_ROUTE_SOURCES",
    "SimbadRoute", "is_tap_url", "simbad_catalogue", "simbad_coo_url", "simbad_id_url",
    "simbad_links",
    # h16
    "DEFAULT_H16_RADIUS", "H16_COLUMNS", "H16_EXTRA", "H16_INFO", "h16_catalogue", "load_h16",
    # groups
    "DEFAULT_GROUP_RADIUS", "group_by_designation", "group_by_position", "group_sizes",
    "group_summary", "grouped_sizes",
    # tables
    "TABLE_NAMES", "TABLE_TITLES", "CrossmatchResult", "crossmatch_candidates", "write_tables",
    # plot
    "plot_radius_scan",
]
