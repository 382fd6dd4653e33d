"""Crash-safe file writes: write a sibling temp file, fsync, rename over the target.

Every temporary name carries its writer's PID and a random part (`temporary_sibling`, and the
names `atomic_write_bytes` makes), so two processes writing the same file never share one, and
`remove_stale_temporaries` can tell the leftovers of a killed writer from a live one's.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from pathlib import Path

# .NAME.PID-RANDOM.tmp[.SUFFIX] / .NAME.PID-RANDOM.partial[.SUFFIX]: what this module names
_TEMPORARY = re.compile(r"^\..+\.(\d+)-[0-9a-z_]+\.(?:tmp|partial)(?:\.[^.]+)?$")


def temporary_sibling(path: Path, tag: str = "tmp") -> Path:
    """A name beside `path` to write it under before a rename: hidden, unique to this process
    and call, ending in `path`'s suffix (Keras wants '.keras'): `.iter-000.4242-9f3a1c2e.tmp.keras`.
    `tag` is 'tmp' or 'partial'."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.{tag}{path.suffix}")


def remove_quietly(path: Path) -> None:
    """Remove a temporary if it is there (cleaning up after a failure must not mask it)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except IsADirectoryError:               # a Keras temporary of an older layout
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the temporaries in `folder` whose writer process is gone (a kill -9 leaves them);
    those of a live process, this one included, stay. Returns what was removed."""
    folder = Path(folder)
    removed = []
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:
        return removed
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if match and not _process_alive(int(match.group(1))):
            remove_quietly(entry)
            removed.append(entry)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name == "nt":                 # os.kill would terminate it there: keep its files
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:             # another user's process
        return True
    return True


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}-",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
