"""Catalogue files: the one table of formats, and tables written with units, UCDs and PARAMs.

- `formats`: format names ↔ file suffixes ↔ astropy formats, for every reader and writer
- `catalogue`: `write_catalogue` (VOTable, CSV, ECSV, atomically), `to_astropy_table`, `annotate`
"""

from vo_al.core.export.catalogue import COLUMN_INFO, annotate, to_astropy_table, write_catalogue
from vo_al.core.export.formats import EXPORT_FORMATS, TABLE_FORMATS

__all__ = ["COLUMN_INFO", "EXPORT_FORMATS", "TABLE_FORMATS", "annotate", "to_astropy_table",
           "write_catalogue"]
