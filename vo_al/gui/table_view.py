"""The table view every tab uses, its filter box and its RA/Dec toggle.

The view: one line per row (a catalogue row is a spectrum, not a paragraph), whole rows
selected, sortable by a header click when the model sorts, columns as wide as their header and
a sample of their rows (never a pass over all rows: a table of 200 000 candidates sizes as fast
as one of 20), a long text cut at a width with its whole text in the tooltip of the cell that
cuts it. The filter box parses what is typed with the core's `parse_filter` (words and
comparisons such as `p_double > 0.9 and snr > 20`) and shows why an expression is wrong beside
it. The toggle writes RA/Dec in sexagesimal instead of degrees."""

from __future__ import annotations

from PyQt6.QtCore import QEvent, Qt
from PyQt6.QtWidgets import (QAbstractItemView, QLabel, QLineEdit, QStyledItemDelegate,
                             QStyleOptionViewItem, QTableView, QToolButton, QToolTip,
                             QVBoxLayout, QWidget)

from vo_al.core.base.errors import ParameterError
from vo_al.core.export.filters import parse_filter

SAMPLE_ROWS = 200          # rows a column is sized to, around the visible ones (Qt's precision)
MAX_COLUMN_CHARS = 48      # a path or URL column is cut there (a LAMOST file name is not)


class CutTextDelegate(QStyledItemDelegate):
    """Shows a cell's tooltip (the model's ToolTipRole: its whole text) only where the column
    is too narrow for the text: a tooltip repeating what is in full view is noise."""

    def is_cut(self, option: QStyleOptionViewItem, index) -> bool:
        return self.sizeHint(option, index).width() > option.rect.width()

    def helpEvent(self, event, view, option, index) -> bool:
        if event.type() == QEvent.Type.ToolTip and index.isValid() \
                and not self.is_cut(option, index):
            QToolTip.hideText()
            return True
        return super().helpEvent(event, view, option, index)


class CatalogueTableView(QTableView):
    def __init__(self, model, sortable: bool = True):
        super().__init__()
        self.setModel(model)
        self.setWordWrap(False)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSortingEnabled(sortable)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)   # a path keeps its file name
        self.cut_text = CutTextDelegate(self)
        self.setItemDelegate(self.cut_text)
        self.horizontalHeader().setResizeContentsPrecision(SAMPLE_ROWS)
        # a new table, or the same one written otherwise (sexagesimal): widths to the content
        model.modelReset.connect(self.fit_columns)
        model.dataChanged.connect(self.fit_columns)
        self.fit_columns()

    def max_column_width(self) -> int:
        return self.fontMetrics().averageCharWidth() * MAX_COLUMN_CHARS

    def fit_columns(self, *_args) -> None:
        """Each column as wide as its header and the rows Qt samples, at most
        `max_column_width`."""
        self.resizeColumnsToContents()
        header, widest = self.horizontalHeader(), self.max_column_width()
        for column in range(header.count()):
            if header.sectionSize(column) > widest:
                header.resizeSection(column, widest)

    def cell_is_cut(self, index) -> bool:
        """True when the cell of `index` shows less than its whole text."""
        option = QStyleOptionViewItem()
        self.initViewItemOption(option)
        option.rect = self.visualRect(index)
        return self.cut_text.is_cut(option, index)


def catalogue_table_view(model, sortable: bool = True) -> CatalogueTableView:
    return CatalogueTableView(model, sortable)


class FilterBox(QWidget):
    """A table's filter line over a column model and its `ArraySortFilterProxy`. A bad
    expression leaves the table as the last good one filtered it and says why under the box;
    a new table is filtered anew (its columns decide what the words mean)."""

    def __init__(self, model, proxy, placeholder: str, parent=None):
        super().__init__(parent)
        self.model, self.proxy = model, proxy
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(placeholder)
        self.edit.setClearButtonEnabled(True)
        self.edit.setToolTip("words are searched in the text columns; compare columns with "
                             "<, <=, >, >=, =, != (p_double > 0.9, origin = oracle); "
                             "join parts with 'and'")
        self.error = QLabel("")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color:#d03030")
        self.error.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.edit)
        layout.addWidget(self.error)
        self.edit.textChanged.connect(self.apply)
        model.modelReset.connect(self.apply)

    def apply(self, *_args) -> bool:
        """Filter the table by the box's text; False (and the reason shown) when it is not a
        filter."""
        try:
            parsed = parse_filter(self.edit.text(), self.model.table)
        except ParameterError as exc:
            self.error.setText(str(exc))
            self.error.show()
            return False
        self.error.hide()
        self.error.setText("")
        self.proxy.set_filter(parsed)
        return True


def coordinates_button(*models) -> QToolButton:
    """A checkable 'hh:mm:ss' button writing RA/Dec of `models` (ColumnTableModel) in
    sexagesimal while it is down. The main window gives it its one action for every table
    (`setDefaultAction`), so all tables follow one choice, saved with the preferences."""
    button = QToolButton()
    button.setText("hh:mm:ss")
    button.setCheckable(True)
    button.setToolTip("RA/Dec as hh:mm:ss.sss / ±dd:mm:ss.ss instead of degrees")
    for model in models:
        button.toggled.connect(model.set_sexagesimal)
    return button
