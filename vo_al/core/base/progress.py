"""Progress reporting and cancellation for long jobs, independent of any GUI.

A long job is a generator that yields `Progress` objects and returns its result (the napari /
superqt worker pattern). The command line drives it with `run_job` and a text bar; the GUI wraps
the same generator in a worker thread. Cancellation is cooperative: the job checks a
`CancelToken` between epochs or chunks.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Generator, TypeVar

from vo_al.core.base.errors import Cancelled

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """One step of a long job: `done` of `total` units in stage `stage`."""

    stage: str
    done: int
    total: int | None = None
    message: str = ""
    info: dict = field(default_factory=dict)

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


class CancelToken:
    """Thread-safe flag a job polls between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self, where: str = "") -> None:
        if self._event.is_set():
            raise Cancelled(f"cancelled{' during ' + where if where else ''}")


Job = Generator[Progress, None, T]


def run_job(job: Job[T], on_progress: Callable[[Progress], None] | None = None) -> T:
    """Drive a job generator to completion, passing each Progress to `on_progress`."""
    while True:
        try:
            step = next(job)
        except StopIteration as stop:
            return stop.value
        if on_progress is not None:
            on_progress(step)


class TextProgressBar:
    """A small progress bar for the command line (stderr), with rate and ETA."""

    def __init__(self, stream=None, width: int = 30, min_interval: float = 0.2) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.min_interval = min_interval
        self._stage = None
        self._t0 = time.monotonic()
        self._last = 0.0

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        if p.stage != self._stage:
            self._end_line()
            self._stage, self._t0, self._last = p.stage, now, 0.0
        finished = p.total is not None and p.done >= p.total
        self._latest = p
        if now - self._last < self.min_interval and not finished:
            self._shown = False
            return
        self._last = now
        self._write(p, now)

    def _write(self, p: Progress, now: float) -> None:
        elapsed = now - self._t0
        rate = p.done / elapsed if elapsed > 0 else 0.0
        if p.total:
            frac = p.fraction or 0.0
            bar = "#" * int(frac * self.width)
            # no rate yet (the first update): no number to show, rather than 'nan'
            eta = f"{(p.total - p.done) / rate:6.1f}s" if rate > 0 else "    --"
            text = (f"\r{p.stage:<10} [{bar:<{self.width}}] {p.done}/{p.total} "
                    f"{rate:8.1f}/s ETA {eta} {p.message}")
        else:
            text = f"\r{p.stage:<10} {p.done} {rate:8.1f}/s {p.message}"
        self.stream.write(text[:200])
        self.stream.flush()
        self._shown = True

    _latest: Progress | None = None
    _shown = True

    def _end_line(self) -> None:
        """End the current bar's line: its last update shown, and where a bar stops before its
        total (the stop rule, early stopping), the word that it ended there."""
        if self._stage is None:
            return
        p = self._latest
        if p is not None and not self._shown:
            self._write(p, time.monotonic())
        if p is not None and p.total and p.done < p.total:
            self.stream.write(f" — ended at {p.done} of {p.total}")
        self.stream.write("\n")
        self.stream.flush()

    def close(self) -> None:
        self._end_line()
        self._stage = None


def run_with_text_bar(job: Job[T]) -> T:
    """Drive a job with a TextProgressBar on stderr (the command line's way to run any job)."""
    bar = TextProgressBar()
    try:
        return run_job(job, bar)
    finally:
        bar.close()
