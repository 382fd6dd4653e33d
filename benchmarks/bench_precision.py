"""bf16 against float32 scoring on this CPU: speed and agreement, in one run (issue 15).

bf16 scoring becomes the default only where it is >= 1.5x faster than float32 AND agrees with
it: the same predicted-target set on a 200 000-spectrum pool except for spectra within 1e-3 of a
decision boundary (float32 top-two class-probability gap < 1e-3), and >= 99 of the 100 spectra
of the entropy batch. This script measures both and writes the verdict.

The data, all seeded:
* training: CCD700-like demo spectra (vo_al.core.demo.datasets.training_arrays, the paper's
  class mix) through the real preprocessing (7 px blur), SMOTE-balanced
  (vo_al.core.learning.balance), trained with vo-al's own `train` job and early stopping;
* pool: LAMOST-like demo spectra (pool_arrays: the demo's mix of absorption stars, artefacts and
  ~1 % targets; ~1.2 ms each to make, too slow for 200 000). The pool is the `--base` demo
  spectra themselves plus resamplings of them: each resampling takes a random demo spectrum's
  raw flux around the window, Doppler-shifts it (v ~ N(0, 30 km/s), one 140-grid step is
  ~70 km/s, so rows move by sub-pixel amounts) and adds white noise (sigma 0-3 % of its median
  flux), then runs the real preprocessing. Rows differ from their parent by shift, noise and
  hence min-max scaling, as repeat LAMOST observations of one kind of star do.

Speed: vo-al's `predict_proba` (the loop `score_pool` runs, batch 2048) on rows in memory,
float32 and bfloat16 interleaved after a warm-up: one full pass each (these give the agreement
figures), then pairs on a 50 000-row slice in alternating order; medians and the ratio of the
medians are reported.

Optional: ONNX Runtime float32 (Keras -> tf2onnx) for comparison when `onnxruntime` and
`tf2onnx` are importable (e.g. PYTHONPATH=<dir of `pip install --target DIR --no-deps
onnxruntime onnx tf2onnx`>); ORT's x86 CPU provider has no bf16 convolution kernels, so it is not
a bf16 route here.

Usage: python benchmarks/bench_precision.py [--pool 200000] [--base 20000] [--train 4000]
       [--write] [--save-for-device DIR]
  --save-for-device DIR: the trained weights (.npz) and the base rows (.npy) for
  benchmarks/bench_device.py --model/--agreement-rows (so the GPU run checks the same model on
  the same spectra).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

GAP = 1e-3                 # "within 1e-3 of a decision boundary"
ENTROPY_BATCH = 100
MIN_SPEEDUP = 1.5
MIN_BATCH_OVERLAP = 99
BATCH_SIZE = 2048          # score_pool's and predict_proba's default
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "avx512_fp16",
             "amx_tile", "amx_bf16", "amx_int8")
C_KMS = 299_792.458
CROP = (6440.0, 6820.0)    # raw LAMOST pixels kept around the 6519-6732 A window


def cpu_summary() -> dict:
    """Model name and the mixed-precision flags of this CPU (/proc/cpuinfo)."""
    name, flags = "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and name == "unknown":
                name = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return {"model": name, "cores": os.cpu_count(),
            "flags": [f for f in CPU_FLAGS if f in flags]}


def training_rows(n: int, seed: int):
    """Preprocessed CCD700 demo rows and their labels (the paper's class mix)."""
    from vo_al.core.demo.datasets import training_arrays
    from vo_al.core.spectra.preprocess import preprocess_batch

    data = training_arrays(n, np.random.default_rng(seed))
    batch = preprocess_batch(data.wavelength, data.flux, data.sigma_px)
    good = batch.good
    return batch.rows[good], data.labels[good]


def pool_rows(n_pool: int, n_base: int, seed: int):
    """(rows, truth labels, parent index): the demo spectra, then resamplings of them."""
    from vo_al.core.demo.datasets import pool_arrays
    from vo_al.core.spectra.preprocess import preprocess_batch

    rng = np.random.default_rng(seed)
    base = pool_arrays(n_base, rng)
    keep = (base.wavelength >= CROP[0]) & (base.wavelength <= CROP[1])
    wl, flux = base.wavelength[keep], base.flux[:, keep].astype(np.float64)
    first = preprocess_batch(wl, flux, 0.0)
    rows, parents = [first.rows[first.good]], [np.flatnonzero(first.good)]
    have = len(rows[0])
    chunk = 20_000
    while have < n_pool:
        k = min(chunk, int((n_pool - have) * 1.02) + 16)
        parent = rng.integers(0, n_base, k)
        velocity = rng.normal(0.0, 30.0, k)
        shifted_wl = wl[None, :] * (1.0 + velocity[:, None] / C_KMS)
        level = np.nanmedian(np.abs(flux[parent]), axis=1)
        noisy = flux[parent] + rng.normal(0.0, 1.0, (k, wl.size)) * (
            rng.uniform(0.0, 0.03, k) * level)[:, None]
        batch = preprocess_batch(shifted_wl, noisy, 0.0)
        rows.append(batch.rows[batch.good])
        parents.append(parent[batch.good])
        have += int(batch.good.sum())
    rows = np.concatenate(rows)[:n_pool]
    parents = np.concatenate(parents)[:n_pool]
    return np.ascontiguousarray(rows, dtype=np.float32), base.labels[parents], parents


def train_model(rows, labels, seed: int, max_epochs: int, patience: int):
    from vo_al.core.base.progress import run_job
    from vo_al.core.learning.balance import smote_balance
    from vo_al.core.learning.model import build_cnn, train

    x, y = smote_balance(rows, labels, seed=seed)
    model = build_cnn(seed=seed)
    started = time.perf_counter()
    report = run_job(train(model, x, y, batch_size=64, patience=patience, max_epochs=max_epochs,
                           seed=seed),
                     lambda p: print(f"  epoch {p.done}: {p.message}", flush=True))
    return model, report, len(x), time.perf_counter() - started


def timed_scores(model, rows, precision: str):
    from vo_al.core.learning.model import predict_proba

    started = time.perf_counter()
    proba = predict_proba(model, rows, batch_size=BATCH_SIZE, precision=precision)
    return proba, len(rows) / (time.perf_counter() - started)


def top_two_gap(proba: np.ndarray) -> np.ndarray:
    top = np.sort(proba, axis=1)
    return top[:, -1] - top[:, -2]


def agreement(p32: np.ndarray, p16: np.ndarray) -> dict:
    """The issue's two criteria, and what lies behind them."""
    from vo_al.core.learning.classes import TARGET_CLASSES
    from vo_al.core.learning.strategies import query

    target32 = np.isin(p32.argmax(axis=1), TARGET_CLASSES)
    target16 = np.isin(p16.argmax(axis=1), TARGET_CLASSES)
    near = top_two_gap(p32) < GAP
    differ = target32 != target16
    available = np.ones(len(p32), dtype=bool)
    batch32 = query("entropy", p32, available, ENTROPY_BATCH)
    batch16 = query("entropy", p16, available, ENTROPY_BATCH)
    diff = np.abs(p32.astype(np.float64) - p16)
    return {
        "rows": int(len(p32)),
        "targets_float32": int(target32.sum()), "targets_bfloat16": int(target16.sum()),
        "near_boundary": int(near.sum()),
        "target_set_differences": int(differ.sum()),
        "differences_near_boundary": int((differ & near).sum()),
        "differences_away_from_boundary": int((differ & ~near).sum()),
        "argmax_differences": int((p32.argmax(axis=1) != p16.argmax(axis=1)).sum()),
        "entropy_batch_overlap": len(set(batch32.tolist()) & set(batch16.tolist())),
        "max_abs_probability_difference": float(diff.max()),
        "mean_abs_probability_difference": float(diff.mean()),
        "p99_abs_probability_difference": float(np.quantile(diff.max(axis=1), 0.99)),
    }


def onnx_float32(model, rows) -> dict:
    """ONNX Runtime float32 throughput, when onnxruntime and tf2onnx are importable."""
    import importlib.util
    import tempfile

    missing = [m for m in ("onnxruntime", "tf2onnx", "onnx") if importlib.util.find_spec(m) is None]
    if missing:
        return {"skipped": f"not installed: {', '.join(missing)}"}
    import keras

    if keras.backend.backend() != "tensorflow":
        return {"skipped": "Keras exports ONNX through tf2onnx under TensorFlow only here"}
    try:
        import onnxruntime as ort

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "cnn.onnx"
            model.export(str(path), format="onnx", verbose=False)
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        x = rows[..., None]

        def run():
            out = np.empty((len(rows), 3), np.float32)
            for start in range(0, len(rows), BATCH_SIZE):
                batch = x[start:start + BATCH_SIZE]
                out[start:start + len(batch)] = session.run(None, {name: batch})[0]
            return out

        session.run(None, {name: x[:BATCH_SIZE]})          # warm-up
        started = time.perf_counter()
        proba = run()
        rate = len(rows) / (time.perf_counter() - started)
        return {"spectra_s": rate, "proba": proba, "ort": ort.__version__}
    except Exception as exc:      # noqa: BLE001 - optional comparison: record why it failed
        return {"skipped": f"{type(exc).__name__}: {exc}"[:300]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", type=int, default=200_000)
    ap.add_argument("--base", type=int, default=20_000)
    ap.add_argument("--train", type=int, default=4000)
    ap.add_argument("--max-epochs", type=int, default=40)
    ap.add_argument("--patience", type=int, default=4)
    ap.add_argument("--slice", type=int, default=50_000, help="rows of the interleaved pairs")
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--save-for-device", type=Path)
    ap.add_argument("--from-json", type=Path, help="write the section from a saved result")
    args = ap.parse_args(argv)
    if args.from_json:
        from results import replace_section

        result = json.loads(args.from_json.read_text())
        args.patience, args.slice = result.get("patience", 4), result.get("slice", args.slice)
        replace_section("Scoring precision", section_lines(result, args))
        return
    t_start = time.perf_counter()

    from vo_al.core.learning.model import describe_device, precision_twin, predict_proba
    import keras

    cpu = cpu_summary()
    load_before = os.getloadavg()[0]
    print(json.dumps(cpu), flush=True)
    t = time.perf_counter()
    x_train, y_train = training_rows(args.train + 1000, args.seed)
    x_test, y_test = x_train[args.train:], y_train[args.train:]
    x_train, y_train = x_train[:args.train], y_train[:args.train]
    rows, truth, parents = pool_rows(args.pool, args.base, args.seed + 1)
    t_data = time.perf_counter() - t
    print(f"data: {len(x_train)} training rows, {len(rows)} pool rows in {t_data:.0f} s",
          flush=True)

    model, report, n_balanced, t_train = train_model(x_train, y_train, args.seed,
                                                     args.max_epochs, args.patience)
    test_acc = float((predict_proba(model, x_test).argmax(axis=1) == y_test).mean())
    print(f"trained {report.epochs} epochs (best {report.best_epoch}, loss "
          f"{report.best_loss:.4f}) in {t_train:.0f} s; held-out CCD700 accuracy {test_acc:.3f}",
          flush=True)

    # warm-up: the bf16 twin and both predict functions, on rows not timed
    precision_twin(model, "bfloat16")
    for precision in ("float32", "bfloat16"):
        predict_proba(model, rows[:8192], batch_size=BATCH_SIZE, precision=precision)

    rates = {"float32": [], "bfloat16": []}
    p32, rate = timed_scores(model, rows, "float32")
    rates["float32"].append(rate)
    p16, rate = timed_scores(model, rows, "bfloat16")
    rates["bfloat16"].append(rate)
    print(f"full pass: float32 {rates['float32'][0]:,.0f}/s, bfloat16 "
          f"{rates['bfloat16'][0]:,.0f}/s", flush=True)
    part = rows[:args.slice]
    for pair in range(args.pairs):
        order = ("bfloat16", "float32") if pair % 2 == 0 else ("float32", "bfloat16")
        for precision in order:
            rates[precision].append(timed_scores(model, part, precision)[1])
    median = {k: float(np.median(v)) for k, v in rates.items()}
    speedup = median["bfloat16"] / median["float32"]
    pair_ratios = [b / f for f, b in zip(rates["float32"], rates["bfloat16"])]
    agree = agreement(p32, p16)

    # plausibility of the trained model on the pool's truth (the demo's labels)
    from vo_al.core.learning.classes import TARGET_CLASSES

    is_target = np.isin(truth, TARGET_CLASSES)
    predicted = np.isin(p32.argmax(axis=1), TARGET_CLASSES)
    recall = float(predicted[is_target].mean()) if is_target.any() else float("nan")

    onnx = onnx_float32(model, rows[:args.slice])
    if "proba" in onnx:
        onnx["max_abs_difference_to_keras"] = float(np.abs(onnx.pop("proba")
                                                           - p32[:args.slice]).max())
        onnx["ratio_to_keras_float32"] = onnx["spectra_s"] / median["float32"]

    fast = speedup >= MIN_SPEEDUP
    agrees = (agree["differences_away_from_boundary"] == 0
              and agree["entropy_batch_overlap"] >= MIN_BATCH_OVERLAP)
    verdict = "default" if fast and agrees else "opt-in"
    reasons = []
    if not fast:
        reasons.append(f"bf16 is {speedup:.2f}x float32, below the {MIN_SPEEDUP}x required")
    if agree["differences_away_from_boundary"]:
        reasons.append(f"{agree['differences_away_from_boundary']} spectra change target/"
                       f"non-target with a float32 top-two gap >= {GAP:g}")
    if agree["entropy_batch_overlap"] < MIN_BATCH_OVERLAP:
        reasons.append(f"the entropy batch shares {agree['entropy_batch_overlap']} of "
                       f"{ENTROPY_BATCH} spectra (>= {MIN_BATCH_OVERLAP} required)")
    why = "; ".join(reasons) if reasons else (
        f"bf16 is {speedup:.2f}x float32 and meets both agreement criteria")

    result = {
        "cpu": cpu, "device": describe_device("bfloat16"), "keras": keras.__version__,
        "pool_rows": len(rows), "base_spectra": args.base, "train_rows": len(x_train),
        "balanced_rows": n_balanced, "epochs": report.epochs, "best_epoch": report.best_epoch,
        "best_loss": report.best_loss, "train_s": t_train, "heldout_accuracy": test_acc,
        "pool_target_recall": recall, "pool_true_targets": int(is_target.sum()),
        "rates": rates, "median_spectra_s": median, "speedup": speedup,
        "pair_ratios": pair_ratios, "agreement": agree, "onnx": onnx,
        "verdict": verdict, "why": why, "total_s": time.perf_counter() - t_start,
        "load_average_1min": [load_before, os.getloadavg()[0]],
        "patience": args.patience, "slice": args.slice,
    }
    print(json.dumps(result, indent=2), flush=True)

    if args.save_for_device:
        out = args.save_for_device
        out.mkdir(parents=True, exist_ok=True)
        weights = model.get_weights()
        np.savez(out / "precision_model_weights.npz",
                 **{f"w{i:03d}": w for i, w in enumerate(weights)})
        np.save(out / "precision_rows.npy", rows[:args.base])
        (out / "precision_result.json").write_text(json.dumps(result, indent=2) + "\n")
        print(f"saved the weights, {args.base} rows and the result to {out}")

    if args.write:
        from results import replace_section

        replace_section("Scoring precision", section_lines(result, args))


def section_lines(r: dict, args) -> list[str]:
    a, m, cpu = r["agreement"], r["median_spectra_s"], r["cpu"]
    onnx = r["onnx"]
    if "spectra_s" in onnx:
        onnx_line = (f"ONNX Runtime {onnx['ort']} float32 (Keras → tf2onnx, CPU provider, batch "
                     f"{BATCH_SIZE}, {args.slice:,} rows): {onnx['spectra_s']:,.0f} spectra/s, "
                     f"{onnx['ratio_to_keras_float32']:.2f}x Keras float32; max |Δp| to Keras "
                     f"{onnx['max_abs_difference_to_keras']:.1e}. Not a bf16 route: ORT's x86 "
                     "CPU provider has no bf16 convolution kernels (its bf16 GEMM fast-math is "
                     "for arm64).")
    else:
        onnx_line = (f"ONNX Runtime: not measured ({onnx['skipped']}). Not a bf16 route on this "
                     "CPU anyway: ORT's x86 CPU provider has no bf16 convolution kernels.")
    return [
        f"`python benchmarks/bench_precision.py --write`: CPU {cpu['model']}, {cpu['cores']} "
        f"cores, flags {', '.join(cpu['flags'])}; {r['device']}, Keras {r['keras']}. "
        "bf16 = Keras mixed_bfloat16 policy (bf16 compute, float32 weights, float32 softmax).",
        "",
        f"Model: the CNN trained with vo-al's `train` (batch 64, early stopping, patience "
        f"{args.patience}) on {r['train_rows']:,} preprocessed CCD700-like demo spectra "
        f"SMOTE-balanced to {r['balanced_rows']:,}: {r['epochs']} epochs (best {r['best_epoch']},"
        f" loss {r['best_loss']:.4f}), held-out CCD700 accuracy {r['heldout_accuracy']:.3f}. On "
        f"the pool it finds {r['pool_target_recall']:.0%} of the demo's true targets and calls "
        f"{r['agreement']['targets_float32'] / r['pool_rows']:.0%} of the pool targets: the "
        "CCD700 → LAMOST domain shift of the paper's first iteration, which the active learning "
        "then corrects; many spectra are uncertain, a hard case for agreement.",
        f"Pool: {r['pool_rows']:,} LAMOST-like rows: {r['base_spectra']:,} demo spectra "
        "(pool_arrays) and resamplings of them (Doppler shift v ~ N(0, 30 km/s), white noise "
        "0–3 % of the median flux, then the real preprocessing).",
        "",
        f"| `predict_proba`, batch {BATCH_SIZE} | float32 spectra/s | bfloat16 spectra/s | "
        "bf16 / float32 |",
        "|---|---:|---:|---:|",
        f"| full pass, {r['pool_rows']:,} rows | {r['rates']['float32'][0]:,.0f} | "
        f"{r['rates']['bfloat16'][0]:,.0f} | {r['pair_ratios'][0]:.2f} |",
        *[f"| pair {i}, {args.slice:,} rows ({'bf16 first' if i % 2 else 'float32 first'}) | "
          f"{f:,.0f} | {b:,.0f} | {b / f:.2f} |"
          for i, (f, b) in enumerate(zip(r["rates"]["float32"][1:], r["rates"]["bfloat16"][1:]),
                                     start=1)],
        f"| **median** | {m['float32']:,.0f} | {m['bfloat16']:,.0f} | **{r['speedup']:.2f}** |",
        "",
        f"Agreement with float32 on the {a['rows']:,} rows: predicted targets "
        f"{a['targets_float32']:,} (float32) and {a['targets_bfloat16']:,} (bf16); {a['target_set_differences']} spectra "
        f"differ, {a['differences_near_boundary']} of them within {GAP:g} of a decision boundary "
        f"(float32 top-two gap; {a['near_boundary']:,} spectra lie there) and "
        f"**{a['differences_away_from_boundary']} away from it** (required: 0). Arg-max class "
        f"differs for {a['argmax_differences']}. Entropy batch of {ENTROPY_BATCH}: "
        f"**{a['entropy_batch_overlap']} shared** (required: >= {MIN_BATCH_OVERLAP}). |Δp| max "
        f"{a['max_abs_probability_difference']:.2e}, mean "
        f"{a['mean_abs_probability_difference']:.1e}, 99th percentile of the per-spectrum max {a['p99_abs_probability_difference']:.1e}.",
        "",
        onnx_line,
        "",
        (f"**Verdict: bf16 scoring stays opt-in on this CPU** ({r['why']})."
         if r["verdict"] == "opt-in" else
         f"**Verdict: bf16 scoring can be the default on this CPU** ({r['why']}).")
        + f" Whole run {r['total_s']:.0f} s; 1-minute load average {r['load_average_1min'][0]:.1f}"
        f" before, {r['load_average_1min'][1]:.1f} after (a shared machine: the interleaving keeps"
        " the ratio fair, the absolute rates drift).",
    ]


if __name__ == "__main__":
    main()
