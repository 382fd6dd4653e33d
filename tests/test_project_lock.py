"""One writer per project: a second process that would change a project is told who is busy.

The holder is a real `vo-al train` process training without end (a huge epoch cap); the others
are real `vo-al` commands (in this process through `main`, or spawned). Reads never wait for the
lock; a kill -9 of the holder frees it (the OS drops an flock with its process).
"""

from __future__ import annotations

import csv
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")     # the app test below, if Qt is there
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vo_al.cli import main
from vo_al.core.base.errors import ProjectError
from vo_al.core.base.progress import run_job
from vo_al.core.demo import make_pool
from vo_al.core.session.loop import ActiveLearningSession
from vo_al.core.session.project import Project

from session_fixtures import fill_project, tiny_settings

WAIT_S = 300            # a bound on waiting for a child to reach a state, not a timing assertion


def _iteration_done(folder: Path, seed: int = 0) -> tuple[Path, np.ndarray]:
    """A project whose iteration 0 is trained, scored, labelled and estimated: next 'train',
    and 'finish' is allowed too (the expert may stop early)."""
    p = Project.create(folder, folder / "pool", tiny_settings())
    try:
        truth = fill_project(p, seed=seed)
        s = ActiveLearningSession(p)
        run_job(s.train()); run_job(s.score()); s.query()
        for item in s.pending():
            s.label(item.pool_index, int(truth[item.pool_index]))
        s.estimate()
        assert s.next_step() == "train" and "finish" in s.enabled_actions()
    finally:
        p.close()
    return folder, truth


def _cli(*argv, **popen):
    return subprocess.Popen([sys.executable, "-m", "vo_al.cli", *map(str, argv)],
                            env=dict(os.environ, PYTHONUNBUFFERED="1"), **popen)


def _wait_until(condition, proc, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the holder ended (rc {proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"the holder did not reach {what} within {WAIT_S} s")
        time.sleep(0.05)


@pytest.fixture
def training_holder(tmp_path):
    """(project folder, truth, the `vo-al train` process) while it trains without end."""
    folder, truth = _iteration_done(tmp_path / "proj")
    p = Project.open(folder)
    p.change_settings(method={"max_epochs": 100_000, "patience": 100_000})
    p.close()
    log = tmp_path / "holder.err"
    with open(log, "w") as err:
        proc = _cli("train", folder, stdout=subprocess.DEVNULL, stderr=err)
    # the text bar shows the first epoch: the holder is inside its training step
    _wait_until(lambda: "train " in log.read_text(), proc, "its first epoch")
    try:
        yield folder, truth, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(60)


def _busy(capsys, pid: int, step: str, *argv) -> str:
    assert main([str(a) for a in argv]) == 2, argv
    err = capsys.readouterr().err
    assert f"busy: PID {pid} is running {step} since " in err, err
    return err


def test_a_second_writer_is_told_who_is_busy_and_reads_go_on(training_holder, tmp_path, capsys):
    folder, truth, holder = training_holder
    more = make_pool(tmp_path / "more", 5, seed=3)
    p = Project.open(folder)
    n_pool = len(p.pool)
    settings_before = (folder / "settings.json").read_text()
    rows_before = p.store.iterations()
    p.close()

    # a real second process: exit 2, the holder named, no traceback; the pool did not grow
    ingest = _cli("ingest", folder, more, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                  text=True)
    out, err = ingest.communicate(timeout=WAIT_S)
    assert ingest.returncode == 2, (out, err)
    assert f"busy: PID {holder.pid} is running train since " in err and "Traceback" not in err

    labels = tmp_path / "labels.csv"
    labels.write_text("name,label\npool-000001,1\n")
    for argv in (["train", folder], ["score", folder], ["finish", folder], ["estimate", folder], ["label", folder, "--csv", labels],
                 ["settings", folder, "--set", "batch_size=30"],
                 ["import-training", folder, more, labels], ["ingest", folder, more]):
        _busy(capsys, holder.pid, "train", *argv)

    # reads do not take the lock (`query` past the query step only lists what waits)
    assert main(["status", str(folder)]) == 0
    assert main(["query", str(folder)]) == 0
    assert main(["candidates", str(folder), "--out", str(tmp_path / "c.csv")]) == 0
    assert main(["export", str(folder), "--out", str(tmp_path / "c.vot")]) == 0
    capsys.readouterr()

    p = Project.open(folder)
    try:
        assert len(p.pool) == n_pool
        assert (folder / "settings.json").read_text() == settings_before
        assert p.store.iterations() == rows_before
        assert p.store.get_final("candidates_path") is None         # no finish ran
    finally:
        p.close()

    # kill -9 the holder: the OS frees the lock; nothing half-written stays behind
    holder.send_signal(signal.SIGKILL)
    holder.wait(60)
    assert main(["settings", str(folder), "--set", "max_epochs=2", "--set", "patience=1"]) == 0
    assert main(["train", str(folder)]) == 0
    capsys.readouterr()
    p = Project.open(folder)
    try:
        s = ActiveLearningSession(p)
        assert s.iteration == 1 and s.next_step() == "score"
        assert not list(folder.glob("models/.*")) and not list(folder.glob("scores/.*"))
    finally:
        p.close()


def _light_holder(folder: Path, step: str) -> subprocess.Popen:
    """A process holding the project lock for `step` until killed (no model: quick to start)."""
    code = ("import sys; from vo_al.core.session.project import Project; "
            "p = Project.open(sys.argv[1]); lock = p.writing(sys.argv[2]); lock.__enter__(); "
            "print('held', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder), step],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_the_lock_file_says_who_holds_it_and_a_kill_frees_it(tmp_path):
    """What a busy message is made of: the holder's PID, step and start, from the lock file."""
    from vo_al.core.base.errors import ProjectBusyError

    folder = tmp_path / "proj"
    Project.create(folder, folder / "pool", tiny_settings()).close()
    proc = _light_holder(folder, "estimate")
    try:
        p = Project.open(folder)
        try:
            with pytest.raises(ProjectBusyError) as info:
                with p.writing("settings"):
                    pass
            busy = info.value
            assert (busy.pid, busy.step) == (proc.pid, "estimate")
            assert busy.since <= time.time()
            assert str(busy).startswith(f"busy: PID {proc.pid} is running estimate since ")
            assert str(folder) in str(busy)
            assert isinstance(busy, ProjectError)
            with pytest.raises(ProjectBusyError):
                p.change_settings(method={"batch_size": "30"})
        finally:
            p.close()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
    p = Project.open(folder)
    try:
        p.change_settings(method={"batch_size": "30"})          # the kill freed the lock
        assert p.settings.method.batch_size == 30
        with p.writing("query"):
            with p.writing("label"):                            # nested in one process: allowed
                pass
    finally:
        p.close()


def test_the_app_shows_a_busy_project_and_carries_on(tmp_path, request):
    """In the app a busy project is a message (the settings dialog's error line, the error
    dialog of a step run in its child process), never a crash; the window stays usable."""
    pytest.importorskip("PyQt6")
    pytest.importorskip("pytestqt")
    qtbot = request.getfixturevalue("qtbot")
    from vo_al.gui.main_window import MainWindow

    folder = tmp_path / "proj"
    p = Project.create(folder, folder / "pool", tiny_settings())
    fill_project(p, n_train=60, n_pool=200)
    p.close()
    holder = _light_holder(folder, "estimate")
    w = MainWindow(folder)
    try:
        w.show()
        qtbot.waitExposed(w)
        busy = f"busy: PID {holder.pid} is running estimate since "
        dialog = w.open_settings()
        dialog.method_form.editors["batch_size"].setText("30")
        assert dialog.apply() is False and busy in dialog.error.text()
        assert dialog.isVisible()
        dialog.reject()
        dialog.deleteLater()
        assert Project.open(folder).settings.method.batch_size != 30

        with qtbot.waitSignal(w.error_shown, timeout=120_000) as shown:
            w.run_step("train")                       # in its child process
        assert busy in shown.args[0]
        qtbot.waitUntil(lambda: not w.jobs.is_running, timeout=120_000)
        assert w.panel.buttons["train"].isEnabled()  # nothing changed: train is still next
        assert w.session.next_step() == "train"
    finally:
        holder.kill()
        holder.wait(60)
        if w.error_box is not None:
            w.error_box.done(0)
        w.close()
        w.deleteLater()


def test_scores_that_do_not_cover_the_pool_are_refused_until_scored_again(tmp_path, capsys):
    """A pool shared with another project can grow mid-iteration (the project lock guards only
    its own project): the scores then cover fewer rows than the pool. Every use says so and
    names the cure, and `vo-al score` scores again; never an IndexError or a partial table."""
    a = Project.create(tmp_path / "a", tmp_path / "pool", tiny_settings())
    truth = fill_project(a)
    s = ActiveLearningSession(a)
    run_job(s.train()); run_job(s.score())
    n = len(a.pool)
    a.close()
    Project.create(tmp_path / "b", tmp_path / "pool", tiny_settings()).close()
    more = make_pool(tmp_path / "more", 5, seed=3)
    assert main(["ingest", str(tmp_path / "b"), str(more)]) == 0     # b's next step is 'train'
    capsys.readouterr()

    folder = str(tmp_path / "a")
    for argv in (["query", folder], ["candidates", folder, "--out", str(tmp_path / "c.csv")],
                 ["export", folder, "--out", str(tmp_path / "c.vot")]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert f"scores/iter-000.npy covers {n} spectra but the pool holds {n + 5}" in err, err
        assert "score" in err.split("holds")[1]
    assert not (tmp_path / "c.csv").exists() and not (tmp_path / "c.vot").exists()

    assert main(["score", folder]) == 0                  # scores again: every row covered
    assert main(["query", folder, "--out", str(tmp_path / "pending.csv")]) == 0
    capsys.readouterr()
    a = Project.open(tmp_path / "a")
    try:
        s = ActiveLearningSession(a)
        assert np.asarray(s.probabilities()).shape == (n + 5, 3)
        assert s.next_step() == "label"
        with open(tmp_path / "pending.csv", newline="") as fh:
            assert len(list(csv.DictReader(fh))) == len(s.pending()) > 0
    finally:
        a.close()
    del truth


def test_concurrent_scorings_use_their_own_temporary_files(tmp_path):
    """Two scorings of the same pool into the same file, interleaved chunk by chunk (as two
    processes run): each writes its own temporary, both end, none is left behind."""
    from vo_al.core.base.errors import Cancelled
    from vo_al.core.base.progress import CancelToken
    from vo_al.core.learning.model import build_cnn
    from vo_al.core.learning.scoring import score_pool

    p = Project.create(tmp_path / "proj", tmp_path / "proj" / "pool", tiny_settings())
    try:
        fill_project(p, n_train=30, n_pool=900)
        model = build_cnn(p.settings.preprocess.n_points, seed=1)
        out = p.folder / "scores" / "iter-000.npy"
        jobs = [score_pool(model, p.pool, out, chunk_rows=300) for _ in range(2)]
        results = [None, None]
        live = [0, 1]
        while live:
            for k in list(live):
                try:
                    next(jobs[k])
                except StopIteration as stop:
                    results[k] = stop.value
                    live.remove(k)
        assert results == [out, out]
        assert np.load(out).shape == (900, 3)
        assert sorted(x.name for x in out.parent.iterdir()) == ["iter-000.npy"]

        token = CancelToken()
        job = score_pool(model, p.pool, p.folder / "scores" / "iter-001.npy", chunk_rows=300,
                         cancel=token)
        next(job); next(job)
        token.cancel()
        with pytest.raises(Cancelled):
            run_job(job)
        assert sorted(x.name for x in out.parent.iterdir()) == ["iter-000.npy"]
    finally:
        p.close()


# an untrained model's optimizer has not built its variables: Keras says so when loading it
@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")
def test_concurrent_model_saves_use_their_own_temporary_files(tmp_path):
    """A second save to the same checkpoint while the first is writing (two `train`s): both
    end, the checkpoint loads, no temporary is left."""
    from vo_al.core.learning.model import build_cnn, load_model, save_model

    model = build_cnn(140, seed=0)
    target = tmp_path / "models" / "iter-000.keras"

    class SavedMeanwhile:
        """The model, and while it is saved another process saves to the same checkpoint."""

        def save(self, path):
            model.save(path)
            save_model(model, target)

    save_model(SavedMeanwhile(), target)
    assert load_model(target).count_params() == model.count_params()
    assert sorted(x.name for x in target.parent.iterdir()) == ["iter-000.keras"]
