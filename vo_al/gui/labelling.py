"""The labelling view: the current iteration's batch and sample in a list beside the spectrum;
keys 1/2/3 label the spectrum on screen, labelled or not, and Backspace undoes the last label.

Labels go straight through `ActiveLearningSession.relabel` (durable per label): any spectrum of
the list can be labelled again, by a click on its row or the arrow keys, until the labels lock
(an estimate or the finish; a key then says why it did nothing). A line under the spectrum says
what each key recorded and what Backspace undid. The oracle batch (training data) and the
precision sample (a test sample, NOT training data) are shown with a different banner and
colour, in the list too, so the expert always knows which one they are labelling. With the
preference `blind_precision_sample` the model's probabilities are not shown for the precision
sample: seen, they can bias the verdicts the precision estimate is made from.

The 140-point window comes from the memory-mapped pool at once; the whole spectrum comes from its
source file or URL, read (or downloaded) on background threads by a `SpectrumPrefetcher` for the
spectrum on screen and the next few, so a key press never waits for a file or a server.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QSizePolicy,
                             QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from vo_al.core.base.errors import VoAlError
from vo_al.core.session.preferences import DEFAULT_LABEL_KEYS, UserPreferences
from vo_al.core.spectra.preprocess import window_grid
from vo_al.core.session.loop import PRECISION_PURPOSE, PURPOSE_NAMES, QUERY_PURPOSE, BatchLabel
from vo_al.core.learning.classes import CLASS_NAMES
from vo_al.core.vo.prefetch import SpectrumPrefetcher
from vo_al.core.learning.strategies import entropy_score

from vo_al.gui.spectrum_view import WholeSpectrumPlot, window_plot

QUERY_BANNER = "oracle batch — training data"
PRECISION_BANNER = "precision sample — not training data"
BLIND_TEXT = ("probabilities hidden while you label the precision sample (your preference: "
              "blind precision sample)")
_PURPOSE_COLOUR = {QUERY_PURPOSE: "#1f5f99", PRECISION_PURPOSE: "#b35900"}
_BANNER_STYLE = {purpose: f"background:{colour}; color:white; font-weight:bold; padding:4px"
                 for purpose, colour in _PURPOSE_COLOUR.items()}
# the label list: its columns, and the set a spectrum belongs to in one word (colour-coded)
LIST_COLUMNS = ("#", "spectrum", "set", "label")
_SET_WORDS = {QUERY_PURPOSE: "batch", PRECISION_PURPOSE: "sample"}
WAITING = "waiting"


def help_text(keys: str) -> str:
    names = " · ".join(f"{k} {name}" for k, name in zip(keys, CLASS_NAMES))
    return f"{names} · Backspace undo · ↑/↓ or a click: any spectrum of the list, to relabel"


class LabellingView(QWidget):
    labelled = pyqtSignal(object, int)      # BatchLabel as recorded, label
    undone = pyqtSignal(object)             # (kind, pool_index, label) from the store
    current_changed = pyqtSignal(object)    # BatchLabel or None
    failed = pyqtSignal(str, object)        # what failed, the exception
    refused = pyqtSignal(str)               # why a key did nothing (labels locked)
    spectrum_shown = pyqtSignal(str)        # the source whose whole spectrum (or error) is drawn

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = None
        self.items: list[BatchLabel] = []
        self.position = 0
        self._proba = None
        self._locked: str | None = None         # why the labels cannot change now, if they cannot
        self.label_keys = DEFAULT_LABEL_KEYS
        self.prefetch_count = UserPreferences().prefetch
        self.blind_precision_sample = UserPreferences().blind_precision_sample
        self.prefetcher = SpectrumPrefetcher(None)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

        self.banner = QLabel("no spectra waiting for a label")
        self.banner.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title = QLabel("")
        self.info = QLabel("")
        self.help = QLabel(help_text(self.label_keys))
        # what the last key recorded, what Backspace undid, or why a key did nothing
        self.notice = QLabel("")
        self.notice.setWordWrap(True)
        self.window_plot = window_plot()           # the plots of every tab (spectrum_view)
        self.full_plot = WholeSpectrumPlot()
        self.full_plot.shown.connect(self.spectrum_shown)
        self.window_curve = self.window_plot.plot(pen=pg.mkPen("w", width=1.5))
        self.full_curve = self.full_plot.curve

        spectrum = QWidget()
        layout = QVBoxLayout(spectrum)
        layout.setContentsMargins(0, 0, 0, 0)
        for w in (self.banner, self.title, self.info, self.help, self.notice):
            w.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
            layout.addWidget(w)
        self.banner.setMinimumHeight(2 * self.banner.fontMetrics().height())
        layout.addWidget(self.window_plot, 2)
        layout.addWidget(self.full_plot, 1)

        self.list_summary = QLabel("")
        self.list_summary.setWordWrap(True)
        self.label_list = _label_list()
        self.label_list.cellClicked.connect(self._row_clicked)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(self.list_summary)
        side_layout.addWidget(self.label_list, 1)
        # room for the set and the label beside a survey file name shortened in the middle
        side.setMinimumWidth(48 * self.label_list.fontMetrics().averageCharWidth())
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(spectrum)
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)
        splitter.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        outer = QHBoxLayout(self)
        outer.addWidget(splitter)
        self._grid = window_grid()

    # -- model -------------------------------------------------------------------------------
    def set_session(self, session) -> None:
        self.session = session
        self.prefetcher.close()
        if session is not None:
            self._grid = window_grid(session.project.settings.preprocess)
        # reads within the project's limits, downloads into its harvest cache
        self.prefetcher = SpectrumPrefetcher.for_project(
            session.project if session is not None else None)
        self.notice.setText("")             # nothing of another project's keys
        self._load()
        self.position = self._next_waiting(0) or 0
        self._show()

    def set_preferences(self, prefs: UserPreferences) -> None:
        """Label keys, read-ahead depth and the blind precision sample from the user's
        preferences (validated there)."""
        prefs.validate()
        self.label_keys = prefs.label_keys
        self.prefetch_count = int(prefs.prefetch)
        self.blind_precision_sample = prefs.blind_precision_sample
        self.help.setText(self._help_text())
        item = self.current()
        if item is not None:
            self.info.setText(self._info_text(item))

    def closeEvent(self, event) -> None:
        self.prefetcher.close()
        super().closeEvent(event)

    def current(self) -> BatchLabel | None:
        return self.items[self.position] if self.items else None

    def waiting(self) -> list[BatchLabel]:
        """The spectra of the list still waiting for a label."""
        return [item for item in self.items if item.label is None]

    def _load(self) -> None:
        """Read the current iteration's batch and sample with their labels, and whether they
        may change. After the finish the list is empty: the view then describes the final
        model, not the last iteration (`_idle_text`)."""
        self.items, self._proba, self._locked = [], None, None
        session = self.session
        if session is None:
            return
        self._locked = session.labels_locked()
        if session.store.final_record() is None:
            self.items = session.batch_labels()
        if self.items:
            try:
                self._proba = session.probabilities()
            except VoAlError:
                self._proba = None

    def refresh(self, keep: int | None = None) -> None:
        """Re-read the list; stay on pool index `keep` (or the same position)."""
        self._load()
        if keep is not None:
            index = [p.pool_index for p in self.items]
            self.position = index.index(keep) if keep in index else 0
        self.position = min(self.position, max(0, len(self.items) - 1))
        self._show()

    def move(self, step: int) -> None:
        """Move over the whole list (labelled spectra too), wrapping at its ends."""
        if self.items:
            self.position = (self.position + step) % len(self.items)
            self._show()

    def go_to(self, position: int) -> None:
        """Show the list's spectrum at `position` (a click on its row); the keys stay here."""
        if 0 <= position < len(self.items):
            self.position = position
            self._show()
        self.setFocus(Qt.FocusReason.MouseFocusReason)

    def _row_clicked(self, row: int, _column: int) -> None:
        self.go_to(row)

    def _next_waiting(self, start: int) -> int | None:
        """The position of the first spectrum waiting for a label from `start` on, wrapping."""
        n = len(self.items)
        return next((p % n for p in range(start, start + n)
                     if self.items[p % n].label is None), None)

    def label_current(self, label: int) -> None:
        """Record `label` for the spectrum on screen (labelled already or not), say so, and go
        on to the next one waiting (or, with none left, the next of the list)."""
        item = self.current()
        if item is None or self.session is None:
            return
        key = self.label_keys[label]
        locked = self.session.labels_locked()
        if locked is not None:
            # said in the view, where the key was pressed: not an error, the project's state
            self.notice.setText(f"{key}: nothing recorded — {locked}")
            self.refused.emit(locked)
            return
        try:
            recorded = self.session.relabel(item.pool_index, label)
        except Exception as exc:
            self.failed.emit(f"Labelling {item.name}", exc)
            return
        was = "" if item.label is None else f" (was {CLASS_NAMES[item.label]})"
        self.notice.setText(f"{key} {CLASS_NAMES[label]} → {item.name}{was}")
        self._load()
        after = self._next_waiting(self.position + 1)
        self.position = after if after is not None else min(self.position + 1,
                                                             len(self.items) - 1)
        self._show()
        self.labelled.emit(recorded, label)

    def undo(self) -> None:
        """Remove the most recent label of the iteration (Backspace); its spectrum is shown,
        waiting again, and the line says what was undone."""
        if self.session is None:
            return
        locked = self.session.labels_locked()
        if locked is not None:
            self.notice.setText(f"Backspace: nothing undone — {locked}")
            self.refused.emit(locked)
            return
        try:
            undone = self.session.undo_label()
        except Exception as exc:
            self.failed.emit("Undoing the last label", exc)
            return
        if undone is None:
            self.notice.setText("Backspace: nothing to undo — no label recorded in this "
                                "iteration")
            return
        kind, index, label = undone
        self.refresh(keep=int(index))
        item = self.current()
        where = PURPOSE_NAMES[PRECISION_PURPOSE if kind == "precision" else QUERY_PURPOSE]
        name = item.name if item is not None and item.pool_index == index else f"pool #{index}"
        self.notice.setText(f"Backspace: removed {CLASS_NAMES[label]} from {name} ({where}); "
                            "it waits for a label again")
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
        elif key in (Qt.Key.Key_Left, Qt.Key.Key_Up):
            self.move(-1)
        elif key in (Qt.Key.Key_Right, Qt.Key.Key_Down):
            self.move(1)
        else:
            super().keyPressEvent(event)

    def _show(self) -> None:
        item = self.current()
        self.current_changed.emit(item)
        self._fill_list()
        self.help.setText(self._help_text())
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
        recorded = WAITING if item.label is None else f"labelled {CLASS_NAMES[item.label]}"
        self.title.setText(f"{item.name}  (pool #{item.pool_index})  —  {self.position + 1} of "
                           f"{len(self.items)} · {PURPOSE_NAMES[purpose]} · {recorded}")
        pool = self.session.project.pool
        row = pool.rows(np.array([item.pool_index]))[0]
        self.window_curve.setData(self._grid, row)
        self.info.setText(self._info_text(item))
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

    def _help_text(self) -> str:
        if self._locked is not None and self.items:
            return f"read only: {self._locked}"
        return help_text(self.label_keys)

    def _fill_list(self) -> None:
        """The label list: one row per spectrum of the batch and sample, the one on screen
        selected; the set coloured as its banner, the label recorded or 'waiting'."""
        table = self.label_list
        table.setRowCount(len(self.items))
        for row, item in enumerate(self.items):
            label = WAITING if item.label is None else CLASS_NAMES[item.label]
            for column, text in enumerate((str(row + 1), item.name, _SET_WORDS[item.purpose],
                                           label)):
                cell = table.item(row, column)
                if cell is None:
                    cell = QTableWidgetItem()
                    table.setItem(row, column, cell)
                cell.setText(text)
            table.item(row, 1).setToolTip(item.name)
            purpose = table.item(row, 2)
            purpose.setBackground(QColor(_PURPOSE_COLOUR[item.purpose]))
            purpose.setForeground(QColor("white"))
            purpose.setToolTip(PURPOSE_NAMES[item.purpose])
            table.item(row, 3).setForeground(QColor("gray" if item.label is None else "black"))
        if self.items:
            table.setCurrentCell(self.position, 0)
            table.scrollToItem(table.item(self.position, 0))
        waiting = self.waiting()
        by_set = {p: sum(1 for i in waiting if i.purpose == p) for p in _SET_WORDS}
        self.list_summary.setText(
            f"{len(self.items) - len(waiting)} of {len(self.items)} labelled · {len(waiting)} "
            f"waiting ({by_set[QUERY_PURPOSE]} batch, {by_set[PRECISION_PURPOSE]} sample)"
            if self.items else "no batch to label in this iteration")

    def _info_text(self, item: BatchLabel) -> str:
        if self.blind_precision_sample and item.purpose == PRECISION_PURPOSE:
            return BLIND_TEXT
        return self._probability_text(item.pool_index)

    def _probability_text(self, pool_index: int) -> str:
        if self._proba is None:
            return "not scored"
        p = np.asarray(self._proba[pool_index], dtype=np.float64)
        h = float(entropy_score(p[None, :])[0])
        parts = " · ".join(f"{name} {v:.3f}" for name, v in zip(CLASS_NAMES, p))
        return f"{parts} · entropy {h:.3f}"

    def show_source(self, source: str) -> None:
        """Draw `source`'s whole spectrum now if it has been read, else as soon as it is."""
        self.full_plot.show_source(source, self.prefetcher)


def _label_list() -> QTableWidget:
    """A compact read-only table of LIST_COLUMNS; rows are chosen by a click, and it never
    takes the keyboard (the keys label in the view)."""
    table = QTableWidget(0, len(LIST_COLUMNS))
    table.setHorizontalHeaderLabels(LIST_COLUMNS)
    table.verticalHeader().setVisible(False)
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 6)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    table.setWordWrap(False)
    table.setTextElideMode(Qt.TextElideMode.ElideMiddle)    # a name's both ends tell them apart
    # the row on screen stands out although the table never has the focus
    table.setStyleSheet("QTableWidget::item:selected { background: #ffd54f; color: black; }")
    header = table.horizontalHeader()
    for column in range(len(LIST_COLUMNS)):
        header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
    header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
    return table
