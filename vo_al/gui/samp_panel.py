"""SAMP panel: connect vo-al to a hub (an embedded one when none runs), list the clients and
what they subscribe to, send the current candidate, and follow TOPCAT's / Aladin's selections.

The core `SampLink` calls its listeners on the SAMP client's own threads; `SampBridge` only
re-emits each `SampEvent` as a Qt signal (queued to the GUI thread), and every widget change
happens in the slots on the GUI thread. Every exchange with the hub (connect, the client list,
sends, disconnect) runs as a one-step job on a queueing `JobRunner`, one at a time, never on the
GUI thread; a newer send replaces one still waiting. The link's watchdog runs while connected:
when the hub goes away the panel says so (connected_changed False), and when a hub is back the
link registers again by itself and the panel says "reconnected" (connected_changed True).

Every send says who received it (`Delivery`: "sent to TOPCAT, Aladin; SPLAT-VO: no reply within
5 s", or that nobody on the hub takes it); the hint line under the client list says what vo-al
cannot fix from its side (TOPCAT's row clicks, Aladin's lockfile). Disconnect asks first when it
would stop the embedded hub other tools are on, naming them.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from PyQt6.QtCore import QItemSelection, QItemSelectionModel, QObject, pyqtSignal
from PyQt6.QtWidgets import (QHBoxLayout, QLabel, QMessageBox, QPushButton, QTableView,
                             QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

from vo_al.core.samp.link import SampLink
from vo_al.core.samp.messages import TABLE_LOAD
from vo_al.core.samp.records import Delivery, SampEvent

from vo_al.gui.workers import JobRunner, call_job, error_text


#: the job that asks the embedded hub who would lose it (before Disconnect stops it)
CLIENTS_ON_HUB = "clients on the hub"


def _connect_and_watch(link: SampLink):
    """Connect, then keep watching the hub: after a loss vo-al joins the hub that comes back."""
    info = link.connect()
    link.start_watchdog()
    return info


class SampBridge(QObject):
    """A SampLink listener: safe to call from any thread; `event` is delivered on the thread
    this object lives on (the GUI thread)."""

    event = pyqtSignal(object)          # SampEvent

    def __call__(self, event: SampEvent) -> None:
        self.event.emit(event)          # emit only: never touch a widget here


class SampPanel(QWidget):
    connected_changed = pyqtSignal(bool)
    clients_changed = pyqtSignal(list)          # status()["clients"]
    event_received = pyqtSignal(object)         # every SampEvent, on the GUI thread
    row_selected = pyqtSignal(int)              # a row of the candidates model, selected by SAMP
    sent = pyqtSignal(int, object)              # row, {mtype: [SampReply]}
    failed = pyqtSignal(str)
    notice = pyqtSignal(str)                    # something the window's status line should say

    def __init__(self, link_factory: Callable[[], SampLink] | None = None, parent=None):
        super().__init__(parent)
        self.link_factory = link_factory or (lambda: SampLink("vo-al", start_hub=True, timeout=5.0))
        self.link: SampLink | None = None
        self.bridge = SampBridge(self)
        self.bridge.event.connect(self._on_event)
        self.table: QTableView | None = None
        self.model = None
        self.proxy = None
        self.jobs = JobRunner(self, queue=True)
        self.jobs.errored.connect(self._on_error)
        self._from_samp = False
        self._table_dirty = True        # the candidates changed since the table was shared
        self._view_dirty = False        # the filter changed since (Send table shares anew)
        # the candidates-model row of each row of the shared table (None: the same rows): the
        # table shared is the filtered view, and peers number its rows
        self._shared_rows: np.ndarray | None = None
        self._shared_text = ""          # "12 of 76 candidates (filter: 'single')"

        self.connect_button = QPushButton("Connect")
        self.disconnect_button = QPushButton("Disconnect")
        self.send_button = QPushButton("Send current candidate")
        self.send_table_button = QPushButton("Send table")
        self.status = QLabel("SAMP: not connected")
        self.status.setWordWrap(True)
        self.clients = QTreeWidget()
        self.clients.setHeaderLabels(["client", "id"])
        self.hint = QLabel()            # link.hints(): what vo-al cannot fix from its side
        self.hint.setWordWrap(True)
        self.hint.hide()
        self.stop_hub_question: QMessageBox | None = None
        self._known_clients: list[dict] = []     # status()['clients'] last shown
        row = QHBoxLayout()
        row.addWidget(self.connect_button)
        row.addWidget(self.disconnect_button)
        row2 = QHBoxLayout()
        row2.addWidget(self.send_button)
        row2.addWidget(self.send_table_button)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(self.clients, 1)
        layout.addWidget(self.hint)
        layout.addLayout(row2)
        self.connect_button.clicked.connect(self.connect_hub)
        self.disconnect_button.clicked.connect(self.disconnect_hub)
        self.send_button.clicked.connect(self.send_current)
        self.send_table_button.clicked.connect(self.send_table)
        self._update_buttons()

    # -- the candidates table --------------------------------------------------------------
    def attach_table(self, table: QTableView, model, proxy=None) -> None:
        """Follow `table` (a view over `proxy`, itself over the column model `model`)."""
        self.table, self.model, self.proxy = table, model, proxy
        table.selectionModel().currentRowChanged.connect(self._on_current_changed)
        model.modelReset.connect(self._on_table_changed)
        if proxy is not None:
            proxy.layoutChanged.connect(self._on_view_changed)

    def _source_row(self, view_index) -> int | None:
        if not view_index.isValid():
            return None
        if self.proxy is not None:
            view_index = self.proxy.mapToSource(view_index)
        return view_index.row() if view_index.isValid() else None

    def current_row(self) -> int | None:
        return None if self.table is None else self._source_row(self.table.currentIndex())

    def _on_table_changed(self) -> None:
        self._table_dirty = True
        if self.connected:
            self._share_table()

    def _on_view_changed(self) -> None:
        self._view_dirty = True         # kept until Send table: a peer holds the table it got

    def filtered_rows(self) -> tuple[np.ndarray | None, str]:
        """(the candidates-model rows the filter shows, in model order, "filter: …"), or
        (None, "") when no filter is set."""
        text = self.proxy.filterFixedString() if hasattr(self.proxy, "filterFixedString") else ""
        if not text:
            return None, ""
        if hasattr(self.proxy, "view_to_source"):            # ArraySortFilterProxy
            rows = np.asarray(self.proxy.view_to_source, dtype=np.int64)
        else:
            rows = np.array([self.proxy.mapToSource(self.proxy.index(r, 0)).row()
                             for r in range(self.proxy.rowCount())], dtype=np.int64)
        return np.sort(rows), f"filter: '{text}'"

    def _share_table(self) -> None:
        if self.model is None or self.model.rowCount() == 0 or self.link is None:
            return
        rows, selection = self.filtered_rows()
        full = self.model.table
        n = len(full[self.model.columns[0]])
        if rows is None:
            columns, text = dict(full), f"{n} candidates"
        else:
            columns = {c: np.asarray(v)[rows] for c, v in full.items()}
            text = f"{len(rows)} of {n} candidates ({selection})"
        link = self.link
        self._table_dirty = self._view_dirty = False

        def shared(_table) -> None:
            self._shared_rows, self._shared_text = rows, text

        self._submit("table", lambda: link.set_candidates(columns), shared, replace=True)

    def _on_current_changed(self, current, _previous) -> None:
        if self._from_samp or not self.connected:
            return
        row = self._source_row(current)
        if row is not None:
            self.send_row(row)

    # -- actions ---------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self.link is not None and self.link.connected

    @property
    def busy(self) -> bool:
        return self.jobs.busy

    # the project's download cache: what each harvested spectrum is (SDM axes for SPLAT-VO)
    spectrum_cache_folder = None

    def use_project(self, folder) -> None:
        from vo_al.core.vo.harvest import project_cache_folder

        self.spectrum_cache_folder = project_cache_folder(folder)
        if self.link is not None:
            self.link.spectrum_cache_folder = self.spectrum_cache_folder

    def connect_hub(self) -> None:
        if self.link is not None:
            return
        link = self.link_factory()
        link.add_listener(self.bridge)
        link.spectrum_cache_folder = self.spectrum_cache_folder
        self.link = link
        self.status.setText("SAMP: connecting…")
        self._submit("connect", lambda: _connect_and_watch(link), self._on_connected)
        self._update_buttons()

    def _on_connected(self, info) -> None:
        where = "embedded hub" if info.embedded else "hub"
        self.status.setText(f"SAMP: connected to the {where} {info.url} as {info.self_id}")
        self._table_dirty = True
        self._share_table()
        self.refresh_clients()
        self._update_buttons()
        self.connected_changed.emit(True)

    def disconnect_hub(self) -> None:
        """Disconnect; when that stops the embedded hub other tools are on, ask first (the
        clients are asked of the hub now, on the worker)."""
        link = self.link
        if link is None or self._asking():
            return
        if link.hub_info is not None and link.hub_info.embedded:
            self._submit(CLIENTS_ON_HUB, link.clients_on_own_hub,
                         lambda peers: self._ask_stop_hub(
                             link, [p.name for p in peers], "Disconnect",
                             "Disconnect and stop the hub?", self._disconnect,
                             "SAMP: still connected (the hub keeps running)"))
            return
        self._disconnect()

    def tools_losing_hub(self) -> list[str]:
        """The names of the tools on the embedded hub vo-al runs, as the client list last
        showed them (no hub call: the window's close asks this on the GUI thread; the list
        follows the hub's register/unregister events). [] when vo-al runs no hub."""
        link = self.link
        info = link.hub_info if link is not None else None
        if info is None or not info.embedded:
            return []
        return [c["name"] for c in self._known_clients if c["id"] != info.hub_id]

    def ask_before_quitting(self, tools: list[str], quit_now: Callable[[], None]) -> None:
        """The window-modal question before vo-al's close stops the hub `tools` are on; Yes
        calls `quit_now`, No keeps the window (and the hub) open."""
        if self.link is not None and not self._asking():
            self._ask_stop_hub(self.link, tools, "Quitting vo-al", "Quit and stop the hub?",
                               quit_now, "SAMP: vo-al stays open (the hub keeps running)")

    def _asking(self) -> bool:
        return self.stop_hub_question is not None and self.stop_hub_question.isVisible()

    def _ask_stop_hub(self, link: SampLink, names: list[str], action: str, question: str,
                      proceed: Callable[[], None], kept: str) -> None:
        """The window-modal question before `action` stops the hub the tools `names` are on
        (none: no question, `proceed` at once); Yes proceeds, No leaves everything as it is
        and says `kept`."""
        if self.link is not link:
            return                            # disconnected or closed meanwhile
        if not names:
            proceed()
            return
        who, one = ", ".join(names), len(names) == 1
        box = QMessageBox(
            QMessageBox.Icon.Warning, "vo-al — stop the SAMP hub?",
            f"vo-al runs the SAMP hub that {who} {'is' if one else 'are'} on. "
            f"{action} stops it: {who} then {'has' if one else 'have'} no hub "
            "until one starts again (TOPCAT or Aladin can run one, or jsamp hub).\n\n"
            + question,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        yes = box.button(QMessageBox.StandardButton.Yes)
        box.buttonClicked.connect(
            lambda button: self._stop_hub_answered(link, button is yes, proceed, kept))
        box.open()                            # window-modal, never blocks the event loop
        self.stop_hub_question = box

    def _stop_hub_answered(self, link: SampLink, yes: bool, proceed: Callable[[], None],
                           kept: str) -> None:
        if self.link is not link:
            return
        if yes:
            proceed()
        else:
            self.status.setText(kept)

    def _disconnect(self) -> None:
        link, self.link = self.link, None
        if link is None:
            return
        link.remove_listener(self.bridge)
        self.jobs.clear_queue()
        self._submit("disconnect", link.close)
        self.clients.clear()
        self._known_clients = []
        self._show_hints([])
        self.status.setText("SAMP: not connected")
        self._update_buttons()
        self.connected_changed.emit(False)

    def refresh_clients(self) -> None:
        link = self.link
        if link is not None:
            self._submit("clients", link.status, self._show_status, replace=True)

    def send_row(self, row: int) -> None:
        link = self.link
        if link is None:
            return
        if self._table_dirty:
            self._share_table()
        shared = self._shared_row(row)
        if shared is None:
            self.status.setText("SAMP: this candidate is not in the table sent (the filter "
                                "then hid it): Send table to share the rows shown now")
            return
        name = self._candidate_name(row)

        def sent(result) -> None:
            out, hints = result
            self.status.setText(f"SAMP: {name}: {Delivery(out).text()}")
            self._show_hints(hints)
            self.sent.emit(row, out)

        self._submit("send", lambda: (link.send_candidate(shared), link.hints()), sent,
                     replace=True)

    def _candidate_name(self, row: int) -> str:
        """The candidate's designation (or name) for the status line."""
        for column in ("designation", "name"):
            values = self.model.table.get(column) if self.model is not None else None
            if values is not None and 0 <= row < len(values) and str(values[row]):
                return str(values[row])
        return f"row {row}"

    def _shared_row(self, model_row: int) -> int | None:
        """The shared table's row of a candidates-model row (None: not in it)."""
        rows = self._shared_rows
        if rows is None:
            return int(model_row)
        at = int(np.searchsorted(rows, model_row))
        return at if at < len(rows) and rows[at] == model_row else None

    def _model_rows(self, shared_rows) -> np.ndarray:
        """Candidates-model rows of rows of the shared table (-1: no such row)."""
        shared = np.asarray(shared_rows, dtype=np.int64).reshape(-1)
        if self._shared_rows is None:
            return shared
        inside = (shared >= 0) & (shared < len(self._shared_rows))
        out = np.full(shared.shape, -1, dtype=np.int64)
        out[inside] = self._shared_rows[shared[inside]]
        return out

    def send_current(self) -> None:
        row = self.current_row()
        if row is not None:
            self.send_row(row)

    def send_table(self) -> None:
        link = self.link
        if link is None:
            return
        if self._table_dirty or self._view_dirty:
            self._share_table()               # the rows the table shows now, the filter's
        self.status.setText("SAMP: sending the table…")

        def sent(result) -> None:
            replies, hints = result
            self.status.setText("SAMP: " + Delivery({TABLE_LOAD: replies}).text(
                self._shared_text))
            self._show_hints(hints)

        self._submit("send table", lambda: (link.send_table(), link.hints()), sent)

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """At window close: drop queued work, end the running one, close the link."""
        self.jobs.shutdown(timeout_s)
        link, self.link = self.link, None
        if link is not None:
            link.remove_listener(self.bridge)
            link.close()

    # -- jobs (one at a time) --------------------------------------------------------------
    def _submit(self, name: str, fn: Callable, done: Callable | None = None,
                replace: bool = False) -> None:
        self.jobs.start(name, call_job(f"samp {name}", fn), on_returned=done, replace=replace)

    def _on_error(self, name: str, exc: BaseException) -> None:
        text = f"SAMP {name} failed: {error_text(exc)}"
        if name == CLIENTS_ON_HUB:
            # a hub that cannot say who is on it strands nobody we could name: go on
            self._disconnect()
            text = f"SAMP: disconnected (the hub could not list its clients: {error_text(exc)})"
        self.status.setText(text)
        if name == "connect" and self.link is not None:
            link, self.link = self.link, None
            link.remove_listener(self.bridge)
            self._submit("close", link.close)
            self._update_buttons()
        self.failed.emit(text)

    # -- events from the hub (GUI thread) --------------------------------------------------
    def _on_event(self, event: SampEvent) -> None:
        self.event_received.emit(event)
        if event.kind in ("highlight", "select", "point") and event.rows:
            rows = self._model_rows(event.rows)
            shown = self.select_rows(rows)
            who = event.sender_name or event.sender_id
            text = (f"SAMP: {who} {event.kind} row {event.rows[0]}"
                    + (f" (+{len(event.rows) - 1})" if len(event.rows) > 1 else ""))
            hidden = len(rows) - shown
            if hidden:
                # the filter is the expert's own: a peer's click does not undo it, it is told
                text += (f"; {hidden} of them hidden by the filter "
                         f"'{self.proxy.filterFixedString()}' (clear the filter to see "
                         + ("it" if hidden == 1 else "them") + ")")
                self.notice.emit(text)
            self.status.setText(text)
        elif event.kind == "clients":
            self.refresh_clients()
        elif event.kind == "hub" and self.link is not None:
            if event.message == "lost":
                self.status.setText("SAMP: the hub went away; vo-al joins it again when a "
                                    "hub is back")
                self.clients.clear()
                self._known_clients = []
                self.connected_changed.emit(False)
            elif event.message == "reconnected":
                info = self.link.hub_info
                self.status.setText(f"SAMP: reconnected to the hub {info.url} as {info.self_id}"
                                    if info else "SAMP: reconnected")
                self.refresh_clients()
                self.connected_changed.emit(True)
            self._update_buttons()

    def select_rows(self, rows) -> int:
        """Select candidates-model rows in the table (without sending them back); returns how
        many are shown. Rows hidden by the filter are left out; consecutive view rows become
        one selection range (a TOPCAT subset may be thousands of rows)."""
        if self.table is None or self.model is None:
            return 0
        view_rows = self._view_rows(rows)
        shown = view_rows[view_rows >= 0]
        if not shown.size:
            return 0
        view_model = self.proxy if self.proxy is not None else self.model
        ordered = np.unique(shown)
        breaks = np.flatnonzero(np.diff(ordered) != 1)
        starts, ends = ordered[np.r_[0, breaks + 1]], ordered[np.r_[breaks, ordered.size - 1]]
        sel = self.table.selectionModel()
        flags = QItemSelectionModel.SelectionFlag
        self._from_samp = True
        try:
            selection = QItemSelection()
            for first, last in zip(starts.tolist(), ends.tolist()):
                selection.select(view_model.index(first, 0), view_model.index(last, 0))
            sel.select(selection, flags.ClearAndSelect | flags.Rows)
            current = view_model.index(int(shown[0]), 0)
            sel.setCurrentIndex(current, flags.Current | flags.Rows)
            self.table.scrollTo(current)
        finally:
            self._from_samp = False
        self.row_selected.emit(int(np.asarray(rows).reshape(-1)[0]))
        return int(shown.size)

    def _view_rows(self, rows) -> np.ndarray:
        """The view rows of candidates-model `rows`, in their order (-1: hidden or no row)."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        rows = np.where((rows >= 0) & (rows < self.model.rowCount()), rows, -1)
        if self.proxy is None:
            return rows
        if hasattr(self.proxy, "map_rows_from_source"):     # ArraySortFilterProxy: vectorised
            return self.proxy.map_rows_from_source(rows)
        out = np.full(rows.shape, -1, dtype=np.int64)
        for i, r in enumerate(rows.tolist()):
            if r >= 0:
                index = self.proxy.mapFromSource(self.model.index(r, 0))
                out[i] = index.row() if index.isValid() else -1
        return out

    def _show_status(self, status: dict) -> None:
        self._show_clients(status["clients"])
        self._show_hints(status["hints"])

    def _show_hints(self, hints: list) -> None:
        self.hint.setText("\n".join(f"Note: {h}." for h in hints))
        self.hint.setVisible(bool(hints))

    def _show_clients(self, clients: list) -> None:
        self._known_clients = list(clients)
        self.clients.clear()
        for c in clients:
            item = QTreeWidgetItem([c["name"], c["id"]])
            for mtype in c["subscriptions"]:
                QTreeWidgetItem(item, [mtype, ""])
            self.clients.addTopLevelItem(item)
        self.clients_changed.emit(clients)

    def _update_buttons(self) -> None:
        on = self.link is not None
        self.connect_button.setEnabled(not on)
        self.disconnect_button.setEnabled(on)
        self.send_button.setEnabled(on)
        self.send_table_button.setEnabled(on)
