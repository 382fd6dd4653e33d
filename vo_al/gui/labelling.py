"""The labelling view: one pending spectrum at a time, keys 1/2/3 label, Backspace undoes.

Labels go straight through `ActiveLearningSession.label` (durable per label). The oracle batch
(training data) and the precision sample (a test sample, NOT training data) are shown with a
different banner and colour so the expert always knows which one they are labelling.

The 140-point window comes from the memory-mapped pool at once; the whole spectrum comes from its
source file or URL, read (or downloaded) on background threads by a `SpectrumPrefetcher` for the
spectrum on screen and the next few, so a key press never waits for a file or a server.
"""

from __future__ import annotations

import weakref
from functools import partial


import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from vo_al.core.base.errors import VoAlError
from vo_al.core.vo.harvest import project_cache_folder
from vo_al.core.session.preferences import DEFAULT_LABEL_KEYS, UserPreferences
from vo_al.core.spectra.preprocess import HALPHA_VAC, HEI_6678_VAC, window_grid
from vo_al.core.session.loop import PRECISION_PURPOSE, PendingLabel
from vo_al.core.learning.classes import CLASS_NAMES
from vo_al.core.vo.prefetch import SpectrumPrefetcher
from vo_al.core.learning.strategies import entropy_score

QUERY_BANNER = "oracle batch — training data"
PRECISION_BANNER = "precision sample — not training data"
_BANNER_STYLE = {
    "query": "background:#1f5f99; color:white; font-weight:bold; padding:4px",
    "precision": "background:#b35900; color:white; font-weight:bold; padding:4px",
}


def help_text(keys: str) -> str:
    names = " · ".join(f"{k} {name}" for k, name in zip(keys, CLASS_NAMES))
    return f"{names} · Backspace undo · ←/→ move"


class LabellingView(QWidget):
    labelled = pyqtSignal(object, int)      # PendingLabel, label
    undone = pyqtSignal(object)             # (kind, pool_index, label) from the store
    current_changed = pyqtSignal(object)    # PendingLabel or None
    failed = pyqtSignal(str, object)        # what failed, the exception
    refused = pyqtSignal(str)               # why a key did nothing (labels locked)
    spectrum_shown = pyqtSignal(str)        # the source whose whole spectrum (or error) is drawn
    _loaded = pyqtSignal(str)               # from a prefetch thread: that source's future is done

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = None
        self.items: list[PendingLabel] = []
        self.position = 0
        self._proba = None
        self.label_keys = DEFAULT_LABEL_KEYS
        self.prefetch_count = UserPreferences().prefetch
        self.prefetcher = SpectrumPrefetcher(None)
        self._source_on_screen = ""
        self._loaded.connect(self._on_loaded)     # queued: the slot runs on the GUI thread
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        self.banner = QLabel("no spectra waiting for a label")
        self.banner.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title = QLabel("")
        self.info = QLabel("")
        self.help = QLabel(help_text(self.label_keys))
        self.notice = QLabel("")                # why the last key did nothing, if it did not
        self.notice.setWordWrap(True)
        self.window_plot = pg.PlotWidget(title="preprocessed window")
        self.full_plot = pg.PlotWidget(title="whole spectrum")
        for plot in (self.window_plot, self.full_plot):
            plot.setLabel("bottom", "wavelength (vacuum)", units="Å")
            plot.getPlotItem().setMenuEnabled(False)
            plot.getAxis("bottom").enableAutoSIPrefix(False)
            for wl, name in ((HALPHA_VAC, "Hα"), (HEI_6678_VAC, "He I 6678")):
                # named in the window only: 114 Å apart they overlap on the whole spectrum
                plot.addItem(pg.InfiniteLine(wl, angle=90,
                                             label=name if plot is self.window_plot else None,
                                             pen=pg.mkPen("r", style=Qt.PenStyle.DashLine),
                                             labelOpts={"position": 0.9}))
        self.window_curve = self.window_plot.plot(pen=pg.mkPen("w", width=1.5))
        self.full_curve = self.full_plot.plot(pen=pg.mkPen("c"))
        for w in (self.window_plot, self.full_plot):
            w.setFocusPolicy(Qt.FocusPolicy.NoFocus)

        layout = QVBoxLayout(self)
        for w in (self.banner, self.title, self.info, self.help, self.notice):
            w.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
            layout.addWidget(w)
        self.banner.setMinimumHeight(2 * self.banner.fontMetrics().height())
        layout.addWidget(self.window_plot, 2)
        layout.addWidget(self.full_plot, 1)
        self._grid = window_grid()

    # -- model -------------------------------------------------------------------------------
    def set_session(self, session) -> None:
        self.session = session
        self.prefetcher.close()
        cache = limits = None
        if session is not None:
            self._grid = window_grid(session.project.settings.preprocess)
            cache = project_cache_folder(session.project.folder)
            limits = session.project.settings.limits      # the bound on each file read
        self.prefetcher = SpectrumPrefetcher(cache, limits=limits)
        self.refresh()

    def set_preferences(self, prefs: UserPreferences) -> None:
        """Label keys and read-ahead depth from the user's preferences (validated there)."""
        prefs.validate()
        self.label_keys = prefs.label_keys
        self.prefetch_count = int(prefs.prefetch)
        self.help.setText(help_text(self.label_keys))

    def closeEvent(self, event) -> None:
        self.prefetcher.close()
        super().closeEvent(event)

    def current(self) -> PendingLabel | None:
        return self.items[self.position] if self.items else None

    def refresh(self, keep: int | None = None) -> None:
        """Re-read the pending list; stay on pool index `keep` (or the same position)."""
        self.items = self.session.pending() if self.session is not None else []
        self._proba = None
        if self.items:
            try:
                self._proba = self.session.probabilities()
            except VoAlError:
                self._proba = None
        if keep is not None:
            index = [p.pool_index for p in self.items]
            self.position = index.index(keep) if keep in index else 0
        self.position = min(self.position, max(0, len(self.items) - 1))
        self._show()

    def move(self, step: int) -> None:
        if self.items:
            self.position = (self.position + step) % len(self.items)
            self._show()

    def label_current(self, label: int) -> None:
        item = self.current()
        if item is None or self.session is None:
            return
        try:
            self.session.label(item.pool_index, label)
        except Exception as exc:
            self.failed.emit(f"Labelling {item.name}", exc)
            return
        self.labelled.emit(item, label)
        self.refresh()         # the labelled spectrum leaves the list: the same position is the next

    def undo(self) -> None:
        if self.session is None:
            return
        locked = self.session.labels_locked()
        if locked is not None:
            # said in the view, where the key was pressed: not an error, the project's state
            self.notice.setText(f"Backspace: nothing undone — {locked}")
            self.refused.emit(locked)
            return
        try:
            undone = self.session.undo_label()
        except Exception as exc:
            self.failed.emit("Undoing the last label", exc)
            return
        if undone is not None:
            self.refresh(keep=int(undone[1]))
            self.undone.emit(undone)

    # -- view --------------------------------------------------------------------------------
    def label_for_key(self, text: str) -> int | None:
        """The class a typed character stands for under the current keys, or None."""
        if len(text) != 1:
            return None
        index = self.label_keys.upper().find(text.upper())
        return index if index >= 0 else None

    def keyPressEvent(self, event) -> None:
        key = event.key()
        label = self.label_for_key(event.text())
        if label is not None:
            self.label_current(label)
        elif key == Qt.Key.Key_Backspace:
            self.undo()
        elif key == Qt.Key.Key_Left:
            self.move(-1)
        elif key == Qt.Key.Key_Right:
            self.move(1)
        else:
            super().keyPressEvent(event)

    def _show(self) -> None:
        item = self.current()
        self.current_changed.emit(item)
        self.notice.setText("")
        if item is None:
            self.banner.setText("no spectra waiting for a label")
            self.banner.setStyleSheet("")
            self.title.setText(self._idle_text())
            self.info.setText("")
            self.window_curve.setData([], [])
            self.full_curve.setData([], [])
            return
        purpose = item.purpose
        self.banner.setText(PRECISION_BANNER if purpose == PRECISION_PURPOSE else QUERY_BANNER)
        self.banner.setStyleSheet(_BANNER_STYLE[purpose])
        n_query = sum(1 for p in self.items if p.purpose != PRECISION_PURPOSE)
        self.title.setText(f"{item.name}  (pool #{item.pool_index})  —  {self.position + 1} of "
                           f"{len(self.items)} waiting ({n_query} oracle, "
                           f"{len(self.items) - n_query} precision)")
        pool = self.session.project.pool
        row = pool.rows(np.array([item.pool_index]))[0]
        self.window_curve.setData(self._grid, row)
        self.info.setText(self._probability_text(item.pool_index))
        ahead = [self.items[(self.position + k) % len(self.items)].pool_index
                 for k in range(min(len(self.items), 1 + self.prefetch_count))]
        sources = [str(s) for s in pool.metadata(np.array(ahead), ["source"])["source"]]
        self.show_source(sources[0])
        for source in sources[1:]:
            self.prefetcher.request(source)

    def _idle_text(self) -> str:
        """With nothing to label: what the candidates come from now and whether the labels
        may still change (after Finish: the final model, not the last iteration's)."""
        if self.session is None:
            return ""
        try:
            source = self.session.latest_scores_source()
        except VoAlError:
            source = None
        locked = self.session.labels_locked()
        if source is not None and source["scores"] == "final":
            return (f"finished: the candidates come from the final model ({source['model']}, "
                    f"trained on every label after iteration {source['iteration'] + 1}); "
                    "labels are locked")
        if locked is not None:
            return locked
        return ""

    def _probability_text(self, pool_index: int) -> str:
        if self._proba is None:
            return "not scored"
        p = np.asarray(self._proba[pool_index], dtype=np.float64)
        h = float(entropy_score(p[None, :])[0])
        parts = " · ".join(f"{name} {v:.3f}" for name, v in zip(CLASS_NAMES, p))
        return f"{parts} · entropy {h:.3f}"

    def show_source(self, source: str) -> None:
        """Draw `source`'s whole spectrum now if it has been read, else as soon as it is."""
        source = str(source)
        self._source_on_screen = source
        future = self.prefetcher.request(source)
        if future.done():
            self._draw(source, future)
            return
        self.full_curve.setData([], [])
        self.full_plot.setTitle(f"whole spectrum: loading {_short_name(source)}…")
        future.add_done_callback(partial(_notify_loaded, weakref.ref(self), source))

    def _on_loaded(self, source: str) -> None:
        if source == self._source_on_screen:        # the expert may have moved on meanwhile
            self._draw(source, self.prefetcher.request(source))

    def _draw(self, source: str, future) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            self.full_curve.setData([], [])
            reason = str(exc) if isinstance(exc, VoAlError) else f"{type(exc).__name__}: {exc}"
            self.full_plot.setTitle(f"whole spectrum not available: {reason}")
        else:
            spectrum = future.result()
            self.full_curve.setData(np.asarray(spectrum.wavelength), np.asarray(spectrum.flux))
            self.full_plot.setTitle(f"whole spectrum: {_short_name(source)}")
        self.spectrum_shown.emit(source)


def _notify_loaded(view_ref, source: str, _future) -> None:
    """On the prefetch thread. A weak reference: a pending download must not keep a closed view
    alive, and the view may be gone by the time the file arrives."""
    view = view_ref()
    if view is None:
        return
    try:
        view._loaded.emit(source)
    except RuntimeError:            # wrapped C/C++ object deleted: nobody to show it to
        pass


def _short_name(source: str) -> str:
    return source.rstrip("/").rsplit("/", 1)[-1] or source
