"""The pool store: millions of preprocessed spectra on disk, never as Python objects per spectrum.

Layout of a pool folder::

    pool.json            format version, row width, the PreprocessSettings every row was made with
    pool.sqlite          metadata (SQLite, WAL): segments, spectra, rejected, ingest_progress
    seg-000001.npy ...   float32 rows, one segment per ingest run or harvest, memory-mappable
    pool.lock            held (flock) by the one process writing

Rows live in segment files (segments.py), metadata in SQLite (schema.py). A segment's committed
row count is raised in the same SQLite transaction that inserts the rows' metadata, after the
rows themselves were written and fsync'ed. A crash (even kill -9) at any moment therefore leaves
no visible half rows: what was not committed does not exist, and the next ingest of the same
files does it again. When a run ends, its segment is sealed (shrunk to its committed rows).

Global indices are 0..len(pool)-1: segments in creation order, rows in order within a segment.

Reading is `PoolStore` (`rows`, `iter_chunks`, `metadata`, `index_of`, `rejected`). Writing is
`PoolWriter`, from `PoolStore.writer()`: the one writer holds pool.lock and `append`s rows with
their metadata (plus rejected files and finished ingest chunks) one transaction at a time;
`add_rows` and ingest.py are its two users.

Why one module of some 600 lines: the writer keeps the reader's private state (the SQLite
connection, the segment list and its memory maps, under one lock) current as it commits, so the
two share that state here rather than through private members across modules.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from vo_al.core.base.atomic import atomic_write_text
from vo_al.core.base.errors import PoolError
from vo_al.core.base.jsonfile import read_json_document
from vo_al.core.base.npy import open_npy
from vo_al.core.pool.schema import (INSERT_MEDIUM, INSERT_SPECTRA, META_COLUMNS, RECORD_FIELDS,
                                    SCHEMA, normalise_columns, normalise_record)
from vo_al.core.pool.segments import Segment, SegmentWriter, WriterLock, seal_segment, segment_shape
from vo_al.core.spectra.record import MEDIA
from vo_al.core.spectra.settings import PreprocessSettings

POOL_FORMAT = "vo-al pool"
POOL_VERSION = 1
POOL_JSON = "pool.json"
POOL_DB = "pool.sqlite"
POOL_LOCK = "pool.lock"
SEGMENT_KINDS = ("ingest", "add")

_SQL_BATCH = 900            # host parameters per IN (...) query, below every SQLite limit
# rows of metadata read from SQLite at a time: SQLite hands back a Python tuple per row, so a
# read of many rows goes a range at a time into numpy (tens of MB of Python objects at once,
# never the whole pool's: 4.1 M rows of tuples were 1.8 GB)
_SCAN_ROWS = 65536
# more wanted rows than this (and than 1/16 of the pool): one pass over the table beats IN lists
_SCAN_FROM = 1000
_ADD_SEGMENT_ROWS = 1024    # first size of an 'add' segment (it doubles as a harvest grows)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def _settings_dict(settings: PreprocessSettings | None) -> dict | None:
    return None if settings is None else asdict(settings)


class PoolStore:
    """A pool of preprocessed spectra in a folder: rows in .npy segments, metadata in SQLite.

    Reading (`rows`, `iter_chunks`, `metadata`, ...) may happen from any thread while one job
    writes; call `refresh()` to see rows that another process added since this object was opened.
    Writing: `add_rows` for rows already preprocessed, `writer()` for a run of many transactions
    (ingest.py), `seal()` at the end of a harvest.
    """

    def __init__(self, folder: Path, info: dict):
        self.folder = Path(folder)
        self._info = info
        self.n_points: int = int(info["n_points"])
        self._lock = threading.RLock()
        self._maps: dict[int, np.ndarray] = {}
        self._segments: list[Segment] = []
        self._starts = np.zeros(1, np.int64)
        self._len = 0
        try:
            self._db = sqlite3.connect(str(self.folder / POOL_DB), isolation_level=None,
                                       check_same_thread=False, timeout=30.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
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
            db.executescript(SCHEMA)
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
        info = read_json_document(meta_path, POOL_FORMAT, PoolError, "vo-al pool description")
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
                seg = Segment(sid, file, kind, int(committed), bool(sealed), start)
                if seg.committed > 0:
                    path = self.folder / file
                    if not path.is_file():
                        raise PoolError(f"{self.folder}: segment file {file} is missing "
                                        f"({seg.committed} committed rows)")
                    cached = self._maps.get(sid)
                    if cached is None or cached.shape[0] < seg.committed:
                        nrows, cols, _ = segment_shape(path)
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

    def _segment_view(self, seg: Segment) -> np.ndarray:
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
                return self._scan(sql_cols, columns, n, None)
            idx = np.asarray(indices, dtype=np.int64).reshape(-1)
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                bad = idx[(idx < 0) | (idx >= n)][0]
                raise PoolError(f"{self.folder}: index {bad} out of range for a pool of "
                                f"{n} spectra")
            uniq = np.unique(idx)
            if idx.size > max(_SCAN_FROM, n // 16):        # many rows: one pass over the table
                cols = self._scan(sql_cols, columns, n, uniq)
                pos = np.searchsorted(uniq, idx)
                return {c: a[pos] for c, a in cols.items()}
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

    def _scan(self, sql_cols: str, columns: list[str], n: int,
              wanted: np.ndarray | None) -> dict[str, np.ndarray]:
        """Under the lock: the rows with idx < n (all, or the sorted unique `wanted`) in idx
        order, read `_SCAN_ROWS` rows at a time."""
        parts = []
        for lo in range(0, n, _SCAN_ROWS):
            hi = min(lo + _SCAN_ROWS, n)
            if wanted is not None:
                keep = wanted[np.searchsorted(wanted, lo):np.searchsorted(wanted, hi)]
                if keep.size == 0:
                    continue
            raw = self._db.execute(f"SELECT idx, {sql_cols} FROM spectra WHERE idx >= ? AND "
                                   f"idx < ? ORDER BY idx", (lo, hi)).fetchall()
            rows, *arrays = _arrays(raw, ["i", *(META_COLUMNS[c][1] for c in columns)])
            chunk = dict(zip(columns, arrays))
            if wanted is not None:
                at = np.searchsorted(rows, keep)
                if not np.array_equal(rows[np.minimum(at, rows.size - 1)], keep):
                    raise PoolError(f"{self.folder}: pool.sqlite lacks the metadata of rows "
                                    f"{lo}-{hi - 1} (a damaged pool)")
                chunk = {c: a[at] for c, a in chunk.items()}
            parts.append(chunk)
        if not parts:
            return self._columns([], columns)
        return {c: np.concatenate([part[c] for part in parts]) for c in columns}

    @staticmethod
    def _columns(raw: list, columns: list[str]) -> dict[str, np.ndarray]:
        return dict(zip(columns, _arrays(raw, [META_COLUMNS[c][1] for c in columns])))

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

    def import_medium(self, source: str) -> str | None:
        """The medium ('air'/'vacuum') the import that added `source` was given, None where it
        was given none: what a file that does not say is read with again (schema.py, media)."""
        with self._lock:
            found = self._db.execute("SELECT medium FROM media WHERE source = ?",
                                     (str(source),)).fetchone()
        return found[0] if found else None

    def rejected(self) -> list[tuple[str, str]]:
        """(file, reason) of every file an ingest rejected, in the order they were rejected."""
        with self._lock:
            return [tuple(r) for r in
                    self._db.execute("SELECT file, reason FROM rejected ORDER BY rowid").fetchall()]

    # ------------------------------------------------------------ writing

    def check_settings(self, settings: PreprocessSettings | None) -> PreprocessSettings:
        """The preprocessing to make new rows with: the pool's, or `settings` if the pool has none
        yet (default settings if neither). PoolError if `settings` differ from those the pool's
        rows were made with."""
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

    def writer(self, kind: str, settings: PreprocessSettings | None = None) -> "PoolWriter":
        """Take the pool's writer lock (PoolError if another process or PoolStore object holds
        it) and return the PoolWriter that appends rows; use it as a context manager.

        kind 'ingest': one run, whose rows go to a new segment sealed when the writer closes;
        every segment still open (left by a crash, or a harvest's) is sealed first.
        kind 'add': rows go to the pool's open 'add' segment, kept open across writers (one per
        harvest) until `seal()`, growing as needed.
        `settings`: what the rows were preprocessed with: checked (see `check_settings`) and
        stored in pool.json when the pool has none yet.
        """
        if kind not in SEGMENT_KINDS:
            raise PoolError(f"{self.folder}: writer kind {kind!r}, not one of {SEGMENT_KINDS}")
        if settings is not None:
            settings = self.check_settings(settings)
        lock = self._begin_write(seal_all=kind == "ingest")
        try:
            if settings is not None:
                self._adopt_settings(settings)
        except BaseException:
            lock.release()
            raise
        return PoolWriter(self, kind, lock)

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

    def _begin_write(self, seal_all: bool) -> WriterLock:
        lock = WriterLock(self.folder / POOL_LOCK)
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

    def _seal(self, seg: Segment) -> None:
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
        seal_segment(path, self.n_points, seg.committed)
        with self._lock:
            self._db.execute("UPDATE segments SET sealed = 1 WHERE id = ?", (seg.id,))

    def _new_segment(self, kind: str, capacity: int) -> tuple[Segment, SegmentWriter]:
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO segments (file, kind, committed, sealed, created) "
                "VALUES ('', ?, 0, 0, ?)", (kind, _now()))
            sid = cur.lastrowid
            file = f"seg-{sid:06d}.npy"
            self._db.execute("UPDATE segments SET file = ? WHERE id = ?", (file, sid))
        writer = SegmentWriter(self.folder / file, self.n_points, max(1, capacity), create=True)
        seg = Segment(sid, file, kind, 0, False, self._len)
        return seg, writer

    def _open_add_segment(self) -> tuple[Segment, SegmentWriter] | None:
        """The pool's open 'add' segment (the last one, unsealed) and a writer on it, or None."""
        last = self._segments[-1] if self._segments else None
        if last is None or last.kind != "add" or last.sealed:
            return None
        seg = Segment(last.id, last.file, last.kind, last.committed, False, last.start)
        return seg, SegmentWriter(self.folder / seg.file, self.n_points, 0, create=False)

    def _publish(self, seg: Segment) -> None:
        """Make the rows just committed to `seg` visible to this object's readers."""
        if not self._segments or self._segments[-1].id != seg.id:
            self._segments.append(Segment(seg.id, seg.file, seg.kind, 0, False, self._len))
        mine = self._segments[-1]
        mine.committed = seg.committed
        cached = self._maps.get(seg.id)
        if cached is None or cached.shape[0] < seg.committed:
            self._maps[seg.id] = open_npy(self.folder / seg.file)
        self._len = mine.start + mine.committed
        self._starts = np.array([s.start for s in self._segments] + [self._len], np.int64)

    def add_rows(self, rows: np.ndarray, metas: Sequence,
                 settings: PreprocessSettings | None = None,
                 skip_existing: bool = True, medium: str | None = None) -> np.ndarray:
        """Append already preprocessed rows with their metadata (dicts with SpectrumMeta keys
        plus 'instrument', or SpectrumMeta objects) in one transaction. `medium`: the medium the
        import was given, kept for the rows' sources (`import_medium`).

        Rows go to the pool's open 'add' segment (one per harvest; `seal()` closes it), which
        grows as needed. Names already in the pool are skipped when `skip_existing` (their
        existing index is returned), else PoolError. Returns the global index of every input row.
        """
        rows = np.asarray(rows, dtype=np.float32)
        if rows.ndim != 2 or len(rows) != len(metas):
            raise PoolError(f"{self.folder}: add_rows needs (k, {self.n_points}) rows and k "
                            f"metadata records, got {rows.shape} and {len(metas)}")
        if settings is not None:
            settings = self.check_settings(settings)
        width = settings.n_points if (settings is not None and not self._len) else self.n_points
        if len(rows) and rows.shape[1] != width:
            raise PoolError(f"{self.folder}: rows have {rows.shape[1]} points, the pool {width}")
        norm = [normalise_record(m, f"{self.folder}: add_rows record {i}")
                for i, m in enumerate(metas)]
        with self.writer("add", settings) as out:
            names = [m["name"] for m in norm]
            existing = out.names_in_pool(names)
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
                out.reserve(max(len(keep), _ADD_SEGMENT_ROWS))
                cols = {key: [norm[i][key] for i in keep] for key in RECORD_FIELDS}
                result[keep] = out.append(rows[keep], cols, medium=medium)
            for i, name in enumerate(names):
                if result[i] < 0:
                    result[i] = result[first_of[name]]
            return result

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


# ---------------------------------------------------------------- the writer

@dataclass(frozen=True)
class FinishedChunk:
    """An ingest chunk, recorded as done (table ingest_progress) in the transaction that commits
    its rows, so that a resumed ingest skips it as a whole."""

    key: str                 # sha1 of the chunk's file paths
    files: int               # files in the chunk
    skipped: int             # of them, already in the pool or rejected before


class PoolWriter:
    """The one writer of a pool, from `PoolStore.writer()`; holds pool.lock until `close()`.

    `append` writes rows to the run's segment (made on the first rows, `reserve` sizes it) and
    fsyncs them, then commits their metadata, the segment's row count, rejected files and a
    finished chunk in one SQLite transaction: a crash keeps all of one call or none of it. The
    lookups (`names_in_pool`, `files_done`, `chunks_done`) read the committed state, which no one
    else can change while the writer is open.
    """

    def __init__(self, pool: PoolStore, kind: str, lock: WriterLock):
        self.pool = pool
        self.kind = kind
        self._lock = lock
        self._segment: Segment | None = None
        self._file: SegmentWriter | None = None
        self._reserve = 0

    def __enter__(self) -> "PoolWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def reserve(self, rows: int) -> None:
        """Make the segment that the first rows create hold `rows` rows (sparse on disk) so that
        it need not grow; sealing trims it to the rows committed."""
        self._reserve = max(0, int(rows))

    # ------------------------------------------------------------ lookups

    def names_in_pool(self, names: Iterable[str]) -> dict[str, int]:
        """{name: global index} of those of `names` already in the pool."""
        return self.pool._existing(list(names), "spectra", "name", with_index=True)

    def files_done(self, paths: Iterable[str], rejected: bool = True) -> set[str]:
        """Those of `paths` an ingest already handled: the source of a row, or (with
        `rejected`) a file recorded as rejected."""
        paths = list(paths)
        done = set(self.pool._existing(paths, "spectra", "source"))
        return done | set(self.pool._existing(paths, "rejected", "file")) if rejected else done

    def chunks_done(self, keys: Iterable[str]) -> set[str]:
        """Those of the chunk `keys` recorded as finished (see FinishedChunk)."""
        return set(self.pool._existing(list(keys), "ingest_progress", "chunk"))

    # ------------------------------------------------------------ appending

    def append(self, rows: np.ndarray, metas: Mapping[str, Sequence] | None = None, *,
               rejected: Sequence[tuple[str, str]] = (),
               chunk: FinishedChunk | None = None,
               not_rejected: Sequence[str] = (), medium: str | None = None) -> np.ndarray:
        """Append `rows` (k, n_points) with their metadata columns `metas` ({field: k values}
        for every field of schema.RECORD_FIELDS; None when k is 0), record `rejected` files
        (file, reason) and `chunk`, and drop the record of the files `not_rejected` (rejected
        once, added now), all in one transaction; `medium` ('air'/'vacuum'), the medium the
        import was given, is kept for the rows' sources. Returns the rows' global indices. The
        caller makes sure the names are new (`names_in_pool`): a repeated one is PoolError."""
        pool = self.pool
        if self._lock.fd is None:
            raise PoolError(f"{pool.folder}: append to a closed pool writer")
        if medium is not None and medium not in MEDIA:
            raise PoolError(f"{pool.folder}: append: medium {medium!r} is not one of {MEDIA}")
        rows = np.asarray(rows, dtype=np.float32)
        k = len(rows)
        if k and (rows.ndim != 2 or rows.shape[1] != pool.n_points):
            raise PoolError(f"{pool.folder}: rows of shape {rows.shape}, the pool's are "
                            f"(k, {pool.n_points})")
        columns = normalise_columns(metas, k, f"{pool.folder}: append") if k else []
        if k:
            if self._segment is None:
                opened = pool._open_add_segment() if self.kind == "add" else None
                self._segment, self._file = opened or pool._new_segment(
                    self.kind, max(self._reserve, k))
            seg = self._segment
            self._file.write(seg.committed, rows, max(2 * self._file.capacity, seg.committed + k))
        first = pool._len
        with pool._lock:
            db = pool._db
            db.execute("BEGIN IMMEDIATE")
            try:
                if k:
                    db.executemany(INSERT_SPECTRA, zip(
                        range(first, first + k), [seg.id] * k,
                        range(seg.committed, seg.committed + k), *columns))
                    db.execute("UPDATE segments SET committed = ? WHERE id = ?",
                               (seg.committed + k, seg.id))
                    if medium is not None:
                        sources = columns[list(RECORD_FIELDS).index("source")]
                        db.executemany(INSERT_MEDIUM, [(src, medium) for src in sources if src])
                if rejected:
                    db.executemany("INSERT OR REPLACE INTO rejected (file, reason) VALUES (?, ?)",
                                   rejected)
                if not_rejected:
                    db.executemany("DELETE FROM rejected WHERE file = ?",
                                   [(f,) for f in not_rejected])
                if chunk is not None:
                    db.execute("INSERT OR REPLACE INTO ingest_progress VALUES (?,?,?,?,?,?)",
                               (chunk.key, chunk.files, k, len(rejected), chunk.skipped, _now()))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            if k:
                seg.committed += k
                pool._publish(seg)
        return np.arange(first, first + k, dtype=np.int64)

    def close(self) -> None:
        """End the writing: an 'ingest' run's segment is sealed; the lock is released."""
        if self._lock.fd is None:
            return
        try:
            if self._file is not None:
                self._file.close()
                self._file = None
            if self._segment is not None and self.kind == "ingest":
                self.pool._seal(self._segment)
                self.pool.refresh()
        finally:
            self._lock.release()


def _arrays(raw: list, kinds: list[str]) -> list[np.ndarray]:
    """SQLite's rows (tuples) as one numpy array per column of kind 'i', 'f' or text."""
    values = list(zip(*raw)) if raw else [()] * len(kinds)
    out = []
    for kind, vals in zip(kinds, values):
        if kind == "i":
            out.append(np.array(vals, dtype=np.int64))
        elif kind == "f":
            out.append(np.array(vals, dtype=np.float64))     # NULL (None) -> NaN
        else:
            out.append(np.array(vals, dtype=str) if vals else np.array([], dtype="<U1"))
    return out
