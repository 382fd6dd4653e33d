"""The pool: millions of preprocessed spectra in a folder, rows in .npy segments, metadata in SQLite.

- `store`: `PoolStore` (open, read rows and metadata, `add_rows`) and its one `PoolWriter`
- `ingest`: `ingest_files` / `ingest_folder`, resumable jobs that read and preprocess files in
  worker processes; `find_spectrum_files`, `IngestReport`
- `schema`: pool.sqlite's tables, the metadata columns derived from `SpectrumMeta`
- `segments`: the segment file format (fixed .npy header, sealing) and the writer lock

Importing the package stays cheap (numpy and sqlite3): the readers (astropy) are imported when an
ingest runs, Keras never.
"""

from vo_al.core.pool.ingest import (DEFAULT_PATTERNS, IngestReport, find_spectrum_files,
                                    ingest_files, ingest_folder)
from vo_al.core.pool.schema import META_COLUMNS, RECORD_FIELDS
from vo_al.core.pool.store import (POOL_DB, POOL_FORMAT, POOL_JSON, POOL_LOCK, POOL_VERSION,
                                   FinishedChunk, PoolStore, PoolWriter)

__all__ = ["DEFAULT_PATTERNS", "FinishedChunk", "IngestReport", "META_COLUMNS", "POOL_DB",
           "POOL_FORMAT", "POOL_JSON", "POOL_LOCK", "POOL_VERSION", "PoolStore", "PoolWriter",
           "RECORD_FIELDS", "find_spectrum_files", "ingest_files", "ingest_folder"]
