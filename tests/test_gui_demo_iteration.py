"""One whole demo iteration through the window, as an astronomer does it (issue 5's acceptance
path): make the offline demo project, train a tiny model, score, query, label every waiting
spectrum with key presses (the demo's synthetic truth plays the expert), estimate precision, see
the candidates, send one over SAMP to a test hub's client (sky position, spectrum, table) and
export the catalogue. Offscreen, on a private SAMP hub; never ~/.samp."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("PyQt6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("pytestqt")

from astropy.table import Table  # noqa: E402
from PyQt6.QtCore import QItemSelectionModel, Qt  # noqa: E402

from gui_support import window  # noqa: E402,F401
from samp_peers import Receiver, pyvo_hub, samp_lockfile  # noqa: E402,F401
from vo_al.core.demo.oracle import SimulatedOracle  # noqa: E402
from vo_al.core.demo.simulate import SimulationConfig  # noqa: E402

JOB_TIMEOUT_MS = 180_000
WAIT_MS = 30_000
KEYS = {0: Qt.Key.Key_1, 1: Qt.Key.Key_2, 2: Qt.Key.Key_3}
PEER_MTYPES = ["coord.pointAt.sky", "spectrum.load.ssa-generic", "table.load.votable",
               "table.highlight.row"]



def step(qtbot, w, name):
    button = w.panel.buttons[name]
    assert button.isEnabled(), f"{name} disabled; next step {w.session.next_step()}"
    with qtbot.waitSignal(w.job_done, timeout=JOB_TIMEOUT_MS):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert w.worker.error is None, w.worker.error


def test_a_whole_demo_iteration_through_the_window(window, qtbot, tmp_path, pyvo_hub):
    w = window[0]
    config = SimulationConfig(n_train=300, n_pool=600, target_fraction=0.1, workers=1)
    with qtbot.waitSignal(w.job_done, timeout=JOB_TIMEOUT_MS):
        w.create_demo(tmp_path / "demo", config)
    qtbot.waitUntil(lambda: w.session is not None, timeout=WAIT_MS)
    # a tiny model: the demo's method, fewer epochs and smaller batches
    w.project.change_settings({"max_epochs": "2", "batch_size": "12", "precision_sample": "8"})
    truth = SimulatedOracle(tmp_path / "demo" / "data" / "pool" / "truth.csv", w.project.pool)
    # the cross-match tab offers the demo's own sky (offline) rather than the shipped files
    assert w.crossmatch.source.currentData() == "file"
    assert w.crossmatch.catalogue.text().startswith(str(w.project.folder / "catalogues"))
    assert w.crossmatch.h16.text().startswith(str(w.project.folder / "catalogues"))

    for name in ("train", "score", "query"):
        step(qtbot, w, name)
    assert w.panel.device.text().startswith("device: ")

    # label everything waiting, with the keys, as the expert would
    view = w.labelling
    w.tabs.setCurrentWidget(view)
    pending = w.session.pending()
    assert len(pending) >= 12
    for item in pending:
        assert view.current() == item
        qtbot.keyClick(view, KEYS[truth(item.pool_index)])
    assert w.session.pending() == []
    oracle = w.session.store.oracle_labels()
    assert all(oracle[p.pool_index] == truth(p.pool_index) for p in pending
               if p.purpose == "query")

    step(qtbot, w, "estimate")
    estimate = w.session.estimates()[-1]
    assert "precision" in w.status_label.text()

    # the candidates: the dashboard's table is the core's candidate table
    d = w.dashboard
    qtbot.waitUntil(lambda: not d.is_refreshing, timeout=WAIT_MS)
    n_candidates = d.model.rowCount()
    assert n_candidates > 0 and f"{estimate['precision']:.3f}" in d.summary.text()

    # SAMP: a test hub's client gets the selected candidate and the table
    peer = Receiver("peer", PEER_MTYPES)
    try:
        with qtbot.waitSignal(w.samp.connected_changed, timeout=WAIT_MS):
            w.samp.connect_hub()
        qtbot.waitUntil(lambda: w.samp.link.candidates is not None and not w.samp.busy,
                        timeout=WAIT_MS)
        view_row = 0
        source_row = d.proxy.mapToSource(d.proxy.index(view_row, 0)).row()
        expected = {c: d.model.table[c][source_row] for c in ("ra", "dec", "source", "name")}
        with qtbot.waitSignal(w.samp.sent, timeout=WAIT_MS) as sent:
            d.table.selectionModel().setCurrentIndex(
                d.proxy.index(view_row, 0), QItemSelectionModel.SelectionFlag.ClearAndSelect
                | QItemSelectionModel.SelectionFlag.Rows)
        assert sent.args[0] == source_row

        def got(mtype):
            return [g for g in peer.got if g[2] == mtype]
        qtbot.waitUntil(lambda: bool(got("coord.pointAt.sky") and got("spectrum.load.ssa-generic")),
                        timeout=WAIT_MS)
        point = got("coord.pointAt.sky")[0][3]
        assert float(point["ra"]) == pytest.approx(float(expected["ra"]))
        assert float(point["dec"]) == pytest.approx(float(expected["dec"]))
        spectrum = got("spectrum.load.ssa-generic")[0][3]
        assert spectrum["url"] == Path(str(expected["source"])).resolve().as_uri()
        assert spectrum["meta"]["Access.Format"] == "application/fits"

        w.samp.send_table()
        qtbot.waitUntil(lambda: bool(got("table.load.votable")), timeout=WAIT_MS)
        sent_table = Table.read(got("table.load.votable")[0][3]["url"], format="votable")
        assert len(sent_table) == n_candidates
    finally:
        peer.close()

    # export: the catalogue a colleague opens in TOPCAT
    out = tmp_path / "candidates.vot"
    with qtbot.waitSignal(d.exported, timeout=WAIT_MS):
        d.export_catalogue(out)
    exported = Table.read(out, format="votable")
    assert len(exported) == n_candidates
    assert set(np.asarray(exported["name"]).astype(str)) == set(
        np.asarray(d.model.table["name"]).astype(str))
