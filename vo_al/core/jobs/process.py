"""Run a job in a child process, so that its C++ work cannot stall this process.

Keras/TensorFlow build and trace the train step, and load a model for its first prediction, in
C++ code that holds the GIL for up to a few hundred milliseconds; on a worker thread of the
desktop app that freezes the event loop (benchmarks/bench_gui_stall.py). No thread can avoid it;
a child process can.

`run_in_process(target, *args, stage=..., cancel=token)` is itself a job: it starts a child
("spawn": never fork a parent that has Qt and threads), runs `target(*args, cancel=child_token)`
there, and yields every Progress the child's job yields, returns its return value and raises
its exception (the same type whenever it can be rebuilt here; else a `ChildJobError` carrying the
child's type name and traceback). Cancelling the parent's token tells the child through an
`Event`; the child raises Cancelled at its next check, and one that does not stop within
`grace_s` is terminated. A child that dies without a word (killed, segfault) gives a
`ChildProcessDied` naming its exit code. The child is always joined: no zombies.

The child reports through a one-way Pipe rather than a Queue: no feeder thread that could lose
the last message, and the parent can wait on the pipe and the child's exit sentinel together.

`train_project`, `score_project` and `finish_project` are the targets the desktop app runs this
way: they open the project afresh in the child, which takes the project lock (project.lock)
before anything else: the child is the writer, so killing it frees the lock, and a project busy
with another process's step fails at once with ProjectBusyError (rebuilt here), before the
child imports TensorFlow. The session store is SQLite in WAL mode, so the parent's open project
reads the child's commits as soon as the job returns.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import sys
import time
import traceback
from multiprocessing.connection import wait as wait_for
from pathlib import Path
from typing import Callable

from vo_al.core.base.errors import Cancelled, ParameterError, VoAlError
from vo_al.core.base.progress import CancelToken, Job, Progress

DEFAULT_GRACE_S = 30.0      # a training epoch checks the token between epochs: allow one to end
POLL_S = 0.05               # how often the parent looks at its cancel token while it waits


class ChildJobError(VoAlError):
    """A job failed in its child process with an exception that cannot be rebuilt here.

    `type_name` is the child's exception type (module.qualname), `child_traceback` its
    traceback text.
    """

    def __init__(self, message: str, type_name: str = "", child_traceback: str = ""):
        self.type_name = type_name
        self.child_traceback = child_traceback
        super().__init__(message)

    def __reduce__(self):
        return type(self), (str(self), self.type_name, self.child_traceback)


class ChildProcessDied(ChildJobError):
    """The child process of a job ended without sending a result (killed, crashed)."""

    def __init__(self, message: str, exitcode: int | None = None):
        self.exitcode = exitcode
        super().__init__(message)

    def __reduce__(self):
        return type(self), (str(self), self.exitcode)


class _EventToken(CancelToken):
    """The child's CancelToken: set by the parent through a multiprocessing Event."""

    def __init__(self, event) -> None:
        self._event = event


def _spawn_context():
    # "spawn", not fork or forkserver: the parent has Qt, threads and maybe TensorFlow loaded,
    # and a forkserver preloaded for the pool's readers (vo_al.core.pool) would not help here
    return multiprocessing.get_context("spawn")


def run_in_process(target: Callable[..., Job], *args, stage: str = "job",
                   cancel: CancelToken | None = None, grace_s: float = DEFAULT_GRACE_S,
                   poll_s: float = POLL_S) -> Job:
    """Job: `target(*args, cancel=token)` run in a child process; see the module docstring.

    `target` must be a top-level function (pickled by reference) returning a job generator,
    and `args` must pickle. Safe to drive from any thread.
    """
    try:
        pickle.dumps((target, args))
    except Exception as exc:
        raise ParameterError("target", target, f"a top-level function and picklable arguments "
                             f"to run in a child process ({type(exc).__name__}: {exc})") from exc
    if grace_s < 0 or poll_s <= 0:
        raise ParameterError("grace_s, poll_s", (grace_s, poll_s), "grace_s >= 0 and poll_s > 0")
    if cancel is not None:
        cancel.raise_if_cancelled(stage)

    ctx = _spawn_context()
    reader, writer = ctx.Pipe(duplex=False)
    stop = ctx.Event()
    proc = ctx.Process(target=_child_main, args=(writer, stop, target, args, stage),
                       name=f"vo-al {stage}", daemon=True)
    try:
        proc.start()
    except BaseException:
        reader.close()
        raise
    finally:
        writer.close()          # the child holds the only writer: its exit reads as EOF here
    cancel_sent_at = None
    grace_left = grace_s        # 0 once the grace period is spent: terminate at once
    try:
        while True:
            if cancel_sent_at is None and cancel is not None and cancel.cancelled:
                stop.set()
                cancel_sent_at = time.monotonic()
            if cancel_sent_at is not None and time.monotonic() - cancel_sent_at > grace_s:
                grace_left = 0.0
                raise Cancelled(f"{stage} cancelled: its child process (pid {proc.pid}) did not "
                                f"stop within {grace_s:g} s and was terminated")
            wait_for([reader, proc.sentinel], timeout=poll_s)
            if not reader.poll():
                if proc.exitcode is None and proc.is_alive():
                    continue            # the wait timed out: look at the token again
                raise _died(proc, stage)
            try:
                kind, value = reader.recv()
            except EOFError:
                raise _died(proc, stage) from None
            if kind == "progress":
                yield value
            elif kind == "return":
                return value
            else:
                raise _rebuild_exception(value, stage, proc.pid)
    finally:
        # normal end: the child is exiting; cancel or close(): ask, wait, then terminate
        _end(proc, reader, stop, grace_left)
        reader.close()


def _end(proc, reader, stop, grace_s: float) -> None:
    """Stop the child (ask, then terminate, then kill) and join it, reading the pipe meanwhile
    so that a child blocked writing a message can run on to its cancel check."""
    if proc.exitcode is None:
        stop.set()
        deadline = time.monotonic() + grace_s
        while proc.is_alive() and time.monotonic() < deadline:
            wait_for([reader, proc.sentinel], timeout=min(0.1, max(0.0, deadline - time.monotonic())))
            try:
                while reader.poll():
                    reader.recv()       # progress or a result nobody will read now
            except (EOFError, OSError):
                proc.join(max(0.0, deadline - time.monotonic()))
                break
        if proc.is_alive():
            proc.terminate()
            proc.join(5.0)
        if proc.is_alive():
            proc.kill()
    proc.join()
    proc.close()


def _died(proc, stage: str) -> ChildProcessDied:
    proc.join()
    code = proc.exitcode
    if code is not None and code < 0:
        try:
            how = f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
    else:
        how = "exited"
    return ChildProcessDied(f"the {stage} child process (pid {proc.pid}) ended without a result: "
                            f"{how}, exit code {code}", exitcode=code)


# ------------------------------------------------------------------------------ the child side

def _child_main(conn, stop, target, args, stage: str) -> None:
    """Runs in the child: drives the job and sends ("progress", p), ("return", v) or
    ("error", payload) through `conn`, then leaves at once (see `_exit_now`)."""
    token = _EventToken(stop)
    job = None
    code = 0
    try:
        job = target(*args, cancel=token)
        while True:
            try:
                step = next(job)
            except StopIteration as stop_iteration:
                message = ("return", stop_iteration.value)
                what = "return value"
                break
            try:
                conn.send(("progress", step))
            except (pickle.PicklingError, TypeError, AttributeError) as exc:
                raise VoAlError(f"the {stage} job's progress {step.stage!r} cannot be sent to "
                                f"the parent process: {exc}") from exc
        try:
            conn.send(message)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise VoAlError(f"the {stage} job's {what} ({type(message[1]).__name__}) cannot be "
                            f"sent to the parent process: {exc}") from exc
    except BaseException as exc:  # every failure goes to the parent, which raises it
        _close(job)     # a job stopped mid-way runs its finally blocks (closing its project)
        try:
            conn.send(("error", _exception_payload(exc)))
        except Exception:
            traceback.print_exc()       # the parent has gone: stderr is all that is left
            code = 1
    finally:
        conn.close()
    _exit_now(code)


def _close(job) -> None:
    close = getattr(job, "close", None)
    if close is not None:
        try:
            close()
        except BaseException:
            traceback.print_exc()


def _exit_now(code: int) -> None:
    """End the child without the interpreter's finalization, which takes seconds once
    TensorFlow is loaded (measured ~3 s after a training), while the parent waits to join it.
    Nothing is lost: the result is sent, the job's finally blocks have run (its project is
    closed, its store committed) and the child has no other threads or files of its own."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code)


def _exception_payload(exc: BaseException) -> tuple:
    """What the parent needs to raise `exc` again: pickled whole when that round-trips; else
    its class, args and attributes (exceptions whose __init__ takes other arguments than
    `args`, like ParameterError); else only its type name and text."""
    tb = "".join(traceback.format_exception(exc))
    cls = type(exc)
    type_name = f"{cls.__module__}.{cls.__qualname__}"
    try:
        data = pickle.dumps(exc)
        pickle.loads(data)
        return ("pickled", data, type_name, str(exc), tb)
    except Exception:
        pass
    try:
        state, dropped = {}, []
        for key, value in vars(exc).items():
            try:
                pickle.loads(pickle.dumps(value))
                state[key] = value
            except Exception:
                state[key] = None
                dropped.append(key)
        data = pickle.dumps((cls, exc.args, state, dropped))
        _rebuild(pickle.loads(data))
        return ("rebuilt", data, type_name, str(exc), tb)
    except Exception:
        return ("foreign", None, type_name, str(exc), tb)


def _rebuild(parts) -> BaseException:
    cls, args, state, dropped = parts
    exc = BaseException.__new__(cls)    # not cls(*args): its __init__ may want other arguments
    exc.args = args
    exc.__dict__.update(state)
    if dropped:
        exc.add_note(f"attributes that could not be sent from the child process (now None): "
                     f"{', '.join(dropped)}")
    return exc


def _rebuild_exception(payload: tuple, stage: str, pid: int | None) -> BaseException:
    kind, data, type_name, text, tb = payload
    exc = None
    if kind in ("pickled", "rebuilt"):
        try:
            exc = pickle.loads(data) if kind == "pickled" else _rebuild(pickle.loads(data))
        except Exception:
            exc = None
    if exc is None:
        return ChildJobError(f"{stage} failed in its child process (pid {pid}) with "
                             f"{type_name}: {text}", type_name, tb)
    exc.add_note(f"raised in the child process (pid {pid}) of the {stage} job:\n{tb}")
    return exc


# ------------------------------------------------------------------------------ the targets

def train_project(folder, cancel: CancelToken | None = None) -> Job[dict]:
    """Job (a target for run_in_process): the session's train step of the project in `folder`,
    after a "device" Progress naming the compute device and this process's pid."""
    return _session_step(folder, "train", cancel)


def score_project(folder, cancel: CancelToken | None = None) -> Job[Path]:
    """Job (a target for run_in_process): the session's score step of the project in `folder`,
    after a "device" Progress. (In a child, this process never runs the model: the first
    prediction of a process traces it in C++ for ~0.2-0.35 s with the GIL held.)"""
    return _session_step(folder, "score", cancel)


def finish_project(folder, cancel: CancelToken | None = None) -> Job[dict]:
    """Job (a target for run_in_process): the session's finish step (long training, final
    scoring, candidates) of the project in `folder`, after a "device" Progress."""
    return _session_step(folder, "finish", cancel)


def _session_step(folder, step: str, cancel: CancelToken | None) -> Job[dict]:
    from vo_al.core.learning.model import describe_device
    from vo_al.core.session.project import Project
    from vo_al.core.session.loop import ActiveLearningSession

    project = Project.open(Path(folder))
    try:
        # the step takes the lock again (the same one, nested): taken here, a busy project is
        # told before the seconds of importing the backend
        with project.writing(step):
            session = ActiveLearningSession(project)
            # training is always float32 (the method's); scoring has its own setting
            precision = "float32" if step == "train" else \
                project.settings.method.scoring_precision
            device = describe_device(precision)
            yield Progress("device", 1, 1, device, {"device": device, "pid": os.getpid()})
            return (yield from getattr(session, step)(cancel))
    finally:
        project.close()
