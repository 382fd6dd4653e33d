"""A sort/filter proxy for column tables of millions of rows: the sorting and the filtering are
numpy passes over the column arrays, never calls of the Python `data()`.

`QSortFilterProxyModel` compares rows through the source's `data()`: O(N log N) Python calls to
sort and N x columns calls to filter, seconds to minutes for the few hundred thousand
predicted targets of an early iteration on a LAMOST-sized pool. `ArraySortFilterProxy` keeps
two int arrays instead (view row -> source row, source row -> view row or -1), so the mapping and
`data()` are O(1), and builds them with a stable `np.argsort` of the sort column and the core's
filter (`core.export.filters`: a vectorised substring search of the text columns and numeric
comparisons such as `p_double > 0.9`), the one an export of the filtered rows uses too.

The source must be a column model: `.columns` (the column names, in order) and `.table`
({name: array}), like `dashboard.ColumnTableModel`.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from PyQt6.QtCore import QAbstractItemModel, QAbstractProxyModel, QModelIndex, QObject, Qt

from vo_al.core.export.filters import TableFilter, folded_column, text_filter

_HINT = QAbstractItemModel.LayoutChangeHint
_EMPTY = np.empty(0, dtype=np.int64)
_KEPT_ORDERS = 4          # sort permutations kept per table (8 bytes a row each)
# roles whose change leaves the values as they were (the text they are written in)
_SHOWN_ROLES = (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole)


# -- numpy helpers (no Qt) ------------------------------------------------------------------------
def sort_key(values) -> tuple[np.ndarray, np.ndarray | None]:
    """(key, missing): the array `np.argsort` orders as the column should be (numbers
    numerically, strings lexicographically) and a mask of the rows that sort last (NaN, NaT)
    or None."""
    a = np.asarray(values)
    kind = a.dtype.kind
    if kind == "b":
        return a.astype(np.int8), None
    if kind in "iu":
        return a, None
    if kind in "fc":
        missing = np.isnan(a)
        return a, missing if missing.any() else None
    if kind in "mM":
        missing = np.isnat(a)
        return a, missing if missing.any() else None
    if kind in "US":
        return a, None
    if kind == "O" and a.size:
        inferred = np.array(a.tolist())
        if inferred.dtype.kind in "biufcUmM":
            return sort_key(inferred)
    return a.astype(str), None


def stable_order(values, descending: bool = False) -> np.ndarray:
    """The row order of a stable sort of `values` (equal values keep their row order in both
    directions); NaN/NaT last in both directions."""
    key, missing = sort_key(values)
    if missing is None:
        return _stable_argsort(key, descending)
    present = np.flatnonzero(~missing)
    return np.concatenate([present[_stable_argsort(key[present], descending)],
                           np.flatnonzero(missing)])


def _stable_argsort(key: np.ndarray, descending: bool) -> np.ndarray:
    if not descending:
        return np.argsort(key, kind="stable").astype(np.int64, copy=False)
    # stable descending: sort the reversed array ascending, then read it backwards
    backwards = np.argsort(key[::-1], kind="stable").astype(np.int64, copy=False)
    return (len(key) - 1 - backwards)[::-1]


# -- the proxy ------------------------------------------------------------------------------------
class ArraySortFilterProxy(QAbstractProxyModel):
    """Sorts (header clicks: `sort`) and filters (`set_filter`: a parsed `TableFilter`;
    `setFilterFixedString`: a plain text) a column model with numpy. A text keeps the rows where
    any text column contains it, case-insensitively; numbers are compared, never searched. A
    reset of the source (a new table) keeps the sort and the filter; a sort or filter change is
    a layout change that moves the persistent indexes (the selection, the current row) with
    their rows."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._sort_column = -1
        self._sort_order = Qt.SortOrder.AscendingOrder
        self._filter = TableFilter()
        self._order: np.ndarray | None = None      # full sort permutation; None: source order
        self._keep: np.ndarray | None = None       # rows passing the filter; None: all
        self._to_source = _EMPTY                   # view row -> source row
        self._from_source = _EMPTY                 # source row -> view row, -1 filtered out
        self._folded: dict = {}                    # column name -> fold_case array / None
        self._orders: OrderedDict = OrderedDict()  # (column name, descending) -> permutation
        self._connections: list = []

    # -- source -----------------------------------------------------------------------------------
    def setSourceModel(self, model) -> None:
        if model is not None and not (hasattr(model, "table") and hasattr(model, "columns")):
            raise TypeError(f"ArraySortFilterProxy needs a column model (.table and .columns, "
                            f"like ColumnTableModel), not {type(model).__name__}")
        self.beginResetModel()
        for signal, slot in self._connections:
            try:
                signal.disconnect(slot)
            except (TypeError, RuntimeError):     # the old source is gone already
                pass
        self._connections = []
        super().setSourceModel(model)
        if model is not None:
            # every structural change of the source is a reset here; ColumnTableModel only
            # ever resets (set_table)
            pairs = [(model.modelAboutToBeReset, self.beginResetModel),
                     (model.modelReset, self._source_reset),
                     (model.layoutAboutToBeChanged, self._source_about_to_change),
                     (model.layoutChanged, self._source_changed),
                     (model.rowsAboutToBeInserted, self._source_about_to_change),
                     (model.rowsInserted, self._source_changed),
                     (model.rowsAboutToBeRemoved, self._source_about_to_change),
                     (model.rowsRemoved, self._source_changed),
                     (model.columnsAboutToBeInserted, self._source_about_to_change),
                     (model.columnsInserted, self._source_changed),
                     (model.columnsAboutToBeRemoved, self._source_about_to_change),
                     (model.columnsRemoved, self._source_changed),
                     (model.dataChanged, self._source_data_changed),
                     (model.headerDataChanged, self._source_header_changed)]
            for signal, slot in pairs:
                signal.connect(slot)
            self._connections = pairs
        self._forget_table()
        self._rebuild()
        self.endResetModel()

    def _source_about_to_change(self, *_args) -> None:
        self.beginResetModel()

    def _source_changed(self, *_args) -> None:
        self._source_reset()

    def _source_reset(self) -> None:
        self._forget_table()
        self._rebuild()
        self.endResetModel()

    def _source_data_changed(self, _first=None, _last=None, roles=()) -> None:
        shown_only = bool(roles) and all(r in _SHOWN_ROLES for r in roles)
        if not shown_only:
            # values changed in place: the cached keys are stale, the order may change
            self._forget_table()
            self._relayout(_HINT.NoLayoutChangeHint, self._rebuild)
        # else only their text changed (sexagesimal): the sort and the filter read the values
        if self.rowCount() and self.columnCount():
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(self.rowCount() - 1, self.columnCount() - 1))

    def _source_header_changed(self, orientation, first, last) -> None:
        if orientation == Qt.Orientation.Horizontal:
            self.headerDataChanged.emit(orientation, first, last)
        elif self.rowCount():
            self.headerDataChanged.emit(orientation, 0, self.rowCount() - 1)

    def _forget_table(self) -> None:
        self._folded.clear()
        self._orders.clear()
        self._keep = None

    def _column_names(self) -> list:
        model = self.sourceModel()
        return [] if model is None else list(model.columns)

    def _values(self, name) -> np.ndarray:
        return np.asarray(self.sourceModel().table[name])

    # -- sort and filter --------------------------------------------------------------------------
    def sortColumn(self) -> int:
        return self._sort_column

    def sortOrder(self) -> Qt.SortOrder:
        return self._sort_order

    def filterFixedString(self) -> str:
        """The text of the filter (a plain text or an expression), "" without one."""
        return self._filter.expression

    def table_filter(self) -> TableFilter:
        return self._filter

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Order the rows by `column` (-1: the source's order); a stable sort, NaN last."""
        self._sort_column, self._sort_order = int(column), Qt.SortOrder(order)
        self._relayout(_HINT.VerticalSortHint, self._rebuild)

    def setFilterFixedString(self, text: str) -> None:
        """Show only the rows where a text column contains `text` (any case); "" shows all."""
        self.set_filter(text_filter(text))

    def set_filter(self, table_filter: TableFilter) -> None:
        """Show only the rows `table_filter` keeps (core.export.filters.parse_filter)."""
        previous = self._filter
        self._filter = table_filter
        if (table_filter.words, table_filter.comparisons) == (previous.words,
                                                              previous.comparisons):
            return
        # typing on: the rows the longer text keeps are among those the shorter one kept
        narrowing = table_filter.narrows(previous) and self._keep is not None

        def refilter():
            within = np.flatnonzero(self._keep) if narrowing else None
            self._keep = self._filter_mask(within)
            self._assemble()
        self._relayout(_HINT.NoLayoutChangeHint, refilter)

    def _rebuild(self) -> None:
        """Recompute the sort and the filter for the current table (after a reset or a sort)."""
        self._order = self._sort_permutation()
        if self._keep is None:
            self._keep = self._filter_mask()
        self._assemble()

    def _assemble(self) -> None:
        model = self.sourceModel()
        n = 0 if model is None else model.rowCount()
        rows = np.arange(n, dtype=np.int64) if self._order is None else self._order
        if self._keep is not None:
            rows = rows[self._keep[rows]]
        from_source = np.full(n, -1, dtype=np.int64)
        from_source[rows] = np.arange(len(rows), dtype=np.int64)
        self._to_source, self._from_source = rows, from_source

    def _sort_permutation(self) -> np.ndarray | None:
        names = self._column_names()
        if not 0 <= self._sort_column < len(names):
            return None
        key = (names[self._sort_column], self._sort_order == Qt.SortOrder.DescendingOrder)
        order = self._orders.get(key)
        if order is None:
            order = stable_order(self._values(key[0]), descending=key[1])
            self._orders[key] = order
            while len(self._orders) > _KEPT_ORDERS:
                self._orders.popitem(last=False)
        self._orders.move_to_end(key)
        return order

    def _filter_mask(self, within: np.ndarray | None = None) -> np.ndarray | None:
        """The rows passing the filter (of `within` only, when given), or None without one."""
        model = self.sourceModel()
        if self._filter.is_empty or model is None:
            return None
        table = {name: model.table[name] for name in self._column_names()}
        return self._filter.mask(table, model.rowCount(), self._folded_column, within)

    def _folded_column(self, name) -> np.ndarray | None:
        if name not in self._folded:
            self._folded[name] = folded_column(self._values(name))
        return self._folded[name]

    def _relayout(self, hint, update) -> None:
        """Run `update` (which recomputes the mapping) inside a layout change, moving every
        persistent index to the view row of its source row (invalid when filtered out)."""
        self.layoutAboutToBeChanged.emit([], hint)
        # read after the signal: the selection model saves its selection as persistent indexes
        # in its slot
        persistent = self.persistentIndexList()
        before = self._to_source
        update()
        if persistent:
            rows = np.fromiter((i.row() for i in persistent), dtype=np.int64,
                               count=len(persistent))
            source = np.full(len(rows), -1, dtype=np.int64)
            inside = (rows >= 0) & (rows < len(before))
            source[inside] = before[rows[inside]]
            now = self.map_rows_from_source(source)
            moved = [self.createIndex(int(r), i.column()) if r >= 0 else QModelIndex()
                     for r, i in zip(now, persistent)]
            self.changePersistentIndexList(persistent, moved)
        self.layoutChanged.emit([], hint)

    # -- vectorised mapping -----------------------------------------------------------------------
    @property
    def view_to_source(self) -> np.ndarray:
        """Source row of each view row (read only: do not change)."""
        return self._to_source

    def map_rows_from_source(self, rows) -> np.ndarray:
        """The view rows of source `rows` (-1: filtered out or not a row)."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        inside = (rows >= 0) & (rows < len(self._from_source))
        out = np.full(rows.shape, -1, dtype=np.int64)
        out[inside] = self._from_source[rows[inside]]
        return out

    def array_bytes(self) -> int:
        """Bytes this proxy holds in numpy arrays: the mapping, the filter, the kept sort
        permutations and the case-folded text columns."""
        arrays = (self._to_source, self._from_source, self._keep, *self._orders.values(),
                  *self._folded.values())
        return sum(a.nbytes for a in arrays if a is not None)

    # -- QAbstractProxyModel ----------------------------------------------------------------------
    def mapToSource(self, proxy_index: QModelIndex) -> QModelIndex:
        model = self.sourceModel()
        if model is None or not proxy_index.isValid():
            return QModelIndex()
        row = proxy_index.row()
        if not 0 <= row < len(self._to_source):
            return QModelIndex()
        return model.index(int(self._to_source[row]), proxy_index.column())

    def mapFromSource(self, source_index: QModelIndex) -> QModelIndex:
        if not source_index.isValid():
            return QModelIndex()
        row = source_index.row()
        if not 0 <= row < len(self._from_source):
            return QModelIndex()
        view = int(self._from_source[row])
        return QModelIndex() if view < 0 else self.createIndex(view, source_index.column())

    def index(self, row: int, column: int, parent: QModelIndex = QModelIndex()) -> QModelIndex:
        if (parent.isValid() or not 0 <= row < len(self._to_source)
                or not 0 <= column < self.columnCount()):
            return QModelIndex()
        return self.createIndex(row, column)

    def parent(self, child: QModelIndex | None = None):
        if child is None:                  # QObject.parent()
            return QObject.parent(self)
        return QModelIndex()               # a flat table

    def sibling(self, row: int, column: int, _index: QModelIndex) -> QModelIndex:
        return self.index(row, column)

    def hasChildren(self, parent: QModelIndex = QModelIndex()) -> bool:
        return not parent.isValid() and self.rowCount() > 0

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._to_source)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:
        model = self.sourceModel()
        return 0 if parent.isValid() or model is None else model.columnCount()

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        model = self.sourceModel()
        return None if model is None else model.data(self.mapToSource(index), role)

    def headerData(self, section: int, orientation, role: int = Qt.ItemDataRole.DisplayRole):
        model = self.sourceModel()
        if model is None:
            return None
        if orientation == Qt.Orientation.Vertical and 0 <= section < len(self._to_source):
            section = int(self._to_source[section])
        return model.headerData(section, orientation, role)
