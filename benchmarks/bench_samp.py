"""SAMP throughput and latency: vo-al's SampLink to a real JSAMP client, next to a pyvo client.

On a private JSAMP hub (`jsamp hub`, its lockfile in a temporary folder, never ~/.samp):
* notify rate: `coord.pointAt.sky` notifications per second from vo-al to one named client;
* call latency: round trip of a `samp.app.ping` call (sent, answered, reply delivered).
The real client is JSAMP's snooper (a Java SAMP client that logs every message); the baseline
is a pyvo client (SAMPIntegratedClient) on the same hub in the same run. A last line gives the
same calls through pyvo's embedded hub, the hub vo-al starts when none runs.

    .venv/bin/python benchmarks/bench_samp.py [--n 300] [--write]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from samp_peers import JsampHub, Receiver, Snooper, wait_registered  # noqa: E402

from vo_al.core.samp import messages as msgs  # noqa: E402
from vo_al.core.samp.link import SampLink  # noqa: E402


def measure(link: SampLink, target: str, n: int) -> dict:
    peer = link.find_peers(target)[0]
    msg = msgs.point_at_sky(150.0, 2.0)
    link.send(msg, to=peer.id, mode="notify")                       # warm up
    t0 = time.perf_counter()
    for _ in range(n):
        link.send(msg, to=peer.id, mode="notify")
    rate = n / (time.perf_counter() - t0)
    ping = {"samp.mtype": "samp.app.ping", "samp.params": {}}
    lat = []
    for _ in range(max(20, n // 5)):
        t = time.perf_counter()
        [reply] = link.send(ping, to=peer.id, mode="call", timeout=10)
        lat.append(time.perf_counter() - t)
        assert reply.status == "samp.ok", reply
    lat = np.array(lat) * 1e3
    return {"rate": rate, "median_ms": float(np.median(lat)), "p95_ms": float(np.percentile(lat, 95))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="notifications per client (default 300)")
    ap.add_argument("--write", action="store_true", help="write the SAMP section of RESULTS.md")
    args = ap.parse_args(argv)
    if not shutil.which("jsamp"):
        print("jsamp not installed: scripts/samp-stack.sh install", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="vo-al-bench-samp-"))
    lock = tmp / "samp.lock"
    os.environ.update(SAMP_HUB=f"std-lockurl:file://{lock}", HOME=str(tmp / "home"))
    (tmp / "home").mkdir()
    rows = []
    hub = JsampHub(lock, tmp).start()
    snoop = Snooper(hub.env, tmp / "snoop.log")
    try:
        wait_registered("snoop", 60, snoop.proc)
        base = Receiver("pyvo-peer", ["coord.pointAt.sky"])
        with SampLink(name="vo-al-bench", start_hub=False, timeout=10) as link:
            real = measure(link, "snoop", args.n)
            pyvo_peer = measure(link, "pyvo-peer", args.n)
        base.close()
        rows.append(("JSAMP hub", "JSAMP snooper (Java)", real))
        rows.append(("JSAMP hub", "pyvo client (baseline)", pyvo_peer))
    finally:
        snoop.stop()
        hub.stop()
    lock.unlink(missing_ok=True)
    with SampLink(name="vo-al-bench", timeout=10) as link:          # embedded pyvo hub
        base = Receiver("pyvo-peer", ["coord.pointAt.sky"])
        rows.append(("pyvo embedded hub", "pyvo client", measure(link, "pyvo-peer", args.n)))
        base.close()
    shutil.rmtree(tmp, ignore_errors=True)

    ratio = rows[0][2]["median_ms"] / rows[1][2]["median_ms"]
    lines = [f"vo-al `SampLink` sending to one named client, {args.n} `coord.pointAt.sky` "
             "notifications and "
             f"{max(20, args.n // 5)} `samp.app.ping` calls (asynchronous call, reply awaited) "
             "per row; each send resolves the client from vo-al's peer cache.", "",
             "| hub | recipient | notify (msg/s) | ping round trip median (ms) | p95 (ms) |",
             "| --- | --- | ---: | ---: | ---: |"]
    for hub_name, who, r in rows:
        lines.append(f"| {hub_name} | {who} | {r['rate']:.0f} | {r['median_ms']:.2f} | "
                     f"{r['p95_ms']:.2f} |")
    lines += ["", f"Call round trip to the real Java client / to the pyvo baseline on the same "
                  f"hub: {ratio:.2f}x."]
    print("\n".join(lines))
    if args.write:
        from results import replace_section

        replace_section("SAMP", lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
