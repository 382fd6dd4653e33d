"""What pool.sqlite holds: its tables, and the per-spectrum metadata derived from the record type.

A pool keeps, for every row, the fields of `SpectrumMeta` (vo_al.core.spectra.record) in their
order, then the reader's `Spectrum.instrument`: `RECORD_FIELDS`. Each field's type gives its kind
and SQL type: str -> 's', TEXT NOT NULL DEFAULT '' (None is stored as ''); float -> 'f', REAL
(NaN is stored as NULL and read back as NaN). `name` is the pool's key: TEXT NOT NULL UNIQUE.
The `spectra` table, its INSERT, the columns `PoolStore.metadata` serves (`META_COLUMNS`) and the
normalising of a caller's records are all made from that one list.

The tables made here are those of pool format version 1, column for column (pinned by
tests/test_pool.py), and `media`, which a pool of version 1 gains when it is opened (a table no
reader of version 1 looks at): a new SpectrumMeta field changes the on-disk schema of new pools
only, so it needs a new POOL_VERSION and a migration of existing ones.

`media` keeps the medium ('air'/'vacuum') an import was given (`--medium`, a service's setting)
for the sources of the rows it added: a file that does not say what its wavelengths are read
with that medium at ingest, so reading it again (the whole-spectrum view) needs it too.
"""

from __future__ import annotations

import math
import typing
from dataclasses import fields
from typing import Mapping, Sequence

from vo_al.core.base.errors import PoolError
from vo_al.core.spectra.record import Spectrum, SpectrumMeta

KEY_FIELD = "name"
_KINDS = {str: "s", float: "f"}           # field type -> kind; another type needs a column type
_CAST = {"s": lambda v: "" if v is None else str(v),
         "f": lambda v: math.nan if v is None else float(v)}


def _kind(owner: type, name: str) -> str:
    hint = typing.get_type_hints(owner)[name]
    if hint not in _KINDS:
        raise TypeError(f"{owner.__name__}.{name}: type {hint!r} has no pool column type "
                        f"(known: {', '.join(t.__name__ for t in _KINDS)})")
    return _KINDS[hint]


_META_NAMES = tuple(f.name for f in fields(SpectrumMeta))
# field -> kind of a pool record: SpectrumMeta's fields, then the instrument the reader found
RECORD_FIELDS: dict[str, str] = {name: _kind(SpectrumMeta, name) for name in _META_NAMES}
RECORD_FIELDS["instrument"] = _kind(Spectrum, "instrument")
_KEY_POSITION = list(RECORD_FIELDS).index(KEY_FIELD)

# PoolStore.metadata's columns: name -> (SQL column, kind); kind 'i' int64, 'f' float64, 's' str
META_COLUMNS: dict[str, tuple[str, str]] = {
    "index": ("idx", "i"), "segment": ("segment", "i"), "row": ("row", "i"),
    **{name: (name, kind) for name, kind in RECORD_FIELDS.items()},
}


def _column_sql(name: str, kind: str) -> str:
    if name == KEY_FIELD:
        return f"{name} TEXT NOT NULL UNIQUE"
    return f"{name} TEXT NOT NULL DEFAULT ''" if kind == "s" else f"{name} REAL"


_SPECTRA_COLUMNS = ["idx INTEGER PRIMARY KEY", "segment INTEGER NOT NULL", "row INTEGER NOT NULL",
                    *(_column_sql(name, kind) for name, kind in RECORD_FIELDS.items())]
SPECTRA_TABLE = ("CREATE TABLE IF NOT EXISTS spectra (\n"
                 + ",\n".join(f"    {column}" for column in _SPECTRA_COLUMNS) + "\n);")

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY,
    file TEXT NOT NULL,
    kind TEXT NOT NULL,                 -- 'ingest' or 'add'
    committed INTEGER NOT NULL DEFAULT 0,
    sealed INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL
);
{SPECTRA_TABLE}
CREATE INDEX IF NOT EXISTS spectra_source ON spectra(source);
CREATE TABLE IF NOT EXISTS rejected (file TEXT PRIMARY KEY, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS media (
    source TEXT PRIMARY KEY,            -- a row's source: file, FILE[k] or access URL
    medium TEXT NOT NULL                -- 'air' or 'vacuum': the import's setting
);
CREATE TABLE IF NOT EXISTS ingest_progress (
    chunk TEXT PRIMARY KEY,             -- sha1 of the chunk's file paths
    files INTEGER NOT NULL,
    added INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    finished TEXT NOT NULL
);
"""

INSERT_MEDIUM = "INSERT OR REPLACE INTO media (source, medium) VALUES (?, ?)"
INSERT_SPECTRA = (f"INSERT INTO spectra (idx, segment, row, {', '.join(RECORD_FIELDS)}) "
                  f"VALUES ({','.join('?' * (3 + len(RECORD_FIELDS)))})")


def spectrum_record(spectrum: Spectrum) -> dict:
    """The pool record of a Spectrum: its meta's fields and its instrument."""
    record = {name: getattr(spectrum.meta, name) for name in _META_NAMES}
    record["instrument"] = spectrum.instrument
    return record


def normalise_record(meta, where: str) -> dict:
    """A caller's record (a dict with RECORD_FIELDS keys, or a SpectrumMeta) with every field,
    typed: '' / NaN where missing. PoolError naming `where` for unknown keys or no name."""
    if isinstance(meta, SpectrumMeta):
        meta = meta.as_dict()
    elif not isinstance(meta, dict):
        raise PoolError(f"{where}: metadata must be a dict or SpectrumMeta, "
                        f"got {type(meta).__name__}")
    unknown = set(meta) - set(RECORD_FIELDS)
    if unknown:
        raise PoolError(f"{where}: unknown metadata keys {sorted(unknown)} "
                        f"(known: {', '.join(RECORD_FIELDS)})")
    out = {key: _CAST[kind](meta.get(key)) for key, kind in RECORD_FIELDS.items()}
    if not out[KEY_FIELD]:
        raise PoolError(f"{where}: metadata without a name")
    return out


def normalise_columns(columns: Mapping[str, Sequence], k: int, where: str) -> list[list]:
    """Metadata columns {field: k values} for exactly the RECORD_FIELDS, typed, in their order
    (one list per field). PoolError naming `where` for missing or unknown fields, other lengths,
    or a row without a name."""
    missing = [key for key in RECORD_FIELDS if key not in columns]
    unknown = sorted(set(columns) - set(RECORD_FIELDS))
    if missing or unknown:
        raise PoolError(f"{where}: metadata columns missing {missing}, unknown {unknown} "
                        f"(expected: {', '.join(RECORD_FIELDS)})")
    out = []
    for key, kind in RECORD_FIELDS.items():
        values = columns[key]
        if len(values) != k:
            raise PoolError(f"{where}: metadata column {key!r} has {len(values)} values for "
                            f"{k} rows")
        out.append([_CAST[kind](v) for v in values])
    if not all(out[_KEY_POSITION]):
        raise PoolError(f"{where}: a row without a name")
    return out
