"""A real kill -9 at any moment: of the labelling process, it loses no acknowledged label; of the
finish, it leaves the project as before the finish (the finish counts only once committed)."""

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


# -- the finish is one unit ------------------------------------------------------------------------
# A `vo-al finish` child that kills itself with SIGKILL at one exact moment: just after a chosen
# file was renamed into place, or as the final scoring starts (its temporaries half-written).
KILLED_FINISH = r"""
import os, signal, sys
folder, moment = sys.argv[1], sys.argv[2]
def die():
    os.kill(os.getpid(), signal.SIGKILL)
if moment == "scoring":
    import vo_al.core.learning.model as model
    model.predict_proba = lambda *args, **kwargs: die()
else:
    target, replace = os.path.join(folder, moment), os.replace
    def replace_then_die(src, dst, *args, **kwargs):
        replace(src, dst, *args, **kwargs)
        if os.path.abspath(os.fspath(dst)) == target:
            die()
    os.replace = replace_then_die
from vo_al.cli import main
sys.exit(main(["finish", folder]))
"""


def _killed_finish(folder, moment):
    proc = subprocess.run([sys.executable, "-c", KILLED_FINISH, str(folder), moment],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          timeout=600)
    assert proc.returncode == -signal.SIGKILL, (moment, proc.returncode, proc.stderr[-2000:])


def _complete_iteration(s, truth):
    run_job(s.train()); run_job(s.score()); s.query()
    for item in s.pending():
        s.label(item.pool_index, int(truth[item.pool_index]))
    s.estimate()


def _temporaries(folder):
    """Hidden files a step writes before a rename (the project folder has no others)."""
    return sorted(str(p.relative_to(folder)) for where in (folder, folder / "models",
                                                           folder / "scores")
                  for p in where.glob(".*"))


def _assert_not_finished(folder, iteration, tmp_path):
    """The project is as before the finish: not done, candidates and export from the
    iteration's scores and saying so."""
    from astropy.table import Table

    from vo_al.cli import main
    from vo_al.core.session.candidates import session_candidates

    p = Project.open(folder)
    try:
        s = ActiveLearningSession(p)
        assert s.next_step() in ("train", "finish")
        assert p.store.get_final("candidates_path") is None
        found = session_candidates(s)
        assert found.provenance["scores"] == f"iteration {iteration}"
        np.testing.assert_array_equal(
            np.asarray(s.latest_probabilities()),
            np.load(folder / "scores" / f"iter-{iteration:03d}.npy"))
    finally:
        p.close()
    out = tmp_path / f"export-{iteration}.ecsv"
    assert main(["export", str(folder), "--out", str(out)]) == 0
    meta = Table.read(out).meta
    assert (meta["iteration"], meta["scores"]) == (iteration, f"iteration {iteration}")


def test_a_finish_killed_at_its_worst_moments_is_as_if_never_run(tmp_path):
    """kill -9 of `vo-al finish` while its scores are half-written, and just after
    scores/final.npy is in place (candidates.csv not yet): each time the project is as before
    the finish. Later iterations are not shadowed by the leftovers; the next finish commits and
    leaves no temporary. A re-finish killed once every file is in place but before the store
    recorded it falls back to the iterations (a mix of two finishes is never used)."""
    from vo_al.core.session.candidates import candidate_table, session_candidates

    p = Project.create(tmp_path / "proj", tmp_path / "proj" / "pool", tiny_settings())
    truth = fill_project(p, n_train=150, n_pool=800, seed=2)
    folder = p.folder
    s = ActiveLearningSession(p)
    _complete_iteration(s, truth)
    p.close()

    for moment in ("scoring", "scores/final.npy"):
        _killed_finish(folder, moment)
        _assert_not_finished(folder, 0, tmp_path)

    p = Project.open(folder)
    s = ActiveLearningSession(p)
    _complete_iteration(s, truth)                    # iteration 1, after the killed finishes
    p.close()
    _assert_not_finished(folder, 1, tmp_path)

    p = Project.open(folder)
    try:
        s = ActiveLearningSession(p)
        run_job(s.finish())
        assert s.next_step() == "done"
        record = p.store.final_record()
        assert record["iteration"] == 1 and record["pool_rows"] == len(p.pool)
        found = session_candidates(s)
        assert found.provenance["scores"] == "final"
        proba = np.load(folder / "scores" / "final.npy")
        expected = candidate_table(p.pool, proba, p.store.oracle_labels(),
                                   p.store.reviewed_labels())
        np.testing.assert_array_equal(found.candidates["pool_index"], expected["pool_index"])
        with open(folder / "candidates.csv", newline="") as fh:
            written = [int(r["pool_index"]) for r in csv.DictReader(fh)]
        assert written == list(expected["pool_index"])
        assert _temporaries(folder) == []
    finally:
        p.close()

    _killed_finish(folder, "candidates.csv")         # a re-finish, killed mid-commit
    _assert_not_finished(folder, 1, tmp_path)
