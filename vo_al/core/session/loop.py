"""The active-learning loop of the paper (Sect. 2.3, Fig. 1), one durable step at a time.

Each iteration i: train the CNN on the initial set plus every oracle label so far (SMOTE-balanced),
score the whole pool, query the `batch_size` most informative spectra for the oracle, draw a
random sample of `precision_sample` predicted targets for the precision estimate, collect labels,
estimate precision. Oracle labels become training data (the spectra leave the pool); precision
labels are NOT training data and the spectra stay in the pool. When the estimate has reached the
threshold `threshold_hits` times, `finish` does the long training and final scoring, and the
candidates are the pool spectra predicted as target plus the oracle's targets.

Every step writes its result to the project before it returns, so the session can be resumed
from any point by any front end (command line, GUI, tests). Every step that changes the project
holds its lock (`Project.writing`) and checks the session's state under it: a second writer is
refused with ProjectBusyError. Scores are used only while they cover the pool (one row per pool
spectrum); else a ProjectError says to score again. The finish is one unit: it counts once the
store has committed its record, after its files were renamed into place (see `finish`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import numpy as np

from vo_al.core.base.atomic import (fsync_dir, remove_quietly, remove_stale_temporaries,
                                    temporary_sibling)
from vo_al.core.learning.balance import smote_balance
from vo_al.core.base.errors import ProjectError, ParameterError
from vo_al.core.base.npy import open_npy
from vo_al.core.learning.precision import PrecisionEstimate, draw_precision_sample, estimate_precision
from vo_al.core.base.progress import CancelToken, Job, Progress
from vo_al.core.learning.scoring import predicted_classes, score_pool
from vo_al.core.learning.classes import N_CLASSES, TARGET_CLASSES
from vo_al.core.learning.strategies import query as run_query

# the steps of an iteration, in order
TRAIN, SCORE, QUERY, LABEL, ESTIMATE, FINISH, DONE = (
    "train", "score", "query", "label", "estimate", "finish", "done")

QUERY_PURPOSE, PRECISION_PURPOSE = "query", "precision"
# how a person reads a purpose (the app's label list, `vo-al label --list`)
PURPOSE_NAMES = {QUERY_PURPOSE: "oracle batch", PRECISION_PURPOSE: "precision sample"}
# the steps a person starts (LABEL is done spectrum by spectrum, DONE is no step)
ACTIONS = (TRAIN, SCORE, QUERY, ESTIMATE, FINISH)

# what a committed finish leaves in the project folder
FINAL_MODEL, FINAL_SCORES, CANDIDATES = "models/final.keras", "scores/final.npy", "candidates.csv"
SCORE_AGAIN = "score the pool again (`vo-al score`, or Score in the app)"
FINISH_AGAIN = "run the finish again (`vo-al finish`, or Finish in the app)"

T = TypeVar("T")


def _check_label(label) -> None:
    if label not in (0, 1, 2):
        raise ParameterError("label", label, "must be 0, 1 or 2")


@dataclass(frozen=True)
class BatchLabel:
    """A spectrum of the current iteration's oracle batch or precision sample, and its label."""

    pool_index: int
    name: str
    purpose: str        # "query" (training data) or "precision" (test sample, forgotten)
    label: int | None = None    # the class recorded for it; None while it waits for one


class ActiveLearningSession:
    def __init__(self, project):
        self.project = project
        self.store = project.store

    @property
    def method(self):
        """The project's method settings, read afresh: a change in the app applies at once."""
        return self.project.settings.method

    # -- where are we --------------------------------------------------------------------
    @property
    def iteration(self) -> int:
        rows = self.store.iterations()
        return rows[-1]["iteration"] if rows else 0

    def current_row(self, iteration: int | None = None) -> dict:
        """The stored record of an iteration (default: the current one)."""
        it = self.iteration if iteration is None else iteration
        return self.store.iteration_row(it) or {"iteration": it}

    def next_step(self) -> str:
        if self.store.final_record() is not None:
            return DONE
        row = self.current_row()
        if not row.get("model_path"):
            return TRAIN
        if not row.get("scores_path"):
            return SCORE
        if row.get("query_json") is None:
            return QUERY
        if self.pending():
            return LABEL
        if row.get("estimate_json") is None:
            return ESTIMATE
        if self.stop_rule_met():
            return FINISH
        return TRAIN     # of the next iteration

    def enabled_actions(self) -> set[str]:
        """Which of ACTIONS may run now: the next step, and Finish once a model exists (the
        expert may stop the active phase early). The app's buttons and the CLI follow it."""
        step = self.next_step()
        enabled = {step} & set(ACTIONS)
        if step == TRAIN and any(r.get("model_path") for r in self.store.iterations()):
            enabled.add(FINISH)
        if step != DONE and self._scores_are_short():
            enabled.add(SCORE)
        return enabled

    def why_pool_is_fixed(self) -> str | None:
        """Why spectra cannot join the pool now, or None when they can (between iterations).

        Once an iteration's model is trained, its scores and the query drawn from them describe
        the pool as it was: rows added then would have no scores and shift nothing, but the
        scores array would no longer match the pool."""
        step = self.next_step()
        if step == TRAIN:
            return None
        if step == DONE:
            return "the active phase is finished (candidates written): the pool is final"
        return (f"spectra can join the pool only between iterations (next step is '{step}', "
                f"not 'train'): iteration {self.iteration + 1}'s model and scores cover the pool as "
                f"it is; finish the iteration first")

    def require_pool_may_grow(self) -> None:
        reason = self.why_pool_is_fixed()
        if reason is not None:
            raise ProjectError(f"{self.project.folder}: {reason}")

    def _require(self, step: str) -> None:
        current = self.next_step()
        if current != step:
            raise ProjectError(f"{self.project.folder}: next step is '{current}', not '{step}'")

    def grow_pool(self, step: str, job: Job[T]) -> Job[T]:
        """Job: `job`, an ingest or harvest into this project's pool (`step` names it), run
        under the project lock once the pool may grow (checked under the lock: no train or
        score of this project can start meanwhile)."""
        with self.project.writing(step):
            self.require_pool_may_grow()
            return (yield from job)

    def _remove_stale_temporaries(self) -> None:
        """Under the lock: what a killed step left (temporaries of dead processes)."""
        folder = self.project.folder
        for where in (folder, folder / "models", folder / "scores"):
            remove_stale_temporaries(where)

    # -- training ----------------------------------------------------------------------------
    def training_data(self) -> tuple[np.ndarray, np.ndarray]:
        """Initial labelled set + every oracle label so far (before balancing)."""
        x0, y0 = self.project.training_arrays()
        oracle = self.store.oracle_labels()
        if not oracle:
            return x0, y0
        index = np.array(sorted(oracle), dtype=np.int64)
        x1 = self.project.pool.rows(index)
        y1 = np.array([oracle[i] for i in index], dtype=np.int64)
        return np.concatenate([x0, x1]), np.concatenate([y0, y1])

    def train(self, cancel: CancelToken | None = None) -> Job[dict]:
        """Train the model of the current iteration (or of the next one, if this one is done)."""
        from vo_al.core.learning.model import build_cnn, load_model, save_model, train

        with self.project.writing(TRAIN):
            self._require(TRAIN)
            self._remove_stale_temporaries()
            row = self.current_row()
            it = row["iteration"] + 1 if row.get("model_path") else row["iteration"]
            m = self.method
            x, y = self.training_data()
            yield Progress("balance", 0, 1, f"{len(y)} labelled spectra")
            xb, yb = smote_balance(x, y, seed=m.seed + it)
            yield Progress("balance", 1, 1, f"{len(yb)} after SMOTE")
            # the training's own bar from here: building the model and its first epoch (which
            # compiles it) take a while, and a full balance bar said the work was done
            yield Progress("train", 0, m.max_epochs, "building the model, then the first epoch")
            previous = self.store.iteration_row(it - 1) if it > 0 else None
            if m.warm_start and previous and previous.get("model_path"):
                model = load_model(self.project.folder / previous["model_path"])
            else:
                model = build_cnn(self.project.settings.preprocess.n_points, seed=m.seed + it)
            report = yield from train(model, xb, yb, batch_size=m.train_batch,
                                      patience=m.patience, min_delta=m.min_delta,
                                      max_epochs=m.max_epochs, seed=m.seed + it, cancel=cancel)
            rel = f"models/iter-{it:03d}.keras"
            save_model(model, self.project.folder / rel)
            summary = {"epochs": report.epochs, "best_epoch": report.best_epoch,
                       "best_loss": report.best_loss, "n_labelled": int(len(y)),
                       "n_balanced": int(len(yb)),
                       "class_counts": np.bincount(y, minlength=3).tolist()}
            self.store.update_iteration(it, model_path=rel, training_json=summary,
                                        n_train=int(len(y)))
            return summary

    # -- scoring -------------------------------------------------------------------------------
    def score(self, cancel: CancelToken | None = None,
              scheduler: str | None = None) -> Job[Path]:
        """Score the whole pool with the current iteration's model: the step after train, and
        again whenever the current scores no longer cover the pool (it grew: a pool shared with
        another project). Query indices stay valid: the pool only grows at its end.
        `scheduler`: a Dask scheduler address to score on ('' in this process; None: the
        project's `scoring_scheduler` setting)."""
        with self.project.writing(SCORE):
            if self.next_step() == DONE or not self._scores_are_short():
                self._require(SCORE)
            self._remove_stale_temporaries()
            row = self.current_row()
            rel = f"scores/iter-{row['iteration']:03d}.npy"
            yield from self._score_with(self.project.folder / row["model_path"],
                                        self.project.folder / rel, cancel, scheduler)
            self.store.update_iteration(row["iteration"], scores_path=rel)
            return self.project.folder / rel

    def _score_with(self, model_path: Path, out_path: Path, cancel: CancelToken | None,
                    scheduler: str | None = None, model=None) -> Job[Path]:
        """Score the pool with the model saved in `model_path` into `out_path`: on the Dask
        cluster at `scheduler` (None: the project's `scoring_scheduler`; '' in this process),
        or in this process (with `model` when it is already loaded)."""
        m = self.method
        address = m.scoring_scheduler if scheduler is None else scheduler
        if address:
            from vo_al.core.learning.distributed import score_pool_distributed

            return (yield from score_pool_distributed(
                model_path, self.project.pool, out_path, address, cancel=cancel,
                precision=m.scoring_precision))
        if model is None:
            from vo_al.core.learning.model import load_model

            model = load_model(model_path)
        return (yield from score_pool(model, self.project.pool, out_path,
                                      chunk_rows=m.score_chunk, cancel=cancel,
                                      precision=m.scoring_precision))

    def probabilities(self, iteration: int | None = None) -> np.ndarray:
        """Class probabilities (N x 3, memory-mapped) of an iteration's scoring.

        Without `iteration`: the current iteration's, checked to cover the pool (its users index
        the pool with them): ProjectError saying to score again when they do not. With one: that
        iteration's file as it was written (history: the pool may have grown since)."""
        row = self.current_row(iteration)
        if not row.get("scores_path"):
            raise ProjectError(f"{self.project.folder}: iteration {row['iteration'] + 1} not scored")
        if iteration is not None:
            return open_npy(self.project.folder / row["scores_path"])
        return self._pool_scores(row["scores_path"], SCORE_AGAIN)

    def _pool_scores(self, rel: str, cure: str) -> np.ndarray:
        """The scores file `rel`, only if it holds one row of probabilities per pool spectrum;
        else ProjectError naming it, the counts and `cure`."""
        path = self.project.folder / rel
        try:
            proba = open_npy(path)
        except (OSError, ValueError) as exc:
            raise ProjectError(f"{path}: the scores cannot be read ({exc}): {cure}") from exc
        if proba.ndim != 2 or proba.shape[1] != N_CLASSES:
            raise ProjectError(f"{path}: not {N_CLASSES} class probabilities per spectrum "
                               f"(shape {proba.shape}): {cure}")
        pool = self.project.pool
        if len(proba) != len(pool):
            pool.refresh()          # rows another process committed, or it is short indeed
        if len(proba) != len(pool):
            raise ProjectError(f"{path} covers {len(proba)} spectra but the pool holds "
                               f"{len(pool)} (it changed since they were scored): {cure}")
        return proba

    def _scores_are_short(self) -> bool:
        """The current iteration has a model and scores, and the scores do not cover the pool
        (then `score` may run again whatever the next step)."""
        row = self.current_row()
        if not (row.get("model_path") and row.get("scores_path")):
            return False
        try:
            self._pool_scores(row["scores_path"], "")
        except ProjectError:
            return True
        return False

    def available_mask(self) -> np.ndarray:
        """Pool spectra not (yet) labelled by the oracle."""
        mask = np.ones(len(self.project.pool), dtype=bool)
        labelled = list(self.store.oracle_labels())
        if labelled:
            mask[np.array(labelled, dtype=np.int64)] = False
        return mask

    # -- query and precision sample -----------------------------------------------------------
    def query(self) -> dict:
        """Choose the oracle batch and the precision sample of the current iteration."""
        with self.project.writing(QUERY):
            self._require(QUERY)
            it = self.iteration
            m = self.method
            proba = np.asarray(self.probabilities())
            available = self.available_mask()
            rng = np.random.default_rng([m.seed, it])
            batch = run_query(m.strategy, proba, available, m.batch_size, rng)
            in_batch = np.zeros_like(available)
            in_batch[batch] = True
            predicted_target = np.isin(predicted_classes(proba), TARGET_CLASSES)
            sample = draw_precision_sample(predicted_target, available & ~in_batch,
                                           m.precision_sample, rng)
            self.store.update_iteration(it, query_json=[int(i) for i in batch],
                                        sample_json=[int(i) for i in sample])
            return {"iteration": it, "batch": batch, "sample": sample,
                    "predicted_targets": int(predicted_target[available].sum())}

    def batch_labels(self) -> list[BatchLabel]:
        """The current iteration's oracle batch, then its precision sample, each in the order
        the query drew it, with the label recorded for it (None: waiting); [] before the query."""
        row = self.current_row()
        if row.get("query_json") is None:
            return []
        oracle = self.store.oracle_labels()
        precision = self.store.precision_labels(row["iteration"])
        drawn = ([(i, QUERY_PURPOSE, oracle.get(i)) for i in row["query_json"]]
                 + [(i, PRECISION_PURPOSE, precision.get(i)) for i in row["sample_json"]])
        if not drawn:
            return []
        names = self.project.pool.metadata(np.array([i for i, _, _ in drawn]), ["name"])["name"]
        return [BatchLabel(int(i), str(n), purpose, None if label is None else int(label))
                for (i, purpose, label), n in zip(drawn, names)]

    def pending(self) -> list[BatchLabel]:
        """Spectra of the current iteration still waiting for a label, oracle batch first."""
        return [item for item in self.batch_labels() if item.label is None]

    def label(self, pool_index: int, label: int) -> BatchLabel:
        """Record the label of a spectrum waiting for one, durably (committed before this
        returns); returns it as it waited. ProjectError when it is not waiting (`relabel`
        changes a recorded one)."""
        _check_label(label)
        with self.project.writing(LABEL):
            item = next((p for p in self.pending() if p.pool_index == pool_index), None)
            if item is None:
                raise ProjectError(f"pool spectrum {pool_index} is not waiting for a label in "
                                   f"iteration {self.iteration + 1}")
            self._record(item, label)
            return item

    def relabel(self, pool_index: int, label: int) -> BatchLabel:
        """Record `label` for any spectrum of the current batch or sample, labelled or waiting,
        durably (one committed transaction, replacing the label it had); returns it with the
        new label. ProjectError when the labels are locked (`labels_locked`, the reason
        given) or the spectrum is not in the current iteration's batch or sample."""
        _check_label(label)
        with self.project.writing(LABEL):
            locked = self.labels_locked()
            if locked is not None:
                raise ProjectError(f"{self.project.folder}: {locked}")
            item = next((b for b in self.batch_labels() if b.pool_index == pool_index), None)
            if item is None:
                raise ProjectError(f"pool spectrum {pool_index} is not in the oracle batch or "
                                   f"the precision sample of iteration {self.iteration + 1}")
            self._record(item, label)
            return replace(item, label=int(label))

    def _record(self, item: BatchLabel, label: int) -> None:
        """Under the lock: store `label` for `item`, as the iteration's most recent label (the
        one `undo_label` removes first)."""
        if item.purpose == QUERY_PURPOSE:
            self.store.add_oracle_label(item.pool_index, item.name, label, self.iteration)
        else:
            self.store.add_precision_label(self.iteration, item.pool_index, item.name, label)

    def undo_label(self) -> tuple | None:
        """Remove the most recent label of the current iteration: (kind, pool_index, label),
        or None when there is none; its spectrum waits for a label again (after a `relabel`,
        the label it replaced is not restored). ProjectError when its labels are locked
        (`labels_locked`)."""
        with self.project.writing(LABEL):
            locked = self.labels_locked()
            if locked is not None:
                raise ProjectError(f"{self.project.folder}: {locked}")
            return self.store.remove_last_label(self.iteration)

    def labels_locked(self) -> str | None:
        """Why the current iteration's labels can no longer change, or None: a finished project
        (its final model and candidates were made from them) or a recorded precision estimate
        (a changed label would no longer match the estimate stored with it)."""
        if self.store.final_record() is not None:
            return ("the project is finished: its labels are locked (the final model and "
                    "candidates were made from them)")
        rows = self.store.iterations()
        if rows and rows[-1].get("estimate_json") is not None:
            return (f"iteration {rows[-1]['iteration'] + 1}'s precision estimate is recorded: "
                    "its labels are locked (a changed label would no longer match it)")
        return None

    # -- precision estimate and stop rule -----------------------------------------------------
    def estimate(self) -> PrecisionEstimate:
        with self.project.writing(ESTIMATE):
            self._require(ESTIMATE)
            row = self.current_row()
            labels = self.store.precision_labels(row["iteration"])
            tp = sum(1 for v in labels.values() if v in TARGET_CLASSES)
            est = estimate_precision(tp, len(labels), self.method.confidence)
            oracle = self.store.oracle_labels()
            found = sum(1 for i in row["query_json"] if oracle.get(i) in TARGET_CLASSES)
            self.store.update_iteration(row["iteration"], estimate_json={
                **est.as_dict(), "oracle_targets": found,
                "oracle_batch": len(row["query_json"])})
            return est

    def estimates(self) -> list[dict]:
        return [dict(r["estimate_json"], iteration=r["iteration"])
                for r in self.store.iterations() if r.get("estimate_json")]

    def threshold_hits(self) -> int:
        return sum(1 for e in self.estimates() if e["sample_size"] > 0
                   and e["precision"] >= self.method.precision_threshold)

    def stop_rule_met(self) -> bool:
        return self.threshold_hits() >= self.method.threshold_hits

    # -- after the active phase -----------------------------------------------------------------
    def finish(self, cancel: CancelToken | None = None,
               scheduler: str | None = None) -> Job[dict]:
        """Long training from the last model on all labels, final scoring, candidates: one unit.

        The long work writes the model, the scores and the candidates under temporary names;
        then the recorded finish (of an earlier run) is forgotten, the three files are renamed
        to models/final.keras, scores/final.npy and candidates.csv, and the store commits the
        new record, LAST. Readers use the final files only while the store has that record, so
        a finish killed at any moment leaves the project as it was before the finish (the next
        step is again finish or train; the candidates come from the latest iteration's scores);
        a temporary it left is removed by the next step. Cancel (between epochs and chunks)
        changes nothing. `scheduler`: where the final scoring runs, as for `score`.
        """
        from vo_al.core.session.candidates import write_candidates
        from vo_al.core.learning.model import load_model, save_model, train

        with self.project.writing(FINISH):
            step = self.next_step()
            if step not in (FINISH, TRAIN, DONE):
                raise ProjectError(f"{self.project.folder}: next step is '{step}': label and "
                                   f"estimate the current iteration first")
            self._remove_stale_temporaries()
            m = self.method
            row = self.last_trained()
            x, y = self.training_data()
            xb, yb = smote_balance(x, y, seed=m.seed + 1000)
            model = load_model(self.project.folder / row["model_path"])
            report = yield from train(model, xb, yb, batch_size=m.train_batch,
                                      patience=m.long_patience, min_delta=m.long_min_delta,
                                      max_epochs=m.long_max_epochs, seed=m.seed + 1000,
                                      cancel=cancel, stage="long-train")
            folder = self.project.folder
            final = {"model_path": FINAL_MODEL, "scores_path": FINAL_SCORES,
                     "candidates_path": CANDIDATES}
            temporary = {key: temporary_sibling(folder / rel, "partial")
                         for key, rel in final.items()}
            try:
                save_model(model, temporary["model_path"])
                yield from self._score_with(temporary["model_path"], temporary["scores_path"],
                                            cancel, scheduler, model)
                proba = open_npy(temporary["scores_path"])
                write_candidates(self, proba, temporary["candidates_path"])
                if cancel is not None:
                    cancel.raise_if_cancelled("finish")       # the last moment it changes nothing
                # the commit: from here to the record, readers see no finish at all
                self.store.clear_final()
                for key, rel in final.items():
                    os.replace(temporary[key], folder / rel)
                for where in {(folder / rel).parent for rel in final.values()}:
                    fsync_dir(where)
                self.store.commit_final({
                    **final, "long_training": {"epochs": report.epochs,
                                               "best_loss": report.best_loss},
                    "iteration": int(row["iteration"]), "pool_rows": int(len(proba)),
                    "finished": time.time()})
            finally:
                for path in temporary.values():
                    remove_quietly(path)
            return {"candidates": str(folder / CANDIDATES), "epochs": report.epochs}

    def last_trained(self) -> dict:
        """The store's row of the latest iteration that trained a model."""
        for row in reversed(self.store.iterations()):
            if row.get("model_path"):
                return row
        raise ProjectError(f"{self.project.folder}: no model trained yet")

    def latest_probabilities(self) -> np.ndarray:
        """The scores the candidates come from (see `latest_scores`)."""
        return self.latest_scores()[0]

    def latest_scores(self) -> tuple[np.ndarray, str]:
        """(probabilities, which): the final scores once the finish has committed ('final'),
        else the latest iteration's ('iteration N'); checked to cover the pool (ProjectError
        saying what to run again when they do not)."""
        source = self.latest_scores_source()
        return self.scores_of(source), source["scores"]

    def scores_of(self, source: dict) -> np.ndarray:
        """The probabilities a `latest_scores_source` names, checked to cover the pool."""
        again = FINISH_AGAIN if source["scores"] == "final" else SCORE_AGAIN
        return self._pool_scores(source["scores_file"], again)

    def latest_scores_source(self) -> dict:
        """Where the latest scores come from: {'scores': 'final' | 'iteration N', 'scores_file',
        'model' (the model file that made them, project-relative), 'iteration'}. The model is
        the one of the scores' own iteration, never a newer model not yet scored."""
        final = self.store.final_record()
        if final is not None:
            return {"scores": "final", "scores_file": final.get("scores_path", FINAL_SCORES),
                    "model": str(final.get("model_path", "")),
                    "iteration": int(final.get("iteration", self.iteration))}
        for row in reversed(self.store.iterations()):
            if row.get("scores_path"):
                return {"scores": f"iteration {row['iteration']}",
                        "scores_file": row["scores_path"],
                        "model": str(row.get("model_path") or ""),
                        "iteration": int(row["iteration"])}
        raise ProjectError(f"{self.project.folder}: the pool has not been scored yet")

    # -- summary ---------------------------------------------------------------------------------
    def status(self) -> dict:
        rows = self.store.iterations()
        return {
            "project": str(self.project.folder),
            "pool_size": len(self.project.pool),
            "iteration": self.iteration,
            "next_step": self.next_step(),
            "oracle_labels": len(self.store.oracle_labels()),
            "pending": len(self.pending()),
            "threshold_hits": self.threshold_hits(),
            "iterations": [{"iteration": r["iteration"], "n_train": r["n_train"],
                            "estimate": r["estimate_json"]} for r in rows],
        }
