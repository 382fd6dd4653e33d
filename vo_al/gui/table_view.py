"""The table view every tab uses: one line per row (a catalogue row is a spectrum, not a
paragraph), whole rows selected, sortable by a header click when the model sorts."""

from __future__ import annotations

from PyQt6.QtWidgets import QAbstractItemView, QTableView


def catalogue_table_view(model, sortable: bool = True) -> QTableView:
    view = QTableView()
    view.setModel(model)
    view.setWordWrap(False)
    view.verticalHeader().setDefaultSectionSize(view.fontMetrics().height() + 6)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSortingEnabled(sortable)
    return view
