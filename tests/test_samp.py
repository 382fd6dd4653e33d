"""SAMP with real peers on loopback: pyvo's embedded hub, a JSAMP hub, JSAMP's snooper and
messagesender, pyvo receivers; every test on a private hub lockfile (tests/samp_peers.py)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
import urllib.request
import xmlrpc.client as xmlrpc

import numpy as np
import pytest

from samp_peers import (PyvoHubProcess, Receiver, jsamp_hub, pyvo_hub,  # noqa: F401
                        pyvo_hub_process, registered_clients, samp_lockfile, snooper,
                        splat_like_answer, wait_for)
from vo_al.core.samp import messages as msgs
from vo_al.core.base.errors import SampClientNotFound, SampHubError, SampMessageError
from vo_al.core.samp.client import SUBSCRIPTIONS
from vo_al.core.samp.hub import hub_url
from vo_al.core.samp.link import SampLink

pytestmark = pytest.mark.timeout(120)

PEER_MTYPES = ["coord.pointAt.sky", "spectrum.load.ssa-generic", "table.load.votable",
               "table.highlight.row", "table.select.rowList"]


def candidate_columns(n=5):
    rng = np.random.default_rng(1)
    return {
        "pool_index": np.arange(n) * 10 + 3,
        "name": np.array([f"spec-{i}.fits" for i in range(n)], dtype=object),
        "designation": np.array([f"J{i:06d}+0{i}0000" for i in range(n)], dtype=object),
        "ra": 150.0 + np.arange(n) * 0.1,
        "dec": 2.0 + np.arange(n) * 0.1,
        "class": np.array(["single peak"] * n, dtype=object),
        "p_single": rng.random(n),
        "source": np.array([f"http://127.0.0.1:8080/getproduct/lamost/data/spec-{i}.fits"
                            for i in range(n)], dtype=object),
    }


@pytest.fixture
def link(samp_lockfile):
    lk = SampLink(name="vo-al", timeout=5.0, rpc_timeout=5.0)
    yield lk
    lk.close()


# ----------------------------------------------------------------------------- messages
def test_url_checks_and_parsers():
    for bad in ("javascript:alert(1)", "ftp://x/y.fits", "data:text/plain,x", "", None, 7,
                "http:///nohost", "file\x00://x", "http://a/\nb"):
        with pytest.raises(SampMessageError):
            msgs.check_url(bad)
    assert msgs.check_url(" https://h/x.fits ") == "https://h/x.fits"
    assert msgs.parse_select({"row-list": ["3", "1", "3"]}, 5) == [1, 3]
    assert msgs.parse_point({"ra": "370", "dec": "-10.5"}) == (10.0, -10.5)
    for params in ({"row": "5"}, {"row": "-1"}, {"row": "1e3"}, {"row": 1.5}, {"row": ["1"]},
                   {"row": "9" * 40}, {}):
        with pytest.raises(SampMessageError):
            msgs.parse_highlight(params, 5)
    msg = msgs.spectrum_load("http://h/s.fits", "J1", 10, 20)
    assert msg["samp.params"]["meta"] == {"Access.Format": "application/fits",
                                          "Access.Reference": "http://h/s.fits",
                                          "Target.Name": "J1", "Target.Pos": "10.0 20.0"}


# ----------------------------------------------------------------------------- hubs
def test_embedded_hub_when_none_runs(link, samp_lockfile):
    info = link.connect()
    assert info.embedded and samp_lockfile.exists()
    assert "std-lockurl" not in info.lockfile and str(samp_lockfile) in info.lockfile
    peer = Receiver("peer", PEER_MTYPES)          # another tool joins our hub
    try:
        status = link.status()
        clients = {c["name"]: c for c in status["clients"]}
        assert status["hub"]["embedded"] and "peer" in clients
        assert "table.highlight.row" in clients["peer"]["subscriptions"]
    finally:
        peer.close()
    link.close()
    assert not link.connected


def test_joins_running_jsamp_hub_and_lists_clients(link, jsamp_hub):
    info = link.connect()
    assert not info.embedded and info.self_id
    peer = Receiver("peer", PEER_MTYPES)
    try:
        names = {p.name: p for p in link.peers()}
        assert "peer" in names and names["peer"].subscribes("table.load.votable")
        with pytest.raises(SampClientNotFound):
            link.find_peers("nobody")
    finally:
        peer.close()


def test_no_hub_and_no_embedded_hub_is_a_typed_error(samp_lockfile):
    lk = SampLink(start_hub=False, rpc_timeout=2)
    t0 = time.monotonic()
    with pytest.raises(SampHubError):
        lk.connect()
    assert time.monotonic() - t0 < 3
    lk.close()


# ----------------------------------------------------------------------------- sending
def test_snooper_records_exactly_what_we_send(link, snooper):
    link.connect()
    cols = candidate_columns()
    table = link.set_candidates(cols, table_id="vo-al-test-42", name="vo-al candidates")
    assert all(r.status == "samp.warning" for r in link.send_table(to="snoop"))   # logged
    out = link.send_candidate(2, to="snoop")
    assert set(out) == {"coord.pointAt.sky", "spectrum.load.ssa-generic", "table.highlight.row"}
    link.select([1, 3], to="snoop")
    got = snooper.wait(5, "vo-al")
    by = {m["mtype"]: m for m in got}
    assert by["table.load.votable"]["kind"] == "call"
    assert by["table.load.votable"]["params"] == {"url": table.url, "table-id": "vo-al-test-42",
                                                  "name": "vo-al candidates"}
    assert by["coord.pointAt.sky"]["params"] == {"ra": repr(float(cols["ra"][2])),
                                                 "dec": repr(float(cols["dec"][2]))}
    spec = by["spectrum.load.ssa-generic"]["params"]
    assert spec["url"] == cols["source"][2]
    assert spec["meta"] == {"Access.Format": "application/fits",
                            "Access.Reference": cols["source"][2],
                            "Target.Name": cols["designation"][2],
                            "Target.Pos": f"{float(cols['ra'][2])!r} {float(cols['dec'][2])!r}"}
    assert by["table.highlight.row"]["params"] == {"url": table.url, "table-id": "vo-al-test-42",
                                                   "row": "2"}
    assert by["table.select.rowList"]["params"]["row-list"] == ["1", "3"]
    # the VOTable we point at holds our rows
    from astropy.table import Table

    t = Table.read(table.url.replace("file://", ""), format="votable")
    assert list(t["designation"]) == list(cols["designation"])


def test_broadcast_and_one_chosen_client(link, pyvo_hub):
    link.connect()
    link.set_candidates(candidate_columns())
    a, b = Receiver("tool-a", PEER_MTYPES), Receiver("tool-b", ["coord.pointAt.sky"])
    try:
        replies = link.point_at(10.5, -3.25)                     # broadcast: both subscribe
        assert sorted(r.client_name for r in replies) == ["tool-a", "tool-b"]
        assert all(r.status == "samp.ok" for r in replies)
        replies = link.send_table(to="tool-a")
        assert [r.client_name for r in replies] == ["tool-a"] and replies[0].ok
        with pytest.raises(SampClientNotFound):
            link.send_table(to="tool-b")                         # does not take tables
        out = link.send_candidate(0, to="tool-b")                # only what tool-b takes
        assert list(out) == ["coord.pointAt.sky"]
        b.wait(2)
        assert [m[2] for m in a.wait(2)] == ["coord.pointAt.sky", "table.load.votable"]
        assert link.set_current(0) == []                         # unchanged: nothing sent
        assert [r.client_name for r in link.set_current(4)] == ["tool-a"]
        assert a.wait(3)[-1][2:] == ("table.highlight.row",
                                     {"url": link.candidates.url,
                                      "table-id": link.candidates.table_id, "row": "4"})
    finally:
        a.close()
        b.close()


def test_spectrum_for_splat_vo_downloads_from_dachs(link, pyvo_hub, dachs, tmp_path):
    """SPLAT-VO is not installable: a receiver checks what it needs, then we fetch the URL."""
    import pyvo

    from vo_al.core.spectra.readers import read_spectrum

    rows = pyvo.dal.TAPService(dachs.tap_url).run_sync(
        "SELECT TOP 2 access_url, ra, dec, designation, obsid FROM lamost.data").to_table()
    cols = {"pool_index": np.arange(len(rows)), "designation": np.asarray(rows["designation"],
                                                                          dtype=object),
            "ra": np.asarray(rows["ra"], float), "dec": np.asarray(rows["dec"], float),
            "source": np.asarray(rows["access_url"], dtype=object)}
    link.connect()
    link.set_candidates(cols)
    splat = Receiver("splat", ["spectrum.load.ssa-generic"], answer=splat_like_answer)
    try:
        out = link.send_candidate(1)
        assert [r.status for r in out["spectrum.load.ssa-generic"]] == ["samp.ok"]
        _, _, mtype, params = splat.wait(1)[0]
        assert params["meta"]["Target.Name"] == str(cols["designation"][1])
        path = tmp_path / "spectrum.fits"
        with urllib.request.urlopen(params["url"], timeout=10) as r:
            path.write_bytes(r.read())
        spectrum = read_spectrum(path)
        assert len(spectrum.flux) > 1000
        # a receiver really rejects what SPLAT could not load
        assert splat_like_answer(mtype, {"url": params["url"], "meta": {}})[0] == "samp.error"
    finally:
        splat.close()


def test_dead_peer_times_out_without_hanging(link, jsamp_hub):
    link.connect()
    link.set_candidates(candidate_columns())
    zombie = Receiver("zombie", PEER_MTYPES)
    zombie.client.client.stop()                # its server is gone, still registered on the hub
    alive = Receiver("alive", PEER_MTYPES)
    try:
        t0 = time.monotonic()
        replies = {r.client_name: r for r in link.point_at(1, 2, timeout=2)}
        took = time.monotonic() - t0
        assert replies["alive"].status == "samp.ok"
        assert replies["zombie"].status in ("timeout", "samp.error", "failed")
        assert took < 2 + link.rpc_timeout
    finally:
        alive.close()


class Silent(Receiver):
    """A peer that takes calls and never answers them (a hung SPLAT-VO)."""

    def _on_call(self, private_key, sender_id, msg_id, mtype, params, extra):
        self._record("call", sender_id, mtype, params)


def test_each_send_says_who_received_it(link, pyvo_hub):
    """Who got each message, by name, and how it answered; nobody subscribed is said, not a
    silent success."""
    from vo_al.core.samp.records import Delivery

    link.connect()
    link.set_candidates(candidate_columns())

    def picky(mtype, params):
        return "samp.error", {}, "no such table"

    ok = Receiver("TOPCAT-like", ["coord.pointAt.sky", "table.load.votable"])
    refusing = Receiver("picky", ["coord.pointAt.sky"], answer=picky)
    silent = Silent("SPLAT-like", ["coord.pointAt.sky"])
    try:
        delivery = Delivery({msgs.POINT_AT_SKY: link.point_at(1.0, 2.0, timeout=1.0)})
        assert delivery.received == ["TOPCAT-like"]
        assert sorted(delivery.problems) == ["SPLAT-like: no reply within 1 s",
                                             "picky: error: no such table"]
        assert delivery.text().startswith("sent to TOPCAT-like; ")
        silent.wait(1)                                  # it did get the message
        # nobody takes spectra: said so, in the candidate's report too
        spectrum = msgs.spectrum_load("http://127.0.0.1/s.fits", "J1", 1, 2)
        nobody = Delivery({msgs.SPECTRUM_LOAD: link.send(spectrum)})
        assert nobody.text() == "not sent: nobody on the hub takes spectrum.load.ssa-generic"
        out = link.send_candidate(1, timeout=1.0)
        text = Delivery(out).text()
        assert "nobody takes spectrum.load.ssa-generic, table.highlight.row" in text
        assert "SPLAT-like (coord.pointAt.sky): no reply within 1 s" in text
        table = Delivery({msgs.TABLE_LOAD: link.send_table()})
        assert table.text("5 candidates") == "sent 5 candidates to TOPCAT-like"
    finally:
        for peer in (ok, refusing, silent):
            peer.close()


def test_the_hub_vo_al_runs_tells_who_is_on_it_and_what_to_know(link, samp_lockfile):
    """Before Disconnect stops the embedded hub: who would lose it; and the hints (TOPCAT's
    row clicks; Aladin reads only ~/.samp, and this hub's lockfile is private)."""
    from pathlib import Path

    from vo_al.core.samp.hints import (ALADIN_JOINS_AT_START, ALADIN_LOCKFILE,
                                       TOPCAT_ROW_CLICKS, peer_hints)
    from vo_al.core.samp.hub import is_standard_lockfile

    info = link.connect()
    assert info.embedded and link.clients_on_own_hub() == []
    assert not is_standard_lockfile(info.lockfile)
    assert link.hints() == [f"{ALADIN_LOCKFILE} (this hub's is {info.lockfile})"]
    topcat = Receiver("topcat", PEER_MTYPES)
    try:
        wait_for(lambda: [p.name for p in link.clients_on_own_hub()] == ["topcat"], 10,
                 "the peer on vo-al's hub")
        assert link.status()["hints"][0] == TOPCAT_ROW_CLICKS
    finally:
        topcat.close()
    # on ~/.samp Aladin would see the hub: a note only once something was sent (and missed it)
    home = Path.home() / ".samp"
    assert is_standard_lockfile(str(home)) and is_standard_lockfile(home.as_uri())
    standard = info.__class__(url=info.url, lockfile=str(home), embedded=True)
    assert peer_hints(standard, ["topcat", "Aladin"], sent=True) == [TOPCAT_ROW_CLICKS]
    assert peer_hints(standard, ["peer"], sent=False) == []
    assert peer_hints(standard, ["peer"], sent=True) == [ALADIN_JOINS_AT_START]


def test_a_joined_hub_is_not_vo_als_to_stop(link, pyvo_hub):
    link.connect()
    peer = Receiver("peer", PEER_MTYPES)
    try:
        assert "peer" in [p.name for p in link.peers(refresh=True)]
        assert link.clients_on_own_hub() == []          # Disconnect leaves the hub running
    finally:
        peer.close()


# ----------------------------------------------------------------------------- receiving
def test_peer_selects_candidates(link, pyvo_hub):
    link.connect()
    table = link.set_candidates(candidate_columns())
    seen, threads = [], set()
    link.add_listener(lambda e: (seen.append(e), threads.add(threading.current_thread().name)))
    peer = Receiver("topcat-like", [])
    me = link.self_id
    try:
        r = peer.call(me, "table.highlight.row", {"table-id": table.table_id,
                                                  "url": table.url, "row": "3"})
        assert r["samp.status"] == "samp.ok"
        r = peer.call(me, "table.select.rowList", {"table-id": table.table_id,
                                                   "url": table.url, "row-list": ["4", "0"]})
        assert r["samp.status"] == "samp.ok"
        # by URL alone (no table-id) also counts as ours
        peer.notify(me, "table.highlight.row", {"url": table.url, "row": "1"})
        # a notification has no reply: the hub delivers it on a thread of its own, so a call
        # sent after it may overtake it; wait for it to keep the order below
        wait_for(lambda: any(e.kind == "highlight" and e.rows == (1,) for e in seen), 5,
                 "the notified highlight")
        r = peer.call(me, "coord.pointAt.sky", {"ra": "150.2", "dec": "2.2036"})   # ~13"
        assert r["samp.status"] == "samp.ok" and r["samp.result"]["row"] == "2"
        r = peer.call(me, "coord.pointAt.sky", {"ra": "150.2", "dec": "2.21"})     # 36"
        assert r["samp.status"] == "samp.ok" and r["samp.result"]["matched"] == "0"
        r = peer.call(me, "table.highlight.row", {"table-id": "someone-else", "row": "1"})
        assert r["samp.status"] == "samp.warning"                # not ours: politely ignored
        wait_for(lambda: len([e for e in seen if e.kind in ("highlight", "select", "point")])
                 >= 4, 5, "4 events")
        events = [e for e in seen if e.kind in ("highlight", "select", "point")]
        assert [(e.kind, e.rows, e.pool_indices) for e in events] == [
            ("highlight", (3,), (33,)), ("select", (0, 4), (3, 43)),
            ("highlight", (1,), (13,)), ("point", (2,), (23,))]
        assert events[0].sender_name == "topcat-like"
        assert events[3].separation_arcsec == pytest.approx(12.96, abs=0.1)
        assert threading.main_thread().name not in threads       # SAMP threads, not ours
        polled = [e for e in link.poll_events() if e.kind in ("highlight", "select", "point")]
        assert polled == events                                  # the queue holds the same
        assert link.current_row == 1
    finally:
        peer.close()


def test_jsamp_messagesender_highlights_a_candidate(link, jsamp_hub):
    """A real JSAMP peer (jsamp messagesender) highlights and points: vo-al answers samp.ok."""
    link.connect()
    table = link.set_candidates(candidate_columns())

    def send(mtype, *params):
        args = ["jsamp", "messagesender", "-mtype", mtype, "-mode", "sync",
                "-targetname", "vo-al"]
        for p in params:
            args += ["-param", *p.split("=", 1)]
        return subprocess.run(args, env=jsamp_hub.env, capture_output=True, text=True, timeout=60)

    proc = send("table.highlight.row", f"table-id={table.table_id}", "row=4")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "samp.ok" in proc.stdout + proc.stderr
    proc = send("coord.pointAt.sky", "ra=150.1", "dec=2.1")
    assert proc.returncode == 0 and "samp.ok" in proc.stdout + proc.stderr
    proc = send("table.highlight.row", f"table-id={table.table_id}", "row=99999999999")
    assert "samp.error" in proc.stdout + proc.stderr
    event = link.wait_event(5, kinds=["highlight"])
    assert event.rows == (4,) and event.pool_indices == (43,) and event.sender_name
    event = link.wait_event(5, kinds=["point"])
    assert event.rows == (1,)


def _malformed(table_id, url):
    ok_id = {"table-id": table_id}
    bad = [
        ("table.highlight.row", {}), ("table.highlight.row", ok_id),
        ("table.highlight.row", {**ok_id, "row": "-1"}),
        ("table.highlight.row", {**ok_id, "row": "5"}),
        ("table.highlight.row", {**ok_id, "row": "99999999999999999999999"}),
        ("table.highlight.row", {**ok_id, "row": "1.5"}),
        ("table.highlight.row", {**ok_id, "row": "one"}),
        ("table.highlight.row", {**ok_id, "row": ["1"]}),
        ("table.highlight.row", {**ok_id, "row": {"a": "1"}}),
        ("table.highlight.row", {"table-id": ["x"], "row": "1"}),
        ("table.highlight.row", {"url": "javascript:alert(1)", "row": "1"}),
        ("table.highlight.row", {"url": "ftp://evil/x.vot", "row": "1"}),
        ("table.highlight.row", {"url": "data:text/plain,hi", "row": "1"}),
        ("table.select.rowList", ok_id), ("table.select.rowList", {**ok_id, "row-list": "1"}),
        ("table.select.rowList", {**ok_id, "row-list": ["1", "x"]}),
        ("table.select.rowList", {**ok_id, "row-list": ["1", "77"]}),
        ("table.select.rowList", {**ok_id, "row-list": [str(i) for i in range(50)]}),
        ("table.select.rowList", {**ok_id, "row-list": [["1"]]}),
        ("coord.pointAt.sky", {}), ("coord.pointAt.sky", {"ra": "x", "dec": "1"}),
        ("coord.pointAt.sky", {"ra": "1", "dec": "91"}),
        ("coord.pointAt.sky", {"ra": "nan", "dec": "1"}),
        ("coord.pointAt.sky", {"ra": "inf", "dec": "1"}),
        ("coord.pointAt.sky", {"ra": ["1"], "dec": "1"}),
        ("coord.pointAt.sky", {"ra": "1" * 500, "dec": "1"}),
        ("x-garbage.whatever", {"a": "b"}),
    ]
    out = []
    while len(out) < 100:
        out += bad
    return out[:100]


# vo-al answers the bogus msg-ids below as it answers any call; the pyvo hub's reply thread
# (`_reply_`) then fails to split them: the hub's thread, not vo-al's, so not this test's failure
@pytest.mark.filterwarnings(r"ignore:Exception in thread [^ ]+ \(_reply_\)"
                            ":pytest.PytestUnhandledThreadExceptionWarning")
def test_100_malformed_messages_are_answered_and_survived(link, pyvo_hub):
    link.connect()
    table = link.set_candidates(candidate_columns())
    peer = Receiver("fuzzer", [])
    me = link.self_id
    try:
        statuses = []
        messages = _malformed(table.table_id, table.url)
        for i, (mtype, params) in enumerate(messages):
            subscribed = not mtype.startswith("x-garbage")
            try:
                if i % 3 == 2:
                    peer.notify(me, mtype, params)           # notifications: logged, dropped
                else:
                    r = peer.call(me, mtype, params, timeout=30)   # generous: a loaded CI machine
                    statuses.append(r["samp.status"])
                assert subscribed
            except Exception as exc:                          # noqa: BLE001
                # the hub itself refuses MTypes vo-al does not subscribe to
                assert not subscribed and "not subscribed" in str(exc)
        assert statuses and set(statuses) == {"samp.error"}, statuses
        # garbage straight into vo-al's XML-RPC callback (a hostile or broken hub)
        client = link._client
        proxy = xmlrpc.ServerProxy(client.client._xmlrpcAddr, allow_none=True)
        key = client.private_key
        for message in ("garbage", ["a"], {"samp.mtype": 5}, {"samp.mtype": "table.highlight.row",
                                                              "samp.params": "nope"}, {}):
            assert proxy.samp.client.receiveNotification(key, "hub", message) == ""
            assert proxy.samp.client.receiveCall(key, "hub", "bogus-msg-id", message) == ""
        assert proxy.samp.client.receiveCall("wrong-key", "hub", "x", {}) == ""
        assert link.received >= 100 and link.rejected >= 100
        # still connected and working
        assert link.check()
        r = peer.call(me, "table.highlight.row", {"table-id": table.table_id, "row": "2"})
        assert r["samp.status"] == "samp.ok"
        assert link.wait_event(5, kinds=["highlight"]).rows == (2,)
    finally:
        peer.close()


# ----------------------------------------------------------------------------- hub crashes
def test_hub_killed_and_restarted_mid_session(link, jsamp_hub):
    link.connect()
    link.set_candidates(candidate_columns())
    first = link.hub_info.url
    link.poll_events()
    link.start_watchdog(interval=0.3)
    peer = Receiver("peer", PEER_MTYPES)
    peer.close()
    jsamp_hub.kill()                                     # no shutdown message: a crash
    t0 = time.monotonic()
    with pytest.raises(SampHubError):
        for _ in range(3):                               # the watchdog may notice first
            link.point_at(1, 2)
            time.sleep(0.3)
    assert time.monotonic() - t0 < link.rpc_timeout + 3
    assert link.wait_event(5, kinds=["hub"]).message == "lost"
    assert not link.connected
    jsamp_hub.start()                                    # the user starts a hub again
    assert link.wait_event(20, kinds=["hub"]).message == "reconnected"
    assert link.connected and link.hub_info.url != first and not link.hub_info.embedded
    peer = Receiver("peer2", PEER_MTYPES)
    try:
        replies = link.send_candidate(3)
        assert all(r.status == "samp.ok" for rs in replies.values() for r in rs)
        assert len(peer.wait(3)) == 3
    finally:
        peer.close()


def test_hub_shutdown_message_and_sending_without_hub(link, pyvo_hub):
    link.connect()
    link.set_candidates(candidate_columns())
    link.poll_events()
    pyvo_hub.stop()                                      # a clean stop: samp.hub.event.shutdown
    assert link.wait_event(10, kinds=["hub"]).message == "lost"
    t0 = time.monotonic()
    with pytest.raises(SampHubError):
        link.highlight(1)
    assert time.monotonic() - t0 < 3


#: the hub's own messages, as a peer could forge them (cli#999 is nobody)
HUB_EVENTS = [("samp.hub.event.shutdown", {}), ("samp.hub.disconnect", {"reason": "forged"}),
              ("samp.hub.event.register", {"id": "cli#999"}),
              ("samp.hub.event.unregister", {"id": "cli#999"}),
              ("samp.hub.event.metadata", {"id": "cli#999", "metadata": {"samp.name": "TOPCAT"}}),
              ("samp.hub.event.subscriptions", {"id": "cli#999", "subscriptions": {}})]


def announced(link, client_id: str) -> None:
    """Until the hub has told `link` about `client_id` (a "clients" event naming it)."""
    seen = []
    wait_for(lambda: seen.extend(link.poll_events()) or any(
        e.kind == "clients" and e.sender_id == client_id for e in seen), 10,
        f"the hub to announce {client_id}")


def test_only_the_hub_may_send_hub_events(link, pyvo_hub, caplog):
    """A peer sends samp.hub.event.shutdown (and the other hub events) to vo-al: the hub relays
    them, so they arrive; vo-al ignores them, stays registered and keeps answering."""
    link.connect()
    table = link.set_candidates(candidate_columns())
    peer = Receiver("forger", [])
    me = link.self_id
    try:
        announced(link, peer.id)
        rejected = link.rejected
        with caplog.at_level(logging.WARNING, logger="vo_al.samp"):
            for mtype, params in HUB_EVENTS:
                peer.notify(me, mtype, params)       # a notification: ignored, no answer
            wait_for(lambda: link.rejected >= rejected + len(HUB_EVENTS), 10,
                     "vo-al to ignore the forged notifications")
            for mtype, params in HUB_EVENTS:
                r = peer.call(me, mtype, params)     # as a call: refused
                assert r["samp.status"] == "samp.error", (mtype, r)
                assert "not the hub" in r["samp.error"]["samp.errortxt"]
        ignored = [r.getMessage() for r in caplog.records if "not the hub" in r.getMessage()]
        assert len(ignored) == 2 * len(HUB_EVENTS) and peer.id in ignored[0]
        assert link.connected and link.check()
        events = link.poll_events()
        assert not [e for e in events if e.kind == "hub"]
        assert not [e for e in events if e.kind == "clients" and e.sender_id == "cli#999"]
        assert set(SUBSCRIPTIONS) <= registered_clients()["vo-al"]     # the hub still lists it
        r = peer.call(me, "table.highlight.row", {"table-id": table.table_id, "row": "2"})
        assert r["samp.status"] == "samp.ok"                           # and it still answers
        # the hub's own events still count
        newcomer = Receiver("newcomer", [])
        try:
            announced(link, newcomer.id)
        finally:
            newcomer.close()
    finally:
        peer.close()


def test_a_hub_restarted_at_the_same_address_is_joined_again(pyvo_hub_process):
    """The hub crashed and a new one listens at the same address: it pings, but it has never
    heard of vo-al (a new secret). vo-al registers again, with its subscriptions and metadata."""
    hub = pyvo_hub_process
    link = SampLink(start_hub=False, timeout=5.0, rpc_timeout=5.0)
    try:
        first = link.connect()
        secret = hub.params()["samp.secret"]
        hub.kill()                                   # a crash: no shutdown message
        hub.start()                                  # the same port, a new secret
        assert hub_url(hub.params()) == first.url and hub.params()["samp.secret"] != secret
        link.poll_events()
        assert link.check()
        assert [e.message for e in link.poll_events() if e.kind == "hub"] == ["lost",
                                                                              "reconnected"]
        assert link.connected and link.hub_info.url == first.url
        assert set(SUBSCRIPTIONS) <= registered_clients()["vo-al"]
        peer = Receiver("peer", PEER_MTYPES)
        try:
            meta = peer.client.get_metadata(link.self_id)
            assert meta["samp.name"] == "vo-al"
            assert meta["vo-al.version"] == link.metadata["vo-al.version"]
            table = link.set_candidates(candidate_columns())
            r = peer.call(link.self_id, "table.highlight.row",
                          {"table-id": table.table_id, "row": "1"})
            assert r["samp.status"] == "samp.ok"
            assert [r.status for r in link.point_at(150.1, 2.1)] == ["samp.ok"]
        finally:
            peer.close()
    finally:
        link.close()


def test_a_new_hub_in_the_lockfile_is_followed(link, pyvo_hub, samp_lockfile, tmp_path):
    """The lockfile names another hub now (the old one's lockfile was removed and a new hub
    started): the tools that start from now on meet there, so vo-al moves over and leaves
    the old hub."""
    link.connect()
    old = dict(pyvo_hub.params)
    samp_lockfile.unlink()
    new = PyvoHubProcess(samp_lockfile, tmp_path).start()
    try:
        link.poll_events()
        assert link.check()
        assert [e.message for e in link.poll_events() if e.kind == "hub"] == ["lost",
                                                                              "reconnected"]
        assert link.hub_info.url == hub_url(new.params()) != hub_url(old)
        assert "vo-al" in registered_clients()
        wait_for(lambda: "vo-al" not in registered_clients(old), 10,
                 "vo-al to unregister from the old hub")
    finally:
        new.stop()


def test_cli_listen_rejoins_a_hub_that_comes_back(pyvo_hub_process, tmp_path):
    """`vo-al samp send --listen`: the hub stops and starts again; the command says so and is
    registered on the new hub, without being restarted."""
    from vo_al.core.session.candidates import write_table_csv

    hub = pyvo_hub_process
    cols = candidate_columns()
    cols.update(origin=np.array(["predicted"] * 5, dtype=object), p_non_target=np.zeros(5),
                p_double=np.zeros(5), snr=np.full(5, 30.0))
    csv = write_table_csv(cols, tmp_path / "candidates.csv")
    proc = subprocess.Popen([sys.executable, "-m", "vo_al.cli", "samp", "send", str(csv),
                             "--no-table", "--listen", "100", "--json"], env=hub.env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[str] = []

    def read():
        for line in proc.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def hub_events():
        return [json.loads(line)["message"] for line in list(lines)
                if line.startswith('{"event": "hub"')]

    try:
        wait_for(lambda: "}\n" in lines or proc.poll() is not None, 60, "the send report")
        assert proc.poll() is None, "".join(lines)
        hub.stop()                                   # a clean stop: the hub tells vo-al
        wait_for(lambda: "lost" in hub_events(), 20, "the command to see the hub go")
        hub.start()
        wait_for(lambda: "reconnected" in hub_events(), 30, "the command to rejoin the hub")
        assert hub_events() == ["connected", "lost", "reconnected"]
        assert set(SUBSCRIPTIONS) <= registered_clients()["vo-al"]
    finally:
        proc.terminate()
        proc.wait(10)
        reader.join(5)


# ----------------------------------------------------------------------------- command line
def _cli(argv):
    import argparse

    from vo_al.cli.samp import add_samp_commands

    parser = argparse.ArgumentParser(prog="vo-al")
    add_samp_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    args.func(args)


def test_cli_status_and_send(snooper, tmp_path, capsys):
    from vo_al.core.session.candidates import write_table_csv

    cols = candidate_columns()
    cols.update(origin=np.array(["predicted"] * 5, dtype=object), p_non_target=np.zeros(5),
                p_double=np.zeros(5), snr=np.full(5, 30.0))
    csv = write_table_csv(cols, tmp_path / "candidates.csv")
    _cli(["samp", "status"])
    out = capsys.readouterr().out
    assert "snoop" in out and "lockfile" in out
    assert "note: Aladin is not on this hub" in out            # a private lockfile
    _cli(["samp", "send", str(csv), "--pool-index", "23", "--to", "snoop", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert [r["client"] for r in report["coord.pointAt.sky"]] == ["snoop"]
    assert report["row"] == 2 and report["candidate"]["designation"] == cols["designation"][2]
    got = {m["mtype"]: m["params"] for m in snooper.wait(4, "vo-al")}
    assert got["table.load.votable"]["table-id"] == "vo-al:candidates:candidates"
    assert got["spectrum.load.ssa-generic"]["url"] == cols["source"][2]
    assert got["table.highlight.row"]["row"] == "2"
    # by default, in words: who got each message and how it answered (the snooper warns)
    _cli(["samp", "send", str(csv), "--row", "1", "--to", "snoop"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"row 1: {cols['designation'][1]} (pool index 13)"
    assert lines[1].startswith("  table.load.votable: sent to snoop; snoop: warning")
    assert lines[2].startswith("  coord.pointAt.sky: sent to snoop; snoop: warning")
    assert any(line.startswith("  note: Aladin is not on this hub") for line in lines)


def test_cli_without_hub_is_an_error_not_a_hang(samp_lockfile):
    from vo_al.cli.samp import add_samp_commands  # noqa: F401
    from vo_al.core.base.errors import SampHubError

    t0 = time.monotonic()
    with pytest.raises(SampHubError):
        _cli(["samp", "status", "--timeout", "2"])
    assert time.monotonic() - t0 < 5


def test_a_local_source_is_sent_as_a_file_url(tmp_path, monkeypatch):
    """`vo-al ingest` records local paths; SPLAT-VO and TOPCAT need URLs."""
    spec = tmp_path / "spec 1.fits"
    spec.write_bytes(b"SIMPLE")
    assert msgs.source_url(str(spec)) == spec.resolve().as_uri()
    assert msgs.source_url(str(spec)).endswith("/spec%201.fits")
    monkeypatch.chdir(tmp_path)
    assert msgs.source_url("spec 1.fits") == spec.resolve().as_uri()      # relative: absolute
    url = "http://127.0.0.1:8080/getproduct/spec-1.fits"
    assert msgs.source_url(url) == url
    with pytest.raises(SampMessageError, match="source"):
        msgs.source_url("ftp://example.org/spec.fits")
    with pytest.raises(SampMessageError, match="source"):
        msgs.source_url("")


def test_a_refused_highlight_is_asked_once_more(link, pyvo_hub):
    """Like TOPCAT: the table is acknowledged, but the first highlight finds no such table."""
    link.connect()
    link.set_candidates(candidate_columns())
    asked = []

    def topcat_like(mtype, params):
        if mtype == "table.highlight.row":
            asked.append(params["row"])
            if len(asked) == 1:
                return "samp.error", {}, f"No table with id {params['table-id']}"
        return "samp.ok", {}, ""

    tool = Receiver("topcat-like", ["table.load.votable", "table.highlight.row"],
                    answer=topcat_like)
    try:
        link.send_table(to="topcat-like")
        out = link.send_candidate(2)
        assert asked == ["2", "2"]
        assert [r.status for r in out["table.highlight.row"]] == ["samp.ok"]
    finally:
        tool.close()


def test_the_package_api_is_cheap_to_import():
    """The GUI and the CLI import the SAMP package at start: pyvo and astropy wait for a hub."""
    code = ("import sys; from vo_al.core.samp import (CandidateTable, HubInfo, SampEvent, SampLink,"
            " SampPeer, SampReply, find_running_hub); "
            "print(sorted(m for m in ('pyvo', 'astropy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
