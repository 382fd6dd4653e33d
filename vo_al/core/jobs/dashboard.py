"""What the dashboard shows, as plain data from one pass over the session: the precision
estimates, the class counts per iteration (labelled set and pool predictions), the entropy
histogram of the pool with the entropy where the oracle batch starts, and the candidates table;
and the catalogue export the dashboard's buttons make (the same core calls as `vo-al export`).

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
    """What one pass over a scores file gives: predictions per class, the entropy histogram and
    the most uncertain spectra (enough of them to find the oracle batch among the unlabelled
    ones without another pass)."""

    predicted_counts: np.ndarray      # (N_CLASSES,) int64: pool spectra per arg-max class
    entropy_counts: np.ndarray        # (ENTROPY_BINS,) int64 over entropy_edges()
    top_index: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    top_entropy: np.ndarray = field(default_factory=lambda: np.empty(0))   # descending
    rows: int = 0                     # rows of the scores file

    def keeps_enough(self, needed: int) -> bool:
        """Whether the kept top rows hold the `needed` most uncertain ones (or all rows)."""
        return len(self.top_index) >= min(needed, self.rows)


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
    # where the oracle batch of the latest iteration scores starts: the entropy of its least
    # uncertain spectrum (entropy strategy only; None otherwise or for the final scores)
    batch_entropy: float | None = None
    batch_size: int = 0
    batch_queried: bool = False       # the batch is chosen (else: the one a query would take)
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
                     chunk: int = SCAN_CHUNK, keep_top: int = 0) -> Job[ScoresSummary]:
    """One chunked pass over (N, 3) probabilities (a memmap stays on disk): the predicted class
    counts, the entropy histogram (clipped into [0, ln 3] so that every row is counted) and the
    `keep_top` rows of highest entropy (ties: the lower row first, as the query's `select`)."""
    n = len(proba)
    predicted = np.zeros(N_CLASSES, dtype=np.int64)
    entropy = np.zeros(ENTROPY_BINS, dtype=np.int64)
    top_index, top_entropy = np.empty(0, np.int64), np.empty(0)
    yield Progress(stage, 0, n)
    for start in range(0, n, chunk):
        if cancel is not None:
            cancel.raise_if_cancelled(stage)
        block = np.asarray(proba[start:start + chunk])
        predicted += np.bincount(predicted_classes(block), minlength=N_CLASSES)[:N_CLASSES]
        h = np.nan_to_num(entropy_score(block), nan=MAX_ENTROPY)
        bins = np.clip((h * (ENTROPY_BINS / MAX_ENTROPY)).astype(np.int64), 0, ENTROPY_BINS - 1)
        entropy += np.bincount(bins, minlength=ENTROPY_BINS)
        if keep_top:
            top_index = np.concatenate([top_index, np.arange(start, start + len(h))])
            top_entropy = np.concatenate([top_entropy, h])
            top_index, top_entropy = _highest(top_index, top_entropy, keep_top)
        yield Progress(stage, min(n, start + chunk), n)
    return ScoresSummary(predicted, entropy, top_index, top_entropy, n)


def _highest(index: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The `n` highest `values` with their `index`, highest first (ties: lower index first)."""
    if len(values) > n:
        part = np.argpartition(-values, n - 1)[:n]
        index, values = index[part], values[part]
    order = np.lexsort((index, -values))
    return index[order], values[order]


def _summary(proba, cache: dict, new_cache: dict, cancel, stage: str,
             keep_top: int = 0, needed_top: int = 0) -> Job[ScoresSummary]:
    """The cached summary of `proba`'s file, read again only when it is new or when it keeps
    fewer than `needed_top` of its most uncertain rows (then it keeps `keep_top`)."""
    key = scores_key(proba)
    summary = None if key is None else new_cache.get(key) or cache.get(key)
    if summary is None or not summary.keeps_enough(needed_top):
        summary = yield from summarise_scores(proba, cancel, stage, keep_top=keep_top)
    if key is not None:
        new_cache[key] = summary
    return summary


def batch_start_entropy(proba, summary: ScoresSummary, labelled, batch,
                        size: int) -> float | None:
    """The entropy of the least uncertain spectrum of the oracle batch: of the `batch` (pool
    indices) when it is chosen, else of the `size`-th most uncertain spectrum not `labelled`
    (where a query would stop). None when the summary keeps too few rows to say."""
    if len(batch):
        rows = np.sort(np.asarray(batch, dtype=np.int64))
        return float(np.nan_to_num(entropy_score(np.asarray(proba[rows])), nan=MAX_ENTROPY).min())
    free = ~np.isin(summary.top_index, np.asarray(list(labelled), dtype=np.int64))
    values = summary.top_entropy[free]
    if len(values) >= size:
        return float(values[size - 1])
    every_row = len(summary.top_index) == summary.rows       # fewer spectra left than a batch
    return float(values[-1]) if len(values) and every_row else None


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
    oracle = store.oracle_labels()
    # the latest scores' summary must hold the batch among the rows not labelled yet; kept with
    # a batch to spare, the labels of this iteration's batch read no scores file again
    needed_top = int(method.batch_size) + len(oracle)
    keep_top = needed_top + int(method.batch_size)
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
                                          f"scores of iteration {row['iteration'] + 1}",
                                          keep_top)
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
    summary = yield from _summary(proba, cache, new_cache, cancel, "entropy", keep_top,
                                  needed_top)
    data.entropy_counts = summary.entropy_counts
    if method.strategy == "entropy" and data.scores_source["scores"] != "final":
        # the batch of the scores' own iteration (the final scores choose none)
        row = store.iteration_row(data.scores_source["iteration"]) or {}
        batch = row.get("query_json") or []
        data.batch_size, data.batch_queried = len(batch) or int(method.batch_size), bool(batch)
        data.batch_entropy = batch_start_entropy(proba, summary, oracle, batch, data.batch_size)
    filename = getattr(proba, "filename", None)
    if filename:
        path = Path(filename)
        try:
            data.scores_name = str(path.relative_to(session.project.folder.resolve()))
        except ValueError:
            data.scores_name = str(path)
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
