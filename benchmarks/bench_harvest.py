"""Harvest throughput from the local DaCHS: vo-al's harvest against a plain sequential loop,
on loopback and behind a proxy that makes the archive 100 ms away.

    python benchmarks/bench_harvest.py [N] [--workers 1,4,8] [--delayed-n 400]
                                       [--delayed-workers 1,2,4,8] [--delay-ms 100] [--no-results]

Needs the local DaCHS (scripts/dachs.sh start; N spectra imported). Measured in the same run,
on loopback (127.0.0.1 straight to the DaCHS):

  (a) baseline: pyvo TAP query of N access URLs, then one by one `requests.get` + write the
      file + `read_spectrum` (what a plain script does; no preprocessing, no pool);
  (b) vo-al `harvest` with W download threads (W from --workers), into a fresh pool and an empty
      cache: query, concurrent downloads to the cache (temp file + fsync + rename), checks,
      read, preprocessing and pool commits (one per 256 spectra);
  (c) vo-al `harvest` again into a fresh pool with every file already in the cache (a resumed
      harvest: no download).

Then under real latency: a threaded reverse proxy on 127.0.0.1 (`DelayProxy`, in this script)
in front of the same DaCHS answers every request (the TAP query and each file) `--delay-ms`
late, as a remote archive would; the access URLs the query returns are rewritten to go through
it. Measured there: (a) again, sequential (one `requests.Session`, so one connection), and (b)
with 1, 2, 4, 8 threads (`--delayed-workers`), each against threads x the sequential rate (the
goal: >= 0.7 up to 8 threads), with the TCP connections the proxy accepted against the requests
it answered (connection reuse: one connection per thread, not one per file); (c) for
comparison, the plain loop on the same thread counts (a requests.Session per thread), and the
rig's ceiling: that loop on the most threads through the proxy without its delay.

Spectra per second over the whole job (query included). Appends or replaces the "Harvest"
section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _adql(n: int) -> str:
    return (f"SELECT TOP {n} obsid, accref, filename, designation, ra, dec, class, subclass, z,"
            f" snrr FROM lamost.data ORDER BY obsid")


# headers that belong to one hop (RFC 9110 7.6.1), not forwarded by the proxy
_HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-connection", "te", "trailer",
                         "transfer-encoding", "upgrade", "host", "content-length"))


class _DelayServer:
    """The proxy itself (runs in the proxy's process): a threaded HTTP/1.1 server whose
    handler forwards each request to `upstream` and answers `delay_s` later."""

    def __init__(self, upstream: tuple[str, int], delay_s: float, connections, requests):
        self.upstream, self.delay_s = upstream, delay_s
        self.connections, self.requests = connections, requests     # shared counters
        self._local = threading.local()          # one upstream connection per proxy thread
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"        # keep-alive, so a client can reuse it

            def setup(self):                     # once per accepted TCP connection
                super().setup()
                with proxy.connections.get_lock():
                    proxy.connections.value += 1

            def do_GET(self):
                proxy.answer(self)

            def do_POST(self):
                proxy.answer(self)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True

    def _forward(self, method: str, path: str, body, headers: dict):
        for attempt in (0, 1):                   # the upstream may have closed an idle one
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._local.conn = http.client.HTTPConnection(*self.upstream, timeout=60)
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                return resp.status, resp.reason, resp.getheaders(), resp.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt:
                    raise

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["Host"] = "%s:%d" % self.upstream
        status, reason, got, data = self._forward(handler.command, handler.path, body, headers)
        time.sleep(self.delay_s)                 # the archive is this far away
        handler.send_response(status, reason)
        for k, v in got:
            if k.lower() not in _HOP_BY_HOP:
                handler.send_header(k, v)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
        with self.requests.get_lock():
            self.requests.value += 1


def _serve(upstream, delay_s, connections, requests, port_queue) -> None:
    server = _DelayServer(upstream, delay_s, connections, requests).server
    port_queue.put(server.server_address[1])
    server.serve_forever()


class DelayProxy:
    """A reverse proxy on 127.0.0.1 in front of `upstream` (host, port): every response is
    sent `delay_s` late (an archive that far away), over HTTP/1.1 keep-alive connections.
    It runs in a process of its own, as a remote server would: its threads do not compete for
    the harvest's interpreter lock. Counts the TCP connections it accepted and the requests it
    answered."""

    def __init__(self, upstream: tuple[str, int], delay_s: float) -> None:
        self.upstream, self.delay_s = upstream, delay_s
        self._mp = multiprocessing.get_context("spawn")
        self._connections = self._mp.Value("l", 0)
        self._requests = self._mp.Value("l", 0)
        self._process = None
        self.base_url = ""

    def __enter__(self) -> "DelayProxy":
        ports = self._mp.Queue()
        self._process = self._mp.Process(
            target=_serve, args=(self.upstream, self.delay_s, self._connections,
                                 self._requests, ports), daemon=True, name="delay-proxy")
        self._process.start()
        self.base_url = f"http://127.0.0.1:{ports.get(timeout=60)}"
        return self

    def __exit__(self, *exc) -> None:
        self._process.terminate()
        self._process.join(10)

    def reset(self) -> tuple[int, int]:
        """(connections, requests) since the last reset."""
        counts = []
        for counter in (self._connections, self._requests):
            with counter.get_lock():
                counts.append(counter.value)
                counter.value = 0
        return counts[0], counts[1]

    def rewrite(self, url: str) -> str:
        """An upstream URL as one through this proxy."""
        host, port = self.upstream
        return str(url).replace(f"http://{host}:{port}", self.base_url, 1)


def _through(table, proxy: DelayProxy | None):
    """The query result with its access URLs through `proxy` (as they are without one)."""
    if proxy is not None:
        table["accref"] = [proxy.rewrite(u) for u in table["accref"]]
    return table


def baseline(tap_url: str, n: int, work: Path, proxy: DelayProxy | None = None,
             threads: int = 1, tag: str = "") -> float:
    """The plain script: pyvo query, then get + write + read_spectrum per file; one by one on
    one connection (threads=1, the sequential baseline), or on `threads` threads with a
    requests.Session each (what the archive and this machine allow at that concurrency)."""
    import pyvo
    import requests

    from vo_al.core.spectra.readers import read_spectrum

    out = work / f"baseline-{'delayed' if proxy else 'loopback'}-t{threads}{tag}"
    out.mkdir()
    local = threading.local()

    def fetch(url, session=None):
        session = session or getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        resp = session.get(str(url), timeout=60)
        resp.raise_for_status()
        path = out / str(url).rsplit("/", 1)[-1]
        path.write_bytes(resp.content)
        read_spectrum(path)

    t0 = time.perf_counter()
    session = requests.Session()
    table = _through(pyvo.dal.TAPService(tap_url, session=session).run_sync(_adql(n)).to_table(),
                     proxy)
    if threads == 1:
        for url in table["accref"]:
            fetch(url, session)
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(fetch, table["accref"]))
    seconds = time.perf_counter() - t0
    assert len(table) == n, f"only {len(table)} rows"
    return seconds


def vo_al_harvest(tap_url: str, n: int, work: Path, workers: int, tag: str,
                  folder: Path | None = None, proxy: DelayProxy | None = None
                  ) -> tuple[float, object, Path]:
    from vo_al.core.vo.harvest import harvest_table
    from vo_al.core.pool.store import PoolStore
    from vo_al.core.base.progress import run_job
    from vo_al.core.vo.query import make_session, tap_query

    pool = PoolStore.create(work / f"pool-{tag}")
    folder = folder or work / f"harvest-{tag}"
    t0 = time.perf_counter()
    session = make_session(pool_size=workers)
    table = _through(tap_query(tap_url, _adql(n), mode="sync", session=session), proxy)
    report = run_job(harvest_table(pool, folder, table, session=session, workers=workers))
    seconds = time.perf_counter() - t0
    # every file arrives; the demo archive holds a few spectra preprocessing rejects (too few
    # usable pixels in the window), which a harvest lists as failures and does not add
    rejected = [reason for _, reason in report.failed if not reason.startswith("not usable")]
    assert report.downloaded + report.from_cache == n and not rejected, \
        (report.summary(), rejected[:3])
    pool.close()
    return seconds, report, folder


def loopback(tap_url: str, n: int, work: Path, workers: list[int]) -> list[str]:
    base = baseline(tap_url, n, work)
    rows = [("plain loop: pyvo query + requests.get one by one + read_spectrum", base)]
    print(f"baseline: {n / base:.1f} spectra/s ({base:.2f} s)")
    last_folder = None
    for w in workers:
        s, rep, last_folder = vo_al_harvest(tap_url, n, work, w, f"w{w}")
        rows.append((f"vo-al harvest, {w} download thread(s), empty cache", s))
        print(f"harvest w={w}: {n / s:.1f} spectra/s ({s:.2f} s)")
    s, rep, _ = vo_al_harvest(tap_url, n, work, workers[-1], "cached", last_folder)
    assert rep.from_cache == n
    rows.append((f"vo-al harvest, all {n} files in the cache (resume)", s))
    print(f"harvest cached: {n / s:.1f} spectra/s ({s:.2f} s)")
    lines = [f"### Loopback\n\n{n} spectra from the local DaCHS (`scripts/dachs.sh`, 127.0.0.1), "
             "the TAP query included. vo-al's harvest also checks each file, preprocesses it "
             "and commits it to a pool (fsync'ed), which the plain loop does not.", "",
             "| variant | seconds | spectra/s | vs plain loop |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {label} | {s:.2f} | {n / s:.1f} | {base / s:.2f}x |" for label, s in rows]
    return lines


def delayed(port: int, n: int, work: Path, workers: list[int], delay_s: float) -> list[str]:
    rows = []                     # (label, seconds, threads, connections, requests, kind)
    with DelayProxy(("127.0.0.1", port), delay_s) as proxy:
        tap_url = f"{proxy.base_url}/tap"
        base = baseline(tap_url, n, work, proxy)
        rows.append(("plain loop, one connection (sequential)", base, 1, *proxy.reset(),
                     "plain"))
        rate = n / base
        print(f"delayed baseline: {rate:.1f} spectra/s ({base:.2f} s)")
        for w in workers:
            s, rep, _ = vo_al_harvest(tap_url, n, work, w, f"delayed-w{w}", proxy=proxy)
            rows.append((f"vo-al harvest, {w} download thread(s)", s, w, *proxy.reset(),
                         "harvest"))
            print(f"delayed harvest w={w}: {n / s:.1f} spectra/s ({s:.2f} s), efficiency "
                  f"{n / s / (w * rate):.2f}")
            if w > 1:
                s = baseline(tap_url, n, work, proxy, threads=w)
                rows.append((f"for comparison: the plain loop on {w} threads", s, w,
                             *proxy.reset(), "plain"))
                print(f"delayed plain loop on {w} threads: {n / s:.1f} spectra/s")
    with DelayProxy(("127.0.0.1", port), 0.0) as proxy:      # the rig's own ceiling
        best = max(workers)
        ceiling = n / baseline(f"{proxy.base_url}/tap", n, work, proxy, best, "-no-delay")
    harvest_w = {w: s for _, s, w, _, _, kind in rows if kind == "harvest"}
    lines = [f"### Behind a {delay_s * 1000:.0f} ms proxy (a remote archive)", "",
             f"{n} spectra from the same DaCHS through `DelayProxy` (this script: a threaded "
             f"reverse proxy on 127.0.0.1, in a process of its own, that sends every response "
             f"{delay_s * 1000:.0f} ms late, the TAP query's and each file's), the query "
             "included. Goal: >= 0.7 x threads x the sequential rate up to 8 threads, with "
             "connections reused.", "",
             "| variant | seconds | spectra/s | vs sequential | vs threads x sequential | "
             "TCP connections / requests |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for label, s, w, conns, reqs, _ in rows:
        lines.append(f"| {label} | {s:.2f} | {n / s:.1f} | {base / s:.2f}x | "
                     f"{base / s / w:.2f} | {conns} / {reqs} |")
    plain_w = {w: s for _, s, w, _, _, kind in rows if kind == "plain"}
    lines += ["", f"Without its delay the same proxy passes {ceiling:.0f} spectra/s to the plain "
              f"loop on {best} threads (the rig's ceiling: the DaCHS, the proxy and the client "
              f"share this machine's {os.cpu_count()} cores); with it, {best} threads x the "
              f"sequential rate is {best * rate:.0f}/s, and the plain loop on {best} threads "
              f"reached {n / plain_w[best]:.1f}/s, vo-al's harvest {n / harvest_w[best]:.1f}/s."]
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=1000, help="spectra (1000)")
    parser.add_argument("--workers", default="1,4,8", help="thread counts to time (1,4,8)")
    parser.add_argument("--delayed-n", type=int, default=400,
                        help="spectra behind the delaying proxy (400; 0: skip that part)")
    parser.add_argument("--delayed-workers", default="1,2,4,8",
                        help="thread counts behind the proxy (1,2,4,8)")
    parser.add_argument("--delay-ms", type=float, default=100.0,
                        help="the proxy's delay per response (100)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("VO_AL_DACHS_PORT",
                                                                       "8080")))
    parser.add_argument("--no-results", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args(argv)
    tap_url = f"http://127.0.0.1:{args.port}/tap"
    workers = [int(w) for w in args.workers.split(",")]
    delayed_workers = [int(w) for w in args.delayed_workers.split(",")]

    work = Path(tempfile.mkdtemp(prefix="vo-al-bench-harvest-"))
    load_before = os.getloadavg()[0]
    try:
        lines = loopback(tap_url, args.n, work, workers) if args.n else []
        if args.delayed_n:
            lines += [""] + delayed(args.port, args.delayed_n, work, delayed_workers,
                                    args.delay_ms / 1000.0)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines += ["", f"1-minute load average {load_before:.2f} before and {os.getloadavg()[0]:.2f} "
                  f"after the run ({os.cpu_count()} cores, shared with other jobs)."]
    print("\n".join(lines))
    if not args.no_results:
        from results import replace_section

        replace_section("Harvest", lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
