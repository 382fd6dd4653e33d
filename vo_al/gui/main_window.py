"""The main window: project, the training/scoring panel, labelling view and dashboard.

Every long or store-writing step runs as a core job on the window's `JobRunner`; the widgets only
start jobs, show their progress (a `ProgressLine`) and refresh from the session when a job ends.
"""

from __future__ import annotations

import weakref
from pathlib import Path

from PyQt6.QtCore import QByteArray, Qt, pyqtSignal
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import (QDockWidget, QFileDialog, QHBoxLayout, QLabel, QMainWindow,
                             QMessageBox, QPushButton, QTabWidget, QVBoxLayout, QWidget)

from vo_al.core.session import loop as steps
from vo_al.core.base.errors import VoAlError
from vo_al.core.session.preferences import UserPreferences, load_preferences, update_preferences
from vo_al.core.base.progress import Progress
from vo_al.core.session.project import Project
from vo_al.core.session.loop import ActiveLearningSession
from vo_al.core.session.candidates import candidates_basis
from vo_al.core.demo.simulate import SimulationConfig, demo_config, demo_settings, prepare

from vo_al.gui.crossmatch_panel import CrossmatchPanel
from vo_al.gui.dashboard import Dashboard
from vo_al.gui.label_grid import add_grid_mode
from vo_al.gui.labelling import LabellingView
from vo_al.gui.samp_panel import SampPanel
from vo_al.gui.settings_dialog import SettingsDialog
from vo_al.gui.step_jobs import step_job_factory
from vo_al.gui.sources_panel import SourcesPanel
from vo_al.gui.spectrum_view import SpectrumView
from vo_al.gui.progress_line import ProgressLine
from vo_al.gui.workers import JobRunner, JobWorker, error_text

STEP_BUTTONS = steps.ACTIONS
DEVICE_UNKNOWN = "device: reported when a training or scoring starts"


class TrainingPanel(QWidget):
    def __init__(self, jobs: JobRunner, parent=None):
        super().__init__(parent)
        self.buttons = {name: QPushButton(name.capitalize()) for name in STEP_BUTTONS}
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = ProgressLine(jobs)
        # what the last step found (an estimate, a query, the finish): under the button the
        # expert just pressed, not only in the status bar
        self.result = QLabel("")
        self.result.setWordWrap(True)
        self.result.setStyleSheet("font-weight:bold")
        self.device = QLabel(DEVICE_UNKNOWN)
        row = QHBoxLayout()
        for b in self.buttons.values():
            row.addWidget(b)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.progress)
        layout.addWidget(self.result)
        layout.addWidget(self.device)

    def reset(self) -> None:
        """Nothing of the last project's steps (another project is open)."""
        self.progress.reset()
        self.result.setText("")
        self.device.setText(DEVICE_UNKNOWN)


class MainWindow(QMainWindow):
    job_done = pyqtSignal(str)          # the step name, after the window has refreshed
    error_shown = pyqtSignal(str)       # the text of the error dialog

    def __init__(self, project_folder: Path | None = None, parent=None,
                 prefs: UserPreferences | None = None):
        super().__init__(parent)
        self.setWindowTitle("vo-al")
        self.prefs = prefs if prefs is not None else load_preferences()
        self.settings_dialog: SettingsDialog | None = None
        self.demo_offer: QMessageBox | None = None
        self.project: Project | None = None
        self.session: ActiveLearningSession | None = None
        self.error_box: QMessageBox | None = None
        self.finish_question: QMessageBox | None = None
        self._quit_confirmed = False            # Yes to "Quit and stop the hub?"
        self.jobs = JobRunner(self)             # the steps and the demo, one at a time
        self.panel = TrainingPanel(self.jobs)   # its progress line follows them first
        self.jobs.progress.connect(self._job_progress)
        self.jobs.returned.connect(self._job_returned)
        self.jobs.errored.connect(self._job_errored)
        self.jobs.aborted.connect(self._job_aborted)
        self.jobs.finished.connect(self._job_finished)

        self.labelling = LabellingView()
        self.label_grid = add_grid_mode(self.labelling)
        self.labelling.set_preferences(self.prefs)
        self.dashboard = Dashboard()
        tabs = QTabWidget()
        tabs.addTab(self.labelling, "Label")
        tabs.addTab(self.dashboard, "Dashboard")
        candidates = self.dashboard.model        # not `self`: no cycle through the window
        window = weakref.ref(self)

        def basis():
            session = getattr(window(), "session", None)
            return candidates_basis(session) if session is not None else None

        self.crossmatch = CrossmatchPanel(
            lambda: candidates.table,
            project_getter=lambda: getattr(window(), "project", None), basis_getter=basis)
        tabs.addTab(self.crossmatch, "Cross-match")
        self.tabs = tabs
        tabs.currentChanged.connect(self._tab_changed)
        self._add_sources()
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addWidget(self.panel)
        layout.addWidget(tabs, 1)
        self.setCentralWidget(central)
        self.status_label = QLabel("no project open")
        self.statusBar().addWidget(self.status_label, 1)

        menu = self.menuBar().addMenu("&Project")
        for text, shortcut, slot in (("&Open…", QKeySequence.StandardKey.Open, self.choose_open),
                                     ("&New…", QKeySequence.StandardKey.New, self.choose_create),
                                     ("New &demo project…", None, self.choose_demo),
                                     ("&Settings…", QKeySequence.StandardKey.Preferences,
                                      self.open_settings),
                                     ("&Quit", QKeySequence.StandardKey.Quit, self.close)):
            action = QAction(text, self)
            if shortcut is not None:
                action.setShortcut(shortcut)
            action.triggered.connect(slot)
            menu.addAction(action)
            if text == "&Open…":
                self.recent_menu = menu.addMenu("Open &recent")
                self.recent_menu.aboutToShow.connect(self.fill_recent_menu)

        for name, button in self.panel.buttons.items():
            button.clicked.connect(lambda _=False, n=name: self.run_step(n))
        self.panel.cancel_button.clicked.connect(self.cancel_job)
        self._add_samp()
        self._add_spectrum_window()
        self._add_coordinates_toggle()
        self.labelling.labelled.connect(lambda *_: self.refresh())
        self.labelling.undone.connect(lambda *_: self.refresh())
        self.labelling.failed.connect(self.show_error)
        self.labelling.refused.connect(self.status_label.setText)
        self.dashboard.failed.connect(lambda text: self.status_label.setText(text))
        self.refresh()
        if self.prefs.problem:
            self.status_label.setText(self.prefs.problem)
        if project_folder is not None:
            self.open_project(Path(project_folder))

    def _add_sources(self) -> None:
        ref = weakref.ref(self)        # the panel must not keep the window alive

        def session():
            w = ref()
            return w.session if w is not None else None

        def busy():
            w = ref()
            return w is not None and w.jobs.is_running

        self.sources = SourcesPanel(session, busy_elsewhere=busy)
        self.tabs.addTab(self.sources, "Data sources")
        self.sources.pool_changed.connect(self._pool_changed)
        self.sources.running_changed.connect(lambda _running: self.refresh(keep_status=True))
        self.sources.failed.connect(lambda text: self.status_label.setText(text))

    def _pool_changed(self, added: int) -> None:
        self.status_label.setText(f"{added} spectra added to the pool")
        self.dashboard.refresh(self.session)
        self.refresh(keep_status=True)

    def _add_spectrum_window(self) -> None:
        """A double-click on a row of the candidates or a cross-match table shows its spectrum
        in one window, reused for every row; it never blocks this one."""
        self.spectrum_window = SpectrumView(self)
        self.dashboard.row_activated.connect(self.show_spectrum)
        self.crossmatch.row_activated.connect(self.show_spectrum)

    def show_spectrum(self, pool_index: int) -> None:
        self.spectrum_window.show_pool_index(pool_index)
        self.spectrum_window.show()
        self.spectrum_window.raise_()

    def _add_coordinates_toggle(self) -> None:
        """One RA/Dec choice for every table (the View menu and each table's 'hh:mm:ss'
        button are the one action), kept in the preferences."""
        action = QAction("&Sexagesimal RA/Dec (hh:mm:ss.sss, ±dd:mm:ss.ss)", self)
        action.setIconText("hh:mm:ss")
        action.setToolTip("RA/Dec as hh:mm:ss.sss / ±dd:mm:ss.ss instead of degrees")
        action.setCheckable(True)
        for panel in (self.dashboard, self.crossmatch):
            panel.coordinates_button.setDefaultAction(action)
        action.setChecked(self.prefs.sexagesimal_coordinates)
        action.toggled.connect(lambda on: self.update_preferences(
            lambda p: setattr(p, "sexagesimal_coordinates", on)))
        self.menuBar().addMenu("&View").addAction(action)
        self.sexagesimal_action = action

    def _add_samp(self) -> None:
        self.samp = SampPanel()
        self.samp.attach_table(self.dashboard.table, self.dashboard.model, self.dashboard.proxy)
        self.samp.row_selected.connect(lambda _row: self.tabs.setCurrentWidget(self.dashboard))
        self.samp.notice.connect(self.status_label.setText)
        dock = QDockWidget("SAMP", self)
        dock.setObjectName("samp-dock")
        dock.setWidget(self.samp)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        dock.hide()
        self.samp_dock = dock
        menu = self.menuBar().addMenu("&SAMP")
        menu.addAction(dock.toggleViewAction())
        for text, slot in (("&Connect", self.samp.connect_hub),
                           ("&Disconnect", self.samp.disconnect_hub),
                           ("Send current &candidate", self.samp.send_current),
                           ("Send candidates &table", self.samp.send_table)):
            action = QAction(text, self)
            action.triggered.connect(slot)
            menu.addAction(action)

    # -- project -----------------------------------------------------------------------------
    def fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.prefs.existing_recent()
        for folder in recent:
            action = self.recent_menu.addAction(folder)
            action.triggered.connect(lambda _=False, f=folder: self.open_project(Path(f)))
        if not recent:
            self.recent_menu.addAction("(none yet)").setEnabled(False)

    def update_preferences(self, change) -> None:
        """Apply `change` to the user's preferences on disk (read afresh: another window may
        have saved since) and keep the result; a failure is shown, never fatal."""
        try:
            self.prefs = update_preferences(change)
        except (OSError, ValueError, VoAlError) as exc:
            change(self.prefs)          # this window still follows it
            self.status_label.setText(f"could not save preferences: {exc}")

    def offer_demo_if_first_run(self, demo_folder: Path, config: SimulationConfig | None = None
                                ) -> QMessageBox | None:
        """On the very first start (no project given), offer to make the offline demo project."""
        if self.prefs.demo_offered or self.project is not None:
            return None
        self.update_preferences(lambda p: setattr(p, "demo_offered", True))
        box = QMessageBox(QMessageBox.Icon.Question, "Welcome to vo-al",
                          "Try vo-al on the offline demo?\n\nIt writes synthetic LAMOST-like "
                          f"spectra and a project over them to\n{demo_folder}\n(no network "
                          "needed), then you train, label and estimate precision step by step."
                          f"\n\nProject › Open… takes a project folder, the one holding "
                          f"project.json: the demo's is\n{demo_folder / 'project'}",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        yes = box.button(QMessageBox.StandardButton.Yes)
        box.buttonClicked.connect(lambda button: self.create_demo(demo_folder, config)
                                  if button is yes else None)
        box.open()                  # window-modal, never blocks the event loop
        self.demo_offer = box
        return box

    def open_settings(self) -> SettingsDialog:
        dialog = SettingsDialog(self.project, self.prefs, self)
        dialog.accepted.connect(self._settings_applied)
        dialog.open()
        self.settings_dialog = dialog
        return dialog

    def _settings_applied(self) -> None:
        self.labelling.set_preferences(self.prefs)
        self.status_label.setText("settings saved")
        if self.session is not None:
            self.dashboard.refresh(self.session)
        self.refresh(keep_status=True)

    def choose_open(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a vo-al project")
        if folder:
            self.open_project(Path(folder))

    def choose_create(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of the new project")
        if not folder:
            return
        pool = QFileDialog.getExistingDirectory(self, "Pool folder (a new or existing pool)",
                                                str(Path(folder) / "pool"))
        if not pool:
            return
        try:
            project = Project.create(Path(folder), Path(pool))
        except Exception as exc:
            self.show_error(f"Creating a project in {folder}", exc)
            return
        self.set_project(project)

    def choose_demo(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for the offline demo (synthetic data)")
        if folder:
            self.create_demo(Path(folder))

    def create_demo(self, workdir: Path, config: SimulationConfig | None = None) -> JobWorker | None:
        """Make synthetic LAMOST-like files and a project over them (core `simulate.prepare`)."""
        config = config or demo_config()
        settings = demo_settings()         # the same project as `vo-al demo` makes
        worker = self.start_job("demo", lambda token: prepare(workdir, config, settings,
                                                              cancel=token))
        if worker is not None:
            # after `finished`, when the worker no longer counts as running
            worker.finished.connect(
                lambda: self.set_project(worker.result[0]) if worker.result else None)
        return worker

    def open_project(self, folder: Path) -> bool:
        """Switch to the project in `folder`. One that cannot be opened (its files, its session
        database or its pool broken) is shown in a dialog, and the window stays on the project
        it had: the new one is opened whole, and everything the window reads of it when it
        switches is read once, before the old one is let go."""
        try:
            project = Project.open(folder)
        except Exception as exc:
            self.show_error(f"Opening the project {folder}", exc)
            return False
        try:
            session = ActiveLearningSession(project)
            session.status()              # opens and checks the session store and the pool
            session.pending()             # what the labelling view shows first
            session.labels_locked()
            candidates_basis(session)     # what the cross-match panel compares with
        except Exception as exc:
            project.close()
            self.show_error(f"Opening the project {folder}", exc)
            return False
        self.set_project(project)
        return True

    def set_project(self, project: Project) -> None:
        if self.jobs.is_running or self.sources.is_running:
            raise RuntimeError("a job is running: cancel it before changing project")
        changed = self.project is not project
        if self.project is not None and changed:
            self.crossmatch.shutdown()          # they may be reading the old project
            self.dashboard.shutdown()
            self.project.close()
        self.project = project
        self.session = ActiveLearningSession(project)
        self.update_preferences(lambda p: p.add_recent(project.folder))
        self.setWindowTitle(f"vo-al — {project.folder}")
        if changed:
            # nothing of the last project stays on screen: its results, messages and progress
            self.panel.reset()
            self.dashboard.clear()
            self.crossmatch.clear(f"project {project.folder}: not cross-matched in this window "
                                  "yet")
        self.labelling.set_session(self.session)
        self.spectrum_window.set_session(self.session)      # nothing of the last project
        self.crossmatch.use_project_catalogues(project.folder)
        self.samp.use_project(project.folder)
        self.dashboard.refresh(self.session)
        self.refresh()
        if self.labelling.waiting():
            self.tabs.setCurrentWidget(self.labelling)      # spectra wait: label them first
        self._focus_labelling()

    def _tab_changed(self, _index: int) -> None:
        self._focus_labelling()

    def _focus_labelling(self) -> None:
        """Keys 1/2/3, Backspace and the arrows go to the labelling view whenever it is the tab
        shown (the tab bar would otherwise take them: '1' ignored, → switching tabs)."""
        if self.tabs.currentWidget() is self.labelling:
            self.labelling.setFocus(Qt.FocusReason.OtherFocusReason)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._focus_labelling()       # a project given on the command line opened before this

    # -- jobs ----------------------------------------------------------------------------------
    @property
    def worker(self) -> JobWorker | None:
        """The running step's worker, or the last one's (None before the first)."""
        return self.jobs.worker

    def job_factory(self, name: str):
        return step_job_factory(self.session, name)

    def run_step(self, name: str) -> JobWorker | None:
        """Start the step `name`. Finish before the stop rule is met first asks (`ask_finish`):
        it ends the active phase for good; None until the expert says yes."""
        if self.session is None:
            return None
        if name == steps.FINISH and not self.session.stop_rule_met():
            self.ask_finish()
            return None
        return self.start_job(name, self.job_factory(name))

    def ask_finish(self) -> QMessageBox:
        """The question before a Finish the stop rule does not call for (window-modal, the
        event loop runs on); Yes starts the finish, No leaves the project as it is."""
        session = self.session
        m = session.method
        estimates = session.estimates()
        if estimates:
            e = estimates[-1]
            latest = (f"The latest estimate (iteration {e['iteration'] + 1}) is precision "
                      f"{e['precision']:.2f} (lower bound {e['lower_bound']:.2f})")
        else:
            latest = "No precision estimate is recorded yet"
        text = (f"The stop rule is not met. {latest}; the rule asks for precision ≥ "
                f"{m.precision_threshold:.2f} in {m.threshold_hits} estimate(s), and "
                f"{session.threshold_hits()} reached it.\n\nFinish trains the final model on "
                "the labels so far and writes the candidates. It cannot be undone: the labels "
                "are then locked and no further iteration can run.\n\nFinish anyway?")
        box = QMessageBox(QMessageBox.Icon.Warning, "vo-al — finish before the stop rule?",
                          text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                          self)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        yes = box.button(QMessageBox.StandardButton.Yes)
        box.buttonClicked.connect(lambda button: self._finish_answered(button is yes))
        box.open()                  # window-modal, never blocks the event loop
        self.finish_question = box
        return box

    def _finish_answered(self, yes: bool) -> None:
        if not yes:
            self.panel.result.setText("finish not started: the project is as it was")
            return
        if self.session is not None and steps.FINISH in self.session.enabled_actions():
            self.start_job(steps.FINISH, self.job_factory(steps.FINISH))

    def start_job(self, name: str, factory) -> JobWorker | None:
        """Run one job on a worker; None when another job is still running."""
        worker = self.jobs.start(name, factory)
        if worker is not None:
            self.refresh()           # disables the buttons while it runs
        return worker

    def cancel_job(self) -> None:
        self.jobs.cancel()

    def _job_progress(self, p: Progress) -> None:
        if "device" in p.info:
            self.panel.device.setText(f"device: {p.info['device']}")

    def _job_returned(self, name: str, value) -> None:
        text = None
        if name == "estimate":
            text = self._estimate_text(value)
        elif name == "query":
            text = (f"queried {len(value['batch'])} spectra, precision sample "
                    f"{len(value['sample'])}: label them in the Label tab")
        elif name == "finish" and isinstance(value, dict):
            text = (f"finished: the final model's candidates are in {value.get('candidates')}; "
                    "the labels are locked")
        if text is not None:
            self.panel.result.setText(text)
            self.status_label.setText(text)

    def _estimate_text(self, value) -> str:
        session = self.session
        m = session.method
        text = (f"iteration {session.iteration + 1}: precision {value.precision:.3f} (lower "
                f"bound {value.lower_bound:.3f}) on {value.sample_size} spectra; threshold "
                f"{m.precision_threshold:.2f}, {session.threshold_hits()} of {m.threshold_hits} "
                "hits: ")
        if session.stop_rule_met():
            return text + "the stop rule is met, Finish is next"
        return text + "below the stop rule, the next step is Train (another iteration)"

    def _job_errored(self, name: str, exc: Exception) -> None:
        self.show_error(f"{name.capitalize()} failed", exc)

    def _job_aborted(self, name: str) -> None:
        self.status_label.setText(f"{name} cancelled")

    def _job_finished(self, name: str, outcome: str) -> None:
        if self.project is None and name != "demo":
            return          # the window was closed while the job ran
        ok = outcome == "done"
        self.labelling.refresh()
        self.dashboard.refresh(self.session)
        self.refresh(keep_status=True)
        if name == "query" and ok and self.labelling.waiting():
            # the expert's next move is labelling: keys 1/2/3 go straight to the view
            self.tabs.setCurrentWidget(self.labelling)
            self.labelling.setFocus()
        self.job_done.emit(name)

    # -- view ----------------------------------------------------------------------------------
    def refresh(self, keep_status: bool = False) -> None:
        running = self.jobs.is_running
        # no step while the pool grows: a score would miss rows, a query mismatch them
        allowed = set() if running or self.sources.is_running else (self.session.enabled_actions() if self.session else set())
        for name, button in self.panel.buttons.items():
            button.setEnabled(name in allowed)
        self.panel.cancel_button.setEnabled(running)
        self.sources.refresh()
        self.crossmatch.check_stale()       # a step or a label may have changed the candidates
        self.spectrum_window.refresh_details()      # and the probabilities or label it shows
        if self.session is None or keep_status and self.status_label.text():
            return
        st = self.session.status()
        self.status_label.setText(
            f"{st['project']} · pool {st['pool_size']} · iteration {st['iteration'] + 1} · next: "
            f"{st['next_step']} · {st['oracle_labels']} oracle labels · {st['pending']} waiting")

    def show_error(self, what: str, exc: BaseException) -> None:
        text = f"{what}:\n{error_text(exc)}"
        self.status_label.setText(text.replace("\n", " "))
        box = QMessageBox(QMessageBox.Icon.Critical, "vo-al — error", text,
                          QMessageBox.StandardButton.Ok, self)
        box.open()                 # window-modal, never blocks the event loop
        self.error_box = box
        self.error_shown.emit(text)

    def restore_layout(self) -> bool:
        """The window's size, position and docks as the user last left them (preferences)."""
        if not self.prefs.window_geometry:
            return False
        self.restoreGeometry(QByteArray.fromBase64(self.prefs.window_geometry.encode("ascii")))
        if self.prefs.window_state:
            self.restoreState(QByteArray.fromBase64(self.prefs.window_state.encode("ascii")))
        return True

    def _remember_layout(self) -> None:
        geometry = bytes(self.saveGeometry().toBase64()).decode("ascii")
        state = bytes(self.saveState().toBase64()).decode("ascii")

        def change(p):
            p.window_geometry, p.window_state = geometry, state

        self.update_preferences(change)

    def closeEvent(self, event) -> None:
        # Closing stops the SAMP hub vo-al embeds: the tools on it are asked about first,
        # as Disconnect asks (from the client list shown, so that the close stays immediate)
        tools = [] if self._quit_confirmed else self.samp.tools_losing_hub()
        if tools:
            event.ignore()
            self.samp.ask_before_quitting(tools, self._quit_after_question)
            return
        self._remember_layout()
        self.jobs.shutdown(60)
        self.sources.shutdown(60)
        self.samp.shutdown()
        self.crossmatch.shutdown()
        self.dashboard.shutdown()
        self.labelling.set_session(None)
        self.spectrum_window.set_session(None)
        self.session = None
        if self.project is not None:
            self.project.close()
            self.project = None
        super().closeEvent(event)

    def _quit_after_question(self) -> None:
        self._quit_confirmed = True
        self.close()
