"""The GUI's one progress display: a bar and a line of text that follow a `JobRunner`'s jobs.

Every panel that shows its jobs' progress (the step panel of the main window, the cross-match
and the data sources panels) uses `ProgressLine`, so a job reads the same everywhere:

    harvest…                                   busy bar, as the job starts
    harvest: 12/400 downloading … ETA 1m05s    a bar of done/total (stage: done, busy, without)
    harvest: cancelling at the next step…      once Cancel is pressed, until it stops
    harvest: done | cancelled | failed         full bar when done, empty otherwise

`EtaClock` turns a job's Progress stream into the time left, `format_eta` words it.
"""

from __future__ import annotations

import time
from typing import Callable

from PyQt6.QtWidgets import QLabel, QProgressBar, QVBoxLayout, QWidget

from vo_al.core.base.progress import Progress

from vo_al.gui.workers import JobRunner

BAR_STEPS = 1000                    # the bar's resolution: a fraction of the total


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

    def __init__(self, runner: JobRunner | None = None, parent=None):
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
        self._eta = EtaClock()
        self._cancelling = False
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
        self._eta = EtaClock()
        self._cancelling = False
        self.bar.setRange(0, 0)
        self.label.setText(f"{name}…")

    def show_progress(self, p: Progress) -> None:
        eta = format_eta(self._eta.update(p))
        if p.total:
            self.bar.setRange(0, BAR_STEPS)
            self.bar.setValue(int(BAR_STEPS * (p.fraction or 0.0)))
        else:
            self.bar.setRange(0, 0)
        if not self._cancelling:            # the steps still under way must not hide the cancel
            self.label.setText(progress_text(p, eta))

    def show_cancelling(self, name: str) -> None:
        self._cancelling = True
        self.label.setText(f"{name}: cancelling at the next step…")

    def reset(self) -> None:
        """Back to 'no job yet' (another project is open: its last job's words would mislead)."""
        self._eta = EtaClock()
        self._cancelling = False
        self.bar.setRange(0, BAR_STEPS)
        self.bar.reset()
        self.label.setText("")

    def end(self, name: str, outcome: str) -> None:
        if self.runner is not None and self.runner.is_running:
            # a slot called before this one has started the next job: the line shows that one
            return
        self.bar.setRange(0, BAR_STEPS)
        self.bar.setValue(BAR_STEPS if outcome == "done" else 0)
        self.label.setText(f"{name}: {outcome}")
