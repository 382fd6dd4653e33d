"""Data sources panel: fill the project's pool from a VO server (an SSAP search or a TAP query,
then a harvest of the result) or from a local folder of FITS files.

The panel only gathers the form's values and shows results; the work is the core's
(`vo_query.ssap_search` / `tap_query`, `harvest.harvest_table`, `pool.ingest.ingest_folder`:
the same calls as `vo-al ssap|tap|harvest|ingest`), run as jobs on the panel's
`JobRunner`, one at a time, never on the GUI thread; a `ProgressLine` shows them.

Rows may join the pool only between iterations: once an iteration's model has been trained its
scores (and the query drawn from them) describe the pool as it was, so harvest and ingest are
allowed only while the session's next step is 'train' (see `pool_gate`); the job runs under the
project lock (`ActiveLearningSession.grow_pool`), so no other process trains or scores meanwhile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout,
                             QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit, QPushButton,
                             QSpinBox, QTabWidget, QVBoxLayout, QWidget)

from vo_al.core.base.errors import ParameterError
from vo_al.core.vo.harvest import project_harvest_folder
from vo_al.core.base.progress import Progress
from vo_al.core.vo.services import (SSAP, TAP, VOService, default_services, load_services,
                                    resolve_service)

from vo_al.gui.dashboard import ColumnTableModel
from vo_al.gui.table_view import catalogue_table_view
from vo_al.gui.progress_line import ProgressLine
from vo_al.gui.workers import JobRunner, JobWorker, error_text

ARCMIN_PER_DEG = 60.0
ANGSTROM = 1e-10                     # SSA's BAND is in metres
FAILURES_SHOWN = 3                   # failed files/URLs named in the status line
DEFAULT_ADQL = "SELECT TOP 100 * FROM lamost.data"


def pool_gate(session) -> str | None:
    """Why rows cannot be added to the session's pool now, or None when they can."""
    if session is None:
        return "open a project first: harvested or ingested spectra go into its pool"
    return session.why_pool_is_fixed()


# ---------------------------------------------------------------- display of a result table

def _cell_text(value) -> str:
    if np.ma.is_masked(value):
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (float, np.floating)):
        return f"{value:.6g}"
    return str(value)


def display_columns(table) -> dict[str, np.ndarray]:
    """A query result (astropy Table) as {name: 1-D array} for ColumnTableModel.

    Masked cells become empty text; multidimensional cells (SSA positions, regions) are shown as
    text, their values joined by commas.
    """
    out = {}
    for name in table.colnames:
        col = table[name]
        mask = np.ma.getmaskarray(col)
        if col.ndim > 1:
            values = [", ".join(_cell_text(v) for v in np.ravel(row)) if not np.all(m) else ""
                      for row, m in zip(np.ma.getdata(col), mask)]
            out[name] = np.array(values, dtype=object)
            continue
        data = np.ma.getdata(col)
        if data.dtype.kind in "SUO" or mask.any():
            out[name] = np.array([("" if m else _cell_text(v)) for v, m in zip(data, mask)],
                                 dtype=object)
        else:
            out[name] = np.asarray(data)
    return out


# ---------------------------------------------------------------- the jobs (worker thread)

def search_job(kind: str, service: VOService, request: dict, cancel):
    """Job: run one SSAP search or TAP query; returns {'table', 'columns'}."""
    from vo_al.core.vo.query import ssap_search, tap_query

    yield Progress("search", 0, None, f"querying {service.url}")
    if kind == SSAP:
        table = ssap_search(service, **request)
    else:
        table = tap_query(service, cancel=cancel, **request)
    return {"table": table, "columns": display_columns(table)}


def harvest_job(pool, folder: Path, table, settings, options: dict, cancel):
    """Job: download, preprocess and add the result rows' spectra to the pool (resumable)."""
    from vo_al.core.vo.harvest import harvest_table

    return (yield from harvest_table(pool, folder, table, settings=settings, cancel=cancel,
                                     **options))


def ingest_job(pool, folder: Path, settings, workers: int, cancel, limits=None):
    """Job: ingest the spectrum files under `folder` into the pool (the core's PoolError when
    there are none, as `vo-al ingest` reports it); `limits`: the project's (file size bound)."""
    from vo_al.core.pool.ingest import ingest_folder

    yield Progress("scan", 0, None, f"looking for spectra in {folder}")
    return (yield from ingest_folder(pool, folder, settings=settings, workers=workers,
                                     cancel=cancel, limits=limits))


# ---------------------------------------------------------------- the forms

class ServiceChooser(QWidget):
    """A configured service by name, with its URL editable (another URL: an ad-hoc service)."""

    def __init__(self, kind: str, parent=None):
        super().__init__(parent)
        self.kind = kind
        self.services: dict[str, VOService] = {}
        self.combo = QComboBox()
        self.url = QLineEdit()
        self.url.setPlaceholderText(f"{kind.upper()} service URL (http:// or https://)")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.combo)
        row.addWidget(self.url, 1)
        self.combo.currentTextChanged.connect(self._on_chosen)

    def set_services(self, services: dict[str, VOService]) -> None:
        mine = {n: s for n, s in services.items() if s.kind == self.kind}
        current = self.combo.currentText()
        self.services = mine
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItems(list(mine))
        self.combo.blockSignals(False)
        if current in mine:
            self.combo.setCurrentText(current)
        self._on_chosen(self.combo.currentText())

    def _on_chosen(self, name: str) -> None:
        service = self.services.get(name)
        if service is not None:
            self.url.setText(service.url)
            self.url.setToolTip(service.description)

    def service(self) -> VOService:
        """The chosen service, or an ad-hoc one when the URL was edited (ParameterError)."""
        url = self.url.text().strip()
        chosen = self.services.get(self.combo.currentText())
        if chosen is not None and url == chosen.url:
            return chosen
        if not url:
            raise ParameterError(f"{self.kind} service URL", url, "an http:// or https:// URL")
        return resolve_service(url, self.kind, services={})


def _maxrec_box() -> QSpinBox:
    box = QSpinBox()
    box.setRange(0, 100_000_000)
    box.setSpecialValueText("server default")       # 0: no MAXREC sent
    box.setSingleStep(100)
    return box


class SsapForm(QWidget):
    RADIUS_UNITS = ("deg", "arcmin")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.service = ServiceChooser(SSAP)
        self.ra = QDoubleSpinBox()
        self.ra.setRange(0.0, 360.0)
        self.ra.setDecimals(6)
        self.ra.setSuffix(" °")
        self.dec = QDoubleSpinBox()
        self.dec.setRange(-90.0, 90.0)
        self.dec.setDecimals(6)
        self.dec.setSuffix(" °")
        self.radius = QDoubleSpinBox()
        self.radius.setRange(0.0001, 10_800.0)
        self.radius.setDecimals(4)
        self.radius.setValue(0.1)
        self.radius_unit = QComboBox()
        self.radius_unit.addItems(self.RADIUS_UNITS)
        self.use_band = QCheckBox("band (Å)")
        self.band_min = QDoubleSpinBox()
        self.band_max = QDoubleSpinBox()
        for box, value in ((self.band_min, 3700.0), (self.band_max, 9100.0)):
            box.setRange(100.0, 1_000_000.0)
            box.setDecimals(1)
            box.setValue(value)
            box.setEnabled(False)
        self.use_band.toggled.connect(self.band_min.setEnabled)
        self.use_band.toggled.connect(self.band_max.setEnabled)
        self.maxrec = _maxrec_box()
        radius = QHBoxLayout()
        radius.addWidget(self.radius, 1)
        radius.addWidget(self.radius_unit)
        band = QHBoxLayout()
        band.addWidget(self.use_band)
        band.addWidget(self.band_min, 1)
        band.addWidget(QLabel("–"))
        band.addWidget(self.band_max, 1)
        form = QFormLayout(self)
        form.addRow("service", self.service)
        form.addRow("RA (ICRS)", self.ra)
        form.addRow("Dec (ICRS)", self.dec)
        form.addRow("radius", radius)
        form.addRow("", band)
        form.addRow("max. rows", self.maxrec)

    def radius_deg(self) -> float:
        value = self.radius.value()
        return value / ARCMIN_PER_DEG if self.radius_unit.currentText() == "arcmin" else value

    def request(self) -> dict:
        """ssap_search's keyword arguments (as `vo-al ssap` builds them)."""
        band = None
        if self.use_band.isChecked():
            lo, hi = self.band_min.value(), self.band_max.value()
            if lo >= hi:
                raise ParameterError("band", (lo, hi), "a minimum below the maximum (Å)")
            band = (lo * ANGSTROM, hi * ANGSTROM)
        return {"pos": (self.ra.value(), self.dec.value()), "radius": self.radius_deg(),
                "band": band, "maxrec": self.maxrec.value() or None}


class TapForm(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.service = ServiceChooser(TAP)
        self.adql = QPlainTextEdit(DEFAULT_ADQL)
        self.adql.setPlaceholderText("ADQL query, e.g. " + DEFAULT_ADQL)
        self.maxrec = _maxrec_box()
        form = QFormLayout(self)
        form.addRow("service", self.service)
        form.addRow("ADQL", self.adql)
        form.addRow("max. rows", self.maxrec)

    def request(self) -> dict:
        """tap_query's keyword arguments (mode 'auto': sync for bounded results, else async)."""
        adql = self.adql.toPlainText().strip()
        if not adql:
            raise ParameterError("ADQL", adql, "a query, e.g. " + DEFAULT_ADQL)
        return {"adql": adql, "maxrec": self.maxrec.value() or None}


# ---------------------------------------------------------------- the panel

class SourcesPanel(QWidget):
    """Search a VO service, harvest the result into the pool, or ingest a local folder.

    `session_getter` returns the window's current session (None without a project);
    `busy_elsewhere` (optional) says whether another job of the window is running, in which
    case the pool is not touched from here either.
    """

    pool_changed = pyqtSignal(int)       # rows added to the pool, after a harvest or an ingest
    searched = pyqtSignal(object)        # the query result (astropy Table), once shown
    job_done = pyqtSignal(str)           # 'search', 'harvest' or 'ingest', once the panel updated
    running_changed = pyqtSignal(bool)
    failed = pyqtSignal(str)

    def __init__(self, session_getter: Callable[[], object], parent=None,
                 busy_elsewhere: Callable[[], bool] | None = None):
        super().__init__(parent)
        self.session_getter = session_getter
        self.busy_elsewhere = busy_elsewhere or (lambda: False)
        self.jobs = JobRunner(self)
        self.result = None                   # the last query result (astropy Table)
        self.last_report = None              # the last HarvestReport / IngestReport
        self.harvest_folder: Path | None = None  # job list and download cache of the harvest
        # download concurrency and retries of a harvest (vo-al harvest --workers/--retries)
        self.harvest_options = {"workers": 4, "retries": 3}
        self.ingest_workers = 2              # reader processes of a folder ingest
        self._services_of: object = ()       # the project folder the services were loaded for
        self._pool = None                    # the pool the running harvest or ingest fills
        self._pool_before = 0

        self.ssap = SsapForm()
        self.tap = TapForm()
        self.forms = QTabWidget()
        self.forms.addTab(self.ssap, "SSAP search")
        self.forms.addTab(self.tap, "TAP query")
        self.search_button = QPushButton("Search")
        self.harvest_button = QPushButton("Harvest into pool")
        self.folder_button = QPushButton("Local folder…")
        self.cancel_button = QPushButton("Cancel")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.overflow = QLabel("")
        self.overflow.setWordWrap(True)
        self.overflow.setStyleSheet("color: #b35c00; font-weight: bold")
        self.overflow.hide()
        self.progress = ProgressLine(self.jobs)
        self.jobs.returned.connect(self._on_returned)
        self.jobs.errored.connect(self._on_errored)
        self.jobs.finished.connect(self._on_finished)
        self.model = ColumnTableModel(columns=["(no result yet)"])
        self.table = catalogue_table_view(self.model, sortable=False)

        buttons = QHBoxLayout()
        for b in (self.search_button, self.harvest_button, self.folder_button,
                  self.cancel_button):
            buttons.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addWidget(self.forms)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.overflow)
        layout.addWidget(self.table, 1)

        self.search_button.clicked.connect(self.search)
        self.harvest_button.clicked.connect(self.harvest)
        self.folder_button.clicked.connect(self.choose_folder)
        self.cancel_button.clicked.connect(self.cancel)
        self.refresh()

    # -- state -----------------------------------------------------------------------------
    @property
    def worker(self) -> JobWorker | None:
        """The running job's worker, or the last one's."""
        return self.jobs.worker

    @property
    def is_running(self) -> bool:
        return self.jobs.is_running

    def _session(self):
        return self.session_getter()

    def pool_blocked(self) -> str | None:
        """Why harvest/ingest cannot start now, or None."""
        if self.is_running:
            return f"wait for the running {self.worker.name} (or cancel it)"
        if self.busy_elsewhere():
            return "wait for the window's running job"
        return pool_gate(self._session())

    def refresh(self) -> None:
        """Follow the window's session: its project's services and whether the pool may grow."""
        session = self._session()
        folder = session.project.folder if session is not None else None
        if folder != self._services_of:
            self._services_of = folder
            self._load_services(folder)
            # the last harvest's or ingest's words were about another project's pool; a search
            # result is a service's answer, not a project's, and stays
            self.progress.reset()
            self.last_report = None
            self.status.setText("" if self.result is None
                                else f"{len(self.result)} rows from "
                                     f"{self.result.meta.get('service', '')}")
        running = self.is_running
        self.search_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        blocked = self.pool_blocked()
        self.folder_button.setEnabled(blocked is None)
        self.folder_button.setToolTip(blocked or "ingest the FITS spectra of a local folder "
                                                 "into the project's pool")
        if blocked is None and (self.result is None or len(self.result) == 0):
            blocked = "search first: the harvest downloads the spectra of the result table"
        self.harvest_button.setEnabled(blocked is None)
        self.harvest_button.setToolTip(blocked or "download the result's spectra into the "
                                                  "project's pool (resumable)")

    def _load_services(self, folder) -> None:
        try:
            services = load_services(project=folder)
        except ParameterError as exc:          # a broken vo_services.json: say so, use defaults
            self._report_failure(f"Loading the VO services failed: {exc}; using the local "
                                 f"defaults")
            services = {s.name: s for s in default_services()}
        self.ssap.service.set_services(services)
        self.tap.service.set_services(services)

    def showEvent(self, event) -> None:
        self.refresh()
        super().showEvent(event)

    # -- actions ---------------------------------------------------------------------------
    def search(self) -> JobWorker | None:
        """Run the current form's query (SSAP or TAP) on a worker; None if it cannot start."""
        if self.is_running:
            return None
        kind, form = (SSAP, self.ssap) if self.forms.currentWidget() is self.ssap \
            else (TAP, self.tap)
        try:
            service = form.service.service()
            request = form.request()
        except ParameterError as exc:
            self._report_failure(f"Search not started: {exc}")
            return None
        session = self._session()
        if session is not None:                 # the open project's query deadline
            request["limits"] = session.project.settings.limits
        self.status.setText(f"searching {service.name} ({service.url})…")
        return self._start("search", lambda token: search_job(kind, service, request, token))

    def harvest(self) -> JobWorker | None:
        """Download the result table's spectra into the project's pool (PROJECT/harvest)."""
        blocked = self.pool_blocked()
        if blocked is None and (self.result is None or len(self.result) == 0):
            blocked = "no result rows to harvest: search first"
        if blocked is not None:
            self._report_failure(f"Harvest not started: {blocked}")
            return None
        project = self._session().project
        pool, table = project.pool, self.result
        folder = self.harvest_folder = project_harvest_folder(project.folder)
        settings, options = project.settings.preprocess, dict(self.harvest_options)
        options.setdefault("limits", project.settings.limits)    # sizes and deadlines
        self.status.setText(f"harvesting {len(table)} spectra into {pool.folder} "
                            f"(downloads cached in {folder})…")
        session = self._session()          # the job holds the project lock while it runs
        return self._start("harvest", lambda token: session.grow_pool("harvest", harvest_job(
            pool, folder, table, settings, options, token)), pool)

    def choose_folder(self) -> JobWorker | None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of FITS spectra to ingest")
        return self.ingest_folder(Path(folder)) if folder else None

    def ingest_folder(self, folder: Path) -> JobWorker | None:
        """Ingest every spectrum file under `folder` (recursive) into the project's pool."""
        blocked = self.pool_blocked()
        if blocked is not None:
            self._report_failure(f"Ingest not started: {blocked}")
            return None
        project = self._session().project
        pool, folder = project.pool, Path(folder)
        settings, workers = project.settings.preprocess, self.ingest_workers
        self.status.setText(f"ingesting the spectra under {folder} into {pool.folder}…")
        session = self._session()          # the job holds the project lock while it runs
        limits = project.settings.limits
        return self._start("ingest", lambda token: session.grow_pool("ingest", ingest_job(
            pool, folder, settings, workers, token, limits)), pool)

    def cancel(self) -> None:
        self.jobs.cancel()

    def shutdown(self, timeout_s: float = 30.0) -> bool:
        """At window close: cancel the running job and wait for its thread (True once ended)."""
        return self.jobs.shutdown(timeout_s)

    # -- the worker ------------------------------------------------------------------------
    def _start(self, name: str, factory, pool=None) -> JobWorker:
        self._pool, self._pool_before = pool, (len(pool) if pool is not None else 0)
        worker = self.jobs.start(name, factory)
        self.refresh()
        self.running_changed.emit(True)
        return worker

    def _on_errored(self, name: str, exc: Exception) -> None:
        self._report_failure(f"{name.capitalize()} failed: {error_text(exc)}")

    def _on_returned(self, name: str, value) -> None:
        if name == "search":
            self._show_result(value["table"], value["columns"])
        elif name == "harvest":
            self.last_report = value
            self.status.setText(f"harvest: {value.summary()}")
            if value.failed:
                self._report_failure(
                    f"harvest: {len(value.failed)} spectra failed: " + _first(value.failed)
                    + f" (all in {self.harvest_folder / 'failed.json'})")
        elif name == "ingest":
            self.last_report = value
            self.status.setText(f"ingest: {value.summary()}")
            if value.rejected:
                self._report_failure(f"ingest: {len(value.rejected)} files rejected: "
                                     + _first(value.rejected))

    def _show_result(self, table, columns: dict) -> None:
        self.result = table
        names = list(columns) or ["(no columns)"]
        self.model.set_table(columns or {names[0]: np.array([])}, columns=names)
        where = table.meta.get("service", "")
        self.status.setText(f"{len(table)} rows from {where}")
        if table.meta.get("overflow"):
            self.overflow.setText(
                f"Truncated: the server stopped at {len(table)} rows (MAXREC or its own "
                f"limit). Raise 'max. rows' or narrow the query, or a harvest gets only these.")
            self.overflow.show()
        else:
            self.overflow.hide()
        self.searched.emit(table)

    def _on_finished(self, name: str, outcome: str) -> None:
        pool, self._pool = self._pool, None
        added = len(pool) - self._pool_before if pool is not None else 0
        if outcome == "cancelled":
            self.status.setText(f"{name} cancelled: {added} spectra added; run the {name} "
                                f"again to resume")
        self.refresh()
        self.running_changed.emit(False)
        if added > 0:
            self.pool_changed.emit(added)
        self.job_done.emit(name)

    def _report_failure(self, text: str) -> None:
        self.status.setText(text)
        self.failed.emit(text)


def _first(failures) -> str:
    """The first few (file or URL, reason) pairs, for a status line."""
    text = "; ".join(f"{where}: {reason}" for where, reason in failures[:FAILURES_SHOWN])
    return text + (f"; … and {len(failures) - FAILURES_SHOWN} more"
                   if len(failures) > FAILURES_SHOWN else "")
