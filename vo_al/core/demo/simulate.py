"""The paper's experiment on synthetic data: active learning with a simulated oracle, and the
non-active baseline (Fig. 5 and Table A.1 of Škoda et al. 2020)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, asdict, field
from pathlib import Path

import numpy as np

from vo_al.core.base.atomic import atomic_write_text
from vo_al.core.demo.catalogues import write_demo_catalogues
from vo_al.core.base.errors import ProjectError
from vo_al.core.base.npy import open_npy
from vo_al.core.demo.oracle import SimulatedOracle
from vo_al.core.base.progress import CancelToken, Job, Progress
from vo_al.core.learning.scoring import predicted_classes
from vo_al.core.session.loop import DONE, ESTIMATE, FINISH, QUERY, SCORE, TRAIN, ActiveLearningSession
from vo_al.core.learning.classes import CLASS_NAMES, DOUBLE_PEAK, SINGLE_PEAK, TARGET_CLASSES
from vo_al.core.session.settings import ProjectSettings, update_settings


@dataclass
class SimulationConfig:
    n_train: int = 2000
    n_pool: int = 20000
    target_fraction: float = 0.01
    max_iterations: int = 25
    seed: int = 0
    baseline: bool = True
    finish: bool = True
    workers: int = 2


# The offline demo (`vo-al demo`, the app's first-run offer): small enough to run in minutes on a
# laptop. Training is shorter than the paper's defaults, every other parameter as in the paper;
# batches of 50 keep the oracle from emptying the small pool of targets at once.
DEMO_METHOD = {"max_epochs": 12, "long_patience": 10, "long_max_epochs": 60, "batch_size": 50}
DEMO_TRAIN, DEMO_POOL, DEMO_ITERATIONS = 1000, 8000, 8


def demo_config(**changes) -> SimulationConfig:
    values = dict(n_train=DEMO_TRAIN, n_pool=DEMO_POOL, max_iterations=DEMO_ITERATIONS, seed=0,
                  baseline=False)
    values.update(changes)
    return SimulationConfig(**values)


def demo_settings() -> ProjectSettings:
    settings = ProjectSettings.default()
    update_settings(settings.method, **DEMO_METHOD)
    settings.validate()
    return settings


@dataclass
class IterationRecord:
    iteration: int
    n_train: int
    estimated_precision: float
    lower_bound: float
    sample_size: int
    true_precision: float           # over every spectrum predicted as target (known here)
    true_recall: float              # share of the pool's true targets predicted as target
    predicted_targets: int
    oracle_targets: int
    epochs: int
    seconds: float


@dataclass
class SimulationReport:
    config: dict
    iterations: list = field(default_factory=list)
    stopped_at: int | None = None
    baseline: dict | None = None
    final: dict | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=float)


def true_precision(proba_classes: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> dict:
    """Precision per predicted target class against the truth, over `mask`."""
    out = {}
    for c, key in ((SINGLE_PEAK, "single"), (DOUBLE_PEAK, "double")):
        sel = mask & (proba_classes == c)
        out[f"{key}_predicted"] = int(sel.sum())
        out[f"{key}_precision"] = float((truth[sel] == c).mean()) if sel.any() else float("nan")
    targets = mask & np.isin(proba_classes, TARGET_CLASSES)
    true_targets = mask & np.isin(truth, TARGET_CLASSES)
    out["target_predicted"] = int(targets.sum())
    out["target_precision"] = (float(np.isin(truth[targets], TARGET_CLASSES).mean())
                               if targets.any() else float("nan"))
    # completeness: the share of the true targets still in the pool that are predicted as target
    out["target_recall"] = (float(targets[true_targets].mean()) if true_targets.any()
                            else float("nan"))
    return out


def confusion(proba_classes: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> dict:
    """Partial confusion matrix (Table 1): for each predicted target class, the actual classes."""
    table = {}
    for c in TARGET_CLASSES:
        sel = mask & (proba_classes == c)
        counts = np.bincount(truth[sel], minlength=3) if sel.any() else np.zeros(3, int)
        table[CLASS_NAMES[c]] = {CLASS_NAMES[a]: int(counts[a]) for a in range(3)}
    return table


def prepare(workdir: Path, config: SimulationConfig, settings: ProjectSettings | None = None,
            cancel: CancelToken | None = None) -> Job:
    """Make the synthetic data and a project over it (skipping what exists)."""
    from vo_al.core.demo.datasets import make_pool, make_training_set
    from vo_al.core.session.project import Project

    workdir = Path(workdir)
    _check_same_data(workdir, config)
    train_dir, pool_dir = workdir / "data" / "training", workdir / "data" / "pool"
    if not (train_dir / "labels.csv").exists():
        yield Progress("generate", 0, 2, "training set")
        make_training_set(train_dir, n=config.n_train, seed=config.seed)
    if not (pool_dir / "truth.csv").exists():
        yield Progress("generate", 1, 2, "pool")
        make_pool(pool_dir, n=config.n_pool, target_fraction=config.target_fraction,
                  seed=config.seed + 1)
    yield Progress("generate", 2, 2)
    project_dir = workdir / "project"
    if (project_dir / "project.json").exists():
        project = Project.open(project_dir)
    else:
        project = Project.create(project_dir, project_dir / "pool", settings)
    if not project.store.training_labels():
        yield from project.import_training_set(train_dir, train_dir / "labels.csv",
                                               workers=config.workers, cancel=cancel)
    from vo_al.core.pool.ingest import ingest_folder

    yield from ingest_folder(project.pool, pool_dir, settings=project.settings.preprocess,
                             workers=config.workers, cancel=cancel,
                             limits=project.settings.limits)
    oracle = SimulatedOracle(pool_dir / "truth.csv", project.pool)
    # the demo's own sky in SIMBAD-like and H16-like catalogues, for an offline cross-match
    write_demo_catalogues(project.folder, project.pool, oracle.labels, config.seed)
    return project, oracle


def run_baseline(project, oracle: SimulatedOracle, cancel: CancelToken | None = None) -> Job[dict]:
    """Non-active baseline (Table A.1): the same CNN, long training, initial set only."""
    from vo_al.core.learning.balance import smote_balance
    from vo_al.core.learning.model import build_cnn, train
    from vo_al.core.learning.scoring import score_pool

    m = project.settings.method
    x, y = project.training_arrays()
    xb, yb = smote_balance(x, y, seed=m.seed)
    model = build_cnn(project.settings.preprocess.n_points, seed=m.seed + 500)
    report = yield from train(model, xb, yb, batch_size=m.train_batch, patience=m.long_patience,
                              min_delta=m.long_min_delta, max_epochs=m.long_max_epochs,
                              seed=m.seed + 500, cancel=cancel, stage="baseline")
    path = yield from score_pool(model, project.pool, project.folder / "scores/baseline.npy",
                                 chunk_rows=m.score_chunk, cancel=cancel)
    classes = predicted_classes(open_npy(path))
    everything = np.ones(len(classes), dtype=bool)
    return {"epochs": report.epochs, **true_precision(classes, oracle.labels, everything)}


def run_simulation(workdir: Path, config: SimulationConfig | None = None,
                   settings: ProjectSettings | None = None,
                   cancel: CancelToken | None = None) -> Job[SimulationReport]:
    """Active learning with the simulated oracle until the stop rule (or max_iterations)."""
    config = config or SimulationConfig()
    workdir = Path(workdir)
    project, oracle = yield from prepare(workdir, config, settings, cancel)
    session = ActiveLearningSession(project)
    report = SimulationReport(config=asdict(config))
    if config.baseline:
        report.baseline = yield from run_baseline(project, oracle, cancel)
        _save(workdir, report)
    while (session.next_step() not in (FINISH, DONE)
           and len(session.estimates()) < config.max_iterations):
        t0 = time.monotonic()
        done_before = len(session.estimates())
        yield from advance_iteration(session, oracle, cancel)
        if len(session.estimates()) == done_before:     # never spin on a state we cannot advance
            raise ProjectError(f"{project.folder}: the iteration did not advance "
                               f"(next step '{session.next_step()}')")
        record = _record(session, oracle, time.monotonic() - t0)
        report.iterations.append(asdict(record))
        _save(workdir, report)
        yield Progress("iteration", record.iteration + 1, config.max_iterations,
                       f"precision {record.estimated_precision:.2f} "
                       f"(lower {record.lower_bound:.2f}, true {record.true_precision:.2f})",
                       asdict(record))
    hits = [r["iteration"] for r in report.iterations
            if r["sample_size"] and r["estimated_precision"] >= project.settings.method.precision_threshold]
    if session.stop_rule_met():
        report.stopped_at = hits[project.settings.method.threshold_hits - 1]
    if config.finish and session.next_step() != DONE:
        result = yield from session.finish(cancel)
        classes = predicted_classes(open_npy(project.folder / "scores/final.npy"))
        available = session.available_mask()
        report.final = {**true_precision(classes, oracle.labels, available),
                        "confusion": confusion(classes, oracle.labels, available),
                        "oracle_targets": int(sum(1 for v in project.store.oracle_labels().values()
                                                  if v in TARGET_CLASSES)),
                        "candidates": result["candidates"],
                        "true_targets_in_pool": int(np.isin(oracle.labels, TARGET_CLASSES).sum())}
    _save(workdir, report)
    plot_precision(report, workdir / "precision.png",
                   threshold=project.settings.method.precision_threshold)
    project.close()
    return report


DATA_FIELDS = ("n_train", "n_pool", "target_fraction", "seed")


def _check_same_data(workdir: Path, config: SimulationConfig) -> None:
    """A simulation folder resumes only with the data it was made with."""
    path = workdir / "simulation-config.json"
    wanted = {k: getattr(config, k) for k in DATA_FIELDS}
    if path.exists():
        found = json.loads(path.read_text())
        if {k: found.get(k) for k in DATA_FIELDS} != wanted:
            raise ProjectError(f"{workdir}: made with {found}, not {wanted}; choose another "
                               f"folder (--out) or delete this one")
    else:
        atomic_write_text(path, json.dumps(wanted))


def advance_iteration(session: ActiveLearningSession, oracle, cancel=None) -> Job[None]:
    """Run the steps of one iteration up to its precision estimate, answering as the oracle."""
    if session.next_step() == TRAIN:
        yield from session.train(cancel)
    if session.next_step() == SCORE:
        yield from session.score(cancel)
    if session.next_step() == QUERY:
        session.query()
    for item in session.pending():
        session.label(item.pool_index, oracle(item.pool_index))
    if session.next_step() == ESTIMATE:
        session.estimate()


def _record(session: ActiveLearningSession, oracle, seconds: float) -> IterationRecord:
    row = session.current_row()
    e = row["estimate_json"]
    classes = predicted_classes(session.probabilities())
    truth = true_precision(classes, oracle.labels, session.available_mask())
    return IterationRecord(
        iteration=row["iteration"], n_train=row["n_train"],
        estimated_precision=e["precision"], lower_bound=e["lower_bound"],
        sample_size=e["sample_size"], true_precision=truth["target_precision"],
        true_recall=truth["target_recall"], predicted_targets=truth["target_predicted"],
        oracle_targets=e["oracle_targets"],
        epochs=row["training_json"]["epochs"], seconds=seconds)


def _save(workdir: Path, report: SimulationReport) -> None:
    atomic_write_text(Path(workdir) / "simulation.json", report.to_json())


def plot_precision(report: SimulationReport, path: Path, threshold: float = 0.8) -> Path:
    """Precision per iteration like the paper's Fig. 5, with the lower bound and the truth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    its = [r["iteration"] for r in report.iterations]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(its, [r["estimated_precision"] for r in report.iterations], "o-",
            label="estimated precision (30 random predicted targets)")
    ax.fill_between(its, [r["lower_bound"] for r in report.iterations],
                    [r["estimated_precision"] for r in report.iterations], alpha=0.2,
                    label="one-sided 95 % lower bound")
    ax.plot(its, [r["true_precision"] for r in report.iterations], "s--", ms=4,
            label="true precision (whole pool, known in simulation)")
    ax.plot(its, [r["true_recall"] for r in report.iterations], "^:", ms=4, color="green",
            label="true recall (share of the pool's targets found)")
    if report.baseline:
        ax.axhline(report.baseline["target_precision"], color="grey", ls=":",
                   label="non-active baseline (true)")
    ax.axhline(threshold, color="red", lw=0.8, label=f"threshold {threshold:.0%}")
    ax.set_xlabel("iteration")
    ax.set_ylabel("precision / recall")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xticks(its)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Active learning on the synthetic benchmark")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def _fmt(value: float) -> str:
    return "—" if value is None or np.isnan(value) else f"{value:.3f}"


def report_markdown(report: SimulationReport) -> str:
    lines = ["| iteration | training spectra | estimated precision | lower bound | true precision "
             "| true recall | predicted targets | oracle targets in batch |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report.iterations:
        if r["sample_size"]:
            hits = int(round(r["estimated_precision"] * r["sample_size"]))
            estimate = f"{r['estimated_precision']:.2f} ({hits}/{r['sample_size']})"
        else:
            estimate = "— (no predicted target left to sample)"
        lines.append(f"| {r['iteration']} | {r['n_train']} | {estimate} "
                     f"| {r['lower_bound']:.2f} | {_fmt(r['true_precision'])} | "
                     f"{_fmt(r['true_recall'])} | {r['predicted_targets']} | {r['oracle_targets']} |")
    if report.baseline:
        b = report.baseline
        lines += ["", "Non-active baseline (same CNN, long training, initial set only; cf. Table A.1):",
                  "", "| class | predicted | precision |", "|---|---:|---:|",
                  f"| single peak | {b['single_predicted']} | {_fmt(b['single_precision'])} |",
                  f"| double peak | {b['double_predicted']} | {_fmt(b['double_precision'])} |",
                  f"| all targets | {b['target_predicted']} | {_fmt(b['target_precision'])} "
                  f"(recall {_fmt(b.get('target_recall', float('nan')))}) |"]
    if report.final:
        f = report.final
        lines += ["", f"After long training: {f['target_predicted']} predicted targets, true "
                      f"precision {_fmt(f['target_precision'])}, recall {_fmt(f['target_recall'])}; "
                      f"oracle found {f['oracle_targets']}; "
                      f"{f['true_targets_in_pool']} true targets in the pool.", "",
                  "| predicted \\ actual | non-target | single peak | double peak |",
                  "|---|---:|---:|---:|"]
        for pred, row in f["confusion"].items():
            lines.append(f"| {pred} | {row['non-target']} | {row['single peak']} | "
                         f"{row['double peak']} |")
    return "\n".join(lines) + "\n"
