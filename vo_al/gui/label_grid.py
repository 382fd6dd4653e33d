"""The Label tab's grid mode: the batch and sample as pages of 3×4 small windows, for labelling
many similar spectra quickly.

The grid is another way of showing the labelling view's list, not a second labeller: a click on
a cell makes its spectrum the view's current one, and the view's own keys label it (1/2/3 through
the same core call as the single spectrum, Backspace, the arrows). The page shown is the one of
the current spectrum; after a label the current spectrum stays on the page while the page has
spectra waiting, so the grid turns to the next page when the page is all labelled. Each cell is
the 140-point window from the pool (no file is read), with the lines marked, its name, the
predicted class and its probability (hidden for the precision sample when the user's preference
says so) and the label recorded; the current cell is framed, the set tinted as its banner.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from vo_al.core.base.errors import VoAlError
from vo_al.core.learning.classes import CLASS_NAMES
from vo_al.core.session.loop import PRECISION_PURPOSE, QUERY_PURPOSE
from vo_al.core.spectra.preprocess import window_grid

from vo_al.gui.spectrum_view import mark_lines

GRID_ROWS, GRID_COLUMNS = 3, 4
PAGE_SIZE = GRID_ROWS * GRID_COLUMNS
GRID_TOGGLE = f"Grid {GRID_ROWS}×{GRID_COLUMNS}"
_TINT = {QUERY_PURPOSE: (31, 95, 153, 70), PRECISION_PURPOSE: (179, 89, 0, 70)}
_CURRENT_BORDER = pg.mkPen((255, 220, 0), width=3)
_WAITING_PEN = pg.mkPen("w", width=1.2)
_LABELLED_PEN = pg.mkPen((130, 130, 130), width=1)
# a cell's title is at least as wide as its text: longer names are cut in the middle (the
# view's title line above the grid has the whole name of the current spectrum)
CELL_NAME_CHARS = 24


def cell_name(name: str) -> str:
    if len(name) <= CELL_NAME_CHARS:
        return name
    keep = CELL_NAME_CHARS - 1
    return f"{name[:keep - keep // 2]}…{name[-(keep // 2):]}"


def first_waiting(items, positions) -> int | None:
    return next((p for p in positions if items[p].label is None), None)


class LabelGrid(pg.GraphicsLayoutWidget):
    """The grid of `view` (a `LabellingView`): it follows the view's list and current
    spectrum, and a click makes a cell current. `bar` holds its toggle and page buttons."""

    def __init__(self, view, parent=None):
        super().__init__(parent)
        self.view = view
        self.page = 0
        self.positions: list[int] = []          # the view's list positions on the page
        self._proba = None
        self._proba_of = None                   # the view's list the probabilities were read for
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)      # the keys stay with the view
        self.cells, self.curves = [], []
        for k in range(PAGE_SIZE):
            cell = self.addPlot(row=k // GRID_COLUMNS, col=k % GRID_COLUMNS)
            cell.hideAxis("left")
            cell.hideAxis("bottom")
            cell.setMenuEnabled(False)
            cell.setMouseEnabled(False, False)
            cell.hideButtons()
            cell.setYRange(-1.1, 1.1, padding=0)        # rows are scaled to -1..1: comparable
            mark_lines(cell, labels=False)
            self.curves.append(cell.plot(pen=_WAITING_PEN))
            self.cells.append(cell)
        self.scene().sigMouseClicked.connect(self._clicked)

        self.toggle = QPushButton(GRID_TOGGLE)
        self.toggle.setCheckable(True)
        self.toggle.setToolTip("show the batch and sample as a grid of small windows: click a "
                               "cell, press a label key")
        self.previous_button = QPushButton("◀ page")
        self.next_button = QPushButton("page ▶")
        self.page_label = QLabel("")
        self.bar = QWidget()
        row = QHBoxLayout(self.bar)
        row.setContentsMargins(0, 0, 0, 0)
        for w in (self.toggle, self.previous_button, self.page_label, self.next_button):
            w.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            row.addWidget(w)
        row.addStretch(1)
        self.toggle.toggled.connect(self._toggled)
        self.previous_button.clicked.connect(lambda: self.turn(-1))
        self.next_button.clicked.connect(lambda: self.turn(1))
        view.current_changed.connect(lambda _item: self.follow())
        view.labelled.connect(self._labelled)
        self._show_mode(False)

    # -- mode --------------------------------------------------------------------------------
    @property
    def is_on(self) -> bool:
        return self.toggle.isChecked()

    def set_on(self, on: bool) -> None:
        """Show the grid in place of the view's plots (or the plots again), as the toggle
        does."""
        if self.toggle.isChecked() != on:
            self.toggle.setChecked(on)              # through `toggled`
        else:
            self._show_mode(on)

    def _toggled(self, on: bool) -> None:
        self._show_mode(on)
        self.view.setFocus(Qt.FocusReason.OtherFocusReason)      # the keys label at once

    def _show_mode(self, on: bool) -> None:
        for plot in (self.view.window_plot, self.view.full_plot):
            plot.setVisible(not on)
        self.setVisible(on)
        for w in (self.previous_button, self.page_label, self.next_button):
            w.setVisible(on)
        self.follow()

    # -- following the view ------------------------------------------------------------------
    def follow(self) -> None:
        """Show the page of the view's current spectrum, that spectrum framed."""
        if not self.is_on:
            return
        items = self.view.items
        self.page = self.view.position // PAGE_SIZE if items else 0
        start = self.page * PAGE_SIZE
        self.positions = list(range(start, min(start + PAGE_SIZE, len(items))))
        pages = max(1, -(-len(items) // PAGE_SIZE))
        waiting = sum(1 for i in items if i.label is None)
        self.page_label.setText(f"page {self.page + 1} of {pages} · {waiting} of {len(items)} "
                                "waiting" if items else "no batch to label")
        self.previous_button.setEnabled(self.page > 0)
        self.next_button.setEnabled(self.page < pages - 1)
        session = self.view.session
        rows = (session.project.pool.rows(np.array([items[p].pool_index
                                                    for p in self.positions]))
                if self.positions else None)
        grid = window_grid(session.project.settings.preprocess) if session is not None else None
        proba = self._probabilities()
        for k, (cell, curve) in enumerate(zip(self.cells, self.curves)):
            if k >= len(self.positions):
                curve.setData([], [])
                cell.setTitle("")
                cell.getViewBox().setBackgroundColor(None)
                cell.getViewBox().setBorder(None)
                continue
            position = self.positions[k]
            item = items[position]
            curve.setData(grid, rows[k])
            curve.setPen(_WAITING_PEN if item.label is None else _LABELLED_PEN)
            cell.setTitle(self._cell_title(item, proba), size="8pt")
            cell.getViewBox().setBackgroundColor(_TINT.get(item.purpose))
            cell.getViewBox().setBorder(_CURRENT_BORDER if position == self.view.position
                                        else None)
            cell.setXRange(grid[0], grid[-1], padding=0)

    def _probabilities(self):
        """The view's probabilities, read once per list the view loads (None: not scored)."""
        items = self.view.items
        if items is not self._proba_of:
            self._proba_of = items
            try:
                self._proba = self.view.session.probabilities() if items else None
            except VoAlError:
                self._proba = None
        return self._proba

    def _cell_title(self, item, proba) -> str:
        if self.view.blind_precision_sample and item.purpose == PRECISION_PURPOSE:
            guess = "p hidden"
        elif proba is None:
            guess = "not scored"
        else:
            p = np.asarray(proba[item.pool_index], dtype=np.float64)
            best = int(np.argmax(p))
            guess = f"{CLASS_NAMES[best]} {p[best]:.2f}"
        recorded = "waiting" if item.label is None else f"✓ {CLASS_NAMES[item.label]}"
        return f"{cell_name(item.name)}<br>{guess} · {recorded}"

    def _labelled(self, item, _label) -> None:
        """After a label: stay on the labelled spectrum's page while it has spectra waiting."""
        if not self.is_on:
            return
        items = self.view.items
        index = [i.pool_index for i in items]
        if item.pool_index not in index:
            return
        start = index.index(item.pool_index) // PAGE_SIZE * PAGE_SIZE
        page = range(start, min(start + PAGE_SIZE, len(items)))
        if self.view.position in page:
            return
        waiting = first_waiting(items, page)
        if waiting is not None:
            self.view.go_to(waiting)

    # -- the user ----------------------------------------------------------------------------
    def cell_at(self, scene_pos) -> int | None:
        """The index of the cell under a scene position, or None."""
        return next((k for k, cell in enumerate(self.cells)
                     if cell.sceneBoundingRect().contains(scene_pos)), None)

    def select_cell(self, k: int) -> None:
        """Make cell `k`'s spectrum the view's current one (keys then label it)."""
        if 0 <= k < len(self.positions):
            self.view.go_to(self.positions[k])

    def turn(self, step: int) -> None:
        """To the previous or next page: its first spectrum waiting, else its first."""
        items = self.view.items
        start = (self.page + step) * PAGE_SIZE
        if not 0 <= start < len(items):
            return
        page = range(start, min(start + PAGE_SIZE, len(items)))
        waiting = first_waiting(items, page)
        self.view.go_to(waiting if waiting is not None else start)

    def _clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        k = self.cell_at(event.scenePos())
        if k is not None:
            self.select_cell(k)


def add_grid_mode(view) -> LabelGrid:
    """Give the labelling view `view` its grid mode: the toggle row above its plots, and the
    grid in their place while the toggle is on."""
    grid = LabelGrid(view)
    layout = view.window_plot.parentWidget().layout()
    at = layout.indexOf(view.window_plot)
    if at < 0:
        raise RuntimeError("the labelling view's plots are not in its spectrum column's layout")
    layout.insertWidget(at, grid.bar)
    layout.insertWidget(at + 1, grid, 3)
    return grid
