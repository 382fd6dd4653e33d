"""SAMP against the real desktop tools under Xvfb: TOPCAT and Aladin (tests/samp_peers.py).

Both join one private JSAMP hub per module (they register at start-up, ~2-10 s each). Skipped,
with the reason, only where they are missing and cannot be installed (not root / no apt-get).
"""

from __future__ import annotations

import os
import time
import urllib.request

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")   # the dock test: vo-al offscreen

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from gui_support import window  # noqa: E402,F401
from samp_peers import aladin, app_hub, topcat, wait_for, xvfb  # noqa: E402,F401
from vo_al.core.samp.hints import TOPCAT_ROW_CLICKS  # noqa: E402
from vo_al.core.samp.link import SampLink  # noqa: E402
from vo_al.core.samp.messages import TABLE_LOAD  # noqa: E402
from vo_al.core.samp.records import Delivery  # noqa: E402

pytestmark = pytest.mark.timeout(240)


def candidate_columns(n=6):
    return {
        "pool_index": np.arange(n) * 7 + 1,
        "name": np.array([f"spec-{i}.fits" for i in range(n)], dtype=object),
        "designation": np.array([f"J1000{i:02d}.00+020000.0" for i in range(n)], dtype=object),
        "ra": 150.0 + np.arange(n) * 0.01,
        "dec": 2.0 + np.arange(n) * 0.01,
        "class": np.array(["double peak"] * n, dtype=object),
        "source": np.array([f"http://127.0.0.1:8080/getproduct/lamost/data/spec-{i}.fits"
                            for i in range(n)], dtype=object),
    }


@pytest.fixture
def link(app_hub):
    lk = SampLink(name="vo-al", start_hub=False, timeout=20.0, rpc_timeout=10.0)
    lk.connect()
    yield lk
    lk.close()


def test_topcat_loads_our_table_and_follows_highlights(link, topcat):
    table = link.set_candidates(candidate_columns(), table_id="vo-al-apps-1",
                                name="vo-al candidates")
    peer = link.find_peers("topcat")[0]
    for mtype in ("table.load.votable", "table.highlight.row", "table.select.rowList"):
        assert peer.subscribes(mtype), peer.subscriptions
    [reply] = link.send_table(to="topcat")
    assert reply.status == "samp.ok", reply
    # TOPCAT answers the load before the table is in its list (its GUI thread adds it a moment
    # later): a highlight sent at once may be refused; it is accepted within a few seconds
    replies = []
    wait_for(lambda: replies.append(link.highlight(3, to="topcat", mode="call")[0])
             or replies[-1].status == "samp.ok", 15, "TOPCAT to accept the highlight", 0.2)
    [reply] = link.select([1, 4], to="topcat", mode="call")
    assert reply.status == "samp.ok", reply
    # another table-id: TOPCAT does not know it and says so
    other = {"samp.mtype": "table.highlight.row",
             "samp.params": {"table-id": "not-loaded", "url": "file:///nonexistent.vot",
                             "row": "1"}}
    [reply] = link.send(other, to="topcat", mode="call")
    assert reply.status in ("samp.error", "samp.warning")
    # read back what TOPCAT parsed: table.get.stil hands out the table it holds
    assert peer.subscribes("table.get.stil"), peer.subscriptions
    [reply] = link.send({"samp.mtype": "table.get.stil",
                         "samp.params": {"table-id": table.table_id,
                                         "format": "votable"}}, to="topcat", mode="call")
    assert reply.status == "samp.ok", reply
    from astropy.table import Table

    url = reply.result["url"]
    with urllib.request.urlopen(url, timeout=10) as r:
        path = link.work_dir / "readback.vot"
        path.write_bytes(r.read())
    back = Table.read(path, format="votable")
    assert list(back["designation"]) == list(table.columns["designation"])
    assert np.allclose(back["ra"], table.columns["ra"])


def test_aladin_points_where_we_say_and_gets_the_table(link, aladin):
    peer = link.find_peers("Aladin")[0]
    assert peer.subscribes("coord.pointAt.sky") and peer.subscribes("table.load.votable")
    link.set_candidates(candidate_columns(), table_id="vo-al-apps-2")
    replies = link.point_at(150.03, 2.03, to="Aladin", mode="call")
    assert replies[0].status == "samp.ok", replies
    [reply] = link.send({"samp.mtype": "coord.get.sky", "samp.params": {}}, to="Aladin",
                        mode="call")
    assert reply.status == "samp.ok", reply
    assert float(reply.result["ra"]) == pytest.approx(150.03, abs=1e-3)
    assert float(reply.result["dec"]) == pytest.approx(2.03, abs=1e-3)
    [reply] = link.send_table(to="Aladin")        # Aladin offline never answers: a notify
    assert reply.status == "notified"
    # Aladin is still alive and answering after the table
    [reply] = link.send({"samp.mtype": "samp.app.ping", "samp.params": {}}, to="Aladin",
                        mode="call")
    assert reply.status == "samp.ok"


def test_send_candidate_to_everyone_at_once(link, topcat, aladin):
    link.set_candidates(candidate_columns(), table_id="vo-al-apps-3")
    # broadcast: TOPCAT a call, Aladin a notify; both named as recipients
    table = Delivery({TABLE_LOAD: link.send_table()})
    assert sorted(table.received) == ["Aladin", "topcat"] and not table.problems, table.text()
    time.sleep(1.0)                               # TOPCAT lists the table just after its reply
    t0 = time.monotonic()
    out = link.send_candidate(5)
    took = time.monotonic() - t0
    names = {mtype: {r.client_name.lower(): r.status for r in rs} for mtype, rs in out.items()}
    assert names["coord.pointAt.sky"].get("aladin") == "samp.ok"
    assert names["table.highlight.row"].get("topcat") == "samp.ok"
    assert took < 3 * link.timeout
    text = Delivery(out).text()
    assert text.startswith("sent to ") and {"Aladin", "topcat"} <= set(Delivery(out).received)
    assert "nobody takes spectrum.load.ssa-generic" in text, text    # no SPLAT-VO here
    # TOPCAT sends row clicks back only once the user turns that on; Aladin is on the hub
    assert link.status()["hints"] == [TOPCAT_ROW_CLICKS]
    [reply] = link.send({"samp.mtype": "coord.get.sky", "samp.params": {}}, to="Aladin",
                        mode="call")
    assert float(reply.result["ra"]) == pytest.approx(150.05, abs=1e-3)


def test_the_dock_names_who_received_each_send(window, qtbot, topcat, aladin):
    """The SAMP dock on the hub TOPCAT and Aladin are on: each send names its recipients, and
    the hint line says how TOPCAT sends its row clicks back."""
    from vo_al.core.session.candidates import COLUMNS

    w = window[0]
    panel, d = w.samp, w.dashboard
    columns = candidate_columns()
    n = len(columns["ra"])
    columns.update(origin=np.array(["predicted"] * n), p_non_target=np.zeros(n),
                   p_single=np.zeros(n), p_double=np.ones(n), snr=np.full(n, 20.0),
                   source=np.array([""] * n))
    assert set(columns) == set(COLUMNS)
    d.model.set_table(columns)
    with qtbot.waitSignal(panel.connected_changed, timeout=30_000):
        panel.connect_hub()
    assert not panel.link.hub_info.embedded
    qtbot.waitUntil(lambda: TOPCAT_ROW_CLICKS in panel.hint.text(), timeout=30_000)
    assert not panel.hint.isHidden() and "~/.samp" not in panel.hint.text()   # Aladin is here

    panel.send_table()
    qtbot.waitUntil(lambda: panel.status.text().startswith("SAMP: sent 6 candidates to"),
                    timeout=30_000)
    assert {"topcat", "Aladin"} <= set(panel.status.text().split(" to ", 1)[1].split(", "))
    time.sleep(1.0)                               # TOPCAT lists the table just after its reply
    panel.send_row(2)
    designation = columns["designation"][2]
    qtbot.waitUntil(lambda: panel.status.text().startswith(f"SAMP: {designation}: sent to "),
                    timeout=30_000)
    assert "topcat" in panel.status.text() and "Aladin" in panel.status.text()
    with qtbot.waitSignal(panel.connected_changed, timeout=30_000):
        panel.disconnect_hub()                    # TOPCAT's hub: no question, it keeps running
    assert panel.stop_hub_question is None
    qtbot.waitUntil(lambda: not panel.busy, timeout=30_000)
