"""Final candidates: pool spectra predicted as target plus the oracle's targets (paper Sect. 2.3)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from .atomic import atomic_write_text
from .scoring import predicted_classes
from .settings import CLASS_NAMES, TARGET_CLASSES

COLUMNS = ("pool_index", "name", "designation", "ra", "dec", "class", "origin",
           "p_non_target", "p_single", "p_double", "snr", "source")


def candidate_table(pool, proba: np.ndarray, oracle: dict) -> dict:
    """Column-oriented table of candidates, ordered by pool index.

    `oracle` maps pool index -> label; an oracle label overrides the prediction (origin
    'oracle'), so a spectrum the oracle rejected is never a candidate.
    """
    predicted = predicted_classes(proba)
    is_candidate = np.isin(predicted, TARGET_CLASSES)
    classes = predicted.astype(np.int64)
    # fixed-width str arrays, not object arrays: the app sorts and filters them with numpy
    origin = np.full(len(predicted), "predicted", dtype="U9")
    if oracle:
        index = np.fromiter(oracle, dtype=np.int64)
        labels = np.array([oracle[i] for i in index], dtype=np.int64)
        is_candidate[index] = np.isin(labels, TARGET_CLASSES)
        classes[index] = labels
        origin[index] = "oracle"
    rows = np.flatnonzero(is_candidate)
    meta = pool.metadata(rows, ["name", "designation", "ra", "dec", "snr", "source"])
    p = np.asarray(proba[rows]) if len(rows) else np.empty((0, 3), np.float32)
    return {
        "pool_index": rows, "name": meta["name"], "designation": meta["designation"],
        "ra": meta["ra"], "dec": meta["dec"],
        "class": np.asarray(CLASS_NAMES)[classes[rows]],
        "origin": origin[rows], "p_non_target": p[:, 0], "p_single": p[:, 1],
        "p_double": p[:, 2], "snr": meta["snr"], "source": meta["source"],
    }


def write_table_csv(table: dict, path: Path, columns=COLUMNS) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(columns)
    n = len(table[columns[0]])
    for i in range(n):
        row = []
        for c in columns:
            v = table[c][i]
            row.append(f"{v:.6g}" if isinstance(v, (float, np.floating)) else v)
        writer.writerow(row)
    atomic_write_text(Path(path), buf.getvalue())
    return Path(path)


def write_candidates(session, proba: np.ndarray, path: Path) -> Path:
    table = candidate_table(session.project.pool, proba, session.store.oracle_labels())
    return write_table_csv(table, path)
