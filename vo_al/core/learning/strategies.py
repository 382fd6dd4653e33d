"""Query strategies as plain functions (modAL style).

A scoring function maps class probabilities (n, k) to an informativeness score per spectrum
(higher = ask the oracle first); `select` takes the arg-max batch among the spectra still
available. The loop only knows the registry, never the insides of a strategy.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from vo_al.core.base.errors import ParameterError

ScoreFunction = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def entropy_score(proba: np.ndarray, rng=None) -> np.ndarray:
    """Information entropy H = -sum p ln p (natural log, as in the paper)."""
    p = np.asarray(proba, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=1)


def margin_score(proba: np.ndarray, rng=None) -> np.ndarray:
    """Small difference between the two most probable classes = informative (negated margin)."""
    top2 = np.sort(np.asarray(proba, dtype=np.float64), axis=1)[:, -2:]
    return -(top2[:, 1] - top2[:, 0])


def least_confidence_score(proba: np.ndarray, rng=None) -> np.ndarray:
    """1 - max p."""
    return 1.0 - np.asarray(proba, dtype=np.float64).max(axis=1)


def random_score(proba: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Passive learning: random order."""
    rng = rng if rng is not None else np.random.default_rng()
    return rng.random(len(proba))


STRATEGIES: dict[str, ScoreFunction] = {
    "entropy": entropy_score,
    "margin": margin_score,
    "least-confidence": least_confidence_score,
    "random": random_score,
}


def select(scores: np.ndarray, available: np.ndarray, n: int) -> np.ndarray:
    """Indices of the `n` highest scores among `available` (bool mask), highest first.

    Ties are broken by index so the batch is deterministic.
    """
    candidates = np.flatnonzero(available)
    if n <= 0 or candidates.size == 0:
        return np.empty(0, dtype=np.int64)
    n = min(n, candidates.size)
    s = scores[candidates]
    if n < candidates.size:
        part = np.argpartition(-s, n - 1)[:n]
    else:
        part = np.arange(candidates.size)
    order = np.lexsort((candidates[part], -s[part]))
    return candidates[part][order].astype(np.int64)


def query(strategy: str, proba: np.ndarray, available: np.ndarray, n: int,
          rng: np.random.Generator | None = None) -> np.ndarray:
    """Run a registered strategy: the batch of `n` pool indices to show the oracle."""
    try:
        score = STRATEGIES[strategy]
    except KeyError:
        raise ParameterError("strategy", strategy, f"must be one of {sorted(STRATEGIES)}") from None
    return select(score(proba, rng), available, n)
