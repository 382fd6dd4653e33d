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


def test_a_precision_label_is_not_training_data_but_a_verdict_the_candidates_keep(project):
    """A spectrum a person called non-target in a precision sample stays out of training (the
    method) and is never listed as a candidate (it is in the rejected table, origin
    'precision'); one called a target there is a candidate with that origin."""
    from vo_al.core.session.candidates import session_candidates

    p, truth = project
    s = ActiveLearningSession(p)
    run_job(s.train())
    run_job(s.score())
    q = s.query()
    if len(q["sample"]) < 2:
        pytest.skip("the tiny model predicted fewer than 2 targets: no sample to label")
    for index in q["batch"]:
        s.label(int(index), int(truth[index]))
    rejected_index, kept_index = int(q["sample"][0]), int(q["sample"][1])
    s.label(rejected_index, 0)                 # a predicted target the person rejects
    s.label(kept_index, 2)
    for index in q["sample"][2:]:
        s.label(int(index), int(truth[index]))
    found = session_candidates(s)
    candidates = dict(zip(found.candidates["pool_index"].tolist(), found.candidates["origin"]))
    assert rejected_index not in candidates
    assert candidates[kept_index] == "precision"
    rejected = dict(zip(found.rejected["pool_index"].tolist(), found.rejected["origin"]))
    assert rejected[rejected_index] == "precision"
    assert found.provenance["n_precision_labels"] == len(q["sample"])
    s.estimate()
    x, y = s.training_data()                    # oracle labels only join training
    assert len(y) == 300 + len(q["batch"])
    # the estimate is recorded: its labels are locked (Backspace must not change them)
    with pytest.raises(ProjectError, match="locked"):
        s.undo_label()
    assert len(s.store.precision_labels(s.iteration)) == len(q["sample"])
    # provenance is exact: a newer model trained but not yet scored is not the scores' model
    scored_model = s.current_row()["model_path"]
    run_job(s.train())
    found = session_candidates(s)
    import hashlib
    assert found.provenance["scores"] == "iteration 0"
    assert found.provenance["model"] == scored_model != s.current_row()["model_path"]
    assert found.provenance["model_sha256"] == hashlib.sha256(
        (p.folder / scored_model).read_bytes()).hexdigest()
    assert found.provenance["scores_file"] == "scores/iter-000.npy"
    assert found.provenance["vo_al_version"] and '"method"' in found.provenance["settings"]


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
    with pytest.raises(ProjectError, match="finished: its labels are locked"):
        s.undo_label()
    proba = np.load(p.folder / "scores/final.npy")
    oracle = p.store.oracle_labels()
    reviewed = p.store.reviewed_labels()            # precision-sample verdicts count too
    table = candidate_table(p.pool, proba, oracle, reviewed)
    person = {**reviewed, **oracle}
    expected = set(np.flatnonzero(np.isin(proba.argmax(1), [1, 2]))) - set(person)
    expected |= {i for i, v in person.items() if v in (1, 2)}
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
    from vo_al.cli import main
    from vo_al.core.demo import make_pool

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


def _queried(project):
    """The fixture's session trained, scored and queried: spectra wait for labels."""
    p, truth = project
    s = ActiveLearningSession(p)
    run_job(s.train())
    run_job(s.score())
    s.query()
    return s, truth


def test_pending_labels_csv_lists_what_waits_with_the_probabilities(project, tmp_path):
    """`vo-al query`'s CSV is a core call: the pending spectra in order, with the model's
    class probabilities; a refusal writes nothing, a file that cannot be written is named."""
    import csv
    import io

    from vo_al.core.base.errors import ParameterError
    from vo_al.core.session.labels import PENDING_COLUMNS, write_pending_csv

    p, _ = project
    out = tmp_path / "pending.csv"
    with pytest.raises(ProjectError, match="not scored"):
        write_pending_csv(ActiveLearningSession(p), out)
    assert not out.exists()

    s, _ = _queried(project)
    pending = write_pending_csv(s, out)
    assert pending == s.pending() and len(pending) > 20
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == PENDING_COLUMNS
    assert [(int(r["pool_index"]), r["name"], r["purpose"]) for r in rows] == \
        [(i.pool_index, i.name, i.purpose) for i in pending]
    proba = np.asarray(s.probabilities())
    got = np.array([[float(r[c]) for c in PENDING_COLUMNS[3:]] for r in rows])
    np.testing.assert_allclose(got, proba[[i.pool_index for i in pending]], atol=5e-5)
    stream = io.StringIO()
    write_pending_csv(s, stream)
    assert stream.getvalue() == out.read_bytes().decode()        # the same rows to a stream

    with pytest.raises(ParameterError, match="pending labels file.*no-such-folder"):
        write_pending_csv(s, tmp_path / "no-such-folder" / "pending.csv")


def test_label_csv_records_the_pending_spectra_it_names(project, tmp_path):
    """`vo-al label`'s matching is a core call: names match as spectrum_key does, each row comes
    back after its label is committed, unknown names record nothing, a bad file records nothing."""
    from vo_al.core.base.errors import ParameterError
    from vo_al.core.session.labels import apply_label_csv

    s, truth = _queried(project)
    pending = s.pending()
    first, second, third = pending[:3]

    bad = tmp_path / "bad.csv"
    bad.write_text(f"name,label\n{first.name},1\n{second.name},maybe\n")
    with pytest.raises(ParameterError, match=r"bad\.csv, line 3: label='maybe': not a class"):
        list(apply_label_csv(s, bad))
    assert s.pending() == pending                             # checked before anything is recorded
    with pytest.raises(ParameterError, match="labels file.*missing.csv"):
        list(apply_label_csv(s, tmp_path / "missing.csv"))

    good = tmp_path / "labels.csv"
    good.write_text("name,label\n"
                    f"{first.name}.fits,{int(truth[first.pool_index])}\n"
                    "nobody-waits-for-me,1\n"
                    f"ivo://example/pool/{second.name},double\n")
    rows = []
    for row in apply_label_csv(s, good):
        # each row comes back only once its label is stored
        assert (row.item is None) or row.item not in s.pending()
        rows.append((row.name, row.label, row.item))
    assert rows == [(f"{first.name}.fits", int(truth[first.pool_index]), first),
                    ("nobody-waits-for-me", 1, None),
                    (f"ivo://example/pool/{second.name}", 2, second)]
    assert s.pending() == [i for i in pending if i not in (first, second)]
    assert third in s.pending()

    clash = tmp_path / "clash.csv"
    clash.write_text(f"name,label\n{third.name},0\n{third.name},2\n")
    with pytest.raises(ParameterError, match=r"clash\.csv, line 3: .*conflicts with line 2"):
        list(apply_label_csv(s, clash))
    assert third in s.pending()                               # two classes: nothing recorded
    again = tmp_path / "again.csv"
    again.write_text(f"name,label\n{third.name},0\n{third.name},0\n")
    assert [row.item for row in apply_label_csv(s, again)] == [third]   # the same class: once
    assert third not in s.pending()


def test_a_cancelled_finish_changes_nothing_and_leaves_nothing(project):
    """Cancel during the final scoring: no final file appears, the temporaries are removed, the
    session is where it was and the project lock is free again."""
    p, truth = project
    s = ActiveLearningSession(p)
    run_job(s.train()); run_job(s.score()); s.query()
    for item in s.pending():
        s.label(item.pool_index, int(truth[item.pool_index]))
    s.estimate()
    before = s.next_step()
    token = CancelToken()

    def cancel_while_scoring(step):
        if step.stage == "score":
            token.cancel()

    with pytest.raises(Cancelled):
        run_job(s.finish(cancel=token), cancel_while_scoring)
    assert s.next_step() == before and p.store.get_final("candidates_path") is None
    for rel in ("models/final.keras", "scores/final.npy", "candidates.csv"):
        assert not (p.folder / rel).exists(), rel
    hidden = [q for where in (p.folder, p.folder / "models", p.folder / "scores")
              for q in where.glob(".*")]
    assert hidden == []
    with p.writing("estimate"):             # the cancelled finish let go of the lock
        pass
