"""The GUI's one progress display: a bar and a line of text that follow a `JobRunner`'s jobs.

Every panel that shows its jobs' progress (the step panel of the main window, the cross-match
and the data sources panels) uses `ProgressLine`, so a job reads the same everywhere:

    harvest…                                   busy bar, as the job starts
    harvest: 12/400 downloading … ETA 1m05s    a bar of done/total (stage: done, busy, without)
    harvest: cancelling at the next step…      once Cancel is pressed, until it stops
    harvest: done | cancelled | failed         full bar when done, empty otherwise

`EtaClock` turns a job's Progress stream into the time left, `format_eta` words it; between
two reports (an epoch may take a minute) the line counts the time left down each second.
"""

from __future__ import annotations

import time
from typing import Callable

from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QLabel, QProgressBar, QVBoxLayout, QWidget

from vo_al.core.base.progress import Progress

from vo_al.gui.workers import JobRunner

BAR_STEPS = 1000                    # the bar's resolution: a fraction of the total
TICK_MS = 1000                      # the time left counts down once a second between reports


class EtaClock:
    """Rate and time left of a job from its Progress stream (restarts when the stage changes)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._stage = None
        self._t0 = 0.0
        self._done0 = 0
        self._left: float | None = None    # seconds left at the last report
        self._at = 0.0                      # and when it came

    def update(self, p: Progress) -> float | None:
        """Seconds left, or None when unknown."""
        now = self._clock()
        self._left, self._at = None, now
        if p.stage != self._stage:
            self._stage, self._t0, self._done0 = p.stage, now, p.done
            return None
        elapsed = now - self._t0
        done = p.done - self._done0
        if not p.total or elapsed <= 0 or done <= 0:
            return None
        self._left = max(0.0, (p.total - p.done) * elapsed / done)
        return self._left

    def left_now(self) -> float | None:
        """Seconds left now: the last report's estimate less the time since it came (None
        when unknown)."""
        if self._left is None:
            return None
        return max(0.0, self._left - (self._clock() - self._at))


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"ETA {seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"ETA {seconds // 60}m{seconds % 60:02d}s"
    return f"ETA {seconds}s"


def progress_text(p: Progress, eta: str = "") -> str:
    """One step of a job in words: 'stage: done/total message ETA' (no '/total' when unknown,
    no count before the first unit)."""
    if p.total:
        count = f"{p.stage}: {p.done}/{p.total}"
    else:
        count = p.stage + (f": {p.done}" if p.done else "")
    return " ".join(t for t in (count, p.message, eta) if t)


class ProgressLine(QWidget):
    """A progress bar over a line of text, following the jobs of `runner` (see `follow`)."""

    def __init__(self, runner: JobRunner | None = None, parent=None,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.bar.setRange(0, BAR_STEPS)
        self.bar.reset()                    # no job yet: an empty bar without a percentage
        self.label = QLabel("")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)      # lies in the panel's layout as bar + label did
        layout.addWidget(self.bar)
        layout.addWidget(self.label)
        self.runner: JobRunner | None = None
        self._clock = clock
        self._eta = EtaClock(clock)
        self._last: Progress | None = None          # the report the line shows
        self._cancelling = False
        self.ticker = QTimer(self)
        self.ticker.setInterval(TICK_MS)
        self.ticker.timeout.connect(self.count_down)
        if runner is not None:
            self.follow(runner)

    def follow(self, runner: JobRunner) -> None:
        """Show `runner`'s jobs from now on (one runner per line)."""
        self.runner = runner
        runner.started.connect(self.begin)
        runner.progress.connect(self.show_progress)
        runner.cancelling.connect(self.show_cancelling)
        runner.finished.connect(self.end)

    def text(self) -> str:
        return self.label.text()

    def begin(self, name: str) -> None:
        self._eta = EtaClock(self._clock)
        self._last = None
        self._cancelling = False
        self.bar.setRange(0, 0)
        self.label.setText(f"{name}…")
        self.ticker.start()

    def show_progress(self, p: Progress) -> None:
        self._last = p
        eta = format_eta(self._eta.update(p))
        if p.total:
            self.bar.setRange(0, BAR_STEPS)
            self.bar.setValue(int(BAR_STEPS * (p.fraction or 0.0)))
        else:
            self.bar.setRange(0, 0)
        if not self._cancelling:            # the steps still under way must not hide the cancel
            self.label.setText(progress_text(p, eta))

    def count_down(self) -> None:
        """The last report with the time left now (the ticker's slot, once a second)."""
        left = self._eta.left_now()
        if self._last is not None and left is not None and not self._cancelling:
            self.label.setText(progress_text(self._last, format_eta(left)))

    def show_cancelling(self, name: str) -> None:
        self._cancelling = True
        self.label.setText(f"{name}: cancelling at the next step…")

    def reset(self) -> None:
        """Back to 'no job yet' (another project is open: its last job's words would mislead)."""
        self.ticker.stop()
        self._eta = EtaClock(self._clock)
        self._last = None
        self._cancelling = False
        self.bar.setRange(0, BAR_STEPS)
        self.bar.reset()
        self.label.setText("")

    def end(self, name: str, outcome: str) -> None:
        if self.runner is not None and self.runner.is_running:
            # a slot called before this one has started the next job: the line shows that one
            return
        self.ticker.stop()
        self.bar.setRange(0, BAR_STEPS)
        self.bar.setValue(BAR_STEPS if outcome == "done" else 0)
        self.label.setText(f"{name}: {outcome}")
