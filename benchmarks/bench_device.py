"""The device benchmark (issue 15): one run on a lent GPU machine measures, within --budget-s,

1. the ceiling: the backend's own matmul (jax.numpy / torch / tf.linalg; 8192² on a GPU, 1024²
   with --cpu) in float32 at the backend's default precision (TF32 tensor cores where XLA or
   cuDNN use them), float32 at full precision and bfloat16, in TFLOP/s, and the CNN's FLOPs per
   spectrum counted analytically from build_cnn's layers (2 x multiply-adds of every Conv1D and
   Dense): ceiling spectra/s = matmul FLOP/s / CNN FLOPs;
2. training: seconds per epoch of vo-al's `train` job on an 18 000-spectrum SMOTE-balanced set
   (6 000 per class from 12 766 plausible rows in the paper's 47/41/12 % mix; imbalanced-learn
   when importable, else the numpy SMOTE below), batch 64 and 512, after a warm-up fit that
   compiles both the full and the last partial batch;
3. scoring: vo-al's `predict_proba` on a pool of 4 128 768 rows (63 x 65 536, ~ the authors'
   4.13 M; rows in memory, 2.3 GB) in float32 and bfloat16, batch 65 536 and 2 048 (called
   per chunk of up to 16 batches, as score_pool calls it); then, while the budget lasts, the
   model computing on rows already on the device (the compute-only rate, without host
   transfers) and Keras's own `model.predict`. Ratios: achieved FLOP/s to the ceiling of the
   same precision, and spectra/s to the authors' 44 k/s (4.13 M spectra in 94 s).

With --model (weights .npz) and --agreement-rows (.npy), both written by
`bench_precision.py --save-for-device` and carried in the bundle, the pool is built from those
rows and scored by that trained model, and the bf16 agreement criteria of bench_precision are
checked on the device too (predicted-target set outside a 1e-3 top-two gap; entropy batch of
100). Without them the rows are plausible Hα profiles made here in numpy and the scoring model
is the one trained in part 2.

Every part stops early when its share of the budget is spent (ceiling 8 % of what is left,
training 35 %, the four scoring passes 75 % of the rest, the extras the remainder) and records
what it measured ("complete": false), and the figures so far are in --json after each part (a run killed at its
time limit still leaves them). Only numpy, Keras, the backend and vo_al.core.learning's model,
device, classes and strategies (numpy and vo_al.core.base only) are imported, imbalanced-learn
where it is installed: no scipy, astropy or demo code.

Usage:
  KERAS_BACKEND=jax python benchmarks/bench_device.py --json $OUT/device.json   # the GPU run
  python benchmarks/bench_device.py --cpu --json /tmp/device.json              # dry run here
  python benchmarks/bench_device.py --merge-section FILE    # put a device run's section in
                                                            # RESULTS.md
The section is '## Device (GPU)' ('## Device (CPU dry run)' with --cpu) in RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))                  # results.py
if "--installed" not in sys.argv:              # else vo-al from the environment (the bundle)
    sys.path.insert(1, str(HERE.parent))

AUTHORS_RATE = 4.13e6 / 94.0               # spectra/s: the paper's 4.13 M LAMOST spectra in 94 s
GRID = np.linspace(6519.0, 6732.0, 140)    # the method's window and 140 points
HALPHA_VAC = 6564.614
C_KMS = 299_792.458
TRAINING_MIX = (0.47, 0.41, 0.12)          # the paper's CCD700 classes
POOL_MIX = (0.90, 0.08, 0.02)
PER_CLASS = 6000                           # x 3 classes = 18 000 after SMOTE
GAP = 1e-3
ENTROPY_BATCH = 100


# ---------------------------------------------------------------- the clock

class Budget:
    """Wall-clock budget of the whole run; each part gets a share of what is left."""

    def __init__(self, seconds: float, reserve: float):
        self.start = time.perf_counter()
        self.seconds = seconds
        self.reserve = reserve              # kept for writing the results

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float:
        return self.seconds - self.reserve - self.elapsed()

    def part(self, share: float) -> float:
        """The deadline (perf_counter time) of a part given `share` of what is left."""
        return time.perf_counter() + max(0.0, self.left()) * share


def fits(deadline: float, seconds: float) -> bool:
    return time.perf_counter() + seconds <= deadline


# ---------------------------------------------------------------- data, in numpy only

def profile_rows(labels: np.ndarray, rng: np.random.Generator, noise=(0.01, 0.2)) -> np.ndarray:
    """Preprocessed-like rows (n, 140) in [-1, 1]: Hα absorption (0), single-peak (1) or
    double-peak (2) emission on the method's grid, with white noise (as
    tests/session_fixtures.profile_rows, made directly on the grid)."""
    n = len(labels)
    labels = np.asarray(labels)[:, None]
    centre = HALPHA_VAC * (1 + rng.normal(0, 100, n) / C_KMS)[:, None]
    width = rng.uniform(1.5, 4, n)[:, None]
    amp = rng.uniform(0.3, 3, n)[:, None]
    sep = rng.uniform(2.5, 6, n)[:, None]

    def gauss(c, w):
        return np.exp(-0.5 * ((GRID - c) / w) ** 2)

    flux = np.ones((n, GRID.size))
    flux -= np.where(labels == 0, 0.6 * gauss(centre, width), 0)
    flux += np.where(labels == 1, amp * gauss(centre, width), 0)
    flux += np.where(labels == 2, amp * (gauss(centre - sep, width / 2)
                                         + gauss(centre + sep, width / 2)), 0)
    flux += rng.normal(0, 1, flux.shape) * rng.uniform(*noise, n)[:, None]
    low, high = flux.min(axis=1, keepdims=True), flux.max(axis=1, keepdims=True)
    return (2.0 * (flux - low) / (high - low) - 1.0).astype(np.float32)


def smote_numpy(x: np.ndarray, y: np.ndarray, k: int = 5, seed: int = 0):
    """SMOTE without scikit-learn: each smaller class is over-sampled to the largest by
    interpolating between a random member and one of its k nearest neighbours (Euclidean,
    within the class), as imbalanced-learn's SMOTE does."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    most = int(counts.max())
    xs, ys = [np.asarray(x, np.float32)], [np.asarray(y)]
    for c, n in zip(classes, counts):
        need = most - int(n)
        if need == 0:
            continue
        xc = np.asarray(x[y == c], np.float32)
        kk = min(k, int(n) - 1)
        if kk < 1:                                      # one member: repeat it
            xs.append(xc[rng.integers(0, n, need)])
            ys.append(np.full(need, c))
            continue
        squares = (xc.astype(np.float64) ** 2).sum(axis=1)
        neighbours = np.empty((int(n), kk), np.int64)
        for s in range(0, int(n), 1024):
            block = xc[s:s + 1024].astype(np.float64)
            d = squares[s:s + 1024, None] - 2.0 * block @ xc.T.astype(np.float64) + squares[None]
            d[np.arange(len(block)), np.arange(s, s + len(block))] = np.inf     # not itself
            neighbours[s:s + len(block)] = np.argpartition(d, kk - 1, axis=1)[:, :kk]
        base = rng.integers(0, n, need)
        other = neighbours[base, rng.integers(0, kk, need)]
        step = rng.random((need, 1), dtype=np.float32)
        xs.append(xc[base] + step * (xc[other] - xc[base]))
        ys.append(np.full(need, c))
    return np.concatenate(xs), np.concatenate(ys)


def balanced_training_set(seed: int, per_class: int = PER_CLASS):
    """18 000 SMOTE-balanced rows: 12 766 in the paper's mix, each class raised to 6 000."""
    rng = np.random.default_rng(seed)
    n = round(per_class / TRAINING_MIX[0])
    counts = [per_class, round(n * TRAINING_MIX[1]), n - per_class - round(n * TRAINING_MIX[1])]
    labels = rng.permutation(np.repeat(np.arange(3), counts))
    rows = profile_rows(labels, rng)
    started = time.perf_counter()
    try:
        from imblearn.over_sampling import SMOTE

        x, y = SMOTE(k_neighbors=5, random_state=seed).fit_resample(rows, labels)
        how = "imbalanced-learn SMOTE"
    except ImportError:
        x, y = smote_numpy(rows, labels, seed=seed)
        how = "numpy SMOTE (imbalanced-learn not installed)"
    return (np.ascontiguousarray(x, np.float32), np.asarray(y), len(rows), how,
            time.perf_counter() - started)


def pool(n_rows: int, base: np.ndarray) -> np.ndarray:
    """n_rows in memory: the distinct `base` rows repeated (throughput does not depend on
    content; agreement is checked on the distinct rows)."""
    out = np.empty((n_rows, base.shape[1]), np.float32)
    for start in range(0, n_rows, len(base)):
        k = min(len(base), n_rows - start)
        out[start:start + k] = base[:k]
    return out


# ---------------------------------------------------------------- (1) the ceiling

def cnn_flops(model) -> float:
    """2 x multiply-adds of the Conv1D and Dense layers per spectrum (ReLU, pooling, softmax
    are a rounding error)."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv1D":
            length, cout = layer.output.shape[1], layer.output.shape[2]
            total += 2 * length * layer.kernel_size[0] * layer.input.shape[2] * cout
        elif kind == "Dense":
            total += 2 * layer.input.shape[-1] * layer.units
    return float(total)


def matmul_ceiling(backend: str, size: int, deadline: float) -> dict:
    """Best TFLOP/s of size² matmuls in the backend's own library, per precision."""
    flop = 2.0 * size ** 3
    out = {"size": size}

    def best_of(run, wait, label):
        wait(run())                                     # compile / warm-up
        best, reps = 0.0, 0
        while reps < 3 or (reps < 20 and fits(deadline, 0.5)):
            t = time.perf_counter()
            for _ in range(5):                          # queued back to back, waited once
                r = run()
            wait(r)
            best = max(best, 5 * flop / (time.perf_counter() - t))
            reps += 1
            if not fits(deadline, 0.0):
                break
        out[label] = best / 1e12

    if backend == "jax":
        import jax
        import jax.numpy as jnp

        key = jax.random.PRNGKey(0)
        a32 = jax.random.normal(key, (size, size), jnp.float32)
        b32 = jax.random.normal(jax.random.PRNGKey(1), (size, size), jnp.float32)
        cases = {
            "float32_default": (jax.jit(lambda a, b: a @ b), a32, b32),
            "float32_highest": (jax.jit(lambda a, b: jnp.matmul(a, b, precision="highest")),
                                a32, b32),
            "bfloat16": (jax.jit(lambda a, b: a @ b), a32.astype(jnp.bfloat16),
                         b32.astype(jnp.bfloat16)),
        }
        for label, (fn, a, b) in cases.items():
            if not fits(deadline, 1.0):
                break
            best_of(lambda fn=fn, a=a, b=b: fn(a, b), lambda r: r.block_until_ready(), label)
    elif backend == "torch":
        import torch

        dev = "cuda" if torch.cuda.is_available() else "cpu"
        a32 = torch.randn(size, size, device=dev)
        b32 = torch.randn(size, size, device=dev)
        wait = (lambda r: torch.cuda.synchronize()) if dev == "cuda" else (lambda r: None)
        old = torch.backends.cuda.matmul.allow_tf32
        for label, a, b, tf32 in (("float32_default", a32, b32, old),
                                  ("float32_highest", a32, b32, False),
                                  ("float32_tf32", a32, b32, True),
                                  ("bfloat16", a32.bfloat16(), b32.bfloat16(), old)):
            if not fits(deadline, 1.0):
                break
            torch.backends.cuda.matmul.allow_tf32 = tf32
            best_of(lambda a=a, b=b: a @ b, wait, label)
        torch.backends.cuda.matmul.allow_tf32 = old
    else:
        import tensorflow as tf

        fn = tf.function(lambda a, b: tf.linalg.matmul(a, b))
        a32 = tf.random.normal((size, size))
        b32 = tf.random.normal((size, size))
        for label, a, b in (("float32_default", a32, b32),
                            ("bfloat16", tf.cast(a32, tf.bfloat16), tf.cast(b32, tf.bfloat16))):
            if not fits(deadline, 1.0):
                break
            best_of(lambda a=a, b=b: fn(a, b), lambda r: r.numpy(), label)
        out["float32_highest"] = out.get("float32_default")
    return out


# ---------------------------------------------------------------- (2) training

def training_epochs(x, y, batch: int, epochs: int, deadline: float, seed: int) -> dict:
    """Seconds per epoch of vo-al's train job after a warm-up that compiles its batch shapes."""
    import keras

    from vo_al.core.learning.model import build_cnn, train

    model = build_cnn(seed=seed)
    warm = 4 * batch + len(x) % batch                   # full batches and the last partial one
    onehot = keras.utils.to_categorical(y[:warm], 3).astype(np.float32)
    t = time.perf_counter()
    model.fit(x[:warm, :, None], onehot, batch_size=batch, epochs=1, verbose=0)
    compile_s = time.perf_counter() - t
    t = time.perf_counter()                             # again, compiled: the epoch's cost
    model.fit(x[:warm, :, None], onehot, batch_size=batch, epochs=1, verbose=0)
    projected = (time.perf_counter() - t) * len(x) / warm
    record = {"batch": batch, "rows": len(x), "warmup_s": compile_s,
              "projected_epoch_s": projected, "epochs_s": [], "complete": False}
    if not fits(deadline, projected):
        record["skipped"] = f"one epoch (~{projected:.0f} s projected) exceeds the budget left"
        return record, model
    job = train(model, x, y, batch_size=batch, patience=epochs + 1, max_epochs=epochs, seed=seed)
    last = time.perf_counter()
    per_epoch = projected
    try:
        while True:
            if not fits(deadline, per_epoch):
                break
            try:
                step = next(job)
            except StopIteration:
                record["complete"] = True
                break
            now = time.perf_counter()
            per_epoch = now - last
            last = now
            record["epochs_s"].append(per_epoch)
            record["loss"] = step.info.get("loss")
    finally:
        job.close()
    record["complete"] = record["complete"] or len(record["epochs_s"]) == epochs
    if record["epochs_s"]:
        record["seconds_per_epoch"] = float(np.median(record["epochs_s"]))
        record["spectra_s"] = len(x) / record["seconds_per_epoch"]
    return record, model


# ---------------------------------------------------------------- (3) scoring

def score_rate(model, rows, batch: int, precision: str, deadline: float, keep: int = 0) -> dict:
    """vo-al's predict_proba over the pool, one chunk of 16 batches per call, until the pool
    is done or the deadline comes; the first `keep` probabilities are returned."""
    from vo_al.core.learning.model import predict_proba

    t = time.perf_counter()
    predict_proba(model, rows[:batch], batch_size=batch, precision=precision)    # compile
    record = {"precision": precision, "batch": batch, "warmup_s": time.perf_counter() - t,
              "complete": False}
    # 16 batches per call, fewer on a small pool so the deadline is checked >= 8 times
    chunk = batch * max(1, min(16, len(rows) // (8 * batch)))
    done, spent, kept = 0, 0.0, []
    per_row = None                                      # from the first call, one batch
    while done < len(rows):
        size = batch if per_row is None else chunk
        if not fits(deadline, 0.0 if per_row is None else per_row * size):
            break
        t = time.perf_counter()
        proba = predict_proba(model, rows[done:done + size], batch_size=batch,
                              precision=precision)
        took = time.perf_counter() - t
        per_row = took / len(proba)
        spent += took
        if done < keep:
            kept.append(proba[:keep - done])
        done += len(proba)
    record.update(rows=done, seconds=spent, complete=done == len(rows))
    if done:
        record["spectra_s"] = done / spent
    return record, (np.concatenate(kept) if kept else None)


def resident_rate(model, rows, batch: int, precision: str, backend: str,
                  deadline: float) -> dict:
    """The model on one batch already on the device, repeated: compute only, no transfers."""
    from vo_al.core.learning.model import precision_twin

    scorer = model if precision == "float32" else precision_twin(model, precision)
    record = {"precision": precision, "batch": batch}
    if backend == "jax":
        import jax

        trainable = [v.value for v in scorer.trainable_variables]
        fixed = [v.value for v in scorer.non_trainable_variables]
        fn = jax.jit(lambda tv, ntv, x: scorer.stateless_call(tv, ntv, x, training=False)[0])
        x = jax.device_put(np.asarray(rows[:batch, :, None], np.float32))
        fn(trainable, fixed, x).block_until_ready()

        def run(reps):
            for _ in range(reps):
                r = fn(trainable, fixed, x)
            r.block_until_ready()
    elif backend == "torch":
        import torch

        dev = "cuda" if torch.cuda.is_available() else "cpu"
        x = torch.from_numpy(np.asarray(rows[:batch, :, None], np.float32)).to(dev)
        sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)

        def run(reps):
            with torch.no_grad():
                for _ in range(reps):
                    scorer(x, training=False)
            sync()
        run(1)
    else:
        return {**record, "skipped": f"not measured under {backend}"}
    reps, best = 1, 0.0
    while fits(deadline, 0.0):
        t = time.perf_counter()
        run(reps)
        dt = time.perf_counter() - t
        best = max(best, reps * batch / dt)
        if dt > 1.0 or not fits(deadline, 2 * dt):
            break
        reps *= 2
    if best:
        record["spectra_s"] = best
    else:
        record["skipped"] = "budget spent (compile only)"
    return record


def keras_predict_rate(model, rows, batch: int, precision: str, deadline: float) -> dict:
    """Keras's own model.predict on as many rows as the deadline allows (its loop pipelines)."""
    from vo_al.core.learning.model import precision_twin

    scorer = model if precision == "float32" else precision_twin(model, precision)
    scorer.predict(rows[:batch, :, None], batch_size=batch, verbose=0)            # compile
    t = time.perf_counter()
    scorer.predict(rows[:batch, :, None], batch_size=batch, verbose=0)
    per_batch = time.perf_counter() - t
    batches = int(0.8 * (deadline - time.perf_counter()) / per_batch)
    n = min(len(rows) // batch, 64, batches) * batch
    if n <= batch:
        return {"precision": precision, "batch": batch, "rows": batch,
                "spectra_s": batch / per_batch}
    t = time.perf_counter()
    scorer.predict(rows[:n, :, None], batch_size=batch, verbose=0)
    return {"precision": precision, "batch": batch, "rows": n,
            "spectra_s": n / (time.perf_counter() - t)}


def agreement(p32: np.ndarray, p16: np.ndarray) -> dict:
    """bench_precision's criteria: target set outside a GAP top-two gap, entropy batch."""
    from vo_al.core.learning.classes import TARGET_CLASSES
    from vo_al.core.learning.strategies import query

    top = np.sort(p32, axis=1)
    near = (top[:, -1] - top[:, -2]) < GAP
    t32 = np.isin(p32.argmax(axis=1), TARGET_CLASSES)
    t16 = np.isin(p16.argmax(axis=1), TARGET_CLASSES)

    def entropy_batch(p):
        return set(query("entropy", p, np.ones(len(p), dtype=bool), ENTROPY_BATCH).tolist())

    differ = t32 != t16
    return {"rows": int(len(p32)), "targets_float32": int(t32.sum()),
            "targets_bfloat16": int(t16.sum()), "near_boundary": int(near.sum()),
            "differences_near_boundary": int((differ & near).sum()),
            "differences_away_from_boundary": int((differ & ~near).sum()),
            "entropy_batch_overlap": len(entropy_batch(p32) & entropy_batch(p16)),
            "max_abs_probability_difference": float(np.abs(p32 - p16).max())}


# ---------------------------------------------------------------- the run

def environment(backend: str) -> dict:
    env = {"python": platform.python_version(), "numpy": np.__version__, "backend": backend,
           "cpu_count": os.cpu_count(), "host": platform.processor() or platform.machine()}
    for name in ("keras", "jax", "jaxlib", "torch", "tensorflow"):
        if name in sys.modules:
            env[name] = getattr(sys.modules[name], "__version__", "?")
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,"
                              "clocks.max.sm,power.limit", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        if smi.returncode == 0:
            env["nvidia_smi"] = smi.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return env


def checkpoint(args, result: dict) -> None:
    """The figures so far to --json, so that a run killed at its time limit still leaves them."""
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**result, "partial": True}, indent=2) + "\n")


def load_weights(model, path: Path) -> None:
    with np.load(path) as f:
        model.set_weights([f[k] for k in sorted(f.files)])


def run(args) -> dict:
    budget = Budget(args.budget_s, reserve=max(5.0, 0.04 * args.budget_s))
    from vo_al.core.learning.model import _keras, build_cnn, describe_device

    keras = _keras()
    backend = keras.backend.backend()
    result = {"mode": "cpu dry run" if args.cpu else "device", "budget_s": args.budget_s,
              "load_average_1min": [os.getloadavg()[0]],
              "env": environment(backend),
              "device": {p: describe_device(p) for p in ("float32", "bfloat16")}}
    print(json.dumps(result["device"]), flush=True)
    if not args.cpu and not result["device"]["float32"].startswith("GPU"):
        raise SystemExit(f"the backend computes on {result['device']['float32']}, not a GPU: "
                         "set KERAS_BACKEND to a backend that sees it, or use --cpu")
    probe = build_cnn()
    flops = cnn_flops(probe)
    result["mflop_per_spectrum"] = flops / 1e6
    result["authors_spectra_s"] = AUTHORS_RATE

    # (1) the matmul ceiling
    ceiling = matmul_ceiling(backend, args.matmul, budget.part(0.08))
    result["ceiling_tflops"] = ceiling
    print("ceiling", json.dumps(ceiling), flush=True)
    checkpoint(args, result)

    # (2) training
    x, y, n_raw, how, smote_s = balanced_training_set(args.seed, args.per_class)
    result["training_set"] = {"raw_rows": n_raw, "balanced_rows": len(x), "smote": how,
                              "smote_s": smote_s}
    trained, trained_batch = None, None
    result["training"] = []
    train_deadline = budget.part(0.35)
    for i, batch in enumerate(args.train_batches):
        share = (train_deadline - time.perf_counter()) / (len(args.train_batches) - i)
        if share <= 5.0:
            result["training"].append({"batch": batch, "skipped": "budget spent"})
            continue
        record, model = training_epochs(x, y, batch, args.epochs,
                                        time.perf_counter() + share, args.seed)
        if record["epochs_s"]:
            trained, trained_batch = model, record
        result["training"].append(record)
        print("training", json.dumps(record), flush=True)
        checkpoint(args, result)
    del x, y

    # (3) scoring
    if args.agreement_rows:
        base = np.load(args.agreement_rows).astype(np.float32)
        rows_from = f"{len(base):,} rows of bench_precision (LAMOST-like demo spectra)"
    else:
        base = profile_rows(np.random.default_rng(args.seed + 1).choice(3, args.distinct,
                                                                        p=POOL_MIX),
                            np.random.default_rng(args.seed + 2), noise=(0.02, 0.6))
        rows_from = f"{len(base):,} distinct plausible Hα profiles made in numpy"
    rows = pool(args.pool, base)
    if args.model:
        scorer = build_cnn(seed=args.seed)
        load_weights(scorer, args.model)
        model_from = f"bench_precision's trained weights ({Path(args.model).name})"
    elif trained is not None:
        scorer = trained
        model_from = (f"the model trained in part 2 (batch {trained_batch['batch']}, "
                      f"{len(trained_batch['epochs_s'])} epochs)")
    else:
        scorer = probe
        model_from = "an untrained CNN (training was skipped)"
    result["pool"] = {"rows": len(rows), "from": rows_from, "model": model_from,
                      "gigabytes": rows.nbytes / 1e9}
    result["scoring"] = []
    variants = [(p, b) for b in (args.big_batch, 2048) for p in ("float32", "bfloat16")]
    main_deadline = budget.part(0.75)
    kept = {}
    for i, (precision, batch) in enumerate(variants):
        share = (main_deadline - time.perf_counter()) / (len(variants) - i)
        if share <= 1.0:
            result["scoring"].append({"precision": precision, "batch": batch,
                                      "skipped": "budget spent"})
            continue
        keep = len(base) if batch == args.big_batch else 0
        record, proba = score_rate(scorer, rows, batch, precision, time.perf_counter() + share,
                                   keep)
        if proba is not None:
            kept[precision] = proba
        result["scoring"].append(record)
        print("scoring", json.dumps(record), flush=True)
        checkpoint(args, result)
    if len(kept) == 2:                  # on the distinct rows both passes scored
        n = min(len(kept["float32"]), len(kept["bfloat16"]))
        result["agreement"] = agreement(kept["float32"][:n], kept["bfloat16"][:n])
        print("agreement", json.dumps(result["agreement"]), flush=True)
        checkpoint(args, result)

    extras = [("resident", p) for p in ("float32", "bfloat16")] + \
             [("keras_predict", p) for p in ("float32", "bfloat16")]
    result["extras"] = []
    extras_deadline = budget.part(1.0)
    for i, (kind, precision) in enumerate(extras):
        share = (extras_deadline - time.perf_counter()) / (len(extras) - i)
        if share <= 3.0:
            result["extras"].append({"kind": kind, "precision": precision,
                                     "batch": args.big_batch, "skipped": "budget spent"})
            continue
        try:
            if kind == "resident":
                record = resident_rate(scorer, rows, args.big_batch, precision, backend,
                                       time.perf_counter() + share)
            else:
                record = keras_predict_rate(scorer, rows, args.big_batch, precision,
                                            time.perf_counter() + share)
        except Exception as exc:      # noqa: BLE001 - an extra: record why, keep the run
            record = {"precision": precision, "error": f"{type(exc).__name__}: {exc}"[:300]}
        record["kind"] = kind
        result["extras"].append(record)
        print("extra", json.dumps(record), flush=True)
        checkpoint(args, result)

    add_ratios(result)
    result["load_average_1min"].append(os.getloadavg()[0])
    result["total_s"] = budget.elapsed()
    return result


def ceiling_for(result: dict, precision: str):
    c = result["ceiling_tflops"]
    return c.get("bfloat16") if precision == "bfloat16" else c.get("float32_default")


def add_ratios(result: dict) -> None:
    flops = result["mflop_per_spectrum"] * 1e6
    for record in result["scoring"] + result["extras"]:
        rate = record.get("spectra_s")
        if not rate:
            continue
        record["tflops"] = rate * flops / 1e12
        ceiling = ceiling_for(result, record["precision"])
        if ceiling:
            record["ratio_to_ceiling"] = record["tflops"] / ceiling
        record["ratio_to_authors"] = rate / AUTHORS_RATE


# ---------------------------------------------------------------- RESULTS.md

def section_lines(r: dict) -> list[str]:
    env, c = r["env"], r["ceiling_tflops"]
    mflop = r["mflop_per_spectrum"]
    versions = ", ".join(f"{k} {env[k]}" for k in ("keras", "jax", "jaxlib", "torch", "tensorflow")
                         if k in env)
    lines = [
        f"`python benchmarks/bench_device.py{' --cpu' if r['mode'] != 'device' else ''}` "
        f"({r['mode']}, budget {r['budget_s']:.0f} s, whole run {r['total_s']:.0f} s): "
        f"{r['device']['float32']} / {r['device']['bfloat16']}; Python {env['python']}, "
        f"numpy {env['numpy']}, {versions}; {env['cpu_count']} host cores"
        + (f"; nvidia-smi: {env['nvidia_smi']}" if "nvidia_smi" in env else "")
        + ("; 1-minute load average " + " → ".join(f"{v:.1f}" for v in r["load_average_1min"])
           if r.get("load_average_1min") else "") + ".",
        "",
        f"Ceiling, {c['size']}² matmuls in the backend's own library (TFLOP/s): "
        + ", ".join(f"{k.replace('_', ' ')} {v:.3g}" for k, v in c.items()
                    if k != "size" and v is not None)
        + f". The CNN: {mflop:.1f} MFLOP per spectrum (Conv1D and Dense multiply-adds x 2, "
        "from build_cnn's layers), so the float32 ceiling is "
        + (f"{c['float32_default'] * 1e12 / (mflop * 1e6):,.0f} spectra/s"
           if c.get("float32_default") else "not measured")
        + (f" and the bf16 one {c['bfloat16'] * 1e12 / (mflop * 1e6):,.0f}."
           if c.get("bfloat16") else "."),
        "",
        f"Training: vo-al's `train` on {r['training_set']['balanced_rows']:,} spectra "
        f"({r['training_set']['raw_rows']:,} plausible rows in the paper's class mix, "
        f"{r['training_set']['smote']}, {r['training_set']['smote_s']:.1f} s).",
        "",
        "| batch | s/epoch | spectra/s | warm-up fit (compile) s | epochs timed |",
        "|---:|---:|---:|---:|---|",
    ]
    for t in r["training"]:
        if "seconds_per_epoch" in t:
            lines.append(f"| {t['batch']} | {t['seconds_per_epoch']:.2f} | {t['spectra_s']:,.0f} "
                         f"| {t['warmup_s']:.1f} | {len(t['epochs_s'])}"
                         f"{'' if t['complete'] else ' (budget)'} |")
        elif "projected_epoch_s" in t:
            lines.append(f"| {t['batch']} | ~{t['projected_epoch_s']:.2f} (from 5 batches) | – "
                         f"| {t['warmup_s']:.1f} | none: {t.get('skipped', 'budget')} |")
        else:
            lines.append(f"| {t['batch']} | – | – | – | none: {t.get('skipped', 'budget')} |")
    p = r["pool"]
    lines += [
        "",
        f"Scoring: {p['rows']:,} rows in memory ({p['gigabytes']:.2g} GB; {p['from']}, "
        f"repeated), model: {p['model']}. vo-al's `predict_proba` (predict_on_batch per batch, "
        "up to 16 batches per call); ratios: achieved FLOP/s to the same-precision ceiling, and to "
        "the authors' 44 k/s (4.13 M spectra in 94 s).",
        "",
        "| what | precision | batch | rows scored | spectra/s | TFLOP/s | to ceiling | "
        "to authors |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]

    def row(what, s):
        if "spectra_s" not in s:
            why = s.get("skipped") or s.get("error") or "not measured"
            batch = f"{s['batch']:,}" if s.get("batch") else ""
            return f"| {what} | {s['precision']} | {batch} | – | – | – | – | {why} |"
        scored = (f"{s['rows']:,}{'' if s.get('complete', True) else ' (budget)'}"
                  if s.get("rows") else "–")
        return (f"| {what} | {s['precision']} | {s['batch']:,} | {scored} | "
                f"{s['spectra_s']:,.0f} | {s.get('tflops', 0):.3g} | "
                + (f"{s['ratio_to_ceiling']:.2f}" if "ratio_to_ceiling" in s else "–")
                + f" | {s.get('ratio_to_authors', 0):.3g}x |")

    for s in r["scoring"]:
        lines.append(row("`predict_proba`", s))
    for s in r["extras"]:
        lines.append(row("rows on the device, compute only" if s["kind"] == "resident"
                         else "Keras `model.predict`", s))
    best = max((s.get("spectra_s", 0) for s in r["scoring"]), default=0)
    lines += ["", f"Best `predict_proba` rate: {best:,.0f} spectra/s "
              f"({'meets' if best >= 1e6 else 'below'} the 1 M spectra/s goal for an H200-class "
              "GPU)." if r["mode"] == "device" else
              f"Best `predict_proba` rate: {best:,.0f} spectra/s (a CPU dry run: it shows that "
              "the script runs its every part within its budget; the figures of a shared "
              "2-core machine mean little, the GPU's come from the device run)."]
    a = r.get("agreement")
    if a:
        lines += ["", f"bf16 against float32 on the {a['rows']:,} distinct rows: predicted "
                  f"targets {a['targets_float32']:,} / {a['targets_bfloat16']:,}; target-set "
                  f"differences {a['differences_away_from_boundary']} away from a decision "
                  f"boundary (required 0) and {a['differences_near_boundary']} within {GAP:g} "
                  f"({a['near_boundary']:,} spectra lie there); entropy batch of "
                  f"{ENTROPY_BATCH}: {a['entropy_batch_overlap']} shared (required >= 99); "
                  f"max |Δp| {a['max_abs_probability_difference']:.1e}."]
    return lines


def merge_section(path: Path) -> None:
    """Replace (or add) the '## Device …' section of RESULTS.md with a device run's text."""
    from results import HEADER, RESULTS

    body = path.read_text().strip() + "\n"
    title = body.splitlines()[0]
    if not title.startswith("## "):
        raise SystemExit(f"{path}: the first line must be the section title ('## …')")
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    pattern = re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: body + "\n", text) if pattern.search(text) else \
        text.rstrip() + "\n\n" + body
    RESULTS.write_text(text.rstrip() + "\n")
    print(f"{title[3:]} written to {RESULTS}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", action="store_true", help="dry run on this CPU: 3 000 training "
                    "rows, 1 epoch, 20 480 pool rows, batch 4096, 1024² matmuls")
    ap.add_argument("--json", type=Path, help="write the figures here (the device's $OUT)")
    ap.add_argument("--budget-s", type=float, default=270.0)
    ap.add_argument("--pool", type=int)
    ap.add_argument("--distinct", type=int, default=131_072, help="distinct generated rows")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--per-class", type=int, help="training rows per class after SMOTE")
    ap.add_argument("--big-batch", type=int)
    ap.add_argument("--matmul", type=int)
    ap.add_argument("--train-batches", type=int, nargs="+", default=[64, 512])
    ap.add_argument("--model", type=Path, help="weights .npz from bench_precision")
    ap.add_argument("--agreement-rows", type=Path, help="rows .npy from bench_precision")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-write", action="store_true", help="leave RESULTS.md alone")
    ap.add_argument("--installed", action="store_true",
                    help="import vo-al from the environment, not from this checkout")
    ap.add_argument("--merge-section", type=Path, metavar="FILE")
    ap.add_argument("--from-json", type=Path, metavar="FILE",
                    help="write the section again from a --json file made on this machine")
    args = ap.parse_args(argv)
    if args.merge_section:
        merge_section(args.merge_section)
        return
    if args.from_json:
        from results import replace_section

        result = json.loads(args.from_json.read_text())
        replace_section("Device (GPU)" if result["mode"] == "device" else "Device (CPU dry run)",
                        section_lines(result))
        return
    if args.cpu:
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    os.environ.setdefault("KERAS_BACKEND", "jax")
    defaults = ({"pool": 20_480, "epochs": 1, "big_batch": 4096, "matmul": 1024,
                 "per_class": 1000} if args.cpu else
                {"pool": 63 * 65_536, "epochs": 3, "big_batch": 65_536, "matmul": 8192,
                 "per_class": PER_CLASS})
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.cpu:
        args.distinct = min(args.distinct, args.pool)
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text, flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    if not args.no_write:
        from results import replace_section

        replace_section("Device (GPU)" if not args.cpu else "Device (CPU dry run)",
                        section_lines(result))


if __name__ == "__main__":
    main()
