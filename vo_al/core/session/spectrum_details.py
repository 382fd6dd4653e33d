"""What a person sees of one pool spectrum beside its pixels: the metadata the pool keeps for it,
the class probabilities of the scores the candidates come from, and the label a person gave it.

The app's spectrum window shows this for a row of any table (candidates, cross-match); the
spectrum itself is read from `source` off the GUI thread (`vo.prefetch.SpectrumPrefetcher`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vo_al.core.base.errors import ProjectError
from vo_al.core.learning.classes import CLASS_NAMES
from vo_al.core.pool.schema import RECORD_FIELDS
from vo_al.core.session.candidates import person_labels


@dataclass(frozen=True)
class SpectrumDetails:
    pool_index: int
    meta: dict                      # the pool's record: SpectrumMeta's fields and the instrument
    probabilities: tuple | None     # p of each class (CLASS_NAMES' order); None: not scored
    scores: str                     # whose they are, as a person reads it; '' when not scored
    label: int | None               # the class a person gave it, if one did
    label_origin: str               # 'oracle' or 'precision' (an oracle label wins); '' if none

    @property
    def name(self) -> str:
        return str(self.meta["name"])

    @property
    def source(self) -> str:
        return str(self.meta["source"])

    @property
    def label_name(self) -> str:
        return CLASS_NAMES[self.label] if self.label is not None else ""


def spectrum_details(session, pool_index: int) -> SpectrumDetails:
    """The details of pool row `pool_index` (PoolError naming it when the pool has no such row).
    The probabilities are those of `latest_scores` (the final model's once the finish has
    committed), the label the one `session_candidates` uses."""
    pool_index = int(pool_index)
    columns = list(RECORD_FIELDS)
    row = session.project.pool.metadata(np.array([pool_index]), columns)
    meta = {c: row[c][0].item() for c in columns}
    try:
        source = session.latest_scores_source()
        proba = session.scores_of(source)
    except ProjectError:                # not scored yet, or the scores no longer cover the pool
        probabilities, scores = None, ""
    else:
        probabilities = tuple(float(p) for p in np.asarray(proba[pool_index], np.float64))
        scores = ("the final model" if source["scores"] == "final"
                  else f"iteration {source['iteration'] + 1}")
    store = session.store
    label, origin = person_labels(store.oracle_labels(), store.reviewed_labels()).get(
        pool_index, (None, ""))
    return SpectrumDetails(pool_index, meta, probabilities, scores, label, origin)
