"""Precision estimate on a random sample of predicted targets, with a lower confidence bound."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import beta


@dataclass(frozen=True)
class PrecisionEstimate:
    true_positives: int
    sample_size: int
    precision: float        # TP / (TP + FP)
    lower_bound: float      # one-sided Clopper-Pearson bound at `confidence`
    confidence: float

    def as_dict(self) -> dict:
        return {"true_positives": self.true_positives, "sample_size": self.sample_size,
                "precision": self.precision, "lower_bound": self.lower_bound,
                "confidence": self.confidence}


def clopper_pearson_lower(successes: int, trials: int, confidence: float = 0.95) -> float:
    """Exact one-sided lower bound of a binomial proportion."""
    if trials <= 0:
        return 0.0
    if successes <= 0:
        return 0.0
    return float(beta.ppf(1.0 - confidence, successes, trials - successes + 1))


def estimate_precision(true_positives: int, sample_size: int,
                       confidence: float = 0.95) -> PrecisionEstimate:
    if not 0 <= true_positives <= sample_size:
        raise ValueError(f"true_positives={true_positives} not in [0, {sample_size}]")
    precision = true_positives / sample_size if sample_size else float("nan")
    return PrecisionEstimate(true_positives, sample_size, precision,
                             clopper_pearson_lower(true_positives, sample_size, confidence),
                             confidence)


def draw_precision_sample(predicted_target: np.ndarray, available: np.ndarray, size: int,
                          rng: np.random.Generator) -> np.ndarray:
    """Random pool indices predicted as target (and not labelled), without replacement."""
    candidates = np.flatnonzero(predicted_target & available)
    if candidates.size <= size:
        return candidates
    return np.sort(rng.choice(candidates, size=size, replace=False))
