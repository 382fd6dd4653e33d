"""The pool's segment files and its writer lock: the parts of a pool that are not in SQLite.

A segment is a plain float32 C-order `.npy` file with a fixed 128-byte header, so that the header
can be rewritten in place. Its header may announce more rows than are in use (room reserved for
the rest of a run, sparse on disk): the committed row count lives in the pool database, raised
only after the rows themselves were written and fsync'ed (`SegmentWriter.write`). `seal_segment`
shrinks a finished segment to its committed rows: header first, then truncate, so the header
never announces more rows than the file holds.

`WriterLock` is the one-writer rule: an exclusive, non-blocking flock on pool.lock, which the OS
releases when the holding process dies (kill -9 included).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vo_al.core.base.errors import PoolError

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
    """An exclusive, non-blocking lock on the file `path`, released by the OS if the process dies."""

    def __init__(self, path: Path):
        self.path = Path(path)
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
