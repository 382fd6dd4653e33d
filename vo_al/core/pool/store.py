"""The pool store: millions of preprocessed spectra on disk, never as Python objects per spectrum.

Layout of a pool folder::

    pool.json            format version, row width, the PreprocessSettings every row was made with
    pool.sqlite          metadata (SQLite, WAL): segments, spectra, rejected, ingest_progress
    seg-000001.npy ...   float32 rows, one segment per ingest run or harvest, memory-mappable
    pool.lock            held (flock) by the one process writing

A segment is a plain `.npy` file whose header may announce more rows than are in use: the committed
row count lives in the `segments` table and is raised in the same SQLite transaction that inserts
the rows' metadata, after the rows themselves were written and fsync'ed. A crash (even kill -9) at
any moment therefore leaves no visible half rows: what was not committed does not exist, and the
next ingest of the same files does it again. When a run ends, its segment is "sealed": the header is
shrunk to the committed count and the file truncated (header first, so the header never announces
more rows than the file holds).

Global indices are 0..len(pool)-1: segments in creation order, rows in order within a segment.

Ingest (`ingest_files`, `ingest_folder`) is a job generator (see progress.py). Chunks of files are
read and preprocessed in worker processes ('forkserver' where available, else 'spawn'); the parent
only writes the returned block of rows and commits one transaction per chunk, in input order, so
the pool does not depend on the number of workers.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
import os
import sqlite3
import threading
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from vo_al.core.base.atomic import atomic_write_text
from vo_al.core.base.errors import Cancelled, PoolError, SpectrumReadError, UnusableSpectrumError
from vo_al.core.base.npy import open_npy
from vo_al.core.base.progress import CancelToken, Job, Progress
from vo_al.core.spectra.settings import PreprocessSettings
from vo_al.core.spectra.record import SpectrumMeta

POOL_FORMAT = "vo-al pool"
POOL_VERSION = 1
POOL_JSON = "pool.json"
POOL_DB = "pool.sqlite"
POOL_LOCK = "pool.lock"

# metadata columns: name -> (SQL column, kind); kind is 'i' int64, 'f' float64, 's' str
META_COLUMNS: dict[str, tuple[str, str]] = {
    "index": ("idx", "i"),
    "segment": ("segment", "i"),
    "row": ("row", "i"),
    "name": ("name", "s"),
    "designation": ("designation", "s"),
    "ra": ("ra", "f"),
    "dec": ("dec", "f"),
    "obsid": ("obsid", "s"),
    "cls": ("cls", "s"),
    "subclass": ("subclass", "s"),
    "z": ("z", "f"),
    "snr": ("snr", "f"),
    "source": ("source", "s"),
    "instrument": ("instrument", "s"),
}
# what a caller of add_rows gives per row (SpectrumMeta fields + instrument)
_META_FIELDS = ("name", "designation", "ra", "dec", "obsid", "cls", "subclass", "z", "snr",
                "source", "instrument")
_FLOAT_FIELDS = ("ra", "dec", "z", "snr")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY,
    file TEXT NOT NULL,
    kind TEXT NOT NULL,                 -- 'ingest' or 'add'
    committed INTEGER NOT NULL DEFAULT 0,
    sealed INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS spectra (
    idx INTEGER PRIMARY KEY,
    segment INTEGER NOT NULL,
    row INTEGER NOT NULL,
    name TEXT NOT NULL UNIQUE,
    designation TEXT NOT NULL DEFAULT '',
    ra REAL, dec REAL,
    obsid TEXT NOT NULL DEFAULT '',
    cls TEXT NOT NULL DEFAULT '',
    subclass TEXT NOT NULL DEFAULT '',
    z REAL, snr REAL,
    source TEXT NOT NULL DEFAULT '',
    instrument TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS spectra_source ON spectra(source);
CREATE TABLE IF NOT EXISTS rejected (file TEXT PRIMARY KEY, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ingest_progress (
    chunk TEXT PRIMARY KEY,             -- sha1 of the chunk's file paths
    files INTEGER NOT NULL,
    added INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    finished TEXT NOT NULL
);
"""

_SQL_BATCH = 900            # host parameters per IN (...) query, below every SQLite limit
_NPY_HEADER_LEN = 128       # our segments' .npy header, fixed so that it can be rewritten in place
DEFAULT_PATTERNS = ("*.fits", "*.fits.gz", "*.fit", "*.fit.gz")
_PREP_BATCH = 256          # spectra per preprocess_spectra call in a worker (fastest measured)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


# ---------------------------------------------------------------- .npy segment files

def _npy_header(rows: int, cols: int) -> bytes:
    text = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (rows, cols)
    body_len = _NPY_HEADER_LEN - 10
    text = text.ljust(body_len - 1) + "\n"
    if len(text) != body_len:
        raise PoolError(f"segment shape ({rows}, {cols}) too large for the .npy header")
    return b"\x93NUMPY\x01\x00" + body_len.to_bytes(2, "little") + text.encode("latin1")


def _npy_shape(path: Path) -> tuple[int, int, int]:
    """(rows, cols, header offset) of a float32 C-order .npy file, or PoolError."""
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        offset = fh.tell()
    if fortran or dtype != np.dtype("<f4") or len(shape) != 2:
        raise PoolError(f"{path}: not a C-order float32 2-D segment ({dtype}, {shape})")
    return int(shape[0]), int(shape[1]), offset


class _SegmentWriter:
    """Appends rows to one segment file; the caller commits the count in SQLite afterwards."""

    def __init__(self, path: Path, cols: int, capacity: int, create: bool):
        self.path = path
        self.cols = cols
        self.row_bytes = cols * 4
        if create:
            with open(path, "wb") as fh:
                fh.write(_npy_header(capacity, cols))
                fh.truncate(_NPY_HEADER_LEN + capacity * self.row_bytes)   # sparse
                fh.flush()
                os.fsync(fh.fileno())
        rows, file_cols, offset = _npy_shape(path)
        if file_cols != cols or offset != _NPY_HEADER_LEN:
            raise PoolError(f"{path}: segment has {file_cols} columns / header {offset} bytes, "
                            f"expected {cols} / {_NPY_HEADER_LEN}")
        self.capacity = rows
        self.fh = open(path, "r+b")

    def write(self, start: int, rows: np.ndarray, grow_to: int | None = None) -> None:
        """Write `rows` at row `start`, growing the file if needed; fsync before returning."""
        end = start + len(rows)
        if end > self.capacity:
            new_cap = max(end, grow_to or end)
            # extend the data first, then announce it in the header
            self.fh.truncate(_NPY_HEADER_LEN + new_cap * self.row_bytes)
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.seek(0)
            self.fh.write(_npy_header(new_cap, self.cols))
            self.capacity = new_cap
        data = np.ascontiguousarray(rows, dtype="<f4")
        self.fh.seek(_NPY_HEADER_LEN + start * self.row_bytes)
        self.fh.write(data.tobytes())
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        self.fh.close()


def _seal_file(path: Path, cols: int, committed: int) -> None:
    """Shrink a segment file to `committed` rows: header first, then truncate."""
    rows, _, offset = _npy_shape(path)
    if rows == committed:
        return
    if rows < committed or offset != _NPY_HEADER_LEN:
        raise PoolError(f"{path}: segment announces {rows} rows but {committed} are committed")
    with open(path, "r+b") as fh:
        fh.write(_npy_header(committed, cols))
        fh.flush()
        os.fsync(fh.fileno())
        fh.truncate(_NPY_HEADER_LEN + committed * cols * 4)
        fh.flush()
        os.fsync(fh.fileno())


# ---------------------------------------------------------------- writer lock

class _WriterLock:
    """An exclusive, non-blocking lock on pool.lock, released by the OS if the process dies."""

    def __init__(self, folder: Path):
        self.path = folder / POOL_LOCK
        self.fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                import fcntl
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except ImportError:                                    # Windows
                import msvcrt
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            os.close(fd)
            raise PoolError(f"{self.path.parent}: the pool is being written by another "
                            "process (or another PoolStore object)") from None
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            try:
                try:
                    import fcntl
                    fcntl.flock(self.fd, fcntl.LOCK_UN)
                except ImportError:
                    import msvcrt
                    msvcrt.locking(self.fd, msvcrt.LK_UNLCK, 1)
            finally:
                os.close(self.fd)
                self.fd = None


# ---------------------------------------------------------------- the store

@dataclass
class _Segment:
    id: int
    file: str
    kind: str
    committed: int
    sealed: bool
    start: int = 0


def _settings_dict(settings: PreprocessSettings | None) -> dict | None:
    return None if settings is None else asdict(settings)


def _normalise_meta(meta, where: str) -> dict:
    if isinstance(meta, SpectrumMeta):
        meta = meta.as_dict()
    elif not isinstance(meta, dict):
        raise PoolError(f"{where}: metadata must be a dict or SpectrumMeta, "
                        f"got {type(meta).__name__}")
    unknown = set(meta) - set(_META_FIELDS)
    if unknown:
        raise PoolError(f"{where}: unknown metadata keys {sorted(unknown)} "
                        f"(known: {', '.join(_META_FIELDS)})")
    out = {}
    for key in _META_FIELDS:
        value = meta.get(key)
        if key in _FLOAT_FIELDS:
            out[key] = float("nan") if value is None else float(value)
        else:
            out[key] = "" if value is None else str(value)
    if not out["name"]:
        raise PoolError(f"{where}: metadata without a name")
    return out


class PoolStore:
    """A pool of preprocessed spectra in a folder: rows in .npy segments, metadata in SQLite.

    Reading (`rows`, `iter_chunks`, `metadata`, ...) may happen from any thread while one job
    writes; call `refresh()` to see rows that another process added since this object was opened.
    """

    def __init__(self, folder: Path, info: dict):
        self.folder = Path(folder)
        self._info = info
        self.n_points: int = int(info["n_points"])
        self._lock = threading.RLock()
        self._maps: dict[int, np.ndarray] = {}
        self._segments: list[_Segment] = []
        self._starts = np.zeros(1, np.int64)
        self._len = 0
        try:
            self._db = sqlite3.connect(str(self.folder / POOL_DB), isolation_level=None,
                                       check_same_thread=False, timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise PoolError(f"{self.folder}: pool database {POOL_DB} is corrupt: {exc}") from exc
        self.refresh()

    # ------------------------------------------------------------ create / open

    @classmethod
    def create(cls, folder, settings: PreprocessSettings | None = None) -> "PoolStore":
        """Make a new, empty pool in `folder` (created if needed; must not hold a pool)."""
        folder = Path(folder)
        if (folder / POOL_JSON).exists() or (folder / POOL_DB).exists():
            raise PoolError(f"{folder}: already holds a pool")
        if settings is not None:
            settings.validate()
        folder.mkdir(parents=True, exist_ok=True)
        info = {"format": POOL_FORMAT, "version": POOL_VERSION,
                "n_points": settings.n_points if settings else PreprocessSettings().n_points,
                "preprocess": _settings_dict(settings), "created": _now()}
        db = sqlite3.connect(str(folder / POOL_DB), isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            db.execute("INSERT OR REPLACE INTO info VALUES ('version', ?)", (str(POOL_VERSION),))
        finally:
            db.close()
        atomic_write_text(folder / POOL_JSON, json.dumps(info, indent=2, sort_keys=True))
        return cls(folder, info)

    @classmethod
    def open(cls, folder) -> "PoolStore":
        """Open an existing pool; PoolError naming the folder if it is missing or corrupt."""
        folder = Path(folder)
        if not folder.is_dir():
            raise PoolError(f"{folder}: no such pool folder")
        meta_path = folder / POOL_JSON
        if not meta_path.is_file():
            raise PoolError(f"{folder}: not a pool (no {POOL_JSON})")
        try:
            info = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            raise PoolError(f"{folder}: {POOL_JSON} is unreadable: {exc}") from exc
        if not isinstance(info, dict) or info.get("format") != POOL_FORMAT:
            raise PoolError(f"{folder}: {POOL_JSON} is not a vo-al pool description")
        if info.get("version") != POOL_VERSION:
            raise PoolError(f"{folder}: pool format version {info.get('version')} is not "
                            f"supported (this vo-al reads version {POOL_VERSION})")
        if not (folder / POOL_DB).is_file():
            raise PoolError(f"{folder}: pool database {POOL_DB} is missing")
        return cls(folder, info)

    def close(self) -> None:
        with self._lock:
            self._maps.clear()
            self._db.close()

    def __enter__(self) -> "PoolStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PoolStore({str(self.folder)!r}, {self._len} spectra)"

    # ------------------------------------------------------------ state

    @property
    def settings(self) -> PreprocessSettings | None:
        """The preprocessing every row was made with (None until the first rows arrive)."""
        raw = self._info.get("preprocess")
        return None if raw is None else PreprocessSettings(**raw)

    def refresh(self) -> None:
        """Re-read the segment table (rows committed by other processes become visible)."""
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT id, file, kind, committed, sealed FROM segments ORDER BY id").fetchall()
            except sqlite3.DatabaseError as exc:
                raise PoolError(f"{self.folder}: pool database is corrupt: {exc}") from exc
            segments, start = [], 0
            for sid, file, kind, committed, sealed in rows:
                seg = _Segment(sid, file, kind, int(committed), bool(sealed), start)
                if seg.committed > 0:
                    path = self.folder / file
                    if not path.is_file():
                        raise PoolError(f"{self.folder}: segment file {file} is missing "
                                        f"({seg.committed} committed rows)")
                    cached = self._maps.get(sid)
                    if cached is None or cached.shape[0] < seg.committed:
                        nrows, cols, _ = _npy_shape(path)
                        if cols != self.n_points or nrows < seg.committed:
                            raise PoolError(f"{self.folder}: segment {file} holds {nrows}x{cols}"
                                            f", expected >= {seg.committed}x{self.n_points}")
                        self._maps[sid] = open_npy(path)
                segments.append(seg)
                start += seg.committed
            self._segments = segments
            self._starts = np.array([s.start for s in segments] + [start], np.int64)
            self._len = start

    def __len__(self) -> int:
        return self._len

    # ------------------------------------------------------------ rows

    def _segment_view(self, seg: _Segment) -> np.ndarray:
        return self._maps[seg.id][:seg.committed]

    def rows(self, indices) -> np.ndarray:
        """Rows at global `indices` (any order, repeats allowed) as a (k, n_points) float32 copy."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        with self._lock:
            n = self._len
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                bad = idx[(idx < 0) | (idx >= n)][0]
                raise PoolError(f"{self.folder}: index {bad} out of range for a pool of "
                                f"{n} spectra")
            out = np.empty((idx.size, self.n_points), np.float32)
            if not idx.size:
                return out
            seg_of = np.searchsorted(self._starts, idx, side="right") - 1
            for s in np.unique(seg_of):
                seg = self._segments[s]
                where = np.flatnonzero(seg_of == s)
                local = idx[where] - seg.start
                order = np.argsort(local, kind="stable")       # sequential reads on the memmap
                out[where[order]] = self._segment_view(seg)[local[order]]
            return out

    def iter_chunks(self, chunk_rows: int = 65536) -> Iterator[tuple[int, np.ndarray]]:
        """(start, rows) over the whole pool in global order, `chunk_rows` at a time (the last may
        be shorter). Rows are read-only memmap views where a chunk lies in one segment."""
        if chunk_rows < 1:
            raise PoolError(f"{self.folder}: chunk_rows must be >= 1, not {chunk_rows}")
        with self._lock:
            segments = [(self._segment_view(s), s.start) for s in self._segments if s.committed]
            total = self._len
        start = 0
        while start < total:
            stop = min(start + chunk_rows, total)
            parts = []
            for view, seg_start in segments:
                lo, hi = max(start, seg_start), min(stop, seg_start + len(view))
                if lo < hi:
                    parts.append(view[lo - seg_start:hi - seg_start])
            yield start, parts[0] if len(parts) == 1 else np.concatenate(parts)
            start = stop

    # ------------------------------------------------------------ metadata

    def metadata(self, indices=None, columns: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Column-oriented metadata: {column: array} for all rows (global order) or `indices`
        (in the order given). Strings are numpy str arrays, floats NaN where unknown."""
        columns = list(META_COLUMNS) if columns is None else list(columns)
        for col in columns:
            if col not in META_COLUMNS:
                raise PoolError(f"{self.folder}: unknown metadata column {col!r} "
                                f"(known: {', '.join(META_COLUMNS)})")
        sql_cols = ", ".join(META_COLUMNS[c][0] for c in columns)
        with self._lock:
            n = self._len
            if indices is None:
                raw = self._db.execute(
                    f"SELECT {sql_cols} FROM spectra WHERE idx < ? ORDER BY idx", (n,)).fetchall()
                return self._columns(raw, columns)
            idx = np.asarray(indices, dtype=np.int64).reshape(-1)
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                bad = idx[(idx < 0) | (idx >= n)][0]
                raise PoolError(f"{self.folder}: index {bad} out of range for a pool of "
                                f"{n} spectra")
            if idx.size > max(1000, n // 16):
                every = self.metadata(None, columns)
                return {c: a[idx] for c, a in every.items()}
            uniq = np.unique(idx)
            fetched = []
            for i in range(0, uniq.size, _SQL_BATCH):
                part = uniq[i:i + _SQL_BATCH].tolist()
                marks = ",".join("?" * len(part))
                fetched.extend(self._db.execute(
                    f"SELECT {sql_cols} FROM spectra WHERE idx IN ({marks}) ORDER BY idx",
                    part).fetchall())
        cols = self._columns(fetched, columns)
        pos = np.searchsorted(uniq, idx)
        return {c: a[pos] for c, a in cols.items()}

    @staticmethod
    def _columns(raw: list, columns: list[str]) -> dict[str, np.ndarray]:
        values = list(zip(*raw)) if raw else [()] * len(columns)
        out = {}
        for col, vals in zip(columns, values):
            kind = META_COLUMNS[col][1]
            if kind == "i":
                out[col] = np.array(vals, dtype=np.int64)
            elif kind == "f":
                out[col] = np.array(vals, dtype=np.float64)     # NULL (None) -> NaN
            else:
                out[col] = np.array(vals, dtype=str) if vals else np.array([], dtype="<U1")
        return out

    def index_of(self, names: Iterable[str]) -> np.ndarray:
        """Global indices of spectra by name, in the order given; PoolError naming unknown ones."""
        names = [str(n) for n in names]
        found: dict[str, int] = {}
        with self._lock:
            uniq = list(dict.fromkeys(names))
            for i in range(0, len(uniq), _SQL_BATCH):
                part = uniq[i:i + _SQL_BATCH]
                marks = ",".join("?" * len(part))
                found.update(self._db.execute(
                    f"SELECT name, idx FROM spectra WHERE name IN ({marks}) AND idx < ?",
                    (*part, self._len)).fetchall())
        missing = [n for n in uniq if n not in found]
        if missing:
            shown = ", ".join(repr(m) for m in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise PoolError(f"{self.folder}: {len(missing)} name(s) not in the pool: {shown}{more}")
        return np.array([found[n] for n in names], dtype=np.int64)

    def rejected(self) -> list[tuple[str, str]]:
        """(file, reason) of every file an ingest rejected, in the order they were rejected."""
        with self._lock:
            return [tuple(r) for r in
                    self._db.execute("SELECT file, reason FROM rejected ORDER BY rowid").fetchall()]

    # ------------------------------------------------------------ writing

    def _check_settings(self, settings: PreprocessSettings | None) -> PreprocessSettings:
        """The settings to use: the pool's, or `settings` if the pool has none yet; PoolError
        if `settings` differ from those the pool's rows were made with."""
        stored = self.settings
        if settings is None:
            return stored or PreprocessSettings()
        settings.validate()
        if stored is not None and asdict(stored) != asdict(settings):
            diffs = ", ".join(f"{k}: pool {v!r} vs {asdict(settings)[k]!r}"
                              for k, v in asdict(stored).items() if asdict(settings)[k] != v)
            raise PoolError(f"{self.folder}: the pool was preprocessed with other settings "
                            f"({diffs}); make a new pool for these settings")
        return settings

    def _adopt_settings(self, settings: PreprocessSettings) -> None:
        """Store `settings` in pool.json if the pool has none yet (called under the writer lock)."""
        if self._info.get("preprocess") is not None:
            return
        if self._len and settings.n_points != self.n_points:
            raise PoolError(f"{self.folder}: rows have {self.n_points} points, settings "
                            f"{settings.n_points}")
        info = dict(self._info, preprocess=asdict(settings), n_points=settings.n_points)
        atomic_write_text(self.folder / POOL_JSON, json.dumps(info, indent=2, sort_keys=True))
        self._info = info
        self.n_points = settings.n_points

    def _begin_write(self, seal_all: bool) -> _WriterLock:
        lock = _WriterLock(self.folder)
        lock.acquire()
        try:
            self.refresh()
            self._recover(seal_all)
        except BaseException:
            lock.release()
            raise
        return lock

    def _recover(self, seal_all: bool) -> None:
        """Under the writer lock: seal segments whose run is over (every 'ingest' one, and the
        open 'add' one too when `seal_all`), dropping empty ones left by a crash."""
        for seg in list(self._segments):
            if seg.sealed or (seg.kind != "ingest" and not seal_all):
                continue
            self._seal(seg)
        self.refresh()

    def _seal(self, seg: _Segment) -> None:
        path = self.folder / seg.file
        if seg.committed == 0:
            with self._lock:
                self._db.execute("DELETE FROM segments WHERE id = ?", (seg.id,))
                self._maps.pop(seg.id, None)
            if path.exists():
                path.unlink()
            return
        with self._lock:
            self._maps.pop(seg.id, None)        # no mapping of the tail we are about to cut
        _seal_file(path, self.n_points, seg.committed)
        with self._lock:
            self._db.execute("UPDATE segments SET sealed = 1 WHERE id = ?", (seg.id,))

    def _new_segment(self, kind: str, capacity: int) -> tuple[_Segment, _SegmentWriter]:
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO segments (file, kind, committed, sealed, created) "
                "VALUES ('', ?, 0, 0, ?)", (kind, _now()))
            sid = cur.lastrowid
            file = f"seg-{sid:06d}.npy"
            self._db.execute("UPDATE segments SET file = ? WHERE id = ?", (file, sid))
        writer = _SegmentWriter(self.folder / file, self.n_points, max(1, capacity), create=True)
        seg = _Segment(sid, file, kind, 0, False, self._len)
        return seg, writer

    def _commit_rows(self, seg: _Segment, writer: _SegmentWriter, rows: np.ndarray,
                     metas: dict[str, list], extra_sql: Callable[[sqlite3.Connection], None]
                     | None = None, grow: bool = False) -> np.ndarray:
        """Write rows to the segment, fsync, then one transaction: metadata + committed count
        (+ `extra_sql`). Returns the global indices given to the rows."""
        k = len(rows)
        if k:
            grow_to = max(2 * writer.capacity, seg.committed + k) if grow else None
            writer.write(seg.committed, rows, grow_to)
        first = self._len
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                if k:
                    db.executemany(
                        "INSERT INTO spectra (idx, segment, row, name, designation, ra, dec, "
                        "obsid, cls, subclass, z, snr, source, instrument) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        zip(range(first, first + k), [seg.id] * k,
                            range(seg.committed, seg.committed + k),
                            metas["name"], metas["designation"], metas["ra"], metas["dec"],
                            metas["obsid"], metas["cls"], metas["subclass"], metas["z"],
                            metas["snr"], metas["source"], metas["instrument"]))
                    db.execute("UPDATE segments SET committed = ? WHERE id = ?",
                               (seg.committed + k, seg.id))
                if extra_sql is not None:
                    extra_sql(db)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            seg.committed += k
            if k:
                self._publish(seg)
        return np.arange(first, first + k, dtype=np.int64)

    def _publish(self, seg: _Segment) -> None:
        """Make the rows just committed to `seg` visible to this object's readers."""
        if not self._segments or self._segments[-1].id != seg.id:
            self._segments.append(_Segment(seg.id, seg.file, seg.kind, 0, False, self._len))
        mine = self._segments[-1]
        mine.committed = seg.committed
        cached = self._maps.get(seg.id)
        if cached is None or cached.shape[0] < seg.committed:
            self._maps[seg.id] = open_npy(self.folder / seg.file)
        self._len = mine.start + mine.committed
        self._starts = np.array([s.start for s in self._segments] + [self._len], np.int64)

    def add_rows(self, rows: np.ndarray, metas: Sequence,
                 settings: PreprocessSettings | None = None,
                 skip_existing: bool = True) -> np.ndarray:
        """Append already preprocessed rows with their metadata (dicts with SpectrumMeta keys
        plus 'instrument', or SpectrumMeta objects) in one transaction.

        Rows go to the pool's open 'add' segment (one per harvest; `seal()` closes it), which
        grows as needed. Names already in the pool are skipped when `skip_existing` (their
        existing index is returned), else PoolError. Returns the global index of every input row.
        """
        rows = np.asarray(rows, dtype=np.float32)
        if rows.ndim != 2 or len(rows) != len(metas):
            raise PoolError(f"{self.folder}: add_rows needs (k, {self.n_points}) rows and k "
                            f"metadata records, got {rows.shape} and {len(metas)}")
        if settings is not None:
            settings = self._check_settings(settings)
        width = settings.n_points if (settings is not None and not self._len) else self.n_points
        if len(rows) and rows.shape[1] != width:
            raise PoolError(f"{self.folder}: rows have {rows.shape[1]} points, the pool {width}")
        norm = [_normalise_meta(m, f"{self.folder}: add_rows record {i}")
                for i, m in enumerate(metas)]
        lock = self._begin_write(seal_all=False)
        try:
            if settings is not None:
                self._adopt_settings(settings)
            names = [m["name"] for m in norm]
            existing = self._existing(names, "spectra", "name", with_index=True)
            result = np.full(len(norm), -1, np.int64)
            keep, first_of = [], {}
            for i, name in enumerate(names):
                if name in existing:
                    if not skip_existing:
                        raise PoolError(f"{self.folder}: {name!r} is already in the pool")
                    result[i] = existing[name]
                elif name in first_of:
                    if not skip_existing:
                        raise PoolError(f"{self.folder}: {name!r} appears twice in add_rows")
                else:
                    first_of[name] = i
                    keep.append(i)
            if keep:
                last = self._segments[-1] if self._segments else None
                if last is not None and last.kind == "add" and not last.sealed:
                    seg = _Segment(last.id, last.file, last.kind, last.committed, False, last.start)
                    writer = _SegmentWriter(self.folder / seg.file, self.n_points, 0, create=False)
                else:
                    seg, writer = self._new_segment("add", max(len(keep), 1024))
                try:
                    cols = {key: [norm[i][key] for i in keep] for key in _META_FIELDS}
                    got = self._commit_rows(seg, writer, rows[keep], cols, grow=True)
                finally:
                    writer.close()
                result[keep] = got
            for i, name in enumerate(names):
                if result[i] < 0:
                    result[i] = result[first_of[name]]
            return result
        finally:
            lock.release()

    def seal(self) -> None:
        """Close the open 'add' segment (end of a harvest): shrink it to its committed rows."""
        lock = self._begin_write(seal_all=True)
        try:
            self.refresh()
        finally:
            lock.release()

    def _existing(self, keys: Sequence[str], table: str, column: str,
                  with_index: bool = False) -> dict:
        """Which of `keys` are present in table.column ({key: idx} or {key: None})."""
        found: dict = {}
        what = f"{column}, idx" if with_index else f"{column}, NULL"
        uniq = list(dict.fromkeys(keys))
        with self._lock:
            for i in range(0, len(uniq), _SQL_BATCH):
                part = uniq[i:i + _SQL_BATCH]
                marks = ",".join("?" * len(part))
                found.update(self._db.execute(
                    f"SELECT {what} FROM {table} WHERE {column} IN ({marks})", part).fetchall())
        return found


# ---------------------------------------------------------------- ingest

@dataclass
class IngestReport:
    """What one ingest run did."""

    added: int = 0
    rejected: list = field(default_factory=list)     # (file, reason) of files rejected this run
    skipped: int = 0                                  # already in the pool (or already rejected)
    seconds: float = 0.0
    files: int = 0                                    # distinct input files

    def summary(self) -> str:
        rate = self.files / self.seconds if self.seconds > 0 else float("nan")
        return (f"{self.added} added, {len(self.rejected)} rejected, {self.skipped} skipped "
                f"of {self.files} files in {self.seconds:.1f} s ({rate:.0f} files/s)")


def _default_reader():
    from vo_al.core.spectra.readers import read_spectrum
    return read_spectrum


def _reason(exc: BaseException) -> str:
    if isinstance(exc, (SpectrumReadError, UnusableSpectrumError)):
        return exc.reason
    return f"{type(exc).__name__}: {exc}"


def _process_chunk(paths: list[str], settings: PreprocessSettings, reader) -> tuple:
    """Worker: read and preprocess a chunk of files, `_PREP_BATCH` spectra at a time (the
    vectorised preprocessing is fastest there, and few spectra are held in memory at once).

    Returns (rows float32 (k, n), meta columns {field: list of k}, rejected [(path, reason)]).
    """
    if reader is None:
        reader = _default_reader()
    rejected: list = []
    metas: dict[str, list] = {key: [] for key in _META_FIELDS}
    blocks = []
    for start in range(0, len(paths), _PREP_BATCH):
        spectra = []
        for path in paths[start:start + _PREP_BATCH]:
            try:
                sp = reader(path)
                if not sp.meta.name:
                    sp.meta.name = os.path.basename(path)
                sp.meta.source = path
                spectra.append(sp)
            except Exception as exc:                       # noqa: BLE001 - anything from a file
                rejected.append((path, _reason(exc)))
        rows, reasons = _preprocess_isolated(spectra, settings)
        good = []
        for i, (sp, r) in enumerate(zip(spectra, reasons)):
            if r is not None:
                rejected.append((sp.meta.source, r))
                continue
            good.append(i)
            m = sp.meta
            metas["name"].append(m.name)
            metas["designation"].append(m.designation)
            metas["ra"].append(float(m.ra))
            metas["dec"].append(float(m.dec))
            metas["obsid"].append(m.obsid)
            metas["cls"].append(m.cls)
            metas["subclass"].append(m.subclass)
            metas["z"].append(float(m.z))
            metas["snr"].append(float(m.snr))
            metas["source"].append(m.source)
            metas["instrument"].append(sp.instrument)
        blocks.append(rows[good])
    out = (np.concatenate(blocks) if blocks else np.empty((0, settings.n_points))).astype(
        np.float32, copy=False)
    return np.ascontiguousarray(out), metas, rejected


def _preprocess_isolated(spectra: list, settings: PreprocessSettings) -> tuple[np.ndarray, list]:
    """preprocess_spectra, falling back to one spectrum at a time if the batch raises, so that
    one odd spectrum is rejected instead of failing its neighbours."""
    from vo_al.core.spectra.preprocess import preprocess_spectra

    try:
        batch = preprocess_spectra(spectra, settings)
        return batch.rows, batch.reasons
    except Exception:                                      # noqa: BLE001 - isolate the culprit
        rows = np.full((len(spectra), settings.n_points), np.nan, np.float32)
        reasons = []
        for i, sp in enumerate(spectra):
            try:
                one = preprocess_spectra([sp], settings)
                rows[i], r = one.rows[0], one.reasons[0]
            except Exception as exc:                       # noqa: BLE001
                r = f"preprocessing failed: {type(exc).__name__}: {exc}"
            reasons.append(r)
        return rows, reasons


@dataclass
class _Work:
    key: str | None                  # ingest_progress key (None for pieces of a split chunk)
    paths: list[str]
    suspect: bool = False            # was in flight when a worker died: run alone


def _chunk_key(paths: list[str]) -> str:
    return hashlib.sha1("\0".join(paths).encode("utf-8", "surrogateescape")).hexdigest()


def _mp_context():
    import multiprocessing

    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        # preload the worker code (numpy, scipy, astropy) once; never the caller's __main__,
        # which may import heavy things (tensorflow) the workers do not need
        ctx.set_forkserver_preload(["vo_al.core.pool.store", "vo_al.core.spectra.readers"])
    return ctx


def ingest_files(pool: PoolStore, paths: Iterable, settings: PreprocessSettings | None = None,
                 workers: int = 2, chunk_files: int = 1024, cancel: CancelToken | None = None,
                 reader: Callable | None = None) -> Job[IngestReport]:
    """Job: read, preprocess and add spectrum files to `pool`; returns an IngestReport.

    Resumable: files already in the pool (same path or same name) or already rejected are
    skipped, so re-running after a crash or cancel adds each file exactly once. `workers`
    processes read the files (0: in this process), at most `chunk_files` files per chunk (fewer
    for small runs, so that every worker gets several chunks). `reader` (a picklable,
    module-level function path -> Spectrum) defaults to `vo_al.core.readers.read_spectrum`.
    Cancelling is honoured between chunks and raises Cancelled with committed chunks kept.
    """
    t0 = time.monotonic()
    if workers < 0 or chunk_files < 1:
        raise PoolError(f"{pool.folder}: workers must be >= 0 and chunk_files >= 1 "
                        f"(got {workers}, {chunk_files})")
    settings = pool._check_settings(settings)
    if reader is None:
        reader = _default_reader()         # fail here, not once per file, if it cannot import
    all_paths = list(dict.fromkeys(os.path.abspath(os.fspath(p)) for p in paths))
    total = len(all_paths)
    report = IngestReport(files=total)
    # small runs still give every worker several chunks
    size = max(1, min(chunk_files, math.ceil(total / max(1, 4 * workers)) if total else 1))
    chunks = [all_paths[i:i + size] for i in range(0, total, size)]
    keys = [_chunk_key(c) for c in chunks]

    lock = pool._begin_write(seal_all=True)
    executor = None
    seg = writer = None
    try:
        pool._adopt_settings(settings)
        done_keys = pool._existing(keys, "ingest_progress", "chunk")
        items: deque[_Work] = deque()
        done_files = 0
        for key, chunk in zip(keys, chunks):
            if key in done_keys:
                done_files += len(chunk)
                report.skipped += len(chunk)
            else:
                items.append(_Work(key, chunk))
        capacity = sum(len(w.paths) for w in items)
        yield Progress("ingest", done_files, total, "starting", {"added": 0, "rejected": 0,
                                                                  "skipped": report.skipped})

        def submit(work: _Work, todo: list[str]):
            if executor is None:
                return _Done(_process_chunk, todo, settings, reader)
            return executor.submit(_process_chunk, todo, settings, reader)

        def make_executor():
            return ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context())

        if workers > 0 and items:
            executor = make_executor()
        window = max(1, 2 * workers)
        inflight: deque = deque()          # (work, todo, n_skipped, future)
        while items or inflight:
            if cancel is not None and cancel.cancelled:
                raise Cancelled(f"ingest into {pool.folder} cancelled after {done_files} of "
                                f"{total} files ({report.added} added); run it again to resume")
            # fill the window (a suspect chunk runs alone)
            while (items and len(inflight) < window
                   and not (inflight and inflight[-1][0].suspect)):
                work = items[0]
                if work.suspect and inflight:
                    break
                items.popleft()
                seen = pool._existing(work.paths, "spectra", "source")
                seen.update(pool._existing(work.paths, "rejected", "file"))
                todo = [p for p in work.paths if p not in seen]
                inflight.append((work, todo, len(work.paths) - len(todo),
                                 submit(work, todo) if todo else None))
            work, todo, n_seen, future = inflight.popleft()
            if future is None:
                rows, metas, rejected = np.empty((0, pool.n_points), np.float32), None, []
            else:
                try:
                    rows, metas, rejected = future.result()
                except BrokenProcessPool:
                    # a worker died (segfault, OOM kill): committed chunks are safe. Run what was
                    # in flight again one chunk at a time; a chunk that kills a worker on its own
                    # is split until the file that does it is found and rejected.
                    executor.shutdown(wait=True, cancel_futures=True)
                    executor = make_executor()
                    if not work.suspect:
                        again = [work] + [w for w, _, _, _ in inflight]
                        inflight.clear()
                        items.extendleft(_Work(w.key, w.paths, True) for w in reversed(again))
                        continue
                    if len(work.paths) > 1:
                        half = len(work.paths) // 2
                        items.appendleft(_Work(None, work.paths[half:], True))
                        items.appendleft(_Work(None, work.paths[:half], True))
                        continue
                    rows, metas = np.empty((0, pool.n_points), np.float32), None
                    rejected = [(work.paths[0], "the reader crashed its worker process on this "
                                                "file")]
            # drop names already in the pool or repeated inside the chunk
            keep = []
            if len(rows):
                names = metas["name"]
                existing = pool._existing(names, "spectra", "name")
                seen_names = set()
                for i, name in enumerate(names):
                    if name not in existing and name not in seen_names:
                        keep.append(i)
                        seen_names.add(name)
            n_dup = len(rows) - len(keep)
            if n_dup:
                rows = rows[keep]
                metas = {k: [v[i] for i in keep] for k, v in metas.items()}
            if len(rows) and seg is None:
                seg, writer = pool._new_segment("ingest", capacity)

            def extra(db, work=work, rejected=rejected, n_skip=n_seen + n_dup, k=len(rows)):
                if rejected:
                    db.executemany("INSERT OR REPLACE INTO rejected (file, reason) VALUES (?, ?)",
                                   rejected)
                if work.key is not None:
                    db.execute("INSERT OR REPLACE INTO ingest_progress VALUES (?,?,?,?,?,?)",
                               (work.key, len(work.paths), k, len(rejected), n_skip, _now()))

            if len(rows):
                pool._commit_rows(seg, writer, rows, metas, extra)
            else:
                _commit_extra(pool, extra)
            report.added += len(rows)
            report.rejected.extend(rejected)
            report.skipped += n_seen + n_dup
            done_files += len(work.paths)
            yield Progress("ingest", done_files, total, f"{report.added} added",
                           {"added": report.added, "rejected": len(report.rejected),
                            "skipped": report.skipped})
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        try:
            if writer is not None:
                writer.close()
            if seg is not None:
                pool._seal(seg)
                pool.refresh()
        finally:
            lock.release()
    report.seconds = time.monotonic() - t0
    return report


def _commit_extra(pool: PoolStore, extra) -> None:
    with pool._lock:
        pool._db.execute("BEGIN IMMEDIATE")
        try:
            extra(pool._db)
            pool._db.execute("COMMIT")
        except BaseException:
            pool._db.execute("ROLLBACK")
            raise


class _Done:
    """A finished 'future' for in-process work (workers=0)."""

    def __init__(self, fn, *args):
        self._result = fn(*args)

    def result(self):
        return self._result


def find_spectrum_files(folder, pattern: Sequence[str] | str = DEFAULT_PATTERNS) -> list[str]:
    """Files under `folder` (recursive) whose base name matches one of the patterns, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder to ingest")
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    lowered = [p.lower() for p in patterns]
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in files:
            low = name.lower()
            if any(fnmatch.fnmatchcase(low, p) for p in lowered):
                found.append(os.path.join(root, name))
    return sorted(found)


def ingest_folder(pool: PoolStore, folder, pattern: Sequence[str] | str = DEFAULT_PATTERNS,
                  settings: PreprocessSettings | None = None, workers: int = 2,
                  chunk_files: int = 1024, cancel: CancelToken | None = None,
                  reader: Callable | None = None) -> Job[IngestReport]:
    """Job: ingest every matching file under `folder` (recursive, sorted, deterministic)."""
    paths = find_spectrum_files(folder, pattern)
    return (yield from ingest_files(pool, paths, settings=settings, workers=workers,
                                    chunk_files=chunk_files, cancel=cancel, reader=reader))
