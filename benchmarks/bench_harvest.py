"""Harvest throughput from the local DaCHS: vo-al's harvest against a plain sequential loop.

    python benchmarks/bench_harvest.py [N] [--workers 1,4,8] [--no-results]

Needs the local DaCHS (scripts/dachs.sh start; N spectra imported). Measured in the same run:

  (a) baseline: pyvo TAP query of N access URLs, then one by one `requests.get` + write the
      file + `read_spectrum` (what a plain script does; no preprocessing, no pool);
  (b) vo-al `harvest` with W download threads (W from --workers), into a fresh pool and an empty
      cache: query, concurrent downloads to the cache (temp file + fsync + rename), checks,
      read, preprocessing and pool commits (one per 256 spectra);
  (c) vo-al `harvest` again into a fresh pool with every file already in the cache (a resumed
      harvest: no download).

Spectra per second over the whole job (query included). Appends or replaces the "Harvest"
section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _adql(n: int) -> str:
    return (f"SELECT TOP {n} obsid, accref, filename, designation, ra, dec, class, subclass, z,"
            f" snrr FROM lamost.data ORDER BY obsid")


def baseline(tap_url: str, n: int, work: Path) -> float:
    import pyvo
    import requests

    from vo_al.core.spectra.readers import read_spectrum

    out = work / "baseline"
    out.mkdir()
    t0 = time.perf_counter()
    session = requests.Session()
    table = pyvo.dal.TAPService(tap_url, session=session).run_sync(_adql(n)).to_table()
    for url in table["accref"]:
        resp = session.get(str(url), timeout=60)
        resp.raise_for_status()
        path = out / str(url).rsplit("/", 1)[-1]
        path.write_bytes(resp.content)
        read_spectrum(path)
    seconds = time.perf_counter() - t0
    assert len(table) == n, f"only {len(table)} rows"
    return seconds


def vo_al_harvest(tap_url: str, n: int, work: Path, workers: int, tag: str,
                  folder: Path | None = None) -> tuple[float, object, Path]:
    from vo_al.core.vo.harvest import harvest_table
    from vo_al.core.pool.store import PoolStore
    from vo_al.core.base.progress import run_job
    from vo_al.core.vo.query import make_session, tap_query

    pool = PoolStore.create(work / f"pool-{tag}")
    folder = folder or work / f"harvest-{tag}"
    t0 = time.perf_counter()
    session = make_session(pool_size=workers)
    table = tap_query(tap_url, _adql(n), mode="sync", session=session)
    report = run_job(harvest_table(pool, folder, table, session=session, workers=workers))
    seconds = time.perf_counter() - t0
    assert report.added == n and not report.failed, report.summary()
    pool.close()
    return seconds, report, folder


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=1000, help="spectra (1000)")
    parser.add_argument("--workers", default="1,4,8", help="thread counts to time (1,4,8)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("VO_AL_DACHS_PORT",
                                                                       "8080")))
    parser.add_argument("--no-results", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args(argv)
    tap_url = f"http://127.0.0.1:{args.port}/tap"
    workers = [int(w) for w in args.workers.split(",")]

    work = Path(tempfile.mkdtemp(prefix="vo-al-bench-harvest-"))
    try:
        base = baseline(tap_url, args.n, work)
        rows = [("plain loop: pyvo query + requests.get one by one + read_spectrum", base)]
        print(f"baseline: {args.n / base:.1f} spectra/s ({base:.2f} s)")
        last_folder = None
        for w in workers:
            s, rep, last_folder = vo_al_harvest(tap_url, args.n, work, w, f"w{w}")
            rows.append((f"vo-al harvest, {w} download thread(s), empty cache", s))
            print(f"harvest w={w}: {args.n / s:.1f} spectra/s ({s:.2f} s)")
        s, rep, _ = vo_al_harvest(tap_url, args.n, work, workers[-1], "cached", last_folder)
        assert rep.from_cache == args.n
        rows.append((f"vo-al harvest, all {args.n} files in the cache (resume)", s))
        print(f"harvest cached: {args.n / s:.1f} spectra/s ({s:.2f} s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    lines = [f"{args.n} spectra from the local DaCHS (`scripts/dachs.sh`, 127.0.0.1), the TAP "
             "query included. vo-al's harvest also checks each file, preprocesses it and "
             "commits it to a pool (fsync'ed), which the plain loop does not.", "",
             "| variant | seconds | spectra/s | vs plain loop |", "| --- | ---: | ---: | ---: |"]
    for label, s in rows:
        lines.append(f"| {label} | {s:.2f} | {args.n / s:.1f} | {base / s:.2f}x |")
    print("\n".join(lines))
    if not args.no_results:
        from results import replace_section

        replace_section("Harvest", lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
