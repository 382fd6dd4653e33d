"""Dashboard: the precision estimate per iteration (with its lower bound and the threshold), the
class counts per iteration (labelled set and pool predictions), the entropy histogram of the pool,
the candidates table (sortable, filterable, searchable) and the catalogue export buttons.
The table sorts and filters with numpy (`array_proxy.ArraySortFilterProxy`): hundreds of
thousands of candidates re-sort or re-filter without a Python call per row.

Everything the dashboard shows is built by one core job, `core.dashboard_data.dashboard_job`, on
a `JobRunner` (passes over memory-mapped score files of millions of rows never run on the GUI
thread); the widgets only apply the plain `DashboardData` it returns. Exports have a runner of
their own: an export may run while the view refreshes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QAbstractTableModel, QModelIndex, Qt, pyqtSignal
from PyQt6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QPushButton,
                             QVBoxLayout, QWidget)

from vo_al.core.export.cells import cell_format
from vo_al.core.session.candidates import COLUMNS, export_candidates
from vo_al.core.jobs.dashboard import (ENTROPY_BINS, MAX_ENTROPY, N_CLASSES, DashboardData,
                                       dashboard_job, entropy_edges)
from vo_al.core.export.formats import dialog_filters, format_of
from vo_al.core.learning.classes import CLASS_NAMES

from vo_al.gui.array_proxy import ArraySortFilterProxy
from vo_al.gui.table_view import FilterBox, catalogue_table_view, coordinates_button
from vo_al.gui.workers import JobRunner, JobWorker, call_job, error_text

# the catalogue formats the export dialog offers (write_catalogue picks the format by suffix)
EXPORT_FILTERS = dialog_filters()


LEGEND_ROW = 4              # of a PlotItem's layout: title 0, top axis 1, view 2, bottom axis 3


# -- the widgets ---------------------------------------------------------------------------------
class ColumnTableModel(QAbstractTableModel):
    """A read-only Qt model over a column-oriented table {name: array}. Cells read as their
    quantity means (`core.export.cells`: RA/Dec in degrees or sexagesimal, probabilities to 4
    decimals…); the tooltip is the whole text, UserRole the raw value."""

    def __init__(self, table: dict | None = None, columns=COLUMNS, parent=None):
        super().__init__(parent)
        self.columns = list(columns)
        self.table = table or {c: np.array([]) for c in self.columns}
        self.sexagesimal = False
        self._formats: dict = {}           # column -> cell_format, for the current choice

    def set_table(self, table: dict, columns=None) -> None:
        self.beginResetModel()
        if columns is not None:
            self.columns = list(columns)
        self.table = table
        self.endResetModel()

    def set_sexagesimal(self, on: bool) -> None:
        """Write RA/Dec as hh:mm:ss.sss / ±dd:mm:ss.ss (True) or degrees to 6 decimals."""
        if bool(on) == self.sexagesimal:
            return
        self.sexagesimal = bool(on)
        self._formats.clear()
        if self.rowCount() and self.columnCount():
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(self.rowCount() - 1, self.columnCount() - 1),
                                  [Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole])

    def _format(self, column: str):
        if column not in self._formats:
            self._formats[column] = cell_format(column, self.sexagesimal)
        return self._formats[column]

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.table[self.columns[0]])

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.columns)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        column = self.columns[index.column()]
        value = self.table[column][index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return self._format(column)(value)
        if role == Qt.ItemDataRole.UserRole:       # the raw value
            return value.item() if isinstance(value, np.generic) else value
        return None

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.columns[section]
        return None


def legend_row(plot: pg.PlotWidget, entries) -> pg.LegendItem:
    """A legend in a row of its own under the plot's bottom axis: pyqtgraph's `addLegend` floats
    one inside the view box, where it hid the curves it names (the counts of a class run along
    any height; a precision of 0.15 sits where a bottom-left legend was)."""
    entries = list(entries)
    legend = pg.LegendItem(colCount=len(entries), horSpacing=6, verSpacing=-8,
                           labelTextSize="8pt")
    for item, name in entries:
        legend.addItem(item, name)
    plot.plotItem.layout.addItem(legend, LEGEND_ROW, 0, 1, 3)      # under the axes, all across
    plot.plotItem.layout.setAlignment(legend, Qt.AlignmentFlag.AlignHCenter)
    return legend


class PrecisionPlot(pg.PlotWidget):
    def __init__(self, parent=None):
        super().__init__(parent, title="precision of the predicted targets")
        self.setLabel("bottom", "iteration")
        self.setLabel("left", "precision")
        self.setYRange(0, 1.05)
        self.getAxis("bottom").enableAutoSIPrefix(False)
        self.getAxis("bottom").setTickSpacing(1, 1)
        self.precision_curve = self.plot(pen="g", symbol="o")
        self.lower_curve = self.plot(pen=pg.mkPen("y", style=Qt.PenStyle.DashLine), symbol="t")
        self.legend = legend_row(self, ((self.precision_curve, "precision"),
                                        (self.lower_curve, "lower bound")))
        # the label ends at the right edge (centred on it, half of it was cut off)
        self.threshold_line = pg.InfiniteLine(
            angle=0, pen=pg.mkPen("r"), label="threshold {value:.2f}",
            labelOpts={"position": 0.98, "anchors": [(1, 1), (1, 0)], "color": "r"})
        self.addItem(self.threshold_line)

    def set_estimates(self, estimates: list[dict], threshold: float) -> None:
        rows = [e for e in estimates if e.get("sample_size")]
        # iterations as a person counts them: from 1 (store and file names count from 0)
        it = np.array([e["iteration"] + 1 for e in rows], dtype=float)
        self.precision_curve.setData(it, np.array([e["precision"] for e in rows], dtype=float))
        self.lower_curve.setData(it, np.array([e["lower_bound"] for e in rows], dtype=float))
        self.threshold_line.setValue(threshold)
        if len(it):
            self.setXRange(it.min() - 0.5, it.max() + 0.5)


CLASS_COLOURS = ((170, 170, 170), (80, 180, 255), (255, 140, 60))


class DecadeLogAxis(pg.AxisItem):
    """A log axis with numbers at the decades only, once two or more are in view: pyqtgraph
    labels every 2..9 x 10^n tick when the view spans a few decades, and they overlap."""

    def __init__(self, orientation="left", **kwargs):
        super().__init__(orientation, **kwargs)
        self.setStyle(maxTextLevel=0)           # level 0 (the decades) carries the numbers

    def logTickValues(self, minVal, maxVal, size, stdTicks):
        ticks = super().logTickValues(minVal, maxVal, size, stdTicks)
        values = sorted({float(v) for _, level in ticks for v in level})
        decades = [v for v in values if abs(v - round(v)) < 1e-9]
        if len(decades) < 2:
            return ticks                        # under two decades: every tick has its number
        return [(None, decades), (None, [v for v in values if v not in decades])]


class ClassCountsPlot(pg.PlotWidget):
    """Per iteration and class: the labelled set the model was trained on (solid) and the pool
    spectra that model predicts in the class (dashed). Log counts: the pool's non-targets
    outnumber its double-peak stars by orders of magnitude."""

    def __init__(self, parent=None):
        super().__init__(parent, axisItems={"left": DecadeLogAxis("left")})
        # a smaller title: at the default size the line-style key was cut off in a third of
        # the window's width
        self.setTitle("class counts: labelled (solid), predicted (dashed)", size="9pt")
        self.setLabel("bottom", "iteration")
        self.setLabel("left", "spectra")
        self.setLogMode(y=True)
        self.getAxis("bottom").enableAutoSIPrefix(False)
        self.getAxis("bottom").setTickSpacing(1, 1)
        self.labelled_curves, self.predicted_curves = [], []
        for colour in CLASS_COLOURS:
            self.labelled_curves.append(self.plot(
                pen=pg.mkPen(colour, width=2), symbol="o", symbolBrush=colour,
                connect="finite"))
            self.predicted_curves.append(self.plot(
                pen=pg.mkPen(colour, style=Qt.PenStyle.DashLine), symbol="t", symbolBrush=colour,
                connect="finite"))
        # one legend entry per class (the colour); the line style is in the title
        self.legend = legend_row(self, zip(self.labelled_curves, CLASS_NAMES))
        self.iterations = np.array([], dtype=np.int64)
        self.labelled = np.empty((0, N_CLASSES))
        self.predicted = np.empty((0, N_CLASSES))

    def set_counts(self, iterations, labelled, predicted) -> None:
        self.iterations = np.asarray(iterations)
        self.labelled = np.asarray(labelled, dtype=float)
        self.predicted = np.asarray(predicted, dtype=float)
        x = self.iterations.astype(float) + 1.0        # counted from 1, as everywhere shown
        for c in range(N_CLASSES):
            for curve, y in ((self.labelled_curves[c], self.labelled[:, c]),
                             (self.predicted_curves[c], self.predicted[:, c])):
                known = np.isfinite(y)       # NaN: that iteration not trained / scored yet
                curve.setData(x[known], y[known])
        if len(x):
            self.setXRange(x.min() - 0.5, x.max() + 0.5)


class EntropyHistogram(pg.PlotWidget):
    """The entropy of the latest pool scores, as a step histogram with log counts, and a line
    where the oracle batch starts: the spectra right of it are the ones a person labels."""

    def __init__(self, parent=None):
        super().__init__(parent, axisItems={"left": DecadeLogAxis("left")})
        self.setLabel("bottom", "entropy H (nats)")
        self.setLabel("left", "spectra")
        self.setLogMode(y=True)
        self.setXRange(0.0, MAX_ENTROPY)
        self.curve = self.plot(stepMode="center", pen=pg.mkPen((80, 180, 255)),
                               fillLevel=0, brush=(80, 180, 255, 90))
        # the label left of the line: the batch lies near ln 3, the right edge
        self.batch_line = pg.InfiniteLine(
            angle=90, pen=pg.mkPen((255, 140, 60), style=Qt.PenStyle.DashLine), label=" ",
            labelOpts={"position": 0.92, "anchors": [(1, 0), (1, 0)],
                       "color": (255, 140, 60)})
        self.addItem(self.batch_line)
        self.batch_line.setVisible(False)
        self.edges = entropy_edges()
        self.counts = np.zeros(ENTROPY_BINS, dtype=np.int64)
        self._title("not scored yet")

    def _title(self, what: str) -> None:
        # 9pt: at the default size the 12pt title of a scores file's name was cut at both ends
        self.setTitle(f"entropy of the pool ({what})", size="9pt")

    def set_histogram(self, counts: np.ndarray | None, scores_name: str | None) -> None:
        self.counts = (np.zeros(ENTROPY_BINS, dtype=np.int64) if counts is None
                       else np.asarray(counts))
        if counts is None:
            self.curve.setData([], [])
            self._title("not scored yet")
            self.set_batch_start(None)
            return
        self.curve.setData(self.edges, self.counts.astype(float))
        self._title(scores_name or "latest scores")

    def set_batch_start(self, entropy: float | None, size: int = 0,
                        queried: bool = False) -> None:
        """Mark the entropy of the least uncertain spectrum of the oracle batch (None: no
        mark): the chosen batch, or the `size` most uncertain unlabelled spectra a query
        would take."""
        self.batch_line.setVisible(entropy is not None)
        if entropy is None:
            return
        self.batch_line.setValue(entropy)
        which = "oracle batch" if queried else "next batch"
        self.batch_line.label.setFormat(f"{which} ({size}): H ≥ {entropy:.3f}")


class Dashboard(QWidget):
    """The dashboard tab. `refresh(session)` returns at once; the data is built by a worker and
    shown when it returns (`refreshed`). Requests while one runs are coalesced into one more."""

    refreshed = pyqtSignal(object)      # the DashboardData, after the widgets show it
    exported = pyqtSignal(str)          # the path written
    failed = pyqtSignal(str)            # the text shown in the status line
    row_activated = pyqtSignal(int)     # the pool_index of a row double-clicked: its spectrum

    def __init__(self, parent=None):
        super().__init__(parent)
        self.session = None
        self.data: DashboardData | None = None
        self.refresh_jobs = JobRunner(self)
        self.refresh_jobs.errored.connect(self._refresh_failed)
        self.refresh_jobs.finished.connect(self._refresh_finished)
        self.export_jobs = JobRunner(self)
        self.export_jobs.finished.connect(self._update_buttons)
        self.refresh_runs = 0               # workers started by refresh() (for tests, diagnostics)
        self._pending = None                # the session of a refresh asked for while one ran
        self._summaries: dict = {}          # scores_key -> ScoresSummary of the last run
        self._stopped = False               # shutdown() ran: show nothing more, start nothing

        self.plot = PrecisionPlot()
        self.counts_plot = ClassCountsPlot()
        self.entropy_plot = EntropyHistogram()
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.export_button = QPushButton("Export candidates…")
        self.export_rejected_button = QPushButton("Export rejected…")
        self.model = ColumnTableModel()
        self.proxy = ArraySortFilterProxy(self)      # header clicks call its sort()
        self.proxy.setSourceModel(self.model)
        # numbers are compared, not searched: a substring of '0.1234' finds no candidate
        self.filter_box = FilterBox(self.model, self.proxy,
                                    "filter: words (name, class, origin…) and comparisons, "
                                    "e.g. single and p_double > 0.9 and snr > 20")
        self.filter = self.filter_box.edit
        self.coordinates_button = coordinates_button(self.model)
        self.table = catalogue_table_view(self.proxy)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.doubleClicked.connect(self._row_double_clicked)

        plots = QHBoxLayout()
        for p in (self.plot, self.counts_plot, self.entropy_plot):
            plots.addWidget(p, 1)
        row = QHBoxLayout()
        row.addWidget(self.filter_box, 1)
        row.addWidget(self.coordinates_button, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.export_button, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.export_rejected_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.addLayout(plots, 1)
        layout.addWidget(self.summary)
        layout.addLayout(row)
        layout.addWidget(self.table, 2)
        layout.addWidget(self.status)
        self.export_button.clicked.connect(lambda: self.choose_export(rejected=False))
        self.export_rejected_button.clicked.connect(lambda: self.choose_export(rejected=True))
        self._update_buttons()

    # -- refresh -----------------------------------------------------------------------------
    @property
    def refresh_worker(self) -> JobWorker | None:
        return self.refresh_jobs.worker

    @property
    def is_refreshing(self) -> bool:
        return self.refresh_jobs.is_running

    @property
    def is_exporting(self) -> bool:
        return self.export_jobs.is_running

    def refresh(self, session) -> None:
        """Rebuild everything from `session` on a worker; returns at once. While a refresh runs,
        the latest request waits and runs after it (never two at once, never dropped)."""
        if session is None:
            return
        self._stopped = False
        self.session = session
        if self.is_refreshing:
            self._pending = session
            return
        self._start_refresh(session)

    def _start_refresh(self, session) -> None:
        self._pending = None
        cache = dict(self._summaries)              # a copy: the worker never shares our dict
        previous = self.data                       # read only there; never changed in place
        self.refresh_jobs.start("dashboard",
                                lambda token: dashboard_job(session, token, cache, previous),
                                on_returned=self._apply)
        self.refresh_runs += 1

    def _refresh_failed(self, _name: str, exc: Exception) -> None:
        if not self._stopped:          # after shutdown the project may be closed under it
            self._fail(f"dashboard refresh failed: {error_text(exc)}")

    def _refresh_finished(self) -> None:
        if self._pending is not None and not self._stopped:
            self._start_refresh(self._pending)

    def _apply(self, data: DashboardData) -> None:
        if self._stopped:
            return
        self.data = data
        self._summaries = data.summaries
        self.plot.set_estimates(data.estimates, data.threshold)
        self.counts_plot.set_counts(data.iterations, data.labelled_counts, data.predicted_counts)
        self.entropy_plot.set_histogram(data.entropy_counts, data.scores_name)
        self.entropy_plot.set_batch_start(data.batch_entropy, data.batch_size,
                                          data.batch_queried)
        self._show_candidates(data.candidates)
        self.summary.setText(self._summary_text(data))
        self._update_buttons()
        self.refreshed.emit(data)

    @staticmethod
    def _summary_text(data: DashboardData) -> str:
        parts = []
        source = data.scores_source or {}
        if source.get("scores") == "final":
            # the estimates are of the iterations' models: none measured the final one
            parts.append(f"finished: candidates from the final model ({source.get('model')}, "
                         f"trained on every label after iteration "
                         f"{int(source.get('iteration', 0)) + 1}); "
                         "its precision was not estimated, the last estimate is of the "
                         "iteration's model")
        if data.estimates:
            e = data.estimates[-1]
            parts.append(
                f"iteration {e['iteration'] + 1}: precision {e['precision']:.3f} "
                f"(≥ {e['lower_bound']:.3f} at {e['confidence']:.0%}) on {e['sample_size']} "
                f"spectra; threshold {data.threshold:.2f}, "
                f"hits {data.threshold_hits}/{data.hits_needed}")
        if data.candidates is None:
            parts.append(f"pool {data.pool_size}: not scored yet")
        else:
            parts.append(f"{len(data.candidates['pool_index'])} candidates in a pool of "
                         f"{data.pool_size} ({data.scores_name})")
        return " · ".join(parts)

    def _show_candidates(self, table: dict | None) -> None:
        """Show a new table, keeping the user's sort and filter (the proxy's, untouched by a
        source reset) and the current row by pool_index if it is still a candidate."""
        if table is not None and table is self.model.table:
            return                                 # unchanged: no reset, no re-sort
        keep = self.selected_pool_index()
        scroll = self.table.verticalScrollBar().value()
        self.model.set_table(table if table is not None
                             else {c: np.array([]) for c in self.model.columns})
        if keep is None or not self.select_pool_index(keep):
            self.table.verticalScrollBar().setValue(scroll)

    def selected_pool_index(self) -> int | None:
        index = self.table.currentIndex()
        if not index.isValid() or "pool_index" not in self.model.table:
            return None
        row = self.proxy.mapToSource(index).row()
        return int(self.model.table["pool_index"][row]) if row >= 0 else None

    def _row_double_clicked(self, index) -> None:
        row = self.proxy.mapToSource(index).row()
        if row >= 0 and "pool_index" in self.model.table:
            self.row_activated.emit(int(self.model.table["pool_index"][row]))

    def select_pool_index(self, pool_index: int) -> bool:
        """Make the row of `pool_index` current (False if not a candidate or filtered out)."""
        if "pool_index" not in self.model.table:
            return False
        rows = np.flatnonzero(np.asarray(self.model.table["pool_index"]) == pool_index)
        if not rows.size:
            return False
        view = self.proxy.mapFromSource(self.model.index(int(rows[0]), 0))
        if not view.isValid():
            return False
        self.table.setCurrentIndex(view)
        self.table.scrollTo(view)
        return True

    # -- export ------------------------------------------------------------------------------
    def choose_export(self, rejected: bool = False) -> JobWorker | None:
        what = "rejected spectra" if rejected else "candidates"
        start = ""
        if self.session is not None:
            start = str(self.session.project.folder / ("rejected.vot" if rejected
                                                       else "candidates.vot"))
        path, chosen = QFileDialog.getSaveFileName(self, f"Export the {what}", start,
                                                   ";;".join(EXPORT_FILTERS))
        if not path:
            return None
        if format_of(path, writable=True) is None:
            path += EXPORT_FILTERS.get(chosen, ".vot")
        return self.export_catalogue(Path(path), rejected)

    def export_catalogue(self, path, rejected: bool = False) -> JobWorker | None:
        """Write the candidates (or the rejected spectra) to `path` on a worker; the format
        comes from the suffix (.vot/.xml VOTable, .csv, .ecsv). None if an export is running."""
        if self.is_exporting:
            return None
        path = Path(path)
        what = "rejected spectra" if rejected else "candidates"
        if self.session is None:
            self._fail(f"exporting the {what} to {path} failed: no project open")
            return None
        session = self.session
        # the candidates as the table shows them: a filter leaves only its rows (the rejected
        # spectra are not in the table, so no filter applies to them)
        rows, selection = (None, "") if rejected else self.filtered_view()
        worker = self.export_jobs.start(
            "export", call_job("export", lambda: export_candidates(
                session, path, rejected, pool_indices=rows, selection=selection)),
            on_returned=lambda result: self._exported(result, selection))
        worker.errored.connect(lambda exc: self._fail(
            f"exporting the {what} to {path} failed: {error_text(exc)}"))
        shown = f" ({selection})" if selection else ""
        self.status.setText(f"exporting the {what}{shown} to {path}…")
        self._update_buttons()
        return worker

    def filtered_view(self) -> tuple[np.ndarray | None, str]:
        """(the pool indices of the candidates the filter shows, 'filter: …'), or (None, "")
        when no filter is set: every candidate. Export and SAMP's Send table use it."""
        shown = self.proxy.table_filter()
        if shown.is_empty or "pool_index" not in self.model.table:
            return None, ""
        rows = np.sort(np.asarray(self.proxy.view_to_source, dtype=np.int64))
        return np.asarray(self.model.table["pool_index"])[rows], shown.describe()

    def _exported(self, result: dict, selection: str = "") -> None:
        what = (f"{result['rows']} of {result['of']} {result['table']} ({selection})"
                if selection else f"{result['rows']} {result['table']}")
        self.status.setText(f"wrote {what} to {result['path']}")
        self.exported.emit(result["path"])

    def _update_buttons(self) -> None:
        ready = self.session is not None and not self.is_exporting
        self.export_button.setEnabled(ready)
        self.export_rejected_button.setEnabled(ready)

    def _fail(self, text: str) -> None:
        self.status.setText(text)
        self.failed.emit(text)

    def clear(self) -> None:
        """Show nothing of the project it showed (another one is open): plots, summary, table,
        filter and the last export's message. The next refresh() fills it for the new one."""
        self.data = None
        self._summaries = {}
        self.plot.set_estimates([], 0.0)
        self.counts_plot.set_counts([], np.empty((0, N_CLASSES)), np.empty((0, N_CLASSES)))
        self.entropy_plot.set_histogram(None, None)
        self.filter.clear()
        self._show_candidates(None)
        self.summary.setText("")
        self.status.setText("")
        self._update_buttons()

    # -- shutdown ----------------------------------------------------------------------------
    def shutdown(self, timeout_s: float = 30.0) -> bool:
        """Cancel the running refresh and export and wait for their threads (window close).
        True when every worker has ended. A later refresh() starts again."""
        self._stopped = True
        self._pending = None
        self.session = None
        # a list, not a generator: the second runner is shut down even if the first timed out
        return all([jobs.shutdown(timeout_s) for jobs in (self.refresh_jobs, self.export_jobs)])

    def closeEvent(self, event) -> None:          # the dashboard shown as a window of its own
        self.shutdown()
        super().closeEvent(event)
