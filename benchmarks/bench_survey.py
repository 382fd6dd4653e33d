"""One whole iteration at survey size: a LAMOST DR2-size pool (4.1 M spectra) on this machine.

What it does, through the same session calls the app and the CLI make:
1. pool: 4 136 482 preprocessed rows written straight into a PoolStore (making 4 M FITS files
   is not the point). Rows are plausible: 20 000 LAMOST-like spectra of the demo's survey model
   (vo_al.core.demo: absorption stars, emission-line stars, nebular and artefact confusers) are
   preprocessed, and the pool draws from them with a radial-velocity shift (±2 window points,
   ±140 km/s), fresh noise at a S/N drawn per row, and the [-1, 1] scaling redone;
2. a labelled set of 13 000 CCD700-like spectra the same way (from 4 000 demo spectra);
3. the iteration: train (SMOTE-balanced, `--epochs` epochs: the per-epoch time is what
   scales), score the whole pool, the entropy batch and precision sample (query), the
   candidates table, the dashboard's data (entropy histogram, class counts), a cross-match of
   the candidates against a 1 M-row catalogue, a VOTable export, and the GUI's candidates table
   model (offscreen Qt);
4. time and peak RSS per step (sampled every 20 ms), and the 20 M extrapolation (linear in the
   pool for scoring and the pool-wide passes; the rest does not grow with the pool).

Usage: python benchmarks/bench_survey.py [--n 4136482] [--epochs 2] [--keep DIR] [--write]
       [--precision float32|bfloat16]
       python benchmarks/bench_survey.py --after-scoring DIR [--write]   (the steps after the
       query again, on the project a --keep DIR run left)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

DR2 = 4_136_482
LATER = 20_000_000


def memory_mb() -> tuple[float, float]:
    """(resident, anonymous) MB of this process: the resident set counts the pages of the
    memory-mapped pool and score files a step touched (the kernel drops them when it needs the
    memory); the anonymous part is what the step itself holds."""
    found = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "RssAnon:")):
                found[line.split(":")[0]] = int(line.split()[1]) / 1024.0
    return found.get("VmRSS", float("nan")), found.get("RssAnon", float("nan"))


class Step:
    """Wall time, peak RSS and peak anonymous memory of one step (sampled every 20 ms)."""

    def __init__(self, name: str, log: list):
        self.name, self.log = name, log

    def __enter__(self):
        self.start_rss, self.start_anon = memory_mb()
        self.peak, self.peak_anon = self.start_rss, self.start_anon
        self._stop = threading.Event()

        def sample():
            while not self._stop.wait(0.02):
                rss, anon = memory_mb()
                self.peak, self.peak_anon = max(self.peak, rss), max(self.peak_anon, anon)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        seconds = time.perf_counter() - self.t0
        self._stop.set()
        self._thread.join()
        rss, anon = memory_mb()
        self.peak, self.peak_anon = max(self.peak, rss), max(self.peak_anon, anon)
        entry = {"step": self.name, "seconds": seconds, "rss_start_mb": self.start_rss,
                 "rss_peak_mb": self.peak, "rss_growth_mb": self.peak - self.start_rss,
                 "anon_peak_mb": self.peak_anon,
                 "anon_growth_mb": self.peak_anon - self.start_anon}
        self.log.append(entry)
        print(f"{self.name:<28} {seconds:9.1f} s   peak RSS {self.peak:8.0f} MB "
              f"(+{self.peak - self.start_rss:.0f}), anonymous {self.peak_anon:8.0f} MB "
              f"(+{self.peak_anon - self.start_anon:.0f})", flush=True)
        return False


def base_rows(n: int, rng, kind: str):
    """Preprocessed rows of `n` demo spectra: LAMOST-like pool spectra or CCD700-like labelled
    ones, with their labels."""
    from vo_al.core.demo.datasets import pool_arrays, training_arrays
    from vo_al.core.spectra.preprocess import preprocess_batch

    rows, labels = [], []
    for start in range(0, n, 2000):                  # in parts: the spectra are 4 k pixels
        k = min(2000, n - start)
        arrays = pool_arrays(k, rng) if kind == "pool" else training_arrays(k, rng)
        sigma = 7.0 if arrays.instrument == "ccd700" else 0.0
        result = preprocess_batch(np.broadcast_to(arrays.wavelength, arrays.flux.shape),
                                  arrays.flux.astype(np.float64), sigma)
        rows.append(result.rows[result.good])
        labels.append(np.asarray(arrays.labels)[result.good])
    return np.concatenate(rows), np.concatenate(labels)


def augmented(base: np.ndarray, labels: np.ndarray, n: int, rng, chunk: int = 100_000):
    """Yield (rows, labels) chunks of `n` rows drawn from `base`: a velocity shift of up to ±2
    window points, noise at a S/N drawn from LAMOST's (log-normal, median ~25), rescaled."""
    for start in range(0, n, chunk):
        k = min(chunk, n - start)
        pick = rng.integers(0, len(base), k)
        rows = base[pick].astype(np.float32)
        shift = rng.integers(-2, 3, k)
        for s in (-2, -1, 1, 2):
            sel = shift == s
            rows[sel] = np.roll(rows[sel], s, axis=1)
        snr = np.exp(rng.normal(np.log(25.0), 0.7, k)).astype(np.float32)
        rows += rng.normal(0.0, 1.0, rows.shape).astype(np.float32) * (2.0 / snr)[:, None]
        lo, hi = rows.min(axis=1, keepdims=True), rows.max(axis=1, keepdims=True)
        rows = 2.0 * (rows - lo) / np.maximum(hi - lo, 1e-6) - 1.0
        yield start, rows.astype(np.float32), labels[pick], snr


def meta_columns(names: list, instrument: str, **numbers) -> dict:
    """Every pool metadata column for `names` (RECORD_FIELDS): text empty, numbers NaN unless
    given."""
    from vo_al.core.pool.schema import RECORD_FIELDS

    k = len(names)
    out = {}
    for field, kind in RECORD_FIELDS.items():
        if field in numbers:
            out[field] = numbers[field]
        elif kind == "f":
            out[field] = np.full(k, np.nan)
        else:
            out[field] = [""] * k
    out["name"], out["instrument"] = names, [instrument] * k
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=DR2)
    ap.add_argument("--train", type=int, default=13_000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--catalogue", type=int, default=1_000_000)
    ap.add_argument("--precision", default="float32")
    ap.add_argument("--keep", help="work folder to keep (default: a temporary one)")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--after-scoring", metavar="DIR",
                    help="measure again only the steps after the query, on the project a run "
                         "with --keep DIR left (its pool scored and queried)")
    args = ap.parse_args(argv)
    if args.after_scoring:
        return after_scoring(args)

    from vo_al.core.base.progress import run_job
    from vo_al.core.learning.device import describe_device
    from vo_al.core.session.loop import ActiveLearningSession
    from vo_al.core.session.project import Project
    from vo_al.core.session.settings import ProjectSettings

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="vo-al-survey-"))
    work.mkdir(parents=True, exist_ok=True)
    log: list = []
    rng = np.random.default_rng(2020)
    settings = ProjectSettings.default()
    settings.method.max_epochs = args.epochs
    settings.method.scoring_precision = args.precision
    project = Project.create(work / "project", work / "project" / "pool", settings)

    with Step("make base spectra (demo)", log):
        pool_base, pool_labels = base_rows(20_000, rng, "pool")
        train_base, train_labels = base_rows(4_000, rng, "train")
    with Step(f"write pool ({args.n:,} rows)", log):
        with project.pool.writer("ingest", settings.preprocess) as out:
            out.reserve(args.n)
            for start, rows, _, snr in augmented(pool_base, pool_labels, args.n, rng):
                k = len(rows)
                # plates of LAMOST-like fields: 5° circles over the northern sky
                ra = rng.uniform(0, 360, k)
                dec = np.degrees(np.arcsin(rng.uniform(-0.2, 1.0, k)))
                out.append(rows, meta_columns([f"spec-{start + i:08d}" for i in range(k)],
                                              "lamost", ra=ra, dec=dec, snr=snr))
    with Step(f"labelled set ({args.train:,})", log):
        with project.training.writer("ingest", settings.preprocess) as out:
            names, labels = [], []
            for start, rows, lab, _ in augmented(train_base, train_labels, args.train, rng):
                k = len(rows)
                chunk_names = [f"ccd700-{start + i:06d}" for i in range(k)]
                out.append(rows, meta_columns(chunk_names, "ccd700"))
                names += chunk_names
                labels += lab.tolist()
        project.store.set_training_labels(names, labels)
    session = ActiveLearningSession(project)
    device = describe_device(args.precision)
    with Step(f"train ({args.epochs} epochs)", log):
        summary = run_job(session.train())
    epochs = summary.get("epochs") or args.epochs
    with Step("score the pool", log):
        run_job(session.score())
    with Step("query: entropy batch + sample", log):
        query = session.query()
    n_cand, result = steps_after_query(session, work, args, log)
    project.close()

    pool_steps = {"score the pool", "dashboard data", "candidates table",
                  "query: entropy batch + sample"}
    out = {"n": args.n, "device": device, "epochs": epochs, "candidates": n_cand,
           "batch": len(query["batch"]), "sample": len(query["sample"]),
           "matched": int(np.sum(result.counts > 0)) if hasattr(result, "counts") else None,
           "steps": log}
    print(json.dumps(out, indent=1, default=float))
    if args.write:
        from results import replace_section

        lines = [f"One iteration on a pool of {args.n:,} preprocessed rows (DR2 size) and a "
                 f"{args.train:,}-spectrum labelled set on this machine ({os.cpu_count()} cores; "
                 f"{device}); {n_cand:,} candidates; training capped at {args.epochs} epochs "
                 "(the time per epoch is what matters). `benchmarks/bench_survey.py`.", "",
                 *step_table(log, args.n, pool_steps)]
        replace_section("Survey scale", lines)
    return out


def step_table(log: list, n: int, pool_steps: set) -> list[str]:
    """The markdown table of the steps: time, peak RSS and anonymous memory, 20 M figures."""
    lines = ["| step | seconds | peak RSS MB | RSS growth MB | peak anonymous MB | "
             "anonymous growth MB | 20 M extrapolation |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for e in log:
        scale = LATER / n if e["step"] in pool_steps else 1.0
        extra = f"{e['seconds'] * scale:,.0f} s" if e["step"] in pool_steps else "same"
        lines.append(f"| {e['step']} | {e['seconds']:,.1f} | {e['rss_peak_mb']:,.0f} | "
                     f"{e['rss_growth_mb']:,.0f} | {e['anon_peak_mb']:,.0f} | "
                     f"{e['anon_growth_mb']:,.0f} | {extra} |")
    return lines


def after_scoring(args):
    """The steps after the query again, on a kept work folder (after a change to them)."""
    from vo_al.core.session.loop import ActiveLearningSession
    from vo_al.core.session.project import Project

    work = Path(args.after_scoring)
    project = Project.open(work / "project")
    session = ActiveLearningSession(project)
    n = len(project.pool)
    log: list = []
    n_cand, _ = steps_after_query(session, work, args, log)
    project.close()
    print(json.dumps({"n": n, "candidates": n_cand, "steps": log}, indent=1, default=float))
    if args.write:
        from results import replace_section

        lines = [f"The steps after the query measured again on the same work folder (pool of "
                 f"{n:,}, {n_cand:,} candidates; `bench_survey.py --after-scoring DIR`), after "
                 "`PoolStore.metadata` stopped reading the whole pool's metadata as Python "
                 "tuples at once (it reads 65,536 rows at a time).", "",
                 *step_table(log, n, {"dashboard data", "candidates table"})]
        replace_section("Survey scale: after the query, again", lines)
    return log


def steps_after_query(session, work: Path, args, log: list):
    """The candidates table, the dashboard's data, the cross-match, the export and the GUI's
    table model of a scored and queried session: (candidates, cross-match result)."""
    from vo_al.core.base.progress import run_job
    from vo_al.core.session.candidates import export_candidates, session_candidates

    with Step("candidates table", log):
        found = session_candidates(session)
    n_cand = len(found.candidates["pool_index"])
    from vo_al.core.jobs.dashboard import dashboard_job

    with Step("dashboard data", log):
        run_job(dashboard_job(session))
    from vo_al.core.xmatch.catalogues import LocalCatalogue
    from vo_al.core.xmatch.match import crossmatch

    cat_rng = np.random.default_rng(7)
    sky = session.project.pool.metadata(columns=["ra", "dec"])
    ra_all, dec_all = sky["ra"], sky["dec"]
    # a catalogue of 1 M objects: a tenth near pool positions (as SIMBAD holds the stars the
    # fibres saw), the rest anywhere on the sky
    near = cat_rng.integers(0, ra_all.size, args.catalogue // 10)
    cat_ra = np.concatenate([ra_all[near] + cat_rng.normal(0, 3 / 3600, near.size),
                             cat_rng.uniform(0, 360, args.catalogue - near.size)]) % 360
    cat_dec = np.clip(np.concatenate([dec_all[near] + cat_rng.normal(0, 3 / 3600, near.size),
                                      np.degrees(np.arcsin(cat_rng.uniform(
                                          -1, 1, args.catalogue - near.size)))]), -90, 90)
    with Step(f"cross-match vs {args.catalogue:,}", log):
        catalogue = LocalCatalogue(cat_ra, cat_dec, name="synthetic")
        result = crossmatch(catalogue, found.candidates["ra"], found.candidates["dec"], 20.0)
    with Step("VOTable export", log):
        export_candidates(session, work / "candidates.vot")
    with Step("GUI candidates table model", log):
        from PyQt6.QtWidgets import QApplication

        from vo_al.gui.dashboard import ColumnTableModel

        app = QApplication.instance() or QApplication([])
        model = ColumnTableModel(found.candidates)
        for row in range(0, model.rowCount(), max(1, model.rowCount() // 1000)):
            model.data(model.index(row, 1))
    return n_cand, result


if __name__ == "__main__":
    main()
