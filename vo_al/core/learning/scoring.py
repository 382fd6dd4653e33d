"""Chunked scoring of the whole pool into an on-disk array of class probabilities."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from vo_al.core.base.atomic import fsync_dir, remove_quietly, temporary_sibling
from vo_al.core.base.progress import CancelToken, Job, Progress


def score_pool(model, pool, out_path: Path, chunk_rows: int = 65536, batch_size: int = 2048,
               cancel: CancelToken | None = None, precision: str = "float32") -> Job[Path]:
    """Write P(class) for every pool row to `out_path` (.npy, N x 3 float32, memory-mappable).

    N is the pool's length when the scoring starts; rows another process commits meanwhile are
    not scored (the file then no longer covers the pool, which its users check). The array is
    written under a temporary name of its own (PID + random part: two scorings of one file
    never share it) and renamed when complete, so a reader never sees a half-scored pool; a
    failed or cancelled scoring removes its temporary. Cancel is honoured between chunks.
    `precision`: 'float32' or 'bfloat16' (learning.device).
    """
    from vo_al.core.learning.model import predict_proba

    total = len(pool)
    with score_file(out_path, total) as proba:
        done = 0
        yield Progress("score", 0, total)
        for start, rows in pool.iter_chunks(chunk_rows):
            if start >= total:
                break
            rows = rows[:total - start]
            if cancel is not None:
                cancel.raise_if_cancelled("scoring")
            proba[start:start + len(rows)] = predict_proba(model, rows, batch_size=batch_size,
                                                           precision=precision)
            done += len(rows)
            yield Progress("score", done, total)
    return Path(out_path)


@contextmanager
def score_file(out_path: Path, total: int):
    """The score file of every scoring (here and `distributed`): a (total, 3) float32 memmap
    under a temporary name of its own beside `out_path` (PID + random part: two scorings of one
    file never share it), renamed to `out_path` when the block ends and removed when it raises
    (a failure, a cancel, a closed job): a reader never sees a half-scored pool."""
    from vo_al.core.learning.classes import N_CLASSES

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(out_path, "partial")
    try:
        proba = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32,
                                          shape=(total, N_CLASSES))
        yield proba
        proba.flush()
        del proba
        os.replace(tmp, out_path)
    except BaseException:
        remove_quietly(tmp)
        raise
    fsync_dir(out_path.parent)


def predicted_classes(proba: np.ndarray, chunk: int = 1 << 20) -> np.ndarray:
    """Arg-max class per row, computed in chunks so a memory-mapped array stays on disk."""
    out = np.empty(len(proba), dtype=np.int8)
    for start in range(0, len(proba), chunk):
        out[start:start + chunk] = np.argmax(proba[start:start + chunk], axis=1)
    return out
