"""Jobs in a child process (vo_al.core.jobs.process): real spawned children, real training.

The child targets below are top-level functions of this module: a spawned child imports this
module to unpickle them, so it imports no Qt at the top (the Qt test imports it inside).
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import pytest  # noqa: E402

from vo_al.core.base.errors import Cancelled, ParameterError, ProjectError, VoAlError  # noqa: E402
from vo_al.core.jobs.process import (ChildJobError, ChildProcessDied, finish_project,  # noqa: E402
                                    run_in_process, score_project, train_project)
from vo_al.core.base.progress import CancelToken, Progress, run_job  # noqa: E402

JOB_TIMEOUT_MS = 120_000


# -- child targets ---------------------------------------------------------------------------------
def counting(n, pause=0.0, cancel=None):
    for i in range(n):
        if pause:
            time.sleep(pause)
        yield Progress("count", i + 1, n, f"step {i + 1}", {"pid": os.getpid()})
    return {"counted": n, "pid": os.getpid()}


def endless(cancel=None):
    """Checks its token between steps, like a training between epochs."""
    i = 0
    while True:
        cancel.raise_if_cancelled("endless")
        i += 1
        yield Progress("loop", i, None, info={"pid": os.getpid()})
        time.sleep(0.02)


def stubborn(cancel=None):
    """Never looks at its token: only terminating the child stops it."""
    yield Progress("stubborn", 1, None, info={"pid": os.getpid()})
    while True:
        time.sleep(0.05)


def sleeper(cancel=None):
    yield Progress("sleep", 0, 1, info={"pid": os.getpid()})
    time.sleep(60)
    return "woke up"


def raises_parameter_error(cancel=None):
    yield Progress("check", 0, 1)
    raise ParameterError("max_epochs", -3, "a positive number of epochs")


def raises_local_error(cancel=None):
    class LocalOnlyError(RuntimeError):     # not importable: cannot be rebuilt in the parent
        pass

    yield Progress("check", 0, 1)
    raise LocalOnlyError("made where no one else can name it")


def returns_unpicklable(cancel=None):
    yield Progress("make", 0, 1)
    return lambda: "a lambda does not pickle"


# -- helpers -------------------------------------------------------------------------------------
def reaped(pid: int) -> bool:
    """True once no process (not even a zombie) has this pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def drive(job, on_progress=None):
    seen = []

    def record(p):
        seen.append(p)
        if on_progress is not None:
            on_progress(p)

    return run_job(job, record), seen


# -- run_in_process ------------------------------------------------------------------------------
def test_progress_forwarded_in_order_and_result_returned():
    result, seen = drive(run_in_process(counting, 5, stage="count"))
    assert [(p.stage, p.done, p.total, p.message) for p in seen] == \
        [("count", i, 5, f"step {i}") for i in range(1, 6)]
    child = result["pid"]
    assert result["counted"] == 5 and child != os.getpid()
    assert {p.info["pid"] for p in seen} == {child}
    assert reaped(child)


def test_runs_from_a_non_main_thread():
    out = {}

    def run():
        try:
            out["result"] = run_job(run_in_process(counting, 3, stage="count"))
        except BaseException as exc:  # reported below, not lost in the thread
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    assert not thread.is_alive() and "error" not in out, out
    assert out["result"]["counted"] == 3


def test_exception_type_and_attributes_preserved():
    # ParameterError's __init__ takes (name, value, expected): it does not unpickle by itself
    with pytest.raises(ParameterError) as info:
        run_job(run_in_process(raises_parameter_error, stage="check"))
    exc = info.value
    assert exc.name == "max_epochs" and exc.value == -3
    assert "max_epochs=-3: a positive number of epochs" in str(exc)
    assert any("raises_parameter_error" in note for note in exc.__notes__)   # child traceback


def test_unrebuildable_exception_becomes_a_clear_error():
    with pytest.raises(ChildJobError) as info:
        run_job(run_in_process(raises_local_error, stage="check"))
    exc = info.value
    assert isinstance(exc, VoAlError)
    assert exc.type_name.endswith("raises_local_error.<locals>.LocalOnlyError")
    assert "LocalOnlyError" in str(exc) and "made where no one else can name it" in str(exc)
    assert "check failed in its child process" in str(exc)
    assert "raises_local_error" in exc.child_traceback


def test_unpicklable_return_value_is_a_clear_error():
    with pytest.raises(VoAlError, match="return value .*function.* cannot be sent"):
        run_job(run_in_process(returns_unpicklable, stage="make"))


def test_unpicklable_target_is_refused_before_starting():
    with pytest.raises(ParameterError, match="top-level function"):
        run_job(run_in_process(lambda cancel=None: counting(1), stage="lambda"))


def test_cancel_stops_the_child_and_raises_cancelled():
    token = CancelToken()
    pids = []

    def on_progress(p):
        pids.append(p.info["pid"])
        if p.done == 3:
            token.cancel()

    t0 = time.monotonic()
    with pytest.raises(Cancelled, match="endless"):      # the child's own Cancelled
        drive(run_in_process(endless, stage="loop", cancel=token), on_progress)
    assert time.monotonic() - t0 < 20
    assert len(set(pids)) == 1 and reaped(pids[0])


def test_a_child_ignoring_cancel_is_terminated_after_the_grace_period():
    token = CancelToken()
    pids = []

    def on_progress(p):
        pids.append(p.info["pid"])
        token.cancel()

    with pytest.raises(Cancelled, match="did not stop within 0.5 s and was terminated"):
        drive(run_in_process(stubborn, stage="stubborn", cancel=token, grace_s=0.5), on_progress)
    assert reaped(pids[0])


def test_closing_the_job_early_stops_the_child():
    job = run_in_process(endless, stage="loop", grace_s=5)
    first = next(job)
    next(job)
    job.close()          # what JobWorker does when it sees the token between two yields
    assert reaped(first.info["pid"])


def test_cancelled_before_start_starts_nothing():
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        next(run_in_process(counting, 1, stage="count", cancel=token))


def test_a_killed_child_gives_an_error_naming_the_exit_code():
    def kill(p):
        os.kill(p.info["pid"], signal.SIGKILL)

    with pytest.raises(ChildProcessDied) as info:
        drive(run_in_process(sleeper, stage="sleep"), kill)
    exc = info.value
    assert exc.exitcode == -signal.SIGKILL
    assert "exit code -9" in str(exc) and "SIGKILL" in str(exc) and "sleep" in str(exc)


# -- the session's steps in a child --------------------------------------------------------------
def test_train_project_on_a_missing_folder_raises_project_error(tmp_path):
    with pytest.raises(ProjectError, match="not a vo-al project"):
        run_job(run_in_process(train_project, str(tmp_path / "gone"), stage="train"))


@pytest.fixture
def project(tmp_path):
    from gui_support import make_project
    from vo_al.core.session.project import Project

    folder, truth = make_project(tmp_path / "proj")
    project = Project.open(folder)
    yield project, truth
    project.close()


def test_train_score_finish_in_children_seen_by_the_parents_open_session(project):
    from vo_al.core.session.loop import ActiveLearningSession

    project, truth = project
    session = ActiveLearningSession(project)        # open in the parent all along
    assert session.next_step() == "train"
    summary, seen = drive(run_in_process(train_project, str(project.folder), stage="train"))
    device = seen[0]
    assert device.stage == "device" and device.info["pid"] != os.getpid()
    assert device.info["device"] == device.message and "tensorflow" in device.message
    assert any(p.stage == "train" for p in seen)
    assert summary["epochs"] == 1 and summary["n_labelled"] == 300
    assert (project.folder / "models/iter-000.keras").is_file()
    assert session.next_step() == "score"           # the child's commit, read through WAL
    assert reaped(device.info["pid"])

    scores, seen = drive(run_in_process(score_project, str(project.folder), stage="score"))
    assert seen[0].stage == "device" and scores.is_file()
    assert session.next_step() == "query"
    session.query()
    for pending in session.pending():
        session.label(pending.pool_index, int(truth[pending.pool_index]))
    session.estimate()
    assert session.next_step() in ("train", "finish")
    result, seen = drive(run_in_process(finish_project, str(project.folder), stage="finish"))
    assert seen[0].stage == "device" and any(p.stage == "long-train" for p in seen)
    assert (project.folder / "candidates.csv").is_file() and result["epochs"] == 1
    assert session.next_step() == "done"


# -- through the GUI's step jobs and a JobWorker ---------------------------------------------------
def test_step_jobs_train_and_score_in_children_and_cancel(project, qtbot):
    pytest.importorskip("PyQt6")
    pytest.importorskip("pytestqt")
    from vo_al.core.session.loop import ActiveLearningSession
    from vo_al.gui.step_jobs import step_job_factory
    from vo_al.gui.workers import JobWorker

    project, _ = project
    session = ActiveLearningSession(project)

    # cancelled as soon as the child reports its device: nothing is written
    worker = JobWorker(step_job_factory(session, "train"), name="train")
    pids = []
    worker.progress.connect(lambda p: (pids.append(p.info.get("pid")), worker.cancel()))
    with qtbot.waitSignals([worker.aborted, worker.finished], order="strict",
                           timeout=JOB_TIMEOUT_MS):
        worker.start()
    assert worker.error is None and pids and pids[0] != os.getpid()
    assert session.next_step() == "train"
    qtbot.waitUntil(lambda: reaped(pids[0]), timeout=10_000)
    worker.deleteLater()

    # then trained and scored to the end, each in a child of its own
    seen = []
    for step in ("train", "score"):
        worker = JobWorker(step_job_factory(session, step), name=step)
        worker.progress.connect(seen.append)
        with qtbot.waitSignals([worker.returned, worker.finished], order="strict",
                               timeout=JOB_TIMEOUT_MS):
            worker.start()
        assert worker.error is None, worker.error
        worker.deleteLater()
    devices = [p for p in seen if p.stage == "device"]
    child_pids = {d.info["pid"] for d in devices}
    assert len(devices) == 2 and len(child_pids) == 2 and os.getpid() not in child_pids
    assert session.next_step() == "query"
    with pytest.raises(ValueError, match="unknown step"):
        step_job_factory(session, "label")
