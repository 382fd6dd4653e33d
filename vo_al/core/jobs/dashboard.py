"""What the dashboard shows, as plain data from one pass over the session: the precision
estimates, the class counts per iteration (labelled set and pool predictions), the entropy
histogram of the pool and the candidates table; and the catalogue export the dashboard's buttons
make (the same core calls as `vo-al export`).

With millions of pool spectra, counting the predictions of every iteration, histogramming the
entropy and building the candidates table are passes over memory-mapped score files: a job that
the app runs on a worker thread. Each score file's summary is cached by path, mtime and size, so
a refresh after a label reads no score file again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vo_al.core.session.candidates import session_candidates
from vo_al.core.base.errors import ProjectError
from vo_al.core.base.progress import CancelToken, Job, Progress
from vo_al.core.learning.scoring import predicted_classes
from vo_al.core.learning.classes import CLASS_NAMES, N_CLASSES
from vo_al.core.learning.strategies import entropy_score

ENTROPY_BINS = 50
MAX_ENTROPY = float(np.log(N_CLASSES))      # natural log, as strategies.entropy_score
SCAN_CHUNK = 1 << 20                        # rows of a scores file per step of a pass


@dataclass(frozen=True)
class ScoresSummary:
    """What one pass over a scores file gives: predictions per class and the entropy histogram."""

    predicted_counts: np.ndarray      # (N_CLASSES,) int64: pool spectra per arg-max class
    entropy_counts: np.ndarray        # (ENTROPY_BINS,) int64 over entropy_edges()


@dataclass
class DashboardData:
    """Plain data of one dashboard refresh (made on the worker thread, shown on the GUI thread)."""

    estimates: list[dict]
    threshold: float
    threshold_hits: int
    hits_needed: int
    pool_size: int
    iterations: np.ndarray            # (n,) iteration numbers with a trained model or scores
    labelled_counts: np.ndarray       # (n, N_CLASSES) labelled set per class; NaN: not trained
    predicted_counts: np.ndarray      # (n, N_CLASSES) pool predictions per class; NaN: not scored
    scores_name: str | None = None    # the latest scores file (relative to the project), if any
    scores_source: dict | None = None  # session.latest_scores_source(): 'final' or 'iteration N'
    entropy_counts: np.ndarray | None = None      # (ENTROPY_BINS,) of the latest scores
    candidates: dict | None = None    # candidate_table of the latest scores; None: not scored
    candidates_key: tuple | None = None   # what the candidates were built from (see below)
    summaries: dict = field(default_factory=dict)  # scores_key -> ScoresSummary (the new cache)


def entropy_edges(bins: int = ENTROPY_BINS) -> np.ndarray:
    return np.linspace(0.0, MAX_ENTROPY, bins + 1)


def scores_key(proba) -> tuple | None:
    """(path, mtime, size) of a memory-mapped scores file: a scores file is only ever replaced
    whole (score_pool renames it into place), so this names its content."""
    filename = getattr(proba, "filename", None)
    if not filename:
        return None
    st = os.stat(filename)
    return str(filename), st.st_mtime_ns, st.st_size


def summarise_scores(proba, cancel: CancelToken | None = None, stage: str = "scores",
                     chunk: int = SCAN_CHUNK) -> Job[ScoresSummary]:
    """One chunked pass over (N, 3) probabilities (a memmap stays on disk): the predicted class
    counts and the entropy histogram, clipped into [0, ln 3] so that every row is counted."""
    n = len(proba)
    predicted = np.zeros(N_CLASSES, dtype=np.int64)
    entropy = np.zeros(ENTROPY_BINS, dtype=np.int64)
    yield Progress(stage, 0, n)
    for start in range(0, n, chunk):
        if cancel is not None:
            cancel.raise_if_cancelled(stage)
        block = np.asarray(proba[start:start + chunk])
        predicted += np.bincount(predicted_classes(block), minlength=N_CLASSES)[:N_CLASSES]
        h = np.nan_to_num(entropy_score(block), nan=MAX_ENTROPY)
        bins = np.clip((h * (ENTROPY_BINS / MAX_ENTROPY)).astype(np.int64), 0, ENTROPY_BINS - 1)
        entropy += np.bincount(bins, minlength=ENTROPY_BINS)
        yield Progress(stage, min(n, start + chunk), n)
    return ScoresSummary(predicted, entropy)


def _summary(proba, cache: dict, new_cache: dict, cancel, stage: str) -> Job[ScoresSummary]:
    key = scores_key(proba)
    summary = None if key is None else new_cache.get(key) or cache.get(key)
    if summary is None:
        summary = yield from summarise_scores(proba, cancel, stage)
    if key is not None:
        new_cache[key] = summary
    return summary


def dashboard_job(session, cancel: CancelToken | None = None, cache: dict | None = None,
                  previous: DashboardData | None = None) -> Job[DashboardData]:
    """Everything the dashboard shows, from the session's store and score files.

    `cache` maps scores_key -> ScoresSummary from an earlier run: a refresh after a label then
    reads no scores file again except to build the candidates table. The returned data's
    `summaries` is the cache for the next run (only the files still in use). The candidates
    table of `previous` is reused (the same object) when the latest scores file, the pool size
    and the oracle labels are all unchanged, e.g. after a precision-sample label.
    """
    cache = dict(cache or {})
    new_cache: dict = {}
    store, method = session.store, session.method
    rows = store.iterations()
    estimates = [dict(r["estimate_json"], iteration=r["iteration"])
                 for r in rows if r.get("estimate_json")]
    hits = sum(1 for e in estimates if e["sample_size"] > 0
               and e["precision"] >= method.precision_threshold)
    shown = [r for r in rows if r.get("training_json") or r.get("scores_path")]
    labelled = np.full((len(shown), N_CLASSES), np.nan)
    predicted = np.full((len(shown), N_CLASSES), np.nan)
    for k, row in enumerate(shown):
        counts = (row.get("training_json") or {}).get("class_counts")
        if counts is not None:
            labelled[k] = counts[:N_CLASSES]
        if row.get("scores_path"):
            proba = session.probabilities(row["iteration"])
            summary = yield from _summary(proba, cache, new_cache, cancel,
                                          f"scores of iteration {row['iteration'] + 1}")
            predicted[k] = summary.predicted_counts
    data = DashboardData(
        estimates=estimates, threshold=float(method.precision_threshold), threshold_hits=hits,
        hits_needed=int(method.threshold_hits), pool_size=len(session.project.pool),
        iterations=np.array([r["iteration"] for r in shown], dtype=np.int64),
        labelled_counts=labelled, predicted_counts=predicted, summaries=new_cache)
    try:
        proba = session.latest_probabilities()
    except ProjectError:
        return data          # nothing scored yet: no histogram, no candidates
    data.scores_source = session.latest_scores_source()
    summary = yield from _summary(proba, cache, new_cache, cancel, "entropy")
    data.entropy_counts = summary.entropy_counts
    filename = getattr(proba, "filename", None)
    if filename:
        path = Path(filename)
        try:
            data.scores_name = str(path.relative_to(session.project.folder.resolve()))
        except ValueError:
            data.scores_name = str(path)
    oracle = store.oracle_labels()
    # a precision-sample label decides a candidate too (session.candidates): in the key
    data.candidates_key = (scores_key(proba), data.pool_size, tuple(sorted(oracle.items())),
                           tuple(sorted(store.reviewed_labels().items())))
    if (previous is not None and previous.candidates is not None
            and data.candidates_key[0] is not None
            and previous.candidates_key == data.candidates_key):
        data.candidates = previous.candidates
        return data
    yield Progress("candidates", 0, 1)
    if cancel is not None:
        cancel.raise_if_cancelled("candidates")
    data.candidates = session_candidates(session, proba).candidates
    yield Progress("candidates", 1, 1, f"{len(data.candidates['pool_index'])} candidates")
    return data
