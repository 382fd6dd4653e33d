"""Pool scoring on a Dask cluster against in-process scoring, and what N machines would give.

In one run, on the same on-disk pool and the same saved model:
1. the baseline: `scoring.score_pool` in this process (Keras warmed up first);
2. `distributed.score_pool_distributed` on a LocalCluster of 2 worker processes (one Dask
   thread each) on 127.0.0.1: first on fresh workers (their Keras import and model load
   included), then warm, with TensorFlow's own thread pools as they come (each worker sees every
   core) and with TF_NUM_INTRAOP_THREADS=1 (one core per worker);
3. one worker with every core: the throughput a whole machine adds to a cluster;
4. the client's own limits: writing (k, 3) float32 blocks into the score memmap, and Dask's
   cost per task (trivial tasks through the same scheduler).

Each timed variant runs twice (alternating) and the best is kept: the machine is shared.

Usage: python benchmarks/bench_dask.py [N=100000] [--write]
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CHUNK = 8192            # 13 partitions of 100 000 rows: both workers stay busy to the end
ONE_CORE = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
            "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}


def make_pool(folder: Path, n: int):
    from vo_al.core.pool.store import PoolStore
    from vo_al.core.spectra.settings import PreprocessSettings

    rng = np.random.default_rng(0)
    pool = PoolStore.create(folder, PreprocessSettings())
    for start in range(0, n, 50_000):
        k = min(50_000, n - start)
        pool.add_rows(rng.uniform(-1, 1, (k, 140)).astype(np.float32),
                      [{"name": f"s{start + i}", "instrument": "lamost"} for i in range(k)])
    pool.seal()
    return pool


def timed(job) -> float:
    from vo_al.core.base.progress import run_job

    t = time.perf_counter()
    run_job(job)
    return time.perf_counter() - t


def memmap_write_rate(folder: Path, rows: int = 4_000_000, block: int = CHUNK) -> float:
    """Rows/s the client writes (block, 3) float32 results into an open score memmap."""
    out = np.lib.format.open_memmap(folder / "write.npy", mode="w+", dtype=np.float32,
                                    shape=(rows, 3))
    blocks = np.random.default_rng(1).random((8, block, 3), dtype=np.float32)
    t = time.perf_counter()
    for i, start in enumerate(range(0, rows, block)):
        stop = min(start + block, rows)
        out[start:stop] = blocks[i % 8][:stop - start]
    out.flush()
    rate = rows / (time.perf_counter() - t)
    del out
    os.unlink(folder / "write.npy")
    return rate


def _nothing(i):
    return i


def task_overhead_ms(client, tasks: int = 400) -> float:
    """Milliseconds per trivial task submitted and gathered one by one, bounded in flight as
    score_pool_distributed does (scheduler + network round trip + client bookkeeping)."""
    from distributed import as_completed

    t = time.perf_counter()
    futures = as_completed([client.submit(_nothing, i, pure=False) for i in range(8)],
                           loop=client.loop)
    submitted = 8
    for future in futures:
        future.result()
        if submitted < tasks:
            futures.add(client.submit(_nothing, submitted, pure=False))
            submitted += 1
    return (time.perf_counter() - t) / tasks * 1e3


def cluster(n_workers: int, env: dict | None = None):
    from distributed import LocalCluster

    return LocalCluster(n_workers=n_workers, processes=True, threads_per_worker=1,
                        host="127.0.0.1", dashboard_address=":0", silence_logs=logging.ERROR,
                        env=env or {"TF_CPP_MIN_LOG_LEVEL": "2"})


def main(argv):
    n = int(argv[0]) if argv and argv[0].isdigit() else 100_000
    write = "--write" in argv
    logging.getLogger("distributed").setLevel(logging.ERROR)
    from distributed import Client

    from vo_al.core.learning.distributed import score_pool_distributed
    from vo_al.core.learning.model import (build_cnn, describe_device, load_model,
                                           predict_proba, save_model)
    from vo_al.core.learning.scoring import score_pool

    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pool = make_pool(tmp / "pool", n)
        model_path = tmp / "model.keras"
        save_model(build_cnn(seed=0), model_path)
        model = load_model(model_path)
        predict_proba(model, pool.rows(np.arange(min(n, 8192))))     # build predict once
        write_rate = memmap_write_rate(tmp)

        def local():
            return timed(score_pool(model, pool, tmp / "local.npy", chunk_rows=CHUNK))

        runs: dict[str, list[float]] = {"local": [], "two": [], "two_one_core": [], "one": []}
        setups = {"two": (2, None), "two_one_core": (2, ONE_CORE), "one": (1, None)}
        cold = {}
        overhead = None
        clusters = {}
        try:
            for name, (workers, env) in setups.items():
                clusters[name] = cluster(workers, env)
                client = Client(clusters[name], set_as_default=False)
                client.wait_for_workers(workers, timeout=120)
                clusters[name] = (clusters[name], client)
            for name, (_, client) in clusters.items():
                cold[name] = timed(score_pool_distributed(model_path, pool, tmp / f"{name}.npy",
                                                          client, chunk_rows=CHUNK))
            for _ in range(2):
                runs["local"].append(local())
                for name, (_, client) in clusters.items():
                    runs[name].append(timed(score_pool_distributed(
                        model_path, pool, tmp / f"{name}.npy", client, chunk_rows=CHUNK)))
            overhead = task_overhead_ms(clusters["two"][1])
            reference = np.load(tmp / "local.npy")
            agree = max(float(np.max(np.abs(np.load(tmp / f"{name}.npy") - reference)))
                        for name in clusters)
        finally:
            for local_cluster, client in clusters.values():
                client.close()
                local_cluster.close()
        pool.close()

    rate = {name: n / min(times) for name, times in runs.items()}
    base = rate["local"]
    per_machine = rate["one"]           # one worker with every core: what a machine adds
    result = {"n": n, "chunk_rows": CHUNK, "spectra_s": rate,
              "ratio_to_local": {k: v / base for k, v in rate.items()},
              "cold_first_run_s": cold, "client_memmap_write_rows_s": write_rate,
              "task_overhead_ms": overhead, "max_abs_difference": agree,
              "device": describe_device(), "load_average_start": load_start,
              "load_average_end": os.getloadavg()}
    print(json.dumps(result, indent=2))
    if write:
        from results import replace_section

        def row(label, key):
            return f"| {label} | {rate[key]:,.0f} | {rate[key] / base:.2f}x |"

        per_task_s = CHUNK / per_machine
        # the client's bound if every task's round trip were paid one after another (they
        # overlap: a pessimistic figure) on top of writing its rows into the memmap
        client_bound = 1.0 / (1.0 / write_rate + overhead / 1e3 / CHUNK)
        examples = "; ".join(f"{m} machines ≈ {min(m * per_machine, client_bound):,.0f}/s"
                             for m in (4, 16, 64))
        replace_section("Dask scoring", [
            f"`python benchmarks/bench_dask.py {n}`: a pool of {n:,} spectra on disk, the CNN "
            f"of METHOD.md (untrained weights, seed 0), device {result['device']}; "
            f"`score_pool_distributed` with {CHUNK:,}-row partitions against in-process "
            f"`score_pool` with the same chunks, in the same run (best of 2 each, alternating; "
            f"1-minute load average {load_start:.2f} at the start, {os.getloadavg()[0]:.2f} at "
            f"the end, on 2 cores: the "
            f"machine is shared, so single figures carry that noise). Every cluster's file "
            f"equals the in-process one to {agree:.1e}.",
            "",
            "| variant | spectra/s | vs in-process |",
            "|---|---:|---:|",
            row("`score_pool` in this process (baseline)", "local"),
            row("LocalCluster, 2 workers × 1 thread, TensorFlow's default thread pools", "two"),
            row("LocalCluster, 2 workers × 1 thread, TF_NUM_INTRAOP_THREADS=1 each",
                "two_one_core"),
            row("LocalCluster, 1 worker (every core): what one machine adds", "one"),
            "",
            "First run on fresh workers (each imports Keras and loads the model): "
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in cold.items())
            + f" for the {n:,} rows, against {min(runs['local']):.1f} s warm in process; "
            "later runs find the model in the worker (cached by path and SHA-256).",
            "",
            f"Client side: writing ({CHUNK:,}, 3) float32 blocks into the score memmap runs at "
            f"{write_rate / 1e6:,.0f} M rows/s; one Dask task round trip through the scheduler "
            f"(submit, run, gather, bounded in flight) costs {overhead:.1f} ms, against "
            f"{per_task_s:.1f} s of CNN per {CHUNK:,}-row partition on one machine.",
            "",
            "**N machines (on paper, from these figures).** Two cores cannot score faster "
            "through a cluster: the CNN already uses both in process, so the two-worker rows "
            "only show what the cluster path costs; a ratio above 1 there is the machine's "
            "other load (separate processes win a larger share of contended cores than one "
            f"process's threads; load {load_start:.1f} at the start). What a machine adds "
            "to a cluster is one "
            f"worker with every core: {per_machine:,.0f}/s here, {per_machine / base:.2f}x "
            "in-process scoring (a worker process, its own row reads, result transfer and "
            f"{overhead:.0f} ms per task are well under 1 % of a partition's {per_task_s:.1f} s; "
            "the rest is the shared machine's noise). N machines of this kind give "
            f"≈ N × {per_machine:,.0f}/s ({examples}) until the client saturates: it receives "
            f"12 bytes and writes one row per spectrum, ≥ {client_bound / 1e6:,.1f} M rows/s "
            "from the two client figures above even with every task's round trip paid one "
            "after another (a 1 Gbit/s link carries ≈ 10 M rows/s of results), i.e. "
            f"≈ {client_bound / per_machine:,.0f} machines. The shared file system is the "
            "other bound: every worker reads 560 bytes per spectrum, so a file server "
            f"delivering 1 GB/s feeds ≈ 1.8 M spectra/s (≈ {1.8e6 / per_machine:,.0f} such "
            f"machines); the {'file server' if 1.8e6 < client_bound else 'client'} saturates "
            "first at these figures, and a slower file server sooner. A "
            f"1 M-spectrum pool takes {1e6 / base:,.0f} s in process here and "
            f"≈ {1e6 / (16 * per_machine):,.0f} s on 16 machines, plus the workers' first "
            "Keras import and model load (the cold runs above) on their first partition. "
            "Partitions should stay seconds of CNN each: the per-task cost is milliseconds, "
            "and with few partitions per worker the last ones leave machines idle (the "
            f"default, {16384:,} rows, is ~{16384 / per_machine:.0f} s on one such machine).",
        ])


if __name__ == "__main__":
    main(sys.argv[1:])
