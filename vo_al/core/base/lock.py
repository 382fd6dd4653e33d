"""An exclusive lock on a file that the OS drops when its holder dies, and who holds it.

The lock is an flock (LOCK_EX | LOCK_NB) on an open file, never waited for: the caller is told
at once who holds it. An flock belongs to the open file, not to a path or a process, so a second
`FileLock` on the same path conflicts even in the same process, and the OS releases it when the
holding process ends however it ends (kill -9 included): a dead holder never wedges anything.

The holder writes {pid, step, since} into the locked file; a refused caller reads them back for
its message (`LockHolder`). The record of a holder that died stays in the file until the next
holder overwrites it, and is read only by someone who failed to take the lock, so it never
misleads. The pool's writer lock (pool.lock) and the project lock (project.lock) are both this.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

RECORD_BYTES = 512          # the holder record, padded: one write() of a fixed size
_WINDOWS_LOCK_OFFSET = 1 << 20   # msvcrt locks a byte range: one beyond the record


@dataclass(frozen=True)
class LockHolder:
    """Who holds a lock, as its lock file says (pid None: the record could not be read)."""

    pid: int | None
    step: str
    since: float | None

    def describe(self) -> str:
        """'PID 123 is running train since 2024-05-01 12:00:03' (or what is known of it)."""
        if self.pid is None:
            return "another process holds it (its lock file does not say which)"
        since = (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
                 if self.since is not None else "an unknown time")
        return f"PID {self.pid} is running {self.step or 'a step'} since {since}"


def read_holder(path: Path) -> LockHolder:
    """The holder record in the lock file `path` (pid None when absent or unreadable)."""
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read(RECORD_BYTES).decode("utf-8").strip() or "{}")
        return LockHolder(int(data["pid"]), str(data.get("step", "")),
                          float(data["since"]) if data.get("since") is not None else None)
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return LockHolder(None, "", None)


class FileLock:
    """An exclusive, non-blocking lock on the file `path`; see the module docstring."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.fd: int | None = None

    @property
    def held(self) -> bool:
        return self.fd is not None

    def try_acquire(self, step: str) -> LockHolder | None:
        """Take the lock for `step` and record this process as its holder: None when taken,
        else the holder that has it. OSError when the lock file cannot be opened."""
        if self.fd is not None:
            raise RuntimeError(f"{self.path}: this lock is already held")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(fd)
        except OSError:
            os.close(fd)
            return read_holder(self.path)
        self.fd = fd
        record = json.dumps({"pid": os.getpid(), "step": step, "since": time.time()})
        try:        # one write of a fixed size over the last holder's record
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, record.ljust(RECORD_BYTES - 1).encode("ascii")[:RECORD_BYTES - 1]
                     + b"\n")
        except OSError:
            pass            # the record only words a refusal; the lock itself is held
        return None

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            _unlock(self.fd)
        finally:
            os.close(self.fd)
            self.fd = None


def _lock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:                                        # Windows
        import msvcrt

        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        return
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _unlock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:
        import msvcrt

        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    fcntl.flock(fd, fcntl.LOCK_UN)
