"""Run core job generators on QThreads (the napari / superqt worker pattern).

A job is a generator that yields `Progress` and returns its result. `JobWorker` drives one run of
it on its own QThread and turns it into Qt signals, delivered on the GUI thread (queued
connections):

    started, progress(Progress), returned(object), errored(Exception), aborted, finished

`finished` is always the last signal, after exactly one of returned / errored / aborted.
`cancel()` sets the job's `CancelToken`; the worker also checks it between yields, so a job that
does not poll the token itself still stops at its next yield.

`JobRunner` is what a panel holds: its jobs one at a time, each on a fresh `JobWorker`, with the
signals re-emitted under the job's name (a panel connects once, not per job), the start refused
or queued while one runs, and the finished workers cleaned up. `progress_line.ProgressLine` shows
a runner's jobs; `error_text` is how every panel words a job's exception.
"""

from __future__ import annotations

from typing import Callable

from PyQt6.QtCore import QObject, QThread, pyqtSignal, pyqtSlot

from vo_al.core.base.errors import Cancelled
from vo_al.core.base.progress import CancelToken, Job, Progress

JobFactory = Callable[[CancelToken], Job]


class _Runner(QObject):
    """Lives on the worker thread; iterates the generator."""

    started = pyqtSignal()
    progress = pyqtSignal(object)
    returned = pyqtSignal(object)
    errored = pyqtSignal(object)
    aborted = pyqtSignal()
    done = pyqtSignal()

    def __init__(self, factory: JobFactory, token: CancelToken):
        super().__init__()
        self._factory = factory
        self._token = token

    @pyqtSlot()
    def run(self) -> None:
        self.started.emit()
        try:
            job = self._factory(self._token)
            while True:
                if self._token.cancelled:
                    job.close()
                    self.aborted.emit()
                    break
                try:
                    step = next(job)
                except StopIteration as stop:
                    self.returned.emit(stop.value)
                    break
                self.progress.emit(step)
        except Cancelled:
            self.aborted.emit()
        except Exception as exc:  # handed to the GUI thread, which shows it; never swallowed
            self.errored.emit(exc)
        finally:
            self.done.emit()
            # end the thread's event loop from inside, so that QThread.wait() on the GUI thread
            # (at shutdown) returns without needing the GUI event loop
            QThread.currentThread().quit()


class JobWorker(QObject):
    """One run of one job on a fresh QThread. Create, connect, `start()`; `cancel()` any time."""

    started = pyqtSignal()
    progress = pyqtSignal(object)      # Progress
    returned = pyqtSignal(object)      # the job's return value
    errored = pyqtSignal(object)       # the exception
    aborted = pyqtSignal()
    finished = pyqtSignal()

    def __init__(self, factory: JobFactory, name: str = "job", parent: QObject | None = None):
        super().__init__(parent)
        self.name = name
        self.token = CancelToken()
        self.result = None
        self.error: Exception | None = None
        self.was_aborted = False
        self.is_running = False
        self._ended = False
        self._thread = QThread()
        self._thread.setObjectName(f"vo-al {name}")
        self._runner = _Runner(factory, self.token)
        self._runner.moveToThread(self._thread)
        self._thread.started.connect(self._runner.run)
        # the runner's signals arrive here on the GUI thread (queued), then are re-emitted
        self._runner.started.connect(self.started)
        self._runner.progress.connect(self.progress)
        self._runner.returned.connect(self._on_returned)
        self._runner.errored.connect(self._on_errored)
        self._runner.aborted.connect(self._on_aborted)
        self._runner.done.connect(self._on_done)

    def start(self) -> None:
        if self.is_running:
            raise RuntimeError(f"worker '{self.name}' is already running")
        self.is_running = True
        self._thread.start()

    def cancel(self) -> None:
        self.token.cancel()

    def wait(self, timeout_s: float = 30.0) -> bool:
        """Block until the thread has ended (for shutdown only; never while the GUI runs)."""
        return self._thread.wait(int(timeout_s * 1000))

    @property
    def outcome(self) -> str | None:
        """'done', 'cancelled' or 'failed' once `finished` is emitted; None before."""
        if not self._ended:
            return None
        return "cancelled" if self.was_aborted else "failed" if self.error is not None else "done"

    def _on_returned(self, value) -> None:
        self.result = value
        self.returned.emit(value)

    def _on_errored(self, exc) -> None:
        self.error = exc
        self.errored.emit(exc)

    def _on_aborted(self) -> None:
        self.was_aborted = True
        self.aborted.emit()

    def _on_done(self) -> None:
        self._thread.quit()
        self._thread.wait()
        self.is_running = False
        self._ended = True
        self.finished.emit()


def call_job(stage: str, fn: Callable[[], object]) -> JobFactory:
    """Wrap a quick synchronous core call as a one-step job, so it runs off the GUI thread too."""

    def factory(token: CancelToken) -> Job:
        yield Progress(stage, 0, 1)
        token.raise_if_cancelled(stage)
        return fn()

    return factory


def error_text(exc: BaseException) -> str:
    """A job's exception as the panels show it (status lines, error dialogs)."""
    return f"{type(exc).__name__}: {exc}"


class JobRunner(QObject):
    """The jobs of one panel, one at a time, each on a fresh `JobWorker`.

    `start(name, factory)` runs the job at once; while another runs it is refused (returns None)
    or, for a runner made with `queue=True`, queued and started when the running one ends
    (`replace=True`: it takes the place of a job of the same name still waiting). The running
    worker's signals are re-emitted with the job's name; `finished` comes last, once
    `is_running` is False, so its slots may start the next job at once. `worker` is the running
    job's worker, or the last one's (kept until the next starts: its result, error, outcome).
    """

    started = pyqtSignal(str)               # name; emitted by start(), as the thread starts
    progress = pyqtSignal(object)           # Progress
    returned = pyqtSignal(str, object)      # name, the job's return value
    errored = pyqtSignal(str, object)       # name, the exception (see error_text)
    aborted = pyqtSignal(str)               # name: it stopped at a cancel
    cancelling = pyqtSignal(str)            # name: cancel() asked it to stop
    finished = pyqtSignal(str, str)         # name, JobWorker.outcome

    def __init__(self, parent: QObject | None = None, *, queue: bool = False):
        super().__init__(parent)
        self.queue = queue
        self.worker: JobWorker | None = None
        self._waiting: list[tuple[str, JobFactory, Callable | None]] = []

    @property
    def is_running(self) -> bool:
        return self.worker is not None and self.worker.is_running

    @property
    def busy(self) -> bool:
        """Running, or jobs waiting to run."""
        return self.is_running or bool(self._waiting)

    def start(self, name: str, factory: JobFactory, *, on_returned: Callable | None = None,
              replace: bool = False) -> JobWorker | None:
        """Run `factory`'s job as `name`; its worker, or None when refused or queued.
        `on_returned(value)`, if given, gets this job's result only (after `returned`)."""
        if not self.queue:
            return None if self.is_running else self._launch(name, factory, on_returned)
        if replace:
            self._waiting = [job for job in self._waiting if job[0] != name]
        self._waiting.append((name, factory, on_returned))
        return self._next()

    def clear_queue(self) -> None:
        self._waiting.clear()

    def cancel(self) -> bool:
        """Ask the running job to stop (at its next step); False when none runs."""
        if not self.is_running:
            return False
        self.worker.cancel()
        self.cancelling.emit(self.worker.name)
        return True

    def shutdown(self, timeout_s: float = 30.0) -> bool:
        """At window close: drop the waiting jobs, cancel the running one and wait for its
        thread (this blocks: for shutdown only). True once no job runs."""
        self._waiting.clear()
        if not self.is_running:
            return True
        self.worker.cancel()
        return self.worker.wait(timeout_s)

    def _next(self) -> JobWorker | None:
        if self.is_running or not self._waiting:
            return None
        return self._launch(*self._waiting.pop(0))

    def _launch(self, name: str, factory: JobFactory, on_returned: Callable | None) -> JobWorker:
        if self.worker is not None:
            self.worker.deleteLater()           # the previous, finished one
        worker = JobWorker(factory, name=name, parent=self)
        # bound methods, no lambdas: while a job runs, `self.worker` is its worker (a start is
        # refused or queued until it has finished), so the slots need not capture it
        worker.progress.connect(self.progress)
        worker.returned.connect(self._returned)
        if on_returned is not None:
            worker.returned.connect(on_returned)
        worker.errored.connect(self._errored)
        worker.aborted.connect(self._aborted)
        worker.finished.connect(self._finished)
        self.worker = worker
        worker.start()
        self.started.emit(name)
        return worker

    def _returned(self, value) -> None:
        self.returned.emit(self.worker.name, value)

    def _errored(self, exc) -> None:
        self.errored.emit(self.worker.name, exc)

    def _aborted(self) -> None:
        self.aborted.emit(self.worker.name)

    def _finished(self) -> None:
        self.finished.emit(self.worker.name, self.worker.outcome)
        self._next()
