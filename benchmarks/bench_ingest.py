"""Ingest speed: vo-al's pool ingest against a plain astropy loop, measured in the same run.

    python benchmarks/bench_ingest.py [M] [--repeat R] [--maker PATH] [--no-results]

Makes M LAMOST-like FITS files (5 x 3909 float32 primary image, as LAMOST DR2+) in a temporary
folder, then times

  (a) baseline: one process, `fits.open(f)[0].data` + `np.interp` onto the 140-point window per
      file (what a naive script does);
  (b) vo-al `ingest_files(workers=1)`: one reader process, the parent writes the pool;
  (c) vo-al `ingest_files(workers=2)`;
  (d) vo-al `ingest_files(workers=0)`: everything in this process (for reference).

Each vo-al figure is a whole job into a fresh pool: pool creation, worker start-up, reading,
preprocessing, writing the .npy segment with fsync and committing SQLite, one transaction per
chunk. The files were just written, so all variants read from the page cache. Files are byte
copies of 256 distinct generated spectra under distinct names (reading cost does not depend on
the pixel values). `os.sync()` runs before each timed variant, so that writeback of the freshly
made files does not stall the pool's fsyncs (a survey's files are not freshly written). The best of
`--repeat` runs is reported. Appends or replaces the "Ingest" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_MAKER = "/work/shared/vo-stack/make_lamost_fits.py"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"


def make_files(folder: Path, m: int, maker_path: str, distinct: int = 256) -> list[str]:
    spec = importlib.util.spec_from_file_location("make_lamost_fits", maker_path)
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    rng = np.random.default_rng(42)
    templates = []
    for i in range(min(m, distinct)):
        name, hdu = maker.make_one(i, rng)
        hdu.writeto(folder / name)
        templates.append((folder / name).read_bytes())
    for i in range(len(templates), m):
        (folder / f"spec-SYNTH-{i:07d}.fits").write_bytes(templates[i % len(templates)])
    return sorted(str(p) for p in folder.glob("*.fits"))


def baseline(paths: list[str]) -> float:
    from astropy.io import fits

    grid = np.linspace(6519.0, 6732.0, 140)
    t0 = time.perf_counter()
    for f in paths:
        with fits.open(f) as hdul:
            data = hdul[0].data
            np.interp(grid, data[2], data[0])
    return time.perf_counter() - t0


def vo_al_ingest(paths: list[str], workers: int, work: Path) -> float:
    from vo_al.core.pool.ingest import ingest_files
    from vo_al.core.pool.store import PoolStore
    from vo_al.core.base.progress import run_job

    folder = work / f"pool-w{workers}"
    shutil.rmtree(folder, ignore_errors=True)
    t0 = time.perf_counter()
    pool = PoolStore.create(folder)
    report = run_job(ingest_files(pool, paths, workers=workers))
    seconds = time.perf_counter() - t0
    if report.added != len(paths):
        raise SystemExit(f"ingest with {workers} workers added {report.added} of {len(paths)}: "
                         f"{report.rejected[:3]}")
    pool.close()
    shutil.rmtree(folder, ignore_errors=True)
    return seconds


def sync() -> None:
    if hasattr(os, "sync"):
        os.sync()


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import astropy

    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"nproc {nproc} ({cpu}), Python {platform.python_version()}, "
            f"numpy {np.__version__}, astropy {astropy.__version__}, {platform.system()}")


def write_section(title: str, lines: list[str]) -> None:
    """Replace (or append) one section of RESULTS.md with benchmarks/results.py's helper."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        from results import replace_section
    except ImportError:                        # helper absent: a minimal equivalent
        old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
        body = f"## {title}\n\n" + "\n".join(lines).rstrip() + "\n"
        pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
        new = (pattern.sub(lambda _: body + "\n", old) if pattern.search(old)
               else old.rstrip() + "\n\n" + body)
        RESULTS.write_text(new.rstrip() + "\n")
        return
    replace_section(title, lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("m", nargs="?", type=int, default=4000, help="number of files (4000)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per variant, best kept")
    parser.add_argument("--maker", default=DEFAULT_MAKER, help="make_lamost_fits.py to use")
    parser.add_argument("--no-results", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        files_dir = work / "files"
        files_dir.mkdir()
        t0 = time.perf_counter()
        paths = make_files(files_dir, args.m, args.maker)
        print(f"made {len(paths)} files in {time.perf_counter() - t0:.1f} s under {files_dir}")
        sync()          # as for a survey on disk: no pending writeback stalls our fsyncs
        baseline(paths[:200])                                   # warm imports
        variants = [("(a) astropy loop, 1 process (baseline)", lambda: baseline(paths)),
                    ("(b) vo-al ingest, workers=1", lambda: vo_al_ingest(paths, 1, work)),
                    ("(c) vo-al ingest, workers=2", lambda: vo_al_ingest(paths, 2, work)),
                    ("(d) vo-al ingest, workers=0 (in-process)",
                     lambda: vo_al_ingest(paths, 0, work))]
        best = {}
        for rep in range(args.repeat):
            for label, fn in variants:
                sync()
                seconds = fn()
                best[label] = min(best.get(label, np.inf), seconds)
                print(f"  run {rep + 1}: {label:<42} {len(paths) / seconds:8.0f} files/s")
        base = len(paths) / best[variants[0][0]]
        lines = [f"| variant | files/s | vs baseline |", "|---|---:|---:|"]
        for label, _ in variants:
            rate = len(paths) / best[label]
            lines.append(f"| {label} | {rate:.0f} | {rate / base:.2f}x |")
        table = "\n".join(lines)
        load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print()
        print(table)
        lines = [
            f"`python benchmarks/bench_ingest.py {args.m}`: {machine()}.",
            "",
            f"{args.m} LAMOST-like FITS files (5 x 3909 float32, ~86 kB each, page cache warm), "
            f"best of {args.repeat} runs each, all measured in the same run. vo-al figures are "
            "whole jobs into a fresh pool (worker start-up, read, preprocess, .npy write + "
            "fsync, one SQLite transaction per chunk of files). 1-minute load average "
            f"{load_before:.2f} before and {load_after:.2f} after the run (the machine is "
            "shared: workers=2 only scales when the other core is free).",
            "",
            table,
        ]
        if not args.no_results:
            write_section("Ingest", lines)
            print(f"\nwrote the Ingest section of {RESULTS}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
