"""The active-learning session on a small in-memory project, through the real model."""

import numpy as np
import pytest

from vo_al.core.session.candidates import candidate_table
from vo_al.core.base.errors import Cancelled, ProjectError
from vo_al.core.base.progress import CancelToken, run_job
from vo_al.core.session.project import Project
from vo_al.core.session.loop import ActiveLearningSession
from vo_al.core.learning.strategies import entropy_score

from session_fixtures import fill_project, tiny_settings


@pytest.fixture
def project(tmp_path):
    p = Project.create(tmp_path / "proj", tmp_path / "proj" / "pool", tiny_settings())
    truth = fill_project(p)
    yield p, truth
    p.close()


def test_one_iteration_keeps_the_rules_of_the_method(project):
    p, truth = project
    s = ActiveLearningSession(p)
    assert s.next_step() == "train"
    summary = run_job(s.train())
    assert summary["n_labelled"] == 300 and summary["n_balanced"] == 3 * max(summary["class_counts"])
    assert s.next_step() == "score"
    steps = []
    run_job(s.score(), steps.append)
    assert steps[-1].done == steps[-1].total == 2000
    proba = np.asarray(s.probabilities())
    assert proba.shape == (2000, 3) and np.allclose(proba.sum(axis=1), 1, atol=1e-4)

    q = s.query()
    batch, sample = q["batch"], q["sample"]
    assert len(batch) == 20
    h = entropy_score(proba)
    assert h[batch].min() >= np.sort(h)[-20] - 1e-6          # the 20 most uncertain
    predicted = proba.argmax(axis=1)
    assert np.isin(predicted[sample], [1, 2]).all()         # precision sample: predicted targets
    assert not set(sample) & set(batch)

    pending = s.pending()
    assert [p_.purpose for p_ in pending] == ["query"] * 20 + ["precision"] * len(sample)
    with pytest.raises(ProjectError, match="not waiting for a label"):
        s.label(int(np.setdiff1d(np.arange(2000), np.r_[batch, sample])[0]), 1)
    for item in pending:
        s.label(item.pool_index, int(truth[item.pool_index]))
    assert s.undo_label()[0] == "precision"
    last = pending[-1]
    s.label(last.pool_index, int(truth[last.pool_index]))

    est = s.estimate()
    expected_tp = int(np.isin(truth[sample], [1, 2]).sum())
    assert (est.true_positives, est.sample_size) == (expected_tp, len(sample))
    assert est.lower_bound <= est.precision

    # oracle labels leave the pool and join training; precision labels do neither
    available = s.available_mask()
    assert not available[batch].any() and available[sample].all()
    x, y = s.training_data()
    assert len(y) == 320
    np.testing.assert_array_equal(y[300:], truth[np.sort(batch)])
    assert s.next_step() == "train"
    run_job(s.train())
    assert s.iteration == 1 and s.current_row()["n_train"] == 320


def test_stop_rule_long_training_and_candidates(tmp_path):
    p = Project.create(tmp_path / "p", tmp_path / "p" / "pool",
                       tiny_settings(precision_threshold=0.01, threshold_hits=1, long_patience=1))
    truth = fill_project(p, seed=1)
    s = ActiveLearningSession(p)
    run_job(s.train()); run_job(s.score()); s.query()
    for item in s.pending():
        s.label(item.pool_index, int(truth[item.pool_index]))
    est = s.estimate()
    if est.sample_size == 0 or est.precision < 0.01:
        pytest.skip("the tiny model predicted no true target; stop rule not exercised")
    assert s.next_step() == "finish"
    run_job(s.finish())
    assert s.next_step() == "done"
    proba = np.load(p.folder / "scores/final.npy")
    oracle = p.store.oracle_labels()
    table = candidate_table(p.pool, proba, oracle)
    expected = set(np.flatnonzero(np.isin(proba.argmax(1), [1, 2]))) - set(oracle)
    expected |= {i for i, v in oracle.items() if v in (1, 2)}
    assert set(table["pool_index"]) == expected
    text = (p.folder / "candidates.csv").read_text().splitlines()
    assert len(text) == len(expected) + 1 and text[0].startswith("pool_index,name")


def test_training_can_be_cancelled_between_epochs(project):
    p, _ = project
    p.settings.method.max_epochs = 50
    s = ActiveLearningSession(p)
    token = CancelToken()
    seen = []

    def cancel_after_first(step):
        seen.append(step)
        if step.stage == "train":
            token.cancel()

    with pytest.raises(Cancelled):
        run_job(s.train(cancel=token), cancel_after_first)
    assert sum(1 for st in seen if st.stage == "train") == 1
    assert s.next_step() == "train"            # nothing half-written


def test_steps_out_of_order_are_refused(project):
    p, _ = project
    s = ActiveLearningSession(p)
    with pytest.raises(ProjectError, match="next step is 'train'"):
        s.query()
    with pytest.raises(ProjectError, match="next step is 'train'"):
        run_job(s.score())


def test_the_pool_grows_only_between_iterations(project, tmp_path, capsys):
    """Scores cover the pool as it was when scored: `vo-al ingest` refuses to add spectra
    mid-iteration (the app's Data sources tab asks the same question)."""
    from vo_al.cli.main import main
    from vo_al.core.demo.synthetic import make_pool

    project, _ = project
    session = ActiveLearningSession(project)
    assert session.why_pool_is_fixed() is None              # before the first training
    run_job(session.train())
    reason = session.why_pool_is_fixed()
    assert "'score'" in reason
    files = tmp_path / "more"
    make_pool(files, 5, seed=3)
    n = len(project.pool)
    assert main(["ingest", str(project.folder), str(files)]) == 2
    assert "between iterations" in capsys.readouterr().err
    project.pool.refresh()
    assert len(project.pool) == n
