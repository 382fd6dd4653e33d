"""Class balancing with SMOTE (imbalanced-learn): every class over-sampled to the majority."""

from __future__ import annotations

import numpy as np


def smote_balance(x: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return (x, y) with every class over-sampled to the size of the largest class.

    SMOTE needs k+1 samples of a class to interpolate between; classes with fewer samples than
    that are over-sampled with fewer neighbours, and a class with a single sample is repeated.
    """
    from imblearn.over_sampling import SMOTE, RandomOverSampler

    y = np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    if classes.size < 2 or counts.min() == counts.max():
        return x.astype(np.float32, copy=False), y
    smallest = int(counts.min())
    if smallest >= 2:
        sampler = SMOTE(k_neighbors=min(5, smallest - 1), random_state=seed)
    else:
        sampler = RandomOverSampler(random_state=seed)
    xb, yb = sampler.fit_resample(np.asarray(x, dtype=np.float32), y)
    return xb.astype(np.float32, copy=False), yb
