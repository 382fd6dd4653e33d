"""VO client errors against local HTTP servers (http.server on 127.0.0.1, port 0): no internet.

Unreachable port, HTTP 404/500, malformed and error VOTables, a FITS that is not a spectrum, a
server that drops the connection twice before answering (retry with backoff), a truncated
download never left in the cache, an async TAP job deleted after an error and after a timeout.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from vo_al.core.vo import query as vo_query
from vo_al.core.base.errors import (DownloadError, ParameterError, VOFormatError, VOQueryError,
                               VOServiceError)
from vo_al.core.vo.harvest import (CACHE_DIR, HarvestItem, SpectrumCache, download, harvest,
                                items_from_table, load_job, name_for)
from vo_al.core.pool.store import PoolStore
from vo_al.core.spectra.preprocess import preprocess_spectra
from vo_al.core.base.progress import CancelToken, run_job
from vo_al.core.spectra.readers import read_spectrum
from vo_al.core.vo.services import (SIZE_RADIUS, VOService, default_services, load_services,
                                    resolve_service, save_services)
from vo_al.core.demo import make_pool

pytestmark = pytest.mark.timeout(120)

_VOT_HEAD = ('<?xml version="1.0"?><VOTABLE version="1.3" '
             'xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE type="results">')


def _votable(status: str, message: str, rows: list[tuple[str, str]]) -> bytes:
    """A minimal SSA/TAP result: columns accref (access URL) and obsid."""
    body = (f'<INFO name="QUERY_STATUS" value="{status}">{message}</INFO>'
            '<TABLE><FIELD name="accref" datatype="char" arraysize="*" '
            'utype="ssa:Access.Reference" ucd="meta.ref.url;meta.dataset"/>'
            '<FIELD name="obsid" datatype="char" arraysize="*"/><DATA><TABLEDATA>')
    body += "".join(f"<TR><TD>{u}</TD><TD>{o}</TD></TR>" for u, o in rows)
    body += "</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"
    return (_VOT_HEAD + body).encode()


_ERROR_VOT = (_VOT_HEAD + '<INFO name="QUERY_STATUS" value="ERROR">Could not locate table '
              'nothing.here</INFO></RESOURCE></VOTABLE>').encode()

_UWS = """<?xml version="1.0" encoding="UTF-8"?>
<uws:job xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0" xmlns:xlink="http://www.w3.org/1999/xlink"
 version="1.1">
<uws:jobId>{jid}</uws:jobId><uws:runId/><uws:ownerId xsi:nil="true"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/>
<uws:phase>{phase}</uws:phase><uws:quote xsi:nil="true"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/>
<uws:creationTime>2026-01-01T00:00:00Z</uws:creationTime>
<uws:startTime>2026-01-01T00:00:00Z</uws:startTime>
<uws:endTime xsi:nil="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/>
<uws:executionDuration>60</uws:executionDuration>
<uws:destruction>2026-12-01T00:00:00Z</uws:destruction>
<uws:parameters><uws:parameter id="query">x</uws:parameter></uws:parameters>
<uws:results/>{error}
</uws:job>"""


def _lamost_bytes(tmp: Path, n: int = 3) -> list[bytes]:
    folder = make_pool(tmp / "synth", n=n, seed=5, gz_fraction=0.0, table_fraction=0.0)
    files = sorted(folder.glob("*.fits"))[:n]
    return [f.read_bytes() for f in files]


def _not_a_spectrum() -> bytes:
    """A valid FITS file (a small 2-D image without LAMOST keywords): not a spectrum."""
    import io

    buf = io.BytesIO()
    fits.PrimaryHDU(np.zeros((4, 4), np.float32)).writeto(buf)
    return buf.getvalue()


class _State:
    def __init__(self):
        self.lock = threading.Lock()
        self.hits: dict[str, int] = {}
        self.files: dict[str, bytes] = {}
        self.deleted: list[str] = []
        self.job_phase = "ERROR"

    def hit(self, path: str) -> int:
        with self.lock:
            self.hits[path] = self.hits.get(path, 0) + 1
            return self.hits[path]


def _handler(state: _State):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):          # quiet
            pass

        def _send(self, code: int, body: bytes, ctype="application/x-votable+xml",
                  headers=None):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _drop(self):
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            n = state.hit(path)
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            if path in ("/ssa/ok", "/tap/ok/sync"):
                rows = [(f"{base}/files/good{i}.fits", str(100 + i)) for i in range(2)]
                return self._send(200, _votable("OK", "fine", rows))
            if path == "/ssa/overflow":
                return self._send(200, _votable("OVERFLOW", "truncated",
                                                [(f"{base}/files/good0.fits", "100")]))
            if path in ("/ssa/malformed", "/tap/malformed/sync"):
                return self._send(200, b"<VOTABLE><RESOURCE><TABLE><oops")
            if path in ("/ssa/error", "/tap/error/sync"):
                return self._send(200, _ERROR_VOT)
            if path in ("/ssa/500", "/tap/500/sync"):
                return self._send(500, b"internal error", "text/plain")
            if path.startswith("/tap/uws/async/"):
                jid = path.rsplit("/", 1)[-1]
                err = ("<uws:errorSummary type=\"fatal\"><uws:message>table nothing.here "
                       "does not exist</uws:message></uws:errorSummary>"
                       if state.job_phase == "ERROR" else "")
                return self._send(200, _UWS.format(jid=jid, phase=state.job_phase,
                                                   error=err).encode(), "text/xml")
            if path == "/files/flaky.fits" and n <= 2:
                return self._drop()                # connection reset twice, then fine
            if path == "/files/broken5xx.fits":
                return self._send(503, b"busy", "text/plain")
            if path == "/files/truncated.fits":
                body = state.files["good0.fits"]
                self.send_response(200)
                self.send_header("Content-Type", "application/fits")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                return self._drop()
            if path.startswith("/files/"):
                name = path.rsplit("/", 1)[-1]
                if name == "flaky.fits":
                    name = "good1.fits"
                if name in state.files:
                    return self._send(200, state.files[name], "application/fits")
            return self._send(404, b"not found", "text/plain")

        def do_POST(self):
            path = self.path.split("?", 1)[0]
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            state.hit(path)
            if path == "/tap/uws/async":
                self.send_response(303)
                self.send_header("Location", "/tap/uws/async/job1")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            if path.startswith("/tap/uws/async/") and path.endswith("/phase"):
                self.send_response(303)
                self.send_header("Location", path.rsplit("/", 1)[0])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            return self.do_GET()

        def do_DELETE(self):
            state.deleted.append(self.path)
            self.send_response(303)
            self.send_header("Location", "/tap/uws/async")
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


class _FaultyServer(ThreadingHTTPServer):
    """The server of the faults below: a connection it drops on purpose also resets its own end,
    which is not an error worth a traceback on stderr."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    state = _State()
    good = _lamost_bytes(tmp_path_factory.mktemp("vo"), 3)
    for i, raw in enumerate(good):
        state.files[f"good{i}.fits"] = raw
    state.files["notspectrum.fits"] = _not_a_spectrum()
    state.files["empty.fits"] = b""
    state.files["html.fits"] = b"<html><body>maintenance</body></html>"
    httpd = _FaultyServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def session():
    s = vo_query.make_session(timeout=(2.0, 5.0))
    yield s
    s.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- queries

def test_unreachable_port_is_a_service_error_naming_service_and_query(session):
    url = f"http://127.0.0.1:{_free_port()}/tap"
    with pytest.raises(VOServiceError) as info:
        vo_query.tap_query(url, "SELECT TOP 1 * FROM x", mode="sync", session=session)
    assert "unreachable" in info.value.reason
    assert info.value.service == url and "SELECT TOP 1" in info.value.query
    with pytest.raises(VOServiceError, match="unreachable"):
        vo_query.ssap_search(url.replace("/tap", "/ssa"), (10, 20), 0.1, session=session)


@pytest.mark.parametrize("kind", ["ssap", "tap"])
def test_http_500_and_404(server, session, kind):
    def run(name):
        if kind == "ssap":
            return vo_query.ssap_search(f"{server.base}/ssa/{name}", (10, 20), 0.1,
                                        session=session)
        return vo_query.tap_query(f"{server.base}/tap/{name}", "SELECT 1", mode="sync",
                                  session=session)

    with pytest.raises(VOServiceError) as info:
        run("500")
    assert info.value.status == 500 and "500" in str(info.value)
    with pytest.raises(VOServiceError) as info:
        run("nowhere")
    assert info.value.status == 404


@pytest.mark.parametrize("kind", ["ssap", "tap"])
def test_malformed_votable_is_a_format_error(server, session, kind):
    with pytest.raises(VOFormatError) as info:
        if kind == "ssap":
            vo_query.ssap_search(f"{server.base}/ssa/malformed", (10, 20), 0.1, session=session)
        else:
            vo_query.tap_query(f"{server.base}/tap/malformed", "SELECT 1", mode="sync",
                               session=session)
    assert "malformed" in info.value.service


@pytest.mark.parametrize("kind", ["ssap", "tap"])
def test_error_votable_is_a_query_error_with_the_server_message(server, session, kind):
    with pytest.raises(VOQueryError, match="Could not locate table") as info:
        if kind == "ssap":
            vo_query.ssap_search(f"{server.base}/ssa/error", (10, 20), 0.1, session=session)
        else:
            vo_query.tap_query(f"{server.base}/tap/error", "SELECT * FROM nothing.here",
                               mode="sync", session=session)
    assert info.value.cause is not None


def test_ssap_ok_overflow_and_size_semantics(server, session):
    table = vo_query.ssap_search(f"{server.base}/ssa/ok", (10, 20), 0.5, maxrec=5,
                                 session=session)
    assert len(table) == 2 and table.meta["overflow"] is False
    assert table.meta["query_status"] == "OK"
    assert "SIZE=1.0" in table.meta["query"] and "MAXREC=5" in table.meta["query"]
    radius_service = VOService("r", "ssap", f"{server.base}/ssa/ok", ssa_size=SIZE_RADIUS)
    table = vo_query.ssap_search(radius_service, (10, 20), 0.5, session=session)
    assert "SIZE=0.5" in table.meta["query"]
    over = vo_query.ssap_search(f"{server.base}/ssa/overflow", (10, 20), 0.5, maxrec=1,
                                session=session)
    assert over.meta["overflow"] is True and len(over) == 1
    with pytest.raises(ParameterError):
        vo_query.ssap_search(f"{server.base}/ssa/ok", (10, 20), -1, session=session)


def test_async_job_deleted_after_error(server, session):
    server.job_phase = "ERROR"
    server.deleted.clear()
    with pytest.raises(VOQueryError, match="does not exist"):
        vo_query.tap_query(f"{server.base}/tap/uws", "SELECT * FROM nothing.here",
                           mode="async", session=session)
    assert server.deleted == ["/tap/uws/async/job1"]


def test_async_job_timeout_aborts_and_deletes(server, session):
    server.job_phase = "EXECUTING"
    server.deleted.clear()
    try:
        with pytest.raises(VOServiceError, match="still EXECUTING"):
            vo_query.tap_query(f"{server.base}/tap/uws", "SELECT 1", mode="async",
                               session=session, async_timeout=0.3)
    finally:
        server.job_phase = "ERROR"
    assert server.deleted == ["/tap/uws/async/job1"]


def test_auto_mode_choice():
    assert vo_query._choose_mode("SELECT TOP 10 * FROM t", None, "auto") == "sync"
    assert vo_query._choose_mode("SELECT * FROM t", 100, "auto") == "sync"
    assert vo_query._choose_mode("SELECT * FROM t", None, "auto") == "async"
    assert vo_query._choose_mode("SELECT TOP 10000000 * FROM t", None, "auto") == "async"


def test_paged_query_adql():
    p = vo_query.PagedQuery("lamost.data", "obsid", "obsid, accref", "snrr > 10")
    assert p.adql(100) == ("SELECT TOP 100 obsid, accref FROM lamost.data WHERE (snrr > 10) "
                           "ORDER BY obsid ASC")
    assert "obsid > 'a''b'" in p.adql(5, "a'b")
    assert "obsid > 42" in p.adql(5, np.int64(42))


# ---------------------------------------------------------------- services config

def test_services_roundtrip_and_resolve(tmp_path, monkeypatch):
    monkeypatch.setenv("VO_AL_CONFIG_DIR", str(tmp_path / "cfg"))
    services = load_services()                     # no file: the local DaCHS defaults
    assert {s.kind for s in services.values()} == {"ssap", "tap"}
    services["mine"] = VOService("mine", "tap", "https://example.org/tap")
    path = save_services(services)
    assert path == tmp_path / "cfg" / "vo_services.json"
    again = load_services()
    assert again["mine"].url == "https://example.org/tap"
    assert resolve_service("mine", "tap").url == "https://example.org/tap"
    with pytest.raises(ParameterError):
        resolve_service("mine", "ssap")
    adhoc = resolve_service(default_services()[0].url, "ssap")
    assert adhoc.ssa_size == SIZE_RADIUS
    project = tmp_path / "proj"
    project.mkdir()
    save_services([VOService("p", "ssap", "http://h/ssa")], project=project)
    assert set(load_services(project=project)) == {"p"}
    (tmp_path / "bad.json").write_text(json.dumps({"format": "vo-al vo services",
                                                   "services": [{"name": "x", "kind": "sql",
                                                                 "url": "http://h"}]}))
    with pytest.raises(ParameterError, match="kind"):
        load_services(tmp_path / "bad.json")


# ---------------------------------------------------------------- downloads

def _no_partials(folder: Path) -> list:
    return [p for p in folder.rglob(".part-*")]


def test_download_ok_404_not_fits_not_spectrum_empty(server, session, tmp_path):
    sp = download(f"{server.base}/files/good0.fits", tmp_path / "a.fits", session=session)
    assert sp.instrument == "lamost" and (tmp_path / "a.fits").stat().st_size > 0
    cases = {"missing.fits": ("HTTP 404", 404, False),
             "notspectrum.fits": ("not a usable spectrum", None, False),
             "empty.fits": ("empty", None, False),
             "html.fits": ("not a FITS file", None, False)}
    for name, (reason, status, retryable) in cases.items():
        hits = server.hits.get(f"/files/{name}", 0)
        with pytest.raises(DownloadError) as info:
            download(f"{server.base}/files/{name}", tmp_path / name, session=session,
                     retries=3, backoff=0.01)
        assert reason in info.value.reason and info.value.status == status
        assert info.value.retryable is retryable
        assert info.value.url.endswith(name)
        assert server.hits[f"/files/{name}"] == hits + 1       # never retried
        assert not (tmp_path / name).exists()
    assert _no_partials(tmp_path) == []


def test_retry_with_backoff_after_dropped_connections(server, session, tmp_path):
    server.hits.pop("/files/flaky.fits", None)
    sp = download(f"{server.base}/files/flaky.fits", tmp_path / "f.fits", session=session,
                  retries=3, backoff=0.01)
    assert server.hits["/files/flaky.fits"] == 3
    assert sp.flux.size > 0
    before = server.hits.get("/files/broken5xx.fits", 0)
    with pytest.raises(DownloadError) as info:
        download(f"{server.base}/files/broken5xx.fits", tmp_path / "b.fits", session=session,
                 retries=2, backoff=0.01)
    assert info.value.retryable and info.value.status == 503
    assert server.hits["/files/broken5xx.fits"] == before + 3
    assert "3 attempts" in info.value.reason


def test_partial_download_never_left_in_cache(server, session, tmp_path):
    dest = tmp_path / "cache" / "ab" / "t.fits"
    with pytest.raises(DownloadError) as info:
        download(f"{server.base}/files/truncated.fits", dest, session=session, retries=1,
                 backoff=0.01)
    assert info.value.retryable
    assert not dest.exists()
    assert _no_partials(tmp_path) == []


def test_unreachable_download(session, tmp_path):
    url = f"http://127.0.0.1:{_free_port()}/files/x.fits"
    with pytest.raises(DownloadError) as info:
        download(url, tmp_path / "x.fits", session=session, retries=1, backoff=0.01)
    assert info.value.retryable and "connection failed" in info.value.reason


# ---------------------------------------------------------------- harvest

def test_harvest_goes_on_after_failures_and_resumes(server, session, tmp_path):
    table = vo_query.ssap_search(f"{server.base}/ssa/ok", (10, 20), 0.5, session=session)
    items = items_from_table(table)
    assert [it.name for it in items] == ["good0.fits", "good1.fits"]
    assert items[0].meta == {"obsid": "100"}
    b = server.base
    items += [HarvestItem(f"{b}/files/missing.fits", "missing.fits"),
              HarvestItem(f"{b}/files/notspectrum.fits", "notspectrum.fits"),
              HarvestItem(f"{b}/files/good2.fits", "good2.fits", {"obsid": "7", "snr": 12.5}),
              HarvestItem(f"{b}/files/truncated.fits", "truncated.fits")]
    pool = PoolStore.create(tmp_path / "pool")
    folder = tmp_path / "harvest"
    steps = []
    job = harvest(pool, folder, items, session=session, workers=3, batch=2, retries=1,
                  backoff=0.01)
    report = run_job(job, steps.append)
    assert report.added == 3 and report.skipped == 0
    failed = dict(report.failed)
    assert set(failed) == {f"{b}/files/missing.fits", f"{b}/files/notspectrum.fits",
                           f"{b}/files/truncated.fits"}
    assert "404" in failed[f"{b}/files/missing.fits"]
    assert "not a usable spectrum" in failed[f"{b}/files/notspectrum.fits"]
    assert steps[-1].stage == "harvest" and steps[-1].done == steps[-1].total == 6
    meta = pool.metadata()
    by_name = dict(zip(meta["name"], range(len(pool))))
    assert set(by_name) == {"good0.fits", "good1.fits", "good2.fits"}
    i = by_name["good2.fits"]
    assert meta["source"][i] == f"{b}/files/good2.fits"
    assert meta["obsid"][i] == "7" and meta["snr"][i] == 12.5
    # rows equal direct preprocessing of the cached files
    cache = SpectrumCache(folder / CACHE_DIR)
    for name, idx in by_name.items():
        url = f"{b}/files/{name}"
        direct = preprocess_spectra([read_spectrum(cache.path_for(url))]).rows[0]
        np.testing.assert_array_equal(pool.rows([idx])[0], direct)
    assert _no_partials(folder) == []
    assert len(load_job(folder)) == 6
    assert json.loads((folder / "failed.json").read_text())
    # resume: nothing downloaded again, nothing added twice, failures retried
    hits = dict(server.hits)
    report = run_job(harvest(pool, folder, session=session, retries=0, backoff=0.01))
    assert report.added == 0 and report.skipped == 3 and len(report.failed) == 3
    assert all(server.hits.get(f"/files/good{i}.fits") == hits.get(f"/files/good{i}.fits")
               for i in range(3))
    assert len(pool) == 3


def test_harvest_cancel_between_files(server, session, tmp_path):
    b = server.base
    items = [HarvestItem(f"{b}/files/good{i}.fits", f"good{i}.fits") for i in range(3)]
    pool = PoolStore.create(tmp_path / "pool")
    token = CancelToken()
    job = harvest(pool, tmp_path / "h", items, session=session, workers=1, batch=10,
                  cancel=token)
    from vo_al.core.base.errors import Cancelled

    with pytest.raises(Cancelled):
        for p in job:
            if p.done >= 1:
                token.cancel()
    first = len(pool)
    assert 1 <= first < 3
    report = run_job(harvest(pool, tmp_path / "h", session=session))
    assert len(pool) == 3 and report.added == 3 - first


def test_harvest_stops_asking_a_dead_server(session, tmp_path):
    base = f"http://127.0.0.1:{_free_port()}"
    items = [HarvestItem(f"{base}/f{i}.fits", f"f{i}.fits") for i in range(40)]
    pool = PoolStore.create(tmp_path / "pool")
    report = run_job(harvest(pool, tmp_path / "h", items, session=session, workers=2,
                             retries=0, max_consecutive_failures=5))
    assert report.stopped_early and report.added == 0
    assert len(report.failed) == 40
    assert any("not attempted" in r for _, r in report.failed)


def test_name_for():
    assert name_for("http://h/getproduct/lamost/data/spec-1.fits") == "spec-1.fits"
    assert name_for("http://h/getproduct/x/spec-1.fits.gz") == "spec-1.fits"
    assert name_for("http://h/dl?ID=ivo://x", obsid="12") == "obsid-12"
    assert name_for("http://h/dl?ID=ivo://x", row_name="spec-2.fits") == "spec-2.fits"
    assert name_for("http://h/dl?ID=ivo://x").startswith("url-")
