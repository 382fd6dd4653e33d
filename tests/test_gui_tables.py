"""The app's tables fit for astronomers: cells to the digits they mean, one RA/Dec toggle for
every table (a preference), columns sized to a sample of their rows with the whole text in the
tooltip of a cut cell, the typed filter with its reason beside the box; and the progress line's
ETA counting down between two reports."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("PyQt6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("pytestqt")

from PyQt6.QtCore import QEvent, Qt  # noqa: E402
from PyQt6.QtGui import QHelpEvent  # noqa: E402
from PyQt6.QtWidgets import QStyleOptionViewItem, QToolTip  # noqa: E402

from gui_support import assert_no_leaks, top_level_widgets, window  # noqa: E402,F401
from vo_al.core.base.progress import Progress  # noqa: E402
from vo_al.core.export.filters import parse_filter  # noqa: E402
from vo_al.core.session.candidates import COLUMNS  # noqa: E402
from vo_al.core.session.preferences import load_preferences, update_preferences  # noqa: E402
from vo_al.gui.array_proxy import ArraySortFilterProxy  # noqa: E402
from vo_al.gui.dashboard import ColumnTableModel, Dashboard  # noqa: E402
from vo_al.gui.progress_line import ProgressLine  # noqa: E402
from vo_al.gui.samp_panel import SampPanel  # noqa: E402
from vo_al.gui.table_view import SAMPLE_ROWS, catalogue_table_view  # noqa: E402

DISPLAY = Qt.ItemDataRole.DisplayRole


def candidates(n: int, seed: int = 0) -> dict:
    """The dashboard's columns as candidate_table makes them; long paths in 'source'."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(3), n).astype(np.float32)
    snr = rng.uniform(2, 80, n)
    snr[::17] = np.nan
    return {"pool_index": np.arange(n, dtype=np.int64),
            "name": np.array([f"spec-56065-{i:07d}" for i in range(n)]),
            "designation": np.array([f"LAMOST J{i % 24:02d}1234.56+{i % 90:02d}1234.5"
                                     for i in range(n)]),
            "ra": rng.uniform(0, 360, n), "dec": rng.uniform(-90, 90, n),
            "class": np.array(rng.choice(["single peak", "double peak"], n)),
            "origin": np.array(rng.choice(["predicted", "oracle"], n), dtype="U9"),
            "p_non_target": p[:, 0], "p_single": p[:, 1], "p_double": p[:, 2], "snr": snr,
            "source": np.array([f"/data/surveys/lamost/dr2/fits/2012/05/{i:07d}/"
                                f"spec-56065-{i:07d}.fits.gz" for i in range(n)])}


@pytest.fixture
def shown(qtbot, qapp):
    """(dashboard, its table) shown with 300 candidates, no session needed."""
    before = top_level_widgets()
    d = Dashboard()
    d.resize(1200, 800)
    d.model.set_table(candidates(300))
    d.show()
    qtbot.waitExposed(d)
    held = [d]
    yield held
    d.close()
    d.deleteLater()
    held.clear()
    del d
    assert_no_leaks(before)


def cell(d, row: int, column: str, role=DISPLAY):
    return d.proxy.index(row, d.model.columns.index(column)).data(role)


# -- cells and the RA/Dec toggle ------------------------------------------------------------------
def test_cells_read_as_their_quantity_and_the_toggle_writes_sexagesimal(shown, qtbot):
    d = shown[0]
    t = d.model.table
    col = d.model.columns.index("p_double")
    d.table.sortByColumn(col, Qt.SortOrder.DescendingOrder)
    order = list(d.proxy.view_to_source)
    first = order[0]
    assert cell(d, 0, "ra") == f"{t['ra'][first]:.6f}"
    assert cell(d, 0, "dec") == f"{t['dec'][first]:.6f}"
    assert cell(d, 0, "p_double") == f"{t['p_double'][first]:.4f}"
    nan_row = int(np.flatnonzero(d.proxy.view_to_source == 0)[0])     # snr NaN: blank
    assert cell(d, nan_row, "snr") == ""

    with qtbot.waitSignal(d.model.dataChanged):
        d.coordinates_button.click()
    assert d.model.sexagesimal
    ra, dec = cell(d, 0, "ra"), cell(d, 0, "dec")
    assert len(ra) == 12 and ra[2] == ra[5] == ":" and ra[8] == "."          # hh:mm:ss.sss
    assert dec[0] in "+-" and len(dec) == 12 and dec[3] == dec[6] == ":"   # ±dd:mm:ss.ss
    hours = t["ra"][first] / 15
    assert int(ra[:2]) == int(hours) or abs(hours - round(hours)) < 1e-6
    # the text changed, not the values: same rows in the same order, raw values as they were
    assert list(d.proxy.view_to_source) == order
    assert cell(d, 0, "ra", Qt.ItemDataRole.UserRole) == t["ra"][first]
    # the column grew to the longer text
    assert d.table.columnWidth(d.model.columns.index("ra")) >= \
        d.table.fontMetrics().horizontalAdvance(ra)
    d.coordinates_button.click()
    assert cell(d, 0, "ra") == f"{t['ra'][first]:.6f}"


def test_one_toggle_for_every_table_kept_in_the_preferences(window):
    w = window[0]
    action = w.sexagesimal_action
    assert not action.isChecked() and not w.dashboard.model.sexagesimal
    w.crossmatch.coordinates_button.click()           # the button of one table…
    assert action.isChecked() and w.dashboard.coordinates_button.isChecked()
    assert w.dashboard.model.sexagesimal and w.crossmatch.model.sexagesimal   # …sets all
    assert load_preferences().sexagesimal_coordinates is True
    action.trigger()                                   # the View menu's entry
    assert not w.crossmatch.model.sexagesimal and not w.dashboard.coordinates_button.isChecked()
    assert load_preferences().sexagesimal_coordinates is False


@pytest.fixture
def sexagesimal_saved():
    update_preferences(lambda p: setattr(p, "sexagesimal_coordinates", True))


def test_a_new_window_starts_with_the_saved_choice(sexagesimal_saved, window):
    w = window[0]
    assert w.sexagesimal_action.isChecked()
    assert w.dashboard.model.sexagesimal and w.crossmatch.model.sexagesimal


# -- column widths and tooltips --------------------------------------------------------------------
class CountingModel(ColumnTableModel):
    """The app's column model, noting the rows whose data() it answers."""

    def __init__(self, table):
        super().__init__(table)
        self.rows_asked: set = set()

    def data(self, index, role=DISPLAY):
        self.rows_asked.add(index.row())
        return super().data(index, role)


def test_columns_fit_their_content_from_a_sample_of_rows(qtbot, qapp):
    n = 200_000
    model = CountingModel(candidates(n))
    proxy = ArraySortFilterProxy()
    proxy.setSourceModel(model)
    view = catalogue_table_view(proxy)
    try:
        view.resize(1200, 500)
        view.show()
        qtbot.waitExposed(view)
        model.rows_asked.clear()
        model.set_table(candidates(n, seed=1))            # a new table: fitted again
        # a sample of rows (and those in view), never a pass over 200 000
        assert 0 < len(model.rows_asked) <= SAMPLE_ROWS + 50
        header, metrics = view.horizontalHeader(), view.fontMetrics()
        for c, name in enumerate(COLUMNS):
            width = header.sectionSize(c)
            assert width >= metrics.horizontalAdvance(name), name          # the header
            assert width <= view.max_column_width()
            shown = proxy.index(0, c).data(DISPLAY)
            if name != "source":
                assert width >= metrics.horizontalAdvance(shown), name      # not cut
                assert not view.cell_is_cut(proxy.index(0, c))
        source = proxy.index(0, COLUMNS.index("source"))
        assert header.sectionSize(COLUMNS.index("source")) == view.max_column_width()
        assert view.cell_is_cut(source)
        row = proxy.mapToSource(source).row()
        assert source.data(Qt.ItemDataRole.ToolTipRole) == str(model.table["source"][row])
    finally:
        view.close()
        view.deleteLater()


def test_a_tooltip_shows_the_whole_text_only_where_the_cell_cuts_it(shown, qtbot):
    d = shown[0]
    view = d.table
    delegate = view.itemDelegate()

    def hover(column: str) -> str:
        """What a tooltip shows over the first cell of `column`."""
        index = d.proxy.index(0, d.model.columns.index(column))
        option = QStyleOptionViewItem()
        view.initViewItemOption(option)
        option.rect = view.visualRect(index)
        at = option.rect.center()
        event = QHelpEvent(QEvent.Type.ToolTip, at, view.viewport().mapToGlobal(at))
        assert delegate.helpEvent(event, view, option, index)
        return QToolTip.text() if QToolTip.isVisible() else ""

    assert hover("pool_index") == ""
    row = d.proxy.mapToSource(d.proxy.index(0, 0)).row()
    assert hover("source") == d.model.table["source"][row]
    QToolTip.hideText()
    qtbot.waitUntil(lambda: not QToolTip.isVisible(), timeout=5_000)


# -- the filter box -------------------------------------------------------------------------------
def test_numeric_filters_with_text_and_the_reason_of_a_bad_one(shown):
    d = shown[0]
    t = d.model.table
    d.filter.setText("double and p_double > 0.5 and snr >= 20")
    want = np.flatnonzero(np.char.find(t["class"], "double") >= 0)
    want = [i for i in want if t["p_double"][i] > 0.5 and t["snr"][i] >= 20]
    assert sorted(d.proxy.view_to_source) == want and d.filter_box.error.isHidden()
    rows, selection = d.filtered_view()
    assert list(rows) == [int(t["pool_index"][i]) for i in want]
    assert selection == "filter: 'double and p_double > 0.5 and snr >= 20'"
    samp = SampPanel(link_factory=lambda: None)            # Send table: the same rows
    try:
        samp.attach_table(d.table, d.model, d.proxy)
        assert list(samp.filtered_rows()[0]) == want
    finally:
        samp.deleteLater()

    # half typed and wrong: the reason beside the box; the table keeps the last good filter
    d.filter.setText("double and p_double > 0.5 and snr >= twenty")
    assert not d.filter_box.error.isHidden()
    assert d.filter_box.error.text() == ("filter='snr >= twenty': snr is a number column: "
                                         "'twenty' is not a number")
    assert sorted(d.proxy.view_to_source) == want
    assert d.filtered_view()[1] == selection                 # an export says what it writes
    d.filter.setText("sep < 5")
    assert "no column 'sep'" in d.filter_box.error.text()
    d.filter.setText("origin = oracle")
    assert d.filter_box.error.isHidden()
    assert sorted(d.proxy.view_to_source) == list(np.flatnonzero(t["origin"] == "oracle"))

    # a new table is filtered anew by the same text
    d.model.set_table(candidates(120, seed=5))
    assert sorted(d.proxy.view_to_source) == list(
        np.flatnonzero(d.model.table["origin"] == "oracle"))
    assert parse_filter("origin = oracle", d.model.table).comparisons == \
        d.proxy.table_filter().comparisons


# -- the ETA ---------------------------------------------------------------------------------------
def test_the_eta_counts_down_between_two_reports(qtbot):
    now = [0.0]
    line = ProgressLine(clock=lambda: now[0])
    qtbot.addWidget(line)
    line.begin("train")
    assert line.ticker.isActive()
    line.show_progress(Progress("train", 0, 10, "epoch 0"))
    now[0] = 20.0
    line.show_progress(Progress("train", 1, 10, "epoch 1"))      # 20 s an epoch: 3 min left
    assert line.text() == "train: 1/10 epoch 1 ETA 3m00s"
    now[0] = 35.0                                                # 15 s later, no report
    line.count_down()
    assert line.text() == "train: 1/10 epoch 1 ETA 2m45s"
    now[0] = 500.0                                               # late: never below zero
    line.count_down()
    assert line.text().endswith("ETA 0s")
    line.show_cancelling("train")                                # the cancel is not hidden
    line.count_down()
    assert line.text() == "train: cancelling at the next step…"
    line.end("train", "cancelled")
    assert not line.ticker.isActive() and line.text() == "train: cancelled"
    # the ticker itself drives it
    line.begin("score")
    line.ticker.setInterval(10)
    now[0] = 0.0
    line.show_progress(Progress("score", 0, 4))
    now[0] = 10.0
    line.show_progress(Progress("score", 1, 4))
    assert line.text() == "score: 1/4 ETA 30s"
    now[0] = 20.0
    qtbot.waitUntil(lambda: line.text() == "score: 1/4 ETA 20s", timeout=5_000)
    line.reset()
    assert not line.ticker.isActive()
