"""Scoring throughput of the whole pool from disk, against the machine's float32 ceiling.

In one run:
1. the ceiling: a float32 4096x4096 numpy matmul (GFLOP/s), converted to spectra/s with the
   CNN's own FLOP count; measured in a child process with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
   unset (they can hold OpenBLAS to AVX2; TensorFlow ignores them), as PERFORMANCE.md advises;
2. vo-al's `score_pool`: an on-disk pool (memory-mapped .npy segments) scored chunk by chunk
   into an on-disk probability array, end to end;
3. the bare engine: `predict_proba` on an in-memory array of the same rows (no disk I/O).

Usage: python benchmarks/bench_scoring.py [N=200000] [--write]
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

CEILING_CODE = r"""
import time, numpy as np, json
a = np.random.default_rng(0).random((4096, 4096), dtype=np.float32)
b = a.copy(); a @ b
best = 0
for _ in range(5):
    t = time.perf_counter(); a @ b; dt = time.perf_counter() - t
    best = max(best, 2 * 4096 ** 3 / dt)
print(json.dumps({"gflops": best / 1e9}))
"""


def cnn_flops(model) -> float:
    """Multiply-adds x 2 of the conv and dense layers per spectrum."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv1D":
            length, cout = layer.output.shape[1], layer.output.shape[2]
            cin = layer.input.shape[2]
            total += 2 * length * layer.kernel_size[0] * cin * cout
        elif kind == "Dense":
            total += 2 * layer.input.shape[-1] * layer.units
    return float(total)


def ceiling_gflops() -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    out = subprocess.run([sys.executable, "-c", CEILING_CODE], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)["gflops"]


def main(argv):
    n = int(argv[0]) if argv and argv[0].isdigit() else 200_000
    write = "--write" in argv
    from vo_al.core.learning.model import build_cnn, describe_device, predict_proba
    from vo_al.core.pool.store import PoolStore
    from vo_al.core.base.progress import run_job
    from vo_al.core.learning.scoring import score_pool
    from vo_al.core.spectra.settings import PreprocessSettings

    gflops = ceiling_gflops()
    model = build_cnn()
    flops = cnn_flops(model)
    ceiling = gflops * 1e9 / flops
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        pool = PoolStore.create(Path(tmp) / "pool", PreprocessSettings())
        step = 100_000
        for start in range(0, n, step):
            k = min(step, n - start)
            rows = rng.uniform(-1, 1, (k, 140)).astype(np.float32)
            pool.add_rows(rows, [{"name": f"s{start + i}", "instrument": "lamost"} for i in range(k)])
        pool.seal()
        warm = pool.rows(np.arange(min(n, 8192)))
        predict_proba(model, warm)                      # build the predict function once
        t = time.perf_counter()
        run_job(score_pool(model, pool, Path(tmp) / "scores.npy"))
        pooled = n / (time.perf_counter() - t)
        rows = np.concatenate([c for _, c in pool.iter_chunks(65536)])
        t = time.perf_counter()
        predict_proba(model, rows)
        bare = n / (time.perf_counter() - t)
        t = time.perf_counter()
        model.predict(rows[..., None], batch_size=4096, verbose=0)
        keras_predict = n / (time.perf_counter() - t)
        pool.close()
    result = {
        "n": n, "ceiling_gflops": gflops, "mflop_per_spectrum": flops / 1e6,
        "ceiling_spectra_s": ceiling, "score_pool_spectra_s": pooled, "predict_spectra_s": bare,
        "keras_predict_spectra_s": keras_predict,
        "score_pool_over_ceiling": pooled / ceiling, "predict_over_ceiling": bare / ceiling,
        "device": describe_device(),
    }
    print(json.dumps(result, indent=2))
    if write:
        from results import replace_section

        replace_section("Scoring", [
            f"Pool of {n:,} spectra on disk; model: the CNN of METHOD.md ({flops / 1e6:.1f} MFLOP "
            f"per spectrum); device {result['device']}.",
            "",
            "| what | spectra/s | ratio to ceiling |",
            "|---|---:|---:|",
            f"| ceiling: float32 4096² numpy matmul, {gflops:.0f} GFLOP/s (OPENBLAS_CORETYPE/"
            f"OPENBLAS_L2_SIZE unset) | {ceiling:,.0f} | 1.00 |",
            f"| `score_pool`: on-disk pool → on-disk probabilities, 65 536-row chunks | "
            f"{pooled:,.0f} | {pooled / ceiling:.2f} |",
            f"| bare `predict_proba` (predict_on_batch, batch 2048), rows in memory | {bare:,.0f} | "
            f"{bare / ceiling:.2f} |",
            f"| for comparison: Keras `model.predict`, batch 4096, rows in memory | "
            f"{keras_predict:,.0f} | {keras_predict / ceiling:.2f} |",
        ])


if __name__ == "__main__":
    main(sys.argv[1:])
