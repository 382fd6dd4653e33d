"""The SAMP panel of the desktop application, offscreen, on a private pyvo hub (never ~/.samp)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("PyQt6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("pytestqt")
pytest.importorskip("pyvo")

from PyQt6.QtCore import QItemSelectionModel  # noqa: E402

from gui_support import window  # noqa: E402,F401
from samp_peers import (Receiver, pyvo_hub, pyvo_hub_process,  # noqa: E402,F401
                        registered_clients, samp_lockfile)
from vo_al.core.session.candidates import COLUMNS  # noqa: E402

WAIT_MS = 15_000


def fake_candidates(n: int = 8) -> dict:
    """A candidates table (the dashboard's columns) without training a model."""
    rng = np.random.default_rng(1)
    p = rng.dirichlet(np.ones(3), n)
    return {"pool_index": np.arange(n)[::-1] * 10,        # the view sorts it: rows get reordered
            "name": np.array([f"spec-{i}" for i in range(n)]),
            "designation": np.array([f"J{i:04d}" for i in range(n)]),
            "ra": 10.0 + np.arange(n) * 0.1, "dec": -5.0 + np.arange(n) * 0.1,
            "class": np.array(["single peak"] * n), "origin": np.array(["model"] * n),
            "p_non_target": p[:, 0], "p_single": p[:, 1], "p_double": p[:, 2],
            "snr": rng.uniform(5, 50, n), "source": np.array([""] * n)}



def view_row_of(w, model_row: int) -> int:
    d = w.dashboard
    return d.proxy.mapFromSource(d.model.index(model_row, 0)).row()


def test_samp_panel_follows_and_drives_the_candidates_table(window, qtbot, pyvo_hub):
    w = window[0]
    d, panel = w.dashboard, w.samp
    assert set(fake_candidates()) == set(COLUMNS)
    d.model.set_table(fake_candidates())
    peer = Receiver("peer", ["coord.pointAt.sky", "table.highlight.row"])
    try:
        with qtbot.waitSignal(panel.connected_changed, timeout=WAIT_MS) as blocker:
            panel.connect_button.click()
        assert blocker.args == [True]
        assert panel.link.hub_info.embedded is False           # joined the running hub
        qtbot.waitUntil(lambda: panel.link.candidates is not None and not panel.busy,
                        timeout=WAIT_MS)

        def peer_listed():
            names = [panel.clients.topLevelItem(i).text(0)
                     for i in range(panel.clients.topLevelItemCount())]
            return "peer" in names
        qtbot.waitUntil(peer_listed, timeout=WAIT_MS)
        item = next(panel.clients.topLevelItem(i) for i in range(panel.clients.topLevelItemCount())
                    if panel.clients.topLevelItem(i).text(0) == "peer")
        subs = {item.child(j).text(0) for j in range(item.childCount())}
        assert {"coord.pointAt.sky", "table.highlight.row"} <= subs

        # TOPCAT-like: the peer highlights row 3 of our table -> the GUI selects that row
        table = panel.link.candidates
        with qtbot.waitSignal(panel.row_selected, timeout=WAIT_MS) as blocker:
            peer.notify(panel.link.self_id, "table.highlight.row",
                        {"table-id": table.table_id, "url": table.url, "row": "3"})
        assert blocker.args == [3]
        qtbot.waitUntil(lambda: panel.current_row() == 3, timeout=WAIT_MS)
        assert d.table.currentIndex().row() == view_row_of(w, 3)
        assert w.tabs.currentWidget() is d
        assert not any(g[2] == "coord.pointAt.sky" for g in peer.got)   # not echoed back

        # the expert selects row 5 -> the peer is pointed at its sky position
        d.table.selectionModel().setCurrentIndex(
            d.proxy.index(view_row_of(w, 5), 0),
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows)
        qtbot.waitUntil(lambda: any(g[2] == "coord.pointAt.sky" for g in peer.got),
                        timeout=WAIT_MS)
        got = next(g for g in peer.got if g[2] == "coord.pointAt.sky")
        assert float(got[3]["ra"]) == pytest.approx(10.5)
        assert float(got[3]["dec"]) == pytest.approx(-4.5)
        qtbot.waitUntil(lambda: any(g[2] == "table.highlight.row" and g[3]["row"] == "5"
                                    for g in peer.got), timeout=WAIT_MS)

        # the peer leaves -> the client list follows
        peer.close()
        qtbot.waitUntil(lambda: not peer_listed(), timeout=WAIT_MS)
        with qtbot.waitSignal(panel.connected_changed, timeout=WAIT_MS) as blocker:
            panel.disconnect_button.click()
        assert blocker.args == [False]
        qtbot.waitUntil(lambda: not panel.busy, timeout=WAIT_MS)
    finally:
        peer.close()


def test_samp_panel_starts_an_embedded_hub(window, qtbot, samp_lockfile):
    panel = window[0].samp
    assert not samp_lockfile.exists()
    with qtbot.waitSignal(panel.connected_changed, timeout=WAIT_MS):
        panel.connect_hub()
    assert panel.link.hub_info.embedded
    assert samp_lockfile.exists()                               # the private one, not ~/.samp
    qtbot.waitUntil(lambda: panel.clients.topLevelItemCount() >= 1, timeout=WAIT_MS)
    panel.send_current()                                        # no table yet: nothing to send
    window[0].close()                                            # closes the link and its hub
    assert panel.link is None
    assert not samp_lockfile.exists()


def test_samp_panel_rejoins_a_hub_that_comes_back(window, qtbot, pyvo_hub_process):
    """The user's hub stops and starts again: the panel says so and vo-al is on the new hub,
    with no click; it does not start a hub of its own in between."""
    w = window[0]
    panel = w.samp
    w.dashboard.model.set_table(fake_candidates())
    with qtbot.waitSignal(panel.connected_changed, timeout=WAIT_MS):
        panel.connect_hub()
    assert not panel.link.hub_info.embedded
    with qtbot.waitSignal(panel.connected_changed, timeout=WAIT_MS) as blocker:
        pyvo_hub_process.stop()
    assert blocker.args == [False] and "went away" in panel.status.text()
    assert panel.disconnect_button.isEnabled()             # still ours to switch off
    with qtbot.waitSignal(panel.connected_changed, timeout=WAIT_MS) as blocker:
        pyvo_hub_process.start()
    assert blocker.args == [True] and "reconnected" in panel.status.text()
    assert not panel.link.hub_info.embedded
    assert "vo-al" in registered_clients()
    peer = Receiver("peer", ["coord.pointAt.sky"])
    try:
        with qtbot.waitSignal(panel.row_selected, timeout=WAIT_MS) as blocker:
            qtbot.waitUntil(lambda: panel.link.candidates is not None and not panel.busy,
                            timeout=WAIT_MS)
            table = panel.link.candidates
            peer.notify(panel.link.self_id, "table.highlight.row",
                        {"table-id": table.table_id, "url": table.url, "row": "2"})
        assert blocker.args == [2]
    finally:
        peer.close()


def test_samp_panel_says_who_got_a_send_and_asks_before_stopping_its_hub(window, qtbot,
                                                                          samp_lockfile):
    """vo-al's embedded hub with a peer on it: a send names the peer (or says nobody takes
    it), the hint says Aladin cannot see this private lockfile, and Disconnect asks first,
    naming the peer; No keeps the hub, Yes stops it."""
    from PyQt6.QtWidgets import QMessageBox

    w = window[0]
    panel = w.samp
    w.dashboard.model.set_table(fake_candidates())
    with qtbot.waitSignal(panel.connected_changed, timeout=WAIT_MS):
        panel.connect_hub()
    assert panel.link.hub_info.embedded
    qtbot.waitUntil(lambda: "~/.samp" in panel.hint.text(), timeout=WAIT_MS)
    assert str(samp_lockfile) in panel.hint.text()
    peer = Receiver("peer", ["coord.pointAt.sky", "table.highlight.row"])
    try:
        qtbot.waitUntil(lambda: panel.link.candidates is not None and not panel.busy,
                        timeout=WAIT_MS)
        panel.send_table()                                  # the peer takes no tables
        qtbot.waitUntil(lambda: "not sent" in panel.status.text(), timeout=WAIT_MS)
        assert panel.status.text() == ("SAMP: 8 candidates not sent: nobody on the hub takes "
                                       "table.load.votable")
        panel.send_row(3)
        qtbot.waitUntil(lambda: panel.status.text().startswith("SAMP: J0003:"),
                        timeout=WAIT_MS)
        assert panel.status.text() == "SAMP: J0003: sent to peer"

        panel.disconnect_button.click()
        qtbot.waitUntil(lambda: panel.stop_hub_question is not None
                        and panel.stop_hub_question.isVisible(), timeout=WAIT_MS)
        box = panel.stop_hub_question
        assert "peer is on" in box.text() and "stops it" in box.text()
        assert box.defaultButton() is box.button(QMessageBox.StandardButton.No)
        box.button(QMessageBox.StandardButton.No).click()
        assert panel.connected and "still connected" in panel.status.text()
        assert samp_lockfile.exists()

        panel.disconnect_button.click()
        qtbot.waitUntil(lambda: panel.stop_hub_question.isVisible(), timeout=WAIT_MS)
        with qtbot.waitSignal(panel.connected_changed, timeout=WAIT_MS) as blocker:
            panel.stop_hub_question.button(QMessageBox.StandardButton.Yes).click()
        assert blocker.args == [False] and panel.link is None
        qtbot.waitUntil(lambda: not samp_lockfile.exists(), timeout=WAIT_MS)   # hub stopped
    finally:
        peer.close()


def test_closing_the_window_asks_before_stopping_the_hub_a_tool_is_on(window, qtbot,
                                                                      samp_lockfile):
    """Closing the window stops vo-al's embedded hub, as Disconnect does: with a tool on it,
    the close asks first, naming it; No keeps the window, the project and the hub; Yes
    closes and stops the hub. With nobody on the hub it closes at once."""
    from PyQt6.QtWidgets import QMessageBox

    w = window[0]
    panel = w.samp
    with qtbot.waitSignal(panel.connected_changed, timeout=WAIT_MS):
        panel.connect_hub()
    assert panel.link.hub_info.embedded and panel.tools_losing_hub() == []
    peer = Receiver("peer", ["coord.pointAt.sky"])
    try:
        qtbot.waitUntil(lambda: panel.tools_losing_hub() == ["peer"], timeout=WAIT_MS)
        assert w.close() is False and w.isVisible()
        box = panel.stop_hub_question
        qtbot.waitUntil(lambda: box.isVisible(), timeout=WAIT_MS)
        assert "peer is on" in box.text() and "Quitting vo-al stops it" in box.text()
        assert box.defaultButton() is box.button(QMessageBox.StandardButton.No)
        box.button(QMessageBox.StandardButton.No).click()
        assert w.isVisible() and panel.connected and samp_lockfile.exists()
        assert "stays open" in panel.status.text()

        assert w.close() is False
        qtbot.waitUntil(lambda: panel.stop_hub_question.isVisible(), timeout=WAIT_MS)
        panel.stop_hub_question.button(QMessageBox.StandardButton.Yes).click()
        qtbot.waitUntil(lambda: not w.isVisible(), timeout=WAIT_MS)
        assert panel.link is None and not samp_lockfile.exists()          # hub stopped
    finally:
        peer.close()


def test_closing_the_window_with_nobody_on_the_hub_closes_at_once(window, qtbot,
                                                                 samp_lockfile):
    w = window[0]
    with qtbot.waitSignal(w.samp.connected_changed, timeout=WAIT_MS):
        w.samp.connect_hub()
    qtbot.waitUntil(lambda: not w.samp.busy, timeout=WAIT_MS)
    assert w.close() is True and w.samp.stop_hub_question is None
    assert not samp_lockfile.exists()
