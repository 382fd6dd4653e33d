"""VO client errors against local HTTP servers (http.server on 127.0.0.1, port 0): no internet.

Unreachable port, HTTP 404/500, malformed and error VOTables, a FITS that is not a spectrum, a
server that drops the connection twice before answering (retry with backoff), a truncated
download never left in the cache, an async TAP job deleted after an error and after a timeout.

Hostile servers: an endless chunked body, gzip/deflate Content-Encoding bombs, a body or a header
that comes one byte at a time, a header that never comes, 503/429 with Retry-After (seconds and
HTTP-date), a file that stalls while the others finish (and a harvest killed meanwhile). Their
bounds are LimitSettings given to the calls, small here: every case ends within seconds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from vo_al.core.vo import query as vo_query
from vo_al.core.base.errors import (DownloadError, ParameterError, VOFormatError, VOQueryError,
                               VOServiceError)
from vo_al.core.base.limits import MB, LimitSettings
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
        self.times: dict[str, list[float]] = {}       # monotonic time of each request per path
        self.gate = threading.Event()                 # /files/gated.fits waits for it

    def hit(self, path: str) -> int:
        with self.lock:
            self.hits[path] = self.hits.get(path, 0) + 1
            self.times.setdefault(path, []).append(time.monotonic())
            return self.hits[path]


# hostile servers end on their own after this, so a client that does not stop them still ends
DRIP_S, DRIP_EVERY_S = 6.0, 0.25
ENDLESS_BYTES = 64 * MB          # an "endless" body: far over the default 16 MB bound


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

        def _drip(self, data: bytes):
            """Write `data` one byte every DRIP_EVERY_S, for DRIP_S at most, then hang up."""
            end = time.monotonic() + DRIP_S
            for i in range(len(data)):
                if time.monotonic() >= end:
                    break
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
                time.sleep(DRIP_EVERY_S)
            self._drop()

        def _fits_head(self, ctype="application/fits", headers=None, length=None):
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            if length is not None:
                self.send_header("Content-Length", str(length))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()

        def _hostile(self, path: str, n: int) -> bool:
            """The misbehaving servers; True when `path` was one of them."""
            good = state.files["good0.fits"]
            if path in ("/files/endless.fits", "/files/endless-plain.fits"):
                # a FITS start, then zeros; chunked (no length) or one huge Content-Length
                chunked = path == "/files/endless.fits"
                self._fits_head(headers={"Transfer-Encoding": "chunked"} if chunked else None,
                                length=None if chunked else ENDLESS_BYTES)
                block = good[:2880] + bytes((1 << 16) - 2880)
                sent = 0
                while sent < ENDLESS_BYTES:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block) if chunked
                                     else block)
                    sent += len(block)
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
                return True
            if path.startswith("/files/encoded-") or path.startswith("/files/bomb-"):
                # Content-Encoding: a good file (encoded-*) or 64 MB of zeros after a FITS
                # header (bomb-*), compressed as gzip, zlib deflate or raw deflate
                kind = path.rsplit("-", 1)[-1].split(".")[0]
                plain = good if path.startswith("/files/encoded-") else state.bomb_plain
                body = state.encoded(plain, kind)
                self._fits_head(headers={"Content-Encoding": "gzip" if kind == "gzip"
                                         else "deflate"}, length=len(body))
                self.wfile.write(body)
                return True
            if path == "/files/drip.fits":                 # a body one byte at a time
                self._fits_head(length=len(good))
                self._drip(good)
                return True
            if path == "/files/drip-header.fits":          # the header one byte at a time
                self._drip(b"HTTP/1.1 200 OK\r\nContent-Type: application/fits\r\n"
                           b"X-Padding: " + b"x" * 200 + b"\r\n\r\n")
                return True
            if path == "/files/pieces.fits":               # slow but whole: 4 pieces, 1.8 s
                self._fits_head(length=len(good))
                quarter = len(good) // 4 + 1
                for i in range(4):
                    self.wfile.write(good[i * quarter:(i + 1) * quarter])
                    self.wfile.flush()
                    if i < 3:
                        time.sleep(0.6)
                return True
            if path == "/files/silent.fits":               # nothing at all, for DRIP_S
                time.sleep(DRIP_S)
                self._drop()
                return True
            if path in ("/ssa/drip", "/tap/drip/sync"):    # an answer one byte at a time
                body = _votable("OK", "slowly", [("http://x/a.fits", "1")])
                self._fits_head("application/x-votable+xml", length=len(body))
                self._drip(body)
                return True
            if path == "/tap/driphead/sync":
                self._drip(b"HTTP/1.1 200 OK\r\nX-Padding: " + b"x" * 200 + b"\r\n\r\n")
                return True
            if path.startswith("/files/busy-"):
                # busy-<code>-<retry-after>.fits: that answer, then good1, by turns
                _, code, after = path.rsplit("/", 1)[-1].split(".")[0].split("-", 2)
                if n % 2 == 1:
                    wait = (formatdate(time.time() + float(after[5:]), usegmt=True)
                            if after.startswith("date+") else after)
                    self._send(int(code), b"busy", "text/plain", {"Retry-After": wait})
                else:
                    self._send(200, state.files["good1.fits"], "application/fits")
                return True
            if path == "/files/gated.fits":                # waits for the test, then answers
                state.gate.wait(DRIP_S * 2)
                self._send(200, state.files["good2.fits"], "application/fits")
                return True
            return False

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            n = state.hit(path)
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            if self._hostile(path, n):
                return None
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
    state.bomb_plain = good[0][:2880] + bytes(ENDLESS_BYTES)
    memo = {}

    def encoded(plain: bytes, kind: str) -> bytes:
        """`plain` as a server sends it with Content-Encoding gzip, deflate (zlib-wrapped, as
        RFC 9110 says) or raw deflate (what some servers send as 'deflate')."""
        key = (id(plain), kind)
        if key not in memo:
            wbits = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS,
                     "raw": -zlib.MAX_WBITS}[kind]
            c = zlib.compressobj(6, zlib.DEFLATED, wbits)
            memo[key] = c.compress(plain) + c.flush()
        return memo[key]

    state.encoded = encoded
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
        with pytest.raises(VOServiceError, match="still EXECUTING") as info:
            vo_query.tap_query(f"{server.base}/tap/uws", "SELECT 1", mode="async",
                               session=session, limits=_limits(query_deadline_s=1))
        assert "query_deadline_s" in info.value.reason
    finally:
        server.job_phase = "ERROR"
    assert server.deleted == ["/tap/uws/async/job1"]


@pytest.mark.parametrize("where", ["ssa/drip", "tap/drip", "tap/driphead", "tap/paged"])
def test_query_deadline_bounds_a_dripping_answer(server, session, where):
    """An answer (or its header) one byte at a time: the query ends at query_deadline_s with
    an error naming the service and the deadline, not after DRIP_S (or never)."""
    limits = _limits(query_deadline_s=1)
    with pytest.raises(VOServiceError) as info:
        if where.startswith("ssa"):
            vo_query.ssap_search(f"{server.base}/{where}", (10, 20), 0.1, session=session,
                                 limits=limits)
        elif where == "tap/paged":
            paged = vo_query.PagedQuery("lamost.data", "obsid")
            vo_query.tap_query_paged(f"{server.base}/tap/drip", paged, session=session,
                                     limits=limits)
        else:
            vo_query.tap_query(f"{server.base}/{where}", "SELECT 1", mode="sync",
                               session=session, limits=limits)
    assert "deadline of 1 s" in info.value.reason
    assert "query_deadline_s" in info.value.reason
    assert info.value.service.startswith(f"{server.base}/")


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


def _limits(**values) -> LimitSettings:
    limits = LimitSettings(**values)
    limits.validate()
    return limits


@pytest.mark.parametrize("name", ["endless.fits", "endless-plain.fits"])
def test_download_stops_at_the_size_bound(server, session, tmp_path, name):
    """A 64 MB body (chunked without a length, or with one) is refused at max_download_mb:
    no file and no partial file, the URL and the bound named, not retried."""
    url, path = f"{server.base}/files/{name}", f"/files/{name}"
    dest = tmp_path / "cache" / "ab" / "x.fits"
    before = server.hits.get(path, 0)
    with pytest.raises(DownloadError) as info:
        download(url, dest, session=session, retries=2, backoff=0.01)   # the default 16 MB
    assert info.value.url == url and not info.value.retryable
    assert "more than 16 MB" in info.value.reason and "max_download_mb" in info.value.reason
    assert server.hits[path] == before + 1
    assert not dest.exists() and _no_partials(tmp_path) == []
    with pytest.raises(DownloadError, match="more than 1 MB"):
        download(url, dest, session=session, limits=_limits(max_download_mb=1))
    assert not dest.exists() and _no_partials(tmp_path) == []


@pytest.mark.parametrize("kind", ["gzip", "deflate", "raw"])
def test_content_encoding_bomb_stops_at_the_size_bound(server, session, tmp_path, kind):
    """64 kB that decode (Content-Encoding gzip/deflate) to 64 MB: decoding stops at the bound."""
    url = f"{server.base}/files/bomb-{kind}.fits"
    dest = tmp_path / "cache" / "ab" / "b.fits"
    with pytest.raises(DownloadError) as info:
        download(url, dest, session=session, retries=2, backoff=0.01)
    assert "decoded" in info.value.reason and "more than 16 MB" in info.value.reason
    assert info.value.url == url and not info.value.retryable
    assert not dest.exists() and _no_partials(tmp_path) == []


@pytest.mark.parametrize("kind", ["gzip", "deflate", "raw"])
def test_content_encoding_is_decoded(server, session, tmp_path, kind):
    dest = tmp_path / f"{kind}.fits"
    sp = download(f"{server.base}/files/encoded-{kind}.fits", dest, session=session)
    assert dest.read_bytes() == server.files["good0.fits"] and sp.flux.size > 0


@pytest.mark.parametrize("name", ["drip.fits", "drip-header.fits", "silent.fits"])
def test_download_deadline(server, session, tmp_path, name):
    """A body or a header one byte at a time, or a header that never comes: the download ends
    at download_deadline_s (every read is on time, the whole is not), and is not retried."""
    url, path = f"{server.base}/files/{name}", f"/files/{name}"
    dest = tmp_path / "cache" / "ab" / "d.fits"
    before = server.hits.get(path, 0)
    with pytest.raises(DownloadError) as info:
        download(url, dest, session=session, retries=2, backoff=0.01,
                 limits=_limits(download_deadline_s=1))
    assert info.value.url == url and info.value.retryable
    assert "deadline of 1 s" in info.value.reason
    assert "download_deadline_s" in info.value.reason
    assert server.hits[path] == before + 1
    assert not dest.exists() and _no_partials(tmp_path) == []


def test_a_deadline_never_cuts_the_next_user_of_a_pooled_connection(server, tmp_path):
    """A download with a short deadline ends; its kept-alive connection serves the next
    download, which outlives that deadline: the watchdog must leave it alone."""
    from vo_al.core.vo.network import Deadline

    one = vo_query.make_session(timeout=(2.0, 5.0), pool_size=1)
    first = Deadline(1.0)                          # held: the watchdog fires it meanwhile
    try:
        download(f"{server.base}/files/good0.fits", tmp_path / "a.fits", session=one,
                 deadline=first)
        sp = download(f"{server.base}/files/pieces.fits", tmp_path / "b.fits", session=one,
                      retries=0)
    finally:
        one.close()
    assert first.fired and sp.flux.size > 0
    assert (tmp_path / "b.fits").read_bytes() == server.files["good0.fits"]


def _gap(server, path: str) -> float:
    """Seconds between the last two requests of `path` (the server's clock)."""
    first, second = server.times[path][-2:]
    return second - first


def test_retry_after_seconds_is_honoured(server, session, tmp_path):
    path = "/files/busy-503-1.fits"
    sp = download(server.base + path, tmp_path / "r.fits", session=session, retries=2,
                  backoff=0.01)
    assert sp.flux.size > 0 and server.hits[path] == 2
    assert _gap(server, path) >= 1.0           # asked again no sooner than the server said


def test_retry_after_http_date_is_honoured(server, session, tmp_path):
    path = "/files/busy-429-date+2.fits"       # a date 1 to 2 s ahead (whole seconds)
    sp = download(server.base + path, tmp_path / "r.fits", session=session, retries=2,
                  backoff=0.01)
    assert sp.flux.size > 0 and server.hits[path] == 2
    assert _gap(server, path) >= 0.9


def test_retry_after_past_the_deadline_fails_now(server, session, tmp_path):
    """Asked to come back in an hour, with a deadline of 5 s: it fails now (retryable, for the
    next run), and says why, instead of retrying at once or sleeping an hour."""
    path = "/files/busy-503-3600.fits"
    with pytest.raises(DownloadError) as info:
        download(server.base + path, tmp_path / "r.fits", session=session, retries=3,
                 backoff=0.01, limits=_limits(download_deadline_s=5))
    assert info.value.status == 503 and info.value.retryable
    assert "Retry-After" in info.value.reason and "download_deadline_s" in info.value.reason
    assert server.hits[path] == 1


def test_retry_after_is_capped_by_the_longest_wait(server, session, tmp_path):
    path = "/files/busy-429-3600.fits"
    sp = download(server.base + path, tmp_path / "r.fits", session=session, retries=1,
                  backoff=0.01, max_retry_wait=0.5)
    assert sp.flux.size > 0 and server.hits[path] == 2
    assert _gap(server, path) >= 0.5


def test_retry_after_values():
    from email.utils import formatdate

    from vo_al.core.vo.network import retry_after_seconds

    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds(" 0 ") == 0.0
    assert retry_after_seconds(formatdate(time.time() - 3600, usegmt=True)) == 0.0
    ahead = retry_after_seconds(formatdate(time.time() + 600, usegmt=True))
    assert 598 <= ahead <= 600
    for bad in (None, "", "soon", "-5", "1e400", "nan"):
        assert retry_after_seconds(bad) is None


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


def test_harvest_fails_oversized_and_slow_files_and_carries_on(server, session, tmp_path):
    b = server.base
    bad = {f"{b}/files/bomb-gzip.fits": "more than 1 MB",
           f"{b}/files/endless.fits": "more than 1 MB",
           f"{b}/files/drip.fits": "deadline of 2 s"}
    items = [HarvestItem(url, url.rsplit("/", 1)[-1]) for url in bad]
    items.append(HarvestItem(f"{b}/files/good0.fits", "good0.fits"))
    pool = PoolStore.create(tmp_path / "pool")
    folder = tmp_path / "h"
    report = run_job(harvest(pool, folder, items, session=session, retries=1, backoff=0.01,
                             limits=_limits(max_download_mb=1, download_deadline_s=2)))
    assert report.added == 1 and list(pool.metadata(columns=["name"])["name"]) == ["good0.fits"]
    failed = dict(report.failed)
    assert set(failed) == set(bad)
    for url, reason in bad.items():
        assert reason in failed[url]
    cache = SpectrumCache(folder / CACHE_DIR)
    assert not any(cache.path_for(url).exists() for url in bad)
    assert _no_partials(folder) == []


def _gated_items(base: str) -> list[HarvestItem]:
    """A file that stalls until the test opens the gate, then three that come at once."""
    return [HarvestItem(f"{base}/files/gated.fits", "gated.fits")] + [
        HarvestItem(f"{base}/files/good{i}.fits", f"good{i}.fits") for i in range(3)]


def _names(pool) -> list[str]:
    return list(pool.metadata(columns=["name"])["name"])


def test_harvest_keeps_the_input_order_when_nothing_stalls(server, session, tmp_path):
    b = server.base
    server.hits.pop("/files/flaky.fits", None)         # dropped twice, then answered
    names = ["flaky.fits", "good0.fits", "good1.fits", "good2.fits"]
    items = [HarvestItem(f"{b}/files/{n}", n) for n in names]
    pool = PoolStore.create(tmp_path / "pool")
    report = run_job(harvest(pool, tmp_path / "h", items, session=session, workers=4,
                             backoff=0.05))
    assert report.added == 4 and _names(pool) == names


def test_harvest_commits_the_files_after_a_stalled_one(server, session, tmp_path):
    """The first file stalls: the three after it are in the pool while it is still downloading
    (they do not wait for it), and it follows when it comes."""
    server.gate.clear()
    pool = PoolStore.create(tmp_path / "pool")
    in_pool_while_stalled = 0
    try:
        for _ in harvest(pool, tmp_path / "h", _gated_items(server.base), session=session,
                         workers=4, hold_s=0.2):
            if not server.gate.is_set() and len(pool) == 3:
                in_pool_while_stalled = len(pool)
                server.gate.set()
    finally:
        server.gate.set()
    assert in_pool_while_stalled == 3
    assert _names(pool) == ["good0.fits", "good1.fits", "good2.fits", "gated.fits"]


def test_harvest_closed_at_a_yield_keeps_what_finished(server, session, tmp_path):
    """The app cancels a job by closing it at a yield: the files that finished are committed
    (not only cached), and the stalled download is aborted rather than waited for."""
    server.gate.clear()
    pool = PoolStore.create(tmp_path / "pool")
    job = harvest(pool, tmp_path / "h", _gated_items(server.base), session=session, workers=4,
                  hold_s=600)
    try:
        for p in job:
            if p.done == 3:
                assert len(pool) == 0               # waiting for the stalled first file
                job.close()
                break
    finally:
        server.gate.set()
    assert _names(pool) == ["good0.fits", "good1.fits", "good2.fits"]
    assert _no_partials(tmp_path / "h") == []


def test_sweep_leaves_a_live_download_alone(server, session, tmp_path):
    """The sweep at a harvest's start removes only partial files whose download died: one
    still being written (another harvest or the app's prefetcher) is left alone."""
    server.gate.clear()
    cache = SpectrumCache(tmp_path / "cache")
    url = f"{server.base}/files/gated.fits"
    result = {}
    thread = threading.Thread(target=lambda: result.update(sp=download(
        url, cache.path_for(url), session=session)))
    thread.start()
    try:
        for _ in range(100):                       # until its partial file exists (<= 5 s)
            if _no_partials(cache.folder):
                break
            time.sleep(0.05)
        assert len(_no_partials(cache.folder)) == 1
        assert cache.sweep() == 0 and len(_no_partials(cache.folder)) == 1
    finally:
        server.gate.set()
        thread.join(30)
    assert result["sp"].flux.size > 0 and cache.has(url)
    assert _no_partials(cache.folder) == []


_KILLED_HARVEST = """
import sys
from vo_al.core.pool.store import PoolStore
from vo_al.core.vo.harvest import HarvestItem, harvest
pool_folder, folder, base = sys.argv[1:4]
pool = PoolStore.open(pool_folder)
items = [HarvestItem(base + "/files/gated.fits", "gated.fits")] + [
    HarvestItem(f"{base}/files/good{i}.fits", f"good{i}.fits") for i in range(3)]
for _ in harvest(pool, folder, items, workers=4, hold_s=0.2):
    print(len(pool), flush=True)
"""


def test_harvest_killed_while_a_file_stalls_resumes(server, session, tmp_path):
    """kill -9 while the first file stalls and the others are committed: the next run skips
    what is in the pool, downloads the stalled one, and every spectrum is in it once."""
    server.gate.clear()
    PoolStore.create(tmp_path / "pool").close()
    folder = tmp_path / "h"
    child = subprocess.Popen([sys.executable, "-c", _KILLED_HARVEST, str(tmp_path / "pool"),
                              str(folder), server.base], stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[1])
    committed = 0
    try:
        for line in child.stdout:
            if int(line) == 3 and not server.gate.is_set():
                committed = 3
                os.kill(child.pid, signal.SIGKILL)
                break
    finally:
        child.kill()
        child.wait(timeout=30)
        child.stdout.close()
    assert committed == 3 and child.returncode == -signal.SIGKILL
    server.gate.set()
    pool = PoolStore.open(tmp_path / "pool")
    assert sorted(_names(pool)) == ["good0.fits", "good1.fits", "good2.fits"]
    report = run_job(harvest(pool, folder, session=session))
    assert report.skipped == 3 and report.added == 1 and not report.failed
    assert sorted(_names(pool)) == ["gated.fits", "good0.fits", "good1.fits", "good2.fits"]
    assert _no_partials(folder) == []


def test_cli_harvest_takes_the_project_limits(server, tmp_path, capsys):
    """`vo-al harvest` bounds its downloads by the project's settings (download_deadline_s):
    a dripping file fails after 2 s, the batch carries on, the command ends."""
    from vo_al.cli import main

    b = server.base
    table = tmp_path / "result.vot"
    table.write_bytes(_votable("OK", "", [(f"{b}/files/drip.fits", "1"),
                                          (f"{b}/files/good0.fits", "2")]))
    project = tmp_path / "project"
    assert main(["create", str(project), "--set", "download_deadline_s=2"]) == 0
    assert main(["harvest", str(project), "--table", str(table), "--retries", "1"]) == 0
    out = capsys.readouterr()
    assert "added 1" in out.out and "failed 1" in out.out
    assert f"{b}/files/drip.fits" in out.err and "deadline of 2 s" in out.err


def test_name_for():
    assert name_for("http://h/getproduct/lamost/data/spec-1.fits") == "spec-1.fits"
    assert name_for("http://h/getproduct/x/spec-1.fits.gz") == "spec-1.fits"
    assert name_for("http://h/dl?ID=ivo://x", obsid="12") == "obsid-12"
    assert name_for("http://h/dl?ID=ivo://x", row_name="spec-2.fits") == "spec-2.fits"
    assert name_for("http://h/dl?ID=ivo://x").startswith("url-")
