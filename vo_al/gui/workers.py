"""Run a core job generator on a QThread (the napari / superqt worker pattern).

A job is a generator that yields `Progress` and returns its result. `JobWorker` drives it on its
own QThread and turns it into Qt signals, delivered on the GUI thread (queued connections):

    started, progress(Progress), returned(object), errored(Exception), aborted, finished

`finished` is always the last signal, after exactly one of returned / errored / aborted.
`cancel()` sets the job's `CancelToken`; the worker also checks it between yields, so a job that
does not poll the token itself still stops at its next yield.
"""

from __future__ import annotations

import time
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
        self.finished.emit()


def call_job(stage: str, fn: Callable[[], object]) -> JobFactory:
    """Wrap a quick synchronous core call as a one-step job, so it runs off the GUI thread too."""

    def factory(token: CancelToken) -> Job:
        yield Progress(stage, 0, 1)
        token.raise_if_cancelled(stage)
        return fn()

    return factory


class EtaClock:
    """Rate and time left of a job from its Progress stream (restarts when the stage changes)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._stage = None
        self._t0 = 0.0
        self._done0 = 0

    def update(self, p: Progress) -> float | None:
        """Seconds left, or None when unknown."""
        now = self._clock()
        if p.stage != self._stage:
            self._stage, self._t0, self._done0 = p.stage, now, p.done
            return None
        elapsed = now - self._t0
        done = p.done - self._done0
        if not p.total or elapsed <= 0 or done <= 0:
            return None
        return max(0.0, (p.total - p.done) * elapsed / done)


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"ETA {seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"ETA {seconds // 60}m{seconds % 60:02d}s"
    return f"ETA {seconds}s"
