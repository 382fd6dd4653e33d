"""Killing the labelling process at any moment loses no acknowledged label (a real kill -9)."""

import csv
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from vo_al.core.base.progress import run_job
from vo_al.core.session.project import Project
from vo_al.core.session.loop import ActiveLearningSession

from session_fixtures import fill_project, tiny_settings


@pytest.fixture
def labelling_project(tmp_path):
    p = Project.create(tmp_path / "proj", tmp_path / "proj" / "pool",
                       tiny_settings(batch_size=60, precision_sample=30))
    truth = fill_project(p, seed=5)
    s = ActiveLearningSession(p)
    run_job(s.train()); run_job(s.score()); s.query()
    pending = s.pending()
    labels_csv = tmp_path / "labels.csv"
    with open(labels_csv, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "label"])
        for item in pending:
            w.writerow([item.name, int(truth[item.pool_index])])
    p.close()
    return tmp_path / "proj", labels_csv, {i.name: int(truth[i.pool_index]) for i in pending}


def _label_process(project, labels_csv):
    return subprocess.Popen([sys.executable, "-m", "vo_al.cli", "label", str(project),
                             "--csv", str(labels_csv)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))


def _recorded(project):
    p = Project.open(project)
    try:
        s = ActiveLearningSession(p)
        names = {}
        rows = p.store.oracle_label_rows()
        for index, name, label, _ in rows:
            names[name] = label
        it = s.iteration
        precision = p.store.precision_labels(it)
        meta = p.pool.metadata(np.array(sorted(precision), dtype=np.int64), ["name"])["name"]
        for index, name in zip(sorted(precision), meta):
            names[str(name)] = precision[index]
        return names, len(s.pending())
    finally:
        p.close()


def test_kill_during_labelling_loses_no_acknowledged_label(labelling_project):
    project, labels_csv, expected = labelling_project
    acknowledged = {}
    rng = np.random.default_rng(0)
    for round_ in range(6):
        proc = _label_process(project, labels_csv)
        stop_after = int(rng.integers(1, 15))
        seen = 0
        for line in proc.stdout:
            if line.startswith("ack "):
                _, name, label, _purpose = line.split()
                acknowledged[name] = int(label)
                seen += 1
                if seen >= stop_after:
                    proc.send_signal(signal.SIGKILL)
                    break
        proc.wait(60)
        recorded, pending = _recorded(project)
        for name, label in acknowledged.items():
            assert recorded.get(name) == label, f"acknowledged label of {name} lost (round {round_})"
        assert set(recorded) <= set(expected)
        if pending == 0:
            break
    # finish the batch: every spectrum labelled exactly once, with the label the oracle gave
    proc = _label_process(project, labels_csv)
    proc.communicate(timeout=120)
    recorded, pending = _recorded(project)
    assert pending == 0
    assert recorded == expected
