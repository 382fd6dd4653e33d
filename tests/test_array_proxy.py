"""ArraySortFilterProxy: numpy sorting and filtering of the candidates table, in a real view."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("PyQt6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("pytestqt")

from PyQt6.QtCore import (QItemSelectionModel, QModelIndex, QPoint, QStringListModel,  # noqa: E402
                          Qt)
from PyQt6.QtWidgets import QAbstractItemView, QTableView  # noqa: E402

from gui_support import assert_no_leaks, flush_deletes, top_level_widgets  # noqa: E402
from vo_al.core.session.candidates import COLUMNS  # noqa: E402
from vo_al.core.export.filters import fold_case  # noqa: E402
from vo_al.gui.array_proxy import ArraySortFilterProxy  # noqa: E402
from vo_al.gui.dashboard import ColumnTableModel  # noqa: E402
from vo_al.gui.samp_panel import SampPanel  # noqa: E402

ASC, DESC = Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder
SELECT_ROWS = (QItemSelectionModel.SelectionFlag.ClearAndSelect
               | QItemSelectionModel.SelectionFlag.Rows)
TEXT = ("name", "designation", "class", "origin", "source")


def candidates(n: int = 300, seed: int = 0) -> dict:
    """A candidates table (the dashboard's columns) with ties, NaN, mixed case, non-ASCII text
    and object columns, as candidate_table makes them."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(3), n)
    p[:, 1] = np.round(p[:, 1], 1)                       # many ties
    snr = rng.uniform(5, 50, n)
    snr[rng.random(n) < 0.1] = np.nan                   # unknown S/N
    names = np.array([f"{rng.choice(['Spec', 'spec', 'STAR', 'Ondřejov'])}-{i % 97:03d}"
                      for i in range(n)])
    return {"pool_index": rng.permutation(n * 3)[:n].astype(np.int64),
            "name": names,
            "designation": np.array([f"J{rng.integers(0, 10**6):06d}+{i % 7}" for i in range(n)]),
            "ra": rng.uniform(0, 360, n), "dec": rng.uniform(-90, 90, n),
            "class": np.array(rng.choice(["single peak", "double peak"], n), dtype=object),
            "origin": np.array(rng.choice(["predicted", "oracle"], n), dtype=object),
            "p_non_target": p[:, 0], "p_single": p[:, 1], "p_double": p[:, 2], "snr": snr,
            "source": np.array([f"http://Example.org/spec/{i}.fits" for i in range(n)])}


class CountingModel(ColumnTableModel):
    """The dashboard's column model, counting the data() calls it answers."""

    calls = 0

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        self.calls += 1
        return super().data(index, role)


@pytest.fixture
def view(qtbot, qapp):
    """A shown table view with row selection over an ArraySortFilterProxy over a ColumnTableModel,
    sorting enabled (header clicks sort), as the dashboard builds it."""
    before = top_level_widgets()
    model = CountingModel(candidates())
    proxy = ArraySortFilterProxy()
    proxy.setSourceModel(model)
    table = QTableView()
    table.setModel(proxy)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSortingEnabled(True)
    table.resize(900, 400)
    table.show()
    qtbot.waitExposed(table)
    held = [table, proxy, model]
    yield held
    table.close()
    table.deleteLater()
    held.clear()
    del table
    assert_no_leaks(before)


def view_order(proxy) -> list[int]:
    """Source row of each view row, read through the Qt API (mapToSource)."""
    return [proxy.mapToSource(proxy.index(r, 0)).row() for r in range(proxy.rowCount())]


def expected_order(values, descending: bool) -> list[int]:
    """A stable sort (ties in row order in both directions), NaN last in both directions."""
    values = np.asarray(values)
    if values.dtype.kind in "fi":     # numpy's stable argsort puts NaN last; so does it of -x
        return list(np.argsort(-values if descending else values, kind="stable"))
    keys = [str(v) for v in values.tolist()]
    rows = sorted(range(len(keys)), key=keys.__getitem__, reverse=descending)   # stable
    return rows


def expected_filter(table: dict, text: str) -> list[int]:
    """Rows where a text column contains `text`, any case (plain Python, row by row)."""
    needle = text.lower()
    return [i for i in range(len(table["name"]))
            if any(needle in str(table[c][i]).lower() for c in TEXT)]


def click_header(qtbot, table, column: int) -> None:
    header = table.horizontalHeader()
    x = header.sectionViewportPosition(column) + header.sectionSize(column) // 2
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(x, header.height() // 2))


# -- sorting ------------------------------------------------------------------------------------
@pytest.mark.parametrize("column", ["p_single", "snr", "pool_index", "name", "class", "source"])
def test_sort_equals_a_stable_sort_with_nan_last(view, column):
    table, proxy, model = view
    col = model.columns.index(column)
    values = model.table[column]
    for order, descending in ((ASC, False), (DESC, True)):
        table.sortByColumn(col, order)
        assert (proxy.sortColumn(), proxy.sortOrder()) == (col, order)
        expected = expected_order(values, descending)
        assert view_order(proxy) == expected
        shown = [proxy.index(r, col).data(Qt.ItemDataRole.UserRole)
                 for r in range(proxy.rowCount())]
        np.testing.assert_array_equal(np.array(shown, dtype=values.dtype), values[expected])
    if column == "snr":                                      # NaN last in both orders
        assert np.isnan(values[view_order(proxy)[-1]])
        table.sortByColumn(col, ASC)
        assert np.isnan(values[view_order(proxy)[-1]])
    table.sortByColumn(-1, ASC)                              # -1: the source's order
    assert view_order(proxy) == list(range(model.rowCount()))


def test_header_clicks_sort_through_the_view(view, qtbot):
    table, proxy, model = view
    col = model.columns.index("p_double")
    click_header(qtbot, table, col)
    first = proxy.sortOrder()
    assert proxy.sortColumn() == col
    assert view_order(proxy) == expected_order(model.table["p_double"], first == DESC)
    click_header(qtbot, table, col)                          # the second click reverses
    assert proxy.sortOrder() != first
    assert view_order(proxy) == expected_order(model.table["p_double"], first == ASC)
    assert table.horizontalHeader().sortIndicatorSection() == col


def test_sort_and_filter_never_ask_the_rows_data(qtbot, qapp):
    """100 000 rows: sorting and filtering read the arrays; data() is asked only for the rows
    the view paints (QSortFilterProxyModel asks it O(N log N) and N x columns times)."""
    model = CountingModel(candidates(100_000, seed=3))
    proxy = ArraySortFilterProxy()
    proxy.setSourceModel(model)
    table = QTableView()
    try:
        table.setModel(proxy)
        table.setSortingEnabled(True)
        table.resize(600, 300)
        table.show()
        qtbot.waitExposed(table)
        model.calls = 0
        for column, order in (("p_single", DESC), ("name", ASC), ("snr", ASC)):
            table.sortByColumn(model.columns.index(column), order)
        proxy.setFilterFixedString("spec")
        proxy.setFilterFixedString("spec-01")
        table.viewport().repaint()                           # paint the rows shown now
        assert 0 < proxy.rowCount() < 100_000
        assert model.calls < 20_000
    finally:
        table.close()
        table.deleteLater()
        flush_deletes()


# -- filtering ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["spec", "SPEC-01", "ondřej", "ONDŘEJOV-00", "oracle",
                                  "double", "+3", "example.org/spec/1", "no such text", ""])
def test_filter_keeps_exactly_the_rows_whose_text_contains_it(view, text):
    table, proxy, model = view
    proxy.setFilterFixedString(text)
    assert proxy.filterFixedString() == text
    assert sorted(view_order(proxy)) == expected_filter(model.table, text)
    assert table.verticalHeader().count() == proxy.rowCount()


def test_numbers_are_not_searched(view):
    _table, proxy, model = view
    ra = f"{model.table['ra'][5]:.4g}"                     # as the table shows it
    assert not expected_filter(model.table, ra)             # in no text column
    proxy.setFilterFixedString(ra)
    assert proxy.rowCount() == 0


def test_typing_narrows_to_the_same_rows_as_a_fresh_filter(view):
    table, proxy, model = view
    table.sortByColumn(model.columns.index("designation"), DESC)
    for text in ("s", "sp", "spe", "spec-0", "spec-09", "spec-0", "", "E", "Exa"):
        proxy.setFilterFixedString(text)
        assert sorted(view_order(proxy)) == expected_filter(model.table, text), text
        rows = view_order(proxy)                            # still sorted, filtered
        assert rows == [r for r in expected_order(model.table["designation"], True)
                        if r in set(rows)]


def test_fold_case_matches_str_lower():
    text = np.array(["ABC-xyz", "Ondřejov", "İstanbul", "", "MiXeD 123", "ÆØÅ"])
    assert fold_case(text).tolist() == [s.lower() for s in text.tolist()]
    ascii_only = fold_case(np.array(["ABC", "def-GHI"]))
    assert ascii_only.dtype.kind == "S" and ascii_only.tolist() == [b"abc", b"def-ghi"]


# -- mapping and selection -------------------------------------------------------------------------
def test_mapping_round_trips(view):
    table, proxy, model = view
    table.sortByColumn(model.columns.index("p_single"), DESC)
    proxy.setFilterFixedString("star")
    shown = set(expected_filter(model.table, "star"))
    assert 0 < len(shown) < model.rowCount()
    for r in range(proxy.rowCount()):
        for c in (0, 5):
            index = proxy.index(r, c)
            source = proxy.mapToSource(index)
            assert source.model() is model and source.column() == c
            assert proxy.mapFromSource(source) == index
    for s in range(model.rowCount()):
        index = proxy.mapFromSource(model.index(s, 2))
        assert index.isValid() == (s in shown)
        if index.isValid():
            assert proxy.mapToSource(index).row() == s
    assert not proxy.mapToSource(QModelIndex()).isValid()
    assert not proxy.index(proxy.rowCount(), 0).isValid()
    rows = np.array([0, 1, 2, -1, 10**6])
    mapped = proxy.map_rows_from_source(rows)
    assert list(mapped) == [proxy.mapFromSource(model.index(int(r), 0)).row()
                            if 0 <= r < model.rowCount() else -1 for r in rows]


def test_the_selected_row_stays_selected_across_sort_and_filter(view):
    table, proxy, model = view
    sel = table.selectionModel()
    picked = [7, 123]                               # source rows
    for s in picked:
        sel.select(proxy.mapFromSource(model.index(s, 0)), SELECT_ROWS if s == picked[0]
                   else QItemSelectionModel.SelectionFlag.Select
                   | QItemSelectionModel.SelectionFlag.Rows)
    sel.setCurrentIndex(proxy.mapFromSource(model.index(picked[1], 0)),
                        QItemSelectionModel.SelectionFlag.NoUpdate)

    def selected():
        return sorted(proxy.mapToSource(i).row() for i in sel.selectedRows())

    for column, order in (("p_single", DESC), ("name", ASC), ("snr", DESC), ("pool_index", ASC)):
        table.sortByColumn(model.columns.index(column), order)
        assert selected() == picked
        assert proxy.mapToSource(table.currentIndex()).row() == picked[1]

    # a filter that keeps one of the two: that one stays selected, the other is gone
    name = str(model.table["name"][picked[1]])
    proxy.setFilterFixedString(name)
    assert picked[1] in view_order(proxy)
    assert selected() == [picked[1]]
    assert proxy.mapToSource(table.currentIndex()).row() == picked[1]
    proxy.setFilterFixedString("no such text")
    assert selected() == [] and not table.currentIndex().isValid()


def test_sort_and_filter_survive_a_table_reset(view):
    table, proxy, model = view
    col = model.columns.index("p_double")
    table.sortByColumn(col, DESC)
    proxy.setFilterFixedString("star")
    new = candidates(500, seed=9)
    model.set_table(new)
    assert (proxy.sortColumn(), proxy.sortOrder()) == (col, DESC)
    assert proxy.filterFixedString() == "star"
    keep = set(expected_filter(new, "star"))
    assert keep
    assert view_order(proxy) == [r for r in expected_order(new["p_double"], True) if r in keep]
    assert table.horizontalHeader().sortIndicatorSection() == col

    # fewer columns (the cross-match panel switching tables): the sort column is out of range,
    # the rows come in the source's order; an empty table keeps its header names
    model.set_table({"pool_index": np.arange(4)[::-1], "name": np.array(["a", "B", "c", "d"])},
                    columns=["pool_index", "name"])
    proxy.setFilterFixedString("")
    assert view_order(proxy) == [0, 1, 2, 3]
    model.set_table({c: np.array([]) for c in COLUMNS}, columns=COLUMNS)
    assert proxy.rowCount() == 0
    assert [proxy.headerData(c, Qt.Orientation.Horizontal) for c in range(len(COLUMNS))] == \
        list(COLUMNS)
    with pytest.raises(TypeError, match="column model"):
        ArraySortFilterProxy().setSourceModel(QStringListModel(["a", "b"]))


def test_samp_selections_land_on_the_sorted_filtered_rows(view, qtbot):
    """TOPCAT's row numbers are source rows: the SAMP panel selects their view rows, leaves out
    the filtered ones and makes the first shown one current."""
    table, proxy, model = view
    panel = SampPanel(link_factory=lambda: None)
    try:
        panel.attach_table(table, model, proxy)
        table.sortByColumn(model.columns.index("p_non_target"), DESC)
        proxy.setFilterFixedString("star")
        shown = set(expected_filter(model.table, "star"))
        hidden = next(s for s in range(model.rowCount()) if s not in shown)
        wanted = [hidden] + sorted(shown)[:40] + [model.rowCount() + 5]
        with qtbot.waitSignal(panel.row_selected) as blocker:
            panel.select_rows(wanted)
        assert blocker.args == [hidden]
        got = sorted(proxy.mapToSource(i).row() for i in table.selectionModel().selectedRows())
        assert got == sorted(shown)[:40]
        assert panel.current_row() == sorted(shown)[0]

        # a block of consecutive view rows (scattered source rows) is one selection range
        block = [proxy.mapToSource(proxy.index(r, 0)).row() for r in range(3, 23)]
        assert block != sorted(block)
        panel.select_rows(block[::-1])
        assert len(table.selectionModel().selection()) == 1
        assert sorted(proxy.mapToSource(i).row()
                      for i in table.selectionModel().selectedRows()) == sorted(block)
        assert table.currentIndex().row() == 22
    finally:
        panel.deleteLater()
