"""The reviewable label list of an iteration (issue 14): `batch_labels` shows the whole batch and
sample with the label recorded for each, `relabel` changes any of them durably until the labels
lock, and `vo-al label --list` prints it. Core and command line only (no Qt)."""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pytest

from session_fixtures import fill_project, tiny_settings
from vo_al.cli.commands import main
from vo_al.core.base.errors import ParameterError, ProjectError
from vo_al.core.base.progress import run_job
from vo_al.core.session.loop import PRECISION_PURPOSE, QUERY_PURPOSE, ActiveLearningSession
from vo_al.core.session.project import Project


@pytest.fixture(scope="module")
def queried(tmp_path_factory):
    """A project trained, scored and queried once (a batch of 10 and a precision sample)."""
    folder = tmp_path_factory.mktemp("label-list") / "queried"
    project = Project.create(folder, folder / "pool",
                             tiny_settings(batch_size=10, precision_sample=5, max_epochs=1))
    try:
        truth = fill_project(project, n_train=120, n_pool=400)
        s = ActiveLearningSession(project)
        run_job(s.train())
        run_job(s.score())
        s.query()
        assert any(p.purpose == PRECISION_PURPOSE for p in s.pending())
    finally:
        project.close()
    return folder, truth


@pytest.fixture
def session(queried, tmp_path):
    template, truth = queried
    folder = tmp_path / "proj"
    shutil.copytree(template, folder)
    project = Project.open(folder)
    yield ActiveLearningSession(project), truth
    project.close()


def stored_label(folder, table: str, pool_index: int):
    """The label in the session database as another connection reads it (committed only)."""
    db = sqlite3.connect(folder / "session.sqlite")
    try:
        row = db.execute(f"SELECT label FROM {table} WHERE pool_index=?", (pool_index,)).fetchone()
    finally:
        db.close()
    return None if row is None else row[0]


def test_the_list_is_the_batch_then_the_sample_in_their_order_with_their_labels(session):
    s, truth = session
    row = s.current_row()
    items = s.batch_labels()
    assert [b.pool_index for b in items] == row["query_json"] + row["sample_json"]
    assert [b.purpose for b in items] == ([QUERY_PURPOSE] * len(row["query_json"])
                                          + [PRECISION_PURPOSE] * len(row["sample_json"]))
    names = s.project.pool.metadata(np.array([b.pool_index for b in items]), ["name"])["name"]
    assert [b.name for b in items] == [str(n) for n in names]
    assert all(b.label is None for b in items) and s.pending() == items

    first, last = items[0], items[-1]
    s.label(first.pool_index, 2)
    s.label(last.pool_index, 0)
    again = s.batch_labels()
    assert [b.pool_index for b in again] == [b.pool_index for b in items]    # nothing moves
    assert again[0].label == 2 and again[-1].label == 0
    assert all(b.label is None for b in again[1:-1])
    assert s.pending() == again[1:-1]


def test_relabel_changes_an_earlier_label_durably_and_training_uses_it(session):
    s, truth = session
    items = s.batch_labels()
    oracle_item = items[0]
    precision_item = next(b for b in items if b.purpose == PRECISION_PURPOSE)
    for b in items[:3]:
        s.label(b.pool_index, 0)
    s.label(precision_item.pool_index, 1)

    changed = s.relabel(oracle_item.pool_index, 2)      # an earlier label, not the last one
    assert (changed.pool_index, changed.purpose, changed.label) == (oracle_item.pool_index,
                                                                    QUERY_PURPOSE, 2)
    folder = s.project.folder
    assert stored_label(folder, "oracle_labels", oracle_item.pool_index) == 2   # committed
    assert s.batch_labels()[0].label == 2
    x, y = s.training_data()
    x0, _ = s.project.training_arrays()
    oracle = s.store.oracle_labels()
    index = sorted(oracle)
    assert list(y[len(x0):]) == [oracle[i] for i in index]
    assert y[len(x0) + index.index(oracle_item.pool_index)] == 2
    assert np.array_equal(x[len(x0) + index.index(oracle_item.pool_index)],
                          s.project.pool.rows(np.array([oracle_item.pool_index]))[0])

    s.relabel(precision_item.pool_index, 0)             # a precision verdict: not training data
    assert stored_label(folder, "precision_labels", precision_item.pool_index) == 0
    assert s.store.precision_labels(s.iteration)[precision_item.pool_index] == 0
    assert precision_item.pool_index not in s.store.oracle_labels()
    assert len(s.training_data()[1]) == len(y)

    waiting = s.pending()[0]                            # one still waiting: relabel labels it
    s.relabel(waiting.pool_index, 1)
    assert waiting.pool_index not in [p.pool_index for p in s.pending()]


def test_undo_after_a_relabel_removes_that_label(session):
    s, _ = session
    a, b = s.batch_labels()[:2]
    s.label(a.pool_index, 1)
    s.label(b.pool_index, 1)
    s.relabel(a.pool_index, 2)                          # now the most recent label
    assert s.undo_label() == ("oracle", a.pool_index, 2)
    assert a.pool_index not in s.store.oracle_labels()
    assert s.store.oracle_labels()[b.pool_index] == 1


def test_relabel_refuses_what_is_not_in_the_iteration_and_bad_labels(session):
    s, _ = session
    drawn = {b.pool_index for b in s.batch_labels()}
    outside = next(i for i in range(len(s.project.pool)) if i not in drawn)
    with pytest.raises(ProjectError, match=f"pool spectrum {outside} is not in the oracle batch"):
        s.relabel(outside, 1)
    with pytest.raises(ParameterError, match="label"):
        s.relabel(next(iter(drawn)), 3)
    assert s.store.oracle_labels() == {} and s.store.precision_labels(s.iteration) == {}


def test_after_the_estimate_relabel_is_refused_with_the_reason(session):
    s, truth = session
    for item in s.pending():
        s.label(item.pool_index, int(truth[item.pool_index]))
    s.estimate()
    first = s.batch_labels()[0]
    with pytest.raises(ProjectError, match="precision estimate is recorded: its labels are "
                                           "locked"):
        s.relabel(first.pool_index, (first.label + 1) % 3)
    assert s.batch_labels()[0].label == first.label      # the list stays, read only
    assert stored_label(s.project.folder, "oracle_labels", first.pool_index) == first.label


def test_vo_al_label_list_prints_the_batch_with_its_labels(session, capsys):
    s, _ = session
    items = s.batch_labels()
    s.label(items[1].pool_index, 2)
    folder = s.project.folder
    s.project.close()
    assert main(["label", str(folder), "--list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["#", "pool", "name", "set", "label"]
    rows = out[1:1 + len(items)]
    assert rows[1].split() == ["2", str(items[1].pool_index), items[1].name, "oracle", "batch",
                               "2", "double", "peak"]
    assert rows[0].split()[-1] == "waiting"
    assert rows[-1].split()[3:5] == ["precision", "sample"]
    assert out[-1] == (f"iteration 1: 1 of {len(items)} labelled, {len(items) - 1} waiting")
