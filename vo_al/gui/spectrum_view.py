"""Spectrum plots, one owner for every tab: the lines that fool the model marked on each, the
whole spectrum read off the GUI thread, and the spectrum window a double-click on a table row
opens.

`mark_lines` draws Hα, [N II], [S II] and He I as dashed lines and the telluric O₂ B band as a
shaded band (`core.spectra.lines`); their labels go on the top axis (`LineLabelAxis`), over the
plot and never over a peak, and where two would overlap at the present zoom only the first of
them is written. `window_plot` is the 140-point window as the model sees it; `WholeSpectrumPlot`
is the whole spectrum from its source file or URL, read by a `SpectrumPrefetcher` on its threads
and drawn when it is done, or the reason it cannot be. The Label tab (`labelling.py`), its grid
(`label_grid.py`) and the spectrum window (`SpectrumView`, the candidates and cross-match tables'
double-click) all draw with these.
"""

from __future__ import annotations

import math
import weakref
from functools import partial

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QFontMetrics
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from vo_al.core.base.errors import VoAlError
from vo_al.core.learning.classes import CLASS_NAMES
from vo_al.core.session.spectrum_details import SpectrumDetails, spectrum_details
from vo_al.core.spectra.lines import MARKED_LINES, O2_B_BAND_VAC, O2_B_LABEL, TARGET
from vo_al.core.spectra.preprocess import window_grid
from vo_al.core.vo.prefetch import SpectrumPrefetcher

WAVELENGTH_LABEL = "wavelength (Å, vacuum)"
FLUX_ARBITRARY = "flux (arbitrary)"
SCALED_FLUX = "scaled flux"
WHOLE_TITLE = "whole spectrum"
WINDOW_TITLE = "preprocessed window"
# (label, wavelength) in the order labels are placed: the lines, then the band's middle
LINE_MARKS = tuple((line.label, line.wavelength) for line in MARKED_LINES) + (
    (O2_B_LABEL, sum(O2_B_BAND_VAC) / 2),)
_TARGET_PEN = pg.mkPen((255, 80, 80), style=Qt.PenStyle.DashLine)
_OTHER_PEN = pg.mkPen((255, 190, 60, 200), style=Qt.PenStyle.DotLine)
_BAND_BRUSH = (120, 140, 255, 80)
_LABEL_GAP_PX = 6


def flux_label(unit: str) -> str:
    return f"flux ({unit})" if unit else FLUX_ARBITRARY


def fitting_labels(marks, low: float, high: float, pixels: float, width) -> list:
    """The (label, wavelength) of `marks` written on an axis from `low` to `high` Å over
    `pixels`: in the order given, each one whose text (`width(label)` pixels wide) overlaps
    none placed before it. Sorted by wavelength."""
    if not pixels > 0 or not high > low:
        return []
    scale = pixels / (high - low)
    placed, spans = [], []
    for label, wavelength in marks:
        if not low <= wavelength <= high:
            continue
        x, half = (wavelength - low) * scale, width(label) / 2 + _LABEL_GAP_PX / 2
        if all(x + half <= a or x - half >= b for a, b in spans):
            placed.append((label, wavelength))
            spans.append((x - half, x + half))
    return sorted(placed, key=lambda mark: mark[1])


class LineLabelAxis(pg.AxisItem):
    """The top axis of a spectrum plot: a tick and the label of each marked line that fits."""

    def __init__(self, marks=LINE_MARKS):
        super().__init__("top")
        self.marks = tuple(marks)
        self._names = {wavelength: label for label, wavelength in self.marks}
        self.enableAutoSIPrefix(False)

    def _width(self, text: str) -> float:
        return QFontMetrics(self.style.get("tickFont") or self.font()).horizontalAdvance(text)

    def tickValues(self, minVal, maxVal, size):
        shown = fitting_labels(self.marks, minVal, maxVal, size, self._width)
        return [(1.0, [wavelength for _, wavelength in shown])]

    def tickStrings(self, values, scale, spacing):
        return [self._names.get(v, "") for v in values]

    def shown_labels(self) -> list[str]:
        """The labels written at the axis's present range and length (for tests)."""
        low, high = self.range
        return [label for label, _ in fitting_labels(self.marks, low, high, self.width(),
                                                     self._width)]


def mark_lines(plot, labels: bool = True) -> None:
    """Mark the lines of MARKED_LINES and the O₂ B band on `plot` (a PlotWidget or PlotItem),
    outside its auto-range; with `labels`, their names on its top axis."""
    for line in MARKED_LINES:
        pen = _TARGET_PEN if line.kind == TARGET else _OTHER_PEN
        plot.addItem(pg.InfiniteLine(line.wavelength, angle=90, pen=pen, movable=False),
                     ignoreBounds=True)
    band = pg.LinearRegionItem(O2_B_BAND_VAC, movable=False, brush=_BAND_BRUSH,
                               pen=pg.mkPen(None))
    band.setZValue(-10)
    plot.addItem(band, ignoreBounds=True)
    if labels:
        plot.setAxisItems({"top": LineLabelAxis()})
        plot.showAxis("top")


def _spectrum_axes(plot, flux: str) -> None:
    plot.setLabel("bottom", WAVELENGTH_LABEL)
    plot.setLabel("left", flux)
    plot.getAxis("bottom").enableAutoSIPrefix(False)
    plot.getPlotItem().setMenuEnabled(False)
    plot.getViewBox().setAutoVisible(y=True)          # zoomed in on x, y fits what is seen
    plot.setFocusPolicy(Qt.FocusPolicy.NoFocus)       # the keys stay with the view


def window_plot(title: str = WINDOW_TITLE) -> pg.PlotWidget:
    """A plot for the 140-point window (scaled flux, -1..1), the lines marked and named."""
    plot = pg.PlotWidget(title=title)
    _spectrum_axes(plot, SCALED_FLUX)
    mark_lines(plot)
    return plot


def short_name(source: str) -> str:
    return source.rstrip("/").rsplit("/", 1)[-1] or source


def failure_text(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, VoAlError) else f"{type(exc).__name__}: {exc}"


class WholeSpectrumPlot(pg.PlotWidget):
    """The whole spectrum of a source file or URL, zoomable; read by the caller's
    `SpectrumPrefetcher` on its threads, so the event loop never waits for a file or a server.
    What cannot be read is said in the title and in `reason`, never raised."""

    shown = pyqtSignal(str)             # the source whose spectrum (or why not) is drawn
    _loaded = pyqtSignal(str)           # from a prefetch thread: that source's future is done

    def __init__(self, parent=None, title: str = WHOLE_TITLE):
        super().__init__(parent, title=title)
        _spectrum_axes(self, FLUX_ARBITRARY)
        mark_lines(self)
        self.curve = self.plot(pen=pg.mkPen("c"), connect="finite")
        self.source = ""                # the source on screen (or loading)
        self.spectrum = None            # its Spectrum once drawn
        self.reason = ""                # why it is not drawn, '' when it is or is loading
        self._future = None
        self._loaded.connect(self._on_loaded)        # queued: the slot runs on the GUI thread

    def show_source(self, source: str, prefetcher: SpectrumPrefetcher) -> None:
        """Draw `source`'s whole spectrum now if `prefetcher` has read it, else when it has."""
        source = str(source)
        self.source, self.spectrum, self.reason = source, None, ""
        self._future = future = prefetcher.request(source)
        if future.done():
            self._draw(future)
            return
        self.curve.setData([], [])
        self.setTitle(f"{WHOLE_TITLE}: loading {short_name(source)}…")
        future.add_done_callback(partial(_notify_loaded, weakref.ref(self), source))

    def clear_spectrum(self) -> None:
        """Nothing on screen; a read still under way is not drawn when it ends."""
        self.source, self.spectrum, self.reason, self._future = "", None, "", None
        self.curve.setData([], [])
        self.setTitle(WHOLE_TITLE)

    def _on_loaded(self, source: str) -> None:
        if source == self.source and self._future is not None:   # not moved on meanwhile
            self._draw(self._future)

    def _draw(self, future) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            self.curve.setData([], [])
            self.reason = failure_text(exc)
            self.setTitle(f"{WHOLE_TITLE} not available: {self.reason}")
            self.setLabel("left", FLUX_ARBITRARY)
        else:
            spectrum = self.spectrum = future.result()
            self.curve.setData(np.asarray(spectrum.wavelength), np.asarray(spectrum.flux))
            self.setTitle(f"{WHOLE_TITLE}: {short_name(self.source)}")
            self.setLabel("left", flux_label(spectrum.flux_unit))
            self.enableAutoRange()          # a new spectrum is shown whole, whatever the zoom
        self.shown.emit(self.source)


def _notify_loaded(plot_ref, source: str, _future) -> None:
    """On the prefetch thread. A weak reference: a pending download must not keep a closed
    plot alive, and the plot may be gone by the time the file arrives."""
    plot = plot_ref()
    if plot is None:
        return
    try:
        plot._loaded.emit(source)
    except RuntimeError:            # wrapped C/C++ object deleted: nobody to show it to
        pass


# -- the spectrum window of a table row ------------------------------------------------------------
def _number(value, digits: int) -> str:
    value = float(value)
    return f"{value:.{digits}f}" if math.isfinite(value) else "—"


def details_html(details: SpectrumDetails) -> str:
    """The metadata panel: what the pool keeps of the spectrum, the probabilities, the label."""
    m = details.meta
    survey_class = " / ".join(t for t in (m["cls"], m["subclass"]) if t) or "—"
    rows = [("designation", m["designation"] or "—"),
            ("RA, Dec (deg)", f"{_number(m['ra'], 6)}, {_number(m['dec'], 6)}"),
            ("S/N", _number(m["snr"], 1)), ("survey class", survey_class),
            ("z", _number(m["z"], 5)), ("instrument", m["instrument"] or "—"),
            ("obsid", m["obsid"] or "—"), ("pool row", str(details.pool_index))]
    if details.probabilities is None:
        rows.append(("probabilities", "not scored yet"))
    else:
        rows += [(f"p {name}", f"{p:.3f}") for name, p in zip(CLASS_NAMES,
                                                               details.probabilities)]
        rows.append(("scores of", details.scores))
    if details.label is not None:
        rows.append(("labelled", f"{details.label_name} ({details.label_origin})"))
    rows.append(("source", m["source"] or "—"))
    cells = "".join(f"<tr><td nowrap><b>{key}</b></td><td>{_escape(value)}</td></tr>"
                    for key, value in rows)
    return f"<table cellspacing='3'>{cells}</table>"


def _escape(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def title_text(details: SpectrumDetails) -> str:
    if details.label is not None:
        verdict = f"labelled {details.label_name} ({details.label_origin})"
    elif details.probabilities is not None:
        best = int(np.argmax(details.probabilities))
        verdict = f"predicted {CLASS_NAMES[best]} (p {details.probabilities[best]:.3f})"
    else:
        verdict = "not scored"
    return f"{details.name}  —  {verdict}"


class SpectrumView(QWidget):
    """The spectrum of one pool row: its whole spectrum with the lines marked, its window, and
    the metadata panel (`core.session.spectrum_details`). One window, reused for every row
    double-clicked; it never blocks the window it belongs to."""

    shown = pyqtSignal(str)             # the source whose spectrum (or why not) is drawn

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("vo-al — spectrum")
        self.resize(1000, 600)
        self.session = None
        self.details: SpectrumDetails | None = None
        self.prefetcher = SpectrumPrefetcher(None)
        self._grid = window_grid()
        self.title = QLabel("")
        self.title.setStyleSheet("font-weight:bold")
        self.whole = WholeSpectrumPlot()
        self.whole.shown.connect(self._whole_shown)
        self.window_plot = window_plot()
        self.window_curve = self.window_plot.plot(pen=pg.mkPen("w", width=1.5))
        self.panel = QLabel("")
        self.panel.setTextFormat(Qt.TextFormat.RichText)
        self.panel.setWordWrap(True)
        self.panel.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.panel.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.panel.setFixedWidth(340)
        self.reason = QLabel("")            # why the whole spectrum cannot be shown
        self.reason.setWordWrap(True)
        self.reason.setStyleSheet("color:#e06c00; font-weight:bold")
        self.reason.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

        plots = QVBoxLayout()
        plots.addWidget(self.whole, 3)
        plots.addWidget(self.window_plot, 2)
        body = QHBoxLayout()
        body.addLayout(plots, 1)
        body.addWidget(self.panel)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(body, 1)
        layout.addWidget(self.reason)

    def set_session(self, session) -> None:
        """Follow `session` (None: no project); nothing of the last one stays on screen."""
        self.session = session
        self.prefetcher.close()
        self.prefetcher = SpectrumPrefetcher.for_project(
            session.project if session is not None else None)
        if session is not None:
            self._grid = window_grid(session.project.settings.preprocess)
        self.details = None
        self.title.setText("")
        self.panel.setText("")
        self.reason.setText("")
        self.window_curve.setData([], [])
        self.whole.clear_spectrum()
        self.hide()                         # until a row of this session is asked for

    def show_pool_index(self, pool_index: int) -> None:
        """Show pool row `pool_index`: its metadata now, its whole spectrum when it is read.
        A row that cannot be shown (no such row) says why in the window."""
        if self.session is None:
            return
        try:
            details = spectrum_details(self.session, pool_index)
            row = self.session.project.pool.rows(np.array([details.pool_index]))[0]
        except VoAlError as exc:
            self.details = None
            self.title.setText(f"pool row {pool_index}")
            self.panel.setText("")
            self.window_curve.setData([], [])
            self.whole.clear_spectrum()
            self.reason.setText(failure_text(exc))
            return
        self.details = details
        self.title.setText(title_text(details))
        self.panel.setText(details_html(details))
        self.panel.setToolTip(details.source)
        self.window_curve.setData(self._grid, row)
        self.reason.setText("")
        self.setWindowTitle(f"vo-al — {details.name}")
        self.whole.show_source(details.source, self.prefetcher)

    def refresh_details(self) -> None:
        """Read the shown row's probabilities and label again (a step or a label may have
        changed them); the spectrum itself is not read again."""
        if self.session is None or self.details is None or not self.isVisible():
            return
        try:
            details = spectrum_details(self.session, self.details.pool_index)
        except VoAlError as exc:
            self.reason.setText(failure_text(exc))
            return
        self.details = details
        self.title.setText(title_text(details))
        self.panel.setText(details_html(details))

    def _whole_shown(self, source: str) -> None:
        if self.whole.reason:
            self.reason.setText(f"whole spectrum not available: {self.whole.reason}")
        self.shown.emit(source)
