"""Opening .npy files (pool segments, score files) from several threads at once.

`np.load` parses each file's header with `ast.literal_eval`. CPython 3.11 keeps the AST
builder's recursion depth in per-interpreter state, so two threads parsing at once (a garbage
collection in the middle of one hands the GIL to the other) can fail with "SystemError: AST
constructor recursion depth mismatch" (python/cpython#106905). The app does exactly that: the
window opens a pool while a worker reads score files. Headers are parsed under one lock here;
the data are memory-mapped, so the lock is held for microseconds.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

_HEADER_LOCK = threading.Lock()


def open_npy(path: str | Path) -> np.memmap:
    """The array in a .npy file, memory-mapped read-only; safe to call from any thread."""
    with _HEADER_LOCK:
        return np.load(path, mmap_mode="r")
