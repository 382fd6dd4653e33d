"""Opening .npy files (pool segments, score files) from several threads at once.

`np.load` parses each file's header with `ast.literal_eval`, which CPython 3.11 cannot run on two
threads at once (python/cpython#106905; `parsing` says more). Headers are parsed under the
library-parse lock; the data are memory-mapped, so the lock is held for microseconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vo_al.core.base.parsing import LIBRARY_LOCK


def open_npy(path: str | Path) -> np.memmap:
    """The array in a .npy file, memory-mapped read-only; safe to call from any thread."""
    with LIBRARY_LOCK:
        return np.load(path, mmap_mode="r")
