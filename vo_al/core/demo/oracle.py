"""A simulated oracle: answers with the true labels of synthetic (or fully labelled) data."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from vo_al.core.base.errors import ProjectError
from vo_al.core.session.labels import spectrum_key


class SimulatedOracle:
    """True class of every pool spectrum, from a `truth.csv` (name,label[,kind])."""

    def __init__(self, truth_csv: Path, pool):
        truth_csv = Path(truth_csv)
        truth, kinds = {}, {}
        with open(truth_csv, newline="") as fh:
            for row in csv.DictReader(fh):
                key = spectrum_key(row["name"])
                truth[key] = int(row["label"])
                kinds[key] = row.get("kind", "")
        names = pool.metadata(columns=["name"])["name"]
        keys = [spectrum_key(n) for n in names]
        missing = [n for n, k in zip(names, keys) if k not in truth]
        if missing:
            raise ProjectError(f"{truth_csv}: no true label for {len(missing)} pool spectra, "
                               f"e.g. {missing[:3]}")
        self.labels = np.array([truth[k] for k in keys], dtype=np.int64)
        self.kinds = np.array([kinds[k] for k in keys], dtype=object)

    def __call__(self, pool_index: int) -> int:
        return int(self.labels[pool_index])
