"""The pool's segment files and its writer lock: the parts of a pool that are not in SQLite.

A segment is a plain float32 C-order `.npy` file with a fixed 128-byte header, so that the header
can be rewritten in place. Its header may announce more rows than are in use (room reserved for
the rest of a run, sparse on disk): the committed row count lives in the pool database, raised
only after the rows themselves were written and fsync'ed (`SegmentWriter.write`). `seal_segment`
shrinks a finished segment to its committed rows: header first, then truncate, so the header
never announces more rows than the file holds.

`WriterLock` is the one-writer rule: an exclusive, non-blocking flock on pool.lock (base.lock),
which the OS releases when the holding process dies (kill -9 included).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vo_al.core.base.errors import PoolError
from vo_al.core.base.lock import FileLock
from vo_al.core.base.parsing import LIBRARY_LOCK

NPY_HEADER_LEN = 128        # our segments' .npy header, fixed so that it can be rewritten in place


@dataclass
class Segment:
    """A row of the `segments` table: its file, kind ('ingest' or 'add'), committed rows, and the
    global index of its first row (`start`)."""

    id: int
    file: str
    kind: str
    committed: int
    sealed: bool
    start: int = 0


def _npy_header(rows: int, cols: int) -> bytes:
    text = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (rows, cols)
    body_len = NPY_HEADER_LEN - 10
    text = text.ljust(body_len - 1) + "\n"
    if len(text) != body_len:
        raise PoolError(f"segment shape ({rows}, {cols}) too large for the .npy header")
    return b"\x93NUMPY\x01\x00" + body_len.to_bytes(2, "little") + text.encode("latin1")


def segment_shape(path: Path) -> tuple[int, int, int]:
    """(rows, cols, header offset) of a float32 C-order .npy file, or PoolError naming the file:
    unreadable, not a .npy header, or shorter than its header says (the writer never lets the
    header announce rows the file does not hold, so a short file was cut by something else)."""
    try:
        # numpy parses the header with ast.literal_eval: not on two threads at once (parsing)
        with LIBRARY_LOCK, open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            offset = fh.tell()
            size = os.fstat(fh.fileno()).st_size
    except OSError as exc:
        raise PoolError(f"{path}: segment file cannot be read ({exc.strerror})") from exc
    except ValueError as exc:               # numpy: bad magic, short or garbled header
        raise PoolError(f"{path}: segment file is damaged, not a .npy array ({exc})") from exc
    if fortran or dtype != np.dtype("<f4") or len(shape) != 2:
        raise PoolError(f"{path}: not a C-order float32 2-D segment ({dtype}, {shape})")
    needed = offset + int(shape[0]) * int(shape[1]) * 4
    if size < needed:
        raise PoolError(f"{path}: segment file is truncated: {size} bytes, its header announces "
                        f"{shape[0]} rows of {shape[1]} values ({needed} bytes)")
    return int(shape[0]), int(shape[1]), offset


class SegmentWriter:
    """Appends rows to one segment file; the caller commits the count in SQLite afterwards."""

    def __init__(self, path: Path, cols: int, capacity: int, create: bool):
        self.path = path
        self.cols = cols
        self.row_bytes = cols * 4
        if create:
            with open(path, "wb") as fh:
                fh.write(_npy_header(capacity, cols))
                fh.truncate(NPY_HEADER_LEN + capacity * self.row_bytes)   # sparse
                fh.flush()
                os.fsync(fh.fileno())
        rows, file_cols, offset = segment_shape(path)
        if file_cols != cols or offset != NPY_HEADER_LEN:
            raise PoolError(f"{path}: segment has {file_cols} columns / header {offset} bytes, "
                            f"expected {cols} / {NPY_HEADER_LEN}")
        self.capacity = rows
        self.fh = open(path, "r+b")

    def write(self, start: int, rows: np.ndarray, grow_to: int | None = None) -> None:
        """Write `rows` at row `start`, growing the file if needed; fsync before returning."""
        end = start + len(rows)
        if end > self.capacity:
            new_cap = max(end, grow_to or end)
            # extend the data first, then announce it in the header
            self.fh.truncate(NPY_HEADER_LEN + new_cap * self.row_bytes)
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.seek(0)
            self.fh.write(_npy_header(new_cap, self.cols))
            self.capacity = new_cap
        data = np.ascontiguousarray(rows, dtype="<f4")
        self.fh.seek(NPY_HEADER_LEN + start * self.row_bytes)
        self.fh.write(data.tobytes())
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        self.fh.close()


def seal_segment(path: Path, cols: int, committed: int) -> None:
    """Shrink a segment file to `committed` rows: header first, then truncate."""
    rows, _, offset = segment_shape(path)
    if rows == committed:
        return
    if rows < committed or offset != NPY_HEADER_LEN:
        raise PoolError(f"{path}: segment announces {rows} rows but {committed} are committed")
    with open(path, "r+b") as fh:
        fh.write(_npy_header(committed, cols))
        fh.flush()
        os.fsync(fh.fileno())
        fh.truncate(NPY_HEADER_LEN + committed * cols * 4)
        fh.flush()
        os.fsync(fh.fileno())


class WriterLock:
    """The pool's writer lock: a `base.lock.FileLock` on pool.lock whose refusal is a PoolError
    naming the holder (its PID, and since when it writes)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = FileLock(self.path)

    @property
    def fd(self) -> int | None:
        return self._lock.fd

    def acquire(self) -> None:
        try:
            holder = self._lock.try_acquire("a pool write")
        except OSError as exc:
            raise PoolError(f"{self.path.parent}: cannot open the writer lock {self.path.name} "
                            f"({exc.strerror or exc})") from None
        if holder is not None:
            raise PoolError(f"{self.path.parent}: the pool is being written by another process "
                            f"(or another PoolStore object): {holder.describe()}")

    def release(self) -> None:
        self._lock.release()
