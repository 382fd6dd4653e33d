"""The paper's experiment on synthetic data: active learning with a simulated oracle, and the
non-active baseline (Fig. 5 and Table A.1 of Škoda et al. 2020); the comparison of query
strategies on the same data (`run_comparison`); the demo's project and the paper preset.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, asdict, field
from pathlib import Path

import numpy as np

from vo_al.core.base.atomic import atomic_write_text
from vo_al.core.demo.catalogues import write_demo_catalogues
from vo_al.core.base.errors import ParameterError, ProjectError
from vo_al.core.base.npy import open_npy
from vo_al.core.demo.oracle import SimulatedOracle
from vo_al.core.base.progress import CancelToken, Job, Progress
from vo_al.core.learning.scoring import predicted_classes
from vo_al.core.session.loop import DONE, ESTIMATE, FINISH, QUERY, SCORE, TRAIN, ActiveLearningSession
from vo_al.core.learning.classes import CLASS_NAMES, DOUBLE_PEAK, SINGLE_PEAK, TARGET_CLASSES
from vo_al.core.session.settings import ProjectSettings, update_settings


# 'demo': the demo's survey as FITS files, ingested; 'paper': the paper preset's survey
# (survey.PAPER_SURVEY: LAMOST DR2-like kinds, S/N and velocities) as rows written straight into
# the pool (core.demo.rows)
SURVEYS = ("demo", "paper")


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
    survey: str = "demo"

    def validate(self) -> None:
        if self.survey not in SURVEYS:
            raise ParameterError("survey", self.survey, f"must be one of {', '.join(SURVEYS)}")
        for name in ("n_train", "n_pool", "max_iterations"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ParameterError(name, value, "must be a positive integer")
        if not 0 < self.target_fraction < 1:
            raise ParameterError("target_fraction", self.target_fraction, "must be in (0, 1)")


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


# The paper preset (`vo-al simulate --preset paper`): a pool of 200 000 LAMOST DR2-like spectra
# with 1 % targets and the labelled set of the paper's size (12 936 there), every method
# parameter at METHOD.md's values (ProjectSettings' defaults).
PAPER_TRAIN, PAPER_POOL, PAPER_ITERATIONS = 13_000, 200_000, 40


def paper_config(**changes) -> SimulationConfig:
    values = dict(n_train=PAPER_TRAIN, n_pool=PAPER_POOL, target_fraction=0.01,
                  max_iterations=PAPER_ITERATIONS, survey="paper")
    values.update(changes)
    return SimulationConfig(**values)


PRESETS = {"paper": (paper_config, ProjectSettings.default)}


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
            cancel: CancelToken | None = None, project_dir: Path | None = None,
            pool_folder: Path | None = None) -> Job:
    """Make the synthetic data and a project over it (skipping what exists): the project in
    `project_dir` (default workdir/project) over the pool in `pool_folder` (default the
    project's own pool/; projects of one simulation may share one)."""
    from vo_al.core.session.project import Project

    config.validate()
    workdir = Path(workdir)
    _check_same_data(workdir, config)
    project_dir = Path(project_dir) if project_dir is not None else workdir / "project"
    pool_folder = Path(pool_folder) if pool_folder is not None else project_dir / "pool"
    if (project_dir / "project.json").exists():
        project = Project.open(project_dir)
    else:
        project = Project.create(project_dir, pool_folder, settings)
    truth_csv = workdir / "data" / "pool" / "truth.csv"
    if config.survey == "paper":
        yield from _fill_with_rows(project, config, truth_csv, cancel)
    else:
        yield from _fill_with_files(project, config, workdir / "data", cancel)
    oracle = SimulatedOracle(truth_csv, project.pool)
    # the demo's own sky in SIMBAD-like and H16-like catalogues, for an offline cross-match
    write_demo_catalogues(project.folder, project.pool, oracle.labels, config.seed)
    return project, oracle


def _fill_with_files(project, config: SimulationConfig, data: Path,
                     cancel: CancelToken | None) -> Job[None]:
    """The demo's survey: FITS files made once under `data`, imported and ingested."""
    from vo_al.core.demo.datasets import make_pool, make_training_set
    from vo_al.core.pool.ingest import ingest_folder

    train_dir, pool_dir = data / "training", data / "pool"
    if not (train_dir / "labels.csv").exists():
        yield Progress("generate", 0, 2, "training set")
        make_training_set(train_dir, n=config.n_train, seed=config.seed)
    if not (pool_dir / "truth.csv").exists():
        yield Progress("generate", 1, 2, "pool")
        make_pool(pool_dir, n=config.n_pool, target_fraction=config.target_fraction,
                  seed=config.seed + 1)
    yield Progress("generate", 2, 2)
    if not project.store.training_labels():
        yield from project.import_training_set(train_dir, train_dir / "labels.csv",
                                               workers=config.workers, cancel=cancel)
    yield from ingest_folder(project.pool, pool_dir, settings=project.settings.preprocess,
                             workers=config.workers, cancel=cancel,
                             limits=project.settings.limits)


def _fill_with_rows(project, config: SimulationConfig, truth_csv: Path,
                    cancel: CancelToken | None) -> Job[None]:
    """The paper preset's survey: rows written straight into the training set (seed
    config.seed) and the pool (config.seed + 1), seeded as the demo's files are."""
    from vo_al.core.demo.rows import write_pool_rows, write_training_rows
    from vo_al.core.demo.survey import PAPER_SURVEY

    preprocess = project.settings.preprocess
    if not project.store.training_labels():
        with project.writing("import-training"):
            labels = yield from write_training_rows(project.training, config.n_train,
                                                    PAPER_SURVEY, config.seed, preprocess,
                                                    cancel)
            project.store.set_training_labels(list(labels), list(labels.values()))
    yield from write_pool_rows(project.pool, truth_csv, config.n_pool, PAPER_SURVEY,
                               config.seed + 1, config.target_fraction, preprocess, cancel)


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
    report = SimulationReport(config=asdict(config))

    def save():
        _save(workdir / "simulation.json", report)

    if config.baseline:
        report.baseline = yield from run_baseline(project, oracle, cancel)
        save()
    yield from run_active_learning(project, oracle, config, report, save, cancel)
    plot_precision(report, workdir / "precision.png",
                   threshold=project.settings.method.precision_threshold)
    project.close()
    return report


def run_active_learning(project, oracle: SimulatedOracle, config: SimulationConfig,
                        report: SimulationReport, save, cancel: CancelToken | None = None,
                        name: str = "") -> Job[None]:
    """The loop on `project` until the stop rule (or config.max_iterations), then the long
    training if config.finish: each iteration's record goes into `report` and `save()` runs
    after each; `name` (a strategy's) prefixes the progress messages."""
    session = ActiveLearningSession(project)
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
        save()
        yield Progress("iteration", record.iteration + 1, config.max_iterations,
                       f"{name + ': ' if name else ''}precision "
                       f"{record.estimated_precision:.2f} (lower {record.lower_bound:.2f}, "
                       f"true {record.true_precision:.2f})", asdict(record))
    m = project.settings.method
    hits = [e["iteration"] for e in session.estimates()
            if e["sample_size"] and e["precision"] >= m.precision_threshold]
    if session.stop_rule_met():
        report.stopped_at = hits[m.threshold_hits - 1]
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
    save()


@dataclass
class ComparisonReport:
    """Query strategies on the same data, seed and method: one SimulationReport each (as dicts),
    and the non-active baseline they share."""

    config: dict
    strategies: list
    runs: dict = field(default_factory=dict)
    baseline: dict | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=float)


def check_strategies(strategies) -> list:
    """The strategy names, each registered and named once: ParameterError naming a bad one."""
    from vo_al.core.learning.strategies import STRATEGIES

    names = [str(s).strip() for s in strategies]
    if not names:
        raise ParameterError("strategies", "", f"name at least one of {', '.join(STRATEGIES)}")
    for name in names:
        if name not in STRATEGIES:
            raise ParameterError("strategies", name, f"must be among {', '.join(STRATEGIES)}")
    if len(set(names)) != len(names):
        raise ParameterError("strategies", ",".join(names), "names a strategy twice")
    return names


def run_comparison(workdir: Path, config: SimulationConfig, strategies,
                   settings: ProjectSettings | None = None,
                   cancel: CancelToken | None = None) -> Job[ComparisonReport]:
    """Each strategy's active learning on the same data, seed and method settings, one after
    another: a project per strategy (workdir/STRATEGY) over one shared pool (workdir/pool), the
    same labelled set in each; the non-active baseline once, in the first. Writes
    comparison.json after every iteration and comparison.png at the end."""
    names = check_strategies(strategies)
    workdir = Path(workdir)
    base = settings or ProjectSettings.default()
    report = ComparisonReport(config=asdict(config), strategies=names)

    def save():
        _save(workdir / "comparison.json", report)

    for k, name in enumerate(names):
        own = copy.deepcopy(base)
        update_settings(own.method, strategy=name)
        project, oracle = yield from prepare(workdir, config, own, cancel,
                                             project_dir=workdir / name,
                                             pool_folder=workdir / "pool")
        if k == 0 and config.baseline:
            report.baseline = yield from run_baseline(project, oracle, cancel)
            save()
        run = SimulationReport(config={**asdict(config), "strategy": name})
        report.runs[name] = run
        yield from run_active_learning(project, oracle, config, run, save, cancel, name=name)
        threshold = project.settings.method.precision_threshold
        project.close()
    plot_comparison(report, workdir / "comparison.png", threshold=threshold)
    return report


DATA_FIELDS = ("n_train", "n_pool", "target_fraction", "seed", "survey")


def _check_same_data(workdir: Path, config: SimulationConfig) -> None:
    """A simulation folder resumes only with the data it was made with."""
    path = workdir / "simulation-config.json"
    wanted = {k: getattr(config, k) for k in DATA_FIELDS}
    if path.exists():
        found = json.loads(path.read_text())
        # a folder made before the paper preset has no 'survey': the demo's
        if {k: found.get(k, "demo" if k == "survey" else None) for k in DATA_FIELDS} != wanted:
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


def _save(path: Path, report) -> None:
    atomic_write_text(Path(path), report.to_json())


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


def plot_comparison(report: ComparisonReport, path: Path, threshold: float = 0.8) -> Path:
    """Estimated (solid) and true (dashed) precision per iteration of every strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for k, name in enumerate(report.strategies):
        run = report.runs.get(name)
        its = (run if isinstance(run, dict) else asdict(run))["iterations"] if run else []
        x = [r["iteration"] for r in its]
        color = f"C{k}"
        ax.plot(x, [r["estimated_precision"] for r in its], "o-", ms=3, color=color,
                label=f"{name}: estimated")
        ax.plot(x, [r["true_precision"] for r in its], "--", color=color, label=f"{name}: true")
    if report.baseline:
        ax.axhline(report.baseline["target_precision"], color="grey", ls=":",
                   label="non-active baseline (true)")
    ax.axhline(threshold, color="red", lw=0.8, label=f"threshold {threshold:.0%}")
    ax.set_xlabel("iteration")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel("precision")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Query strategies on the same synthetic data")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def _fmt(value: float) -> str:
    return "—" if value is None or np.isnan(value) else f"{value:.3f}"


def _estimate(r: dict) -> str:
    """An iteration's estimated precision as 'p (hits/sample)'."""
    if not r["sample_size"]:
        return "— (no predicted target left to sample)"
    hits = int(round(r["estimated_precision"] * r["sample_size"]))
    return f"{r['estimated_precision']:.2f} ({hits}/{r['sample_size']})"


def _baseline_lines(b: dict) -> list:
    return ["Non-active baseline (same CNN, long training, initial set only; cf. Table A.1):",
            "", "| class | predicted | precision |", "|---|---:|---:|",
            f"| single peak | {b['single_predicted']} | {_fmt(b['single_precision'])} |",
            f"| double peak | {b['double_predicted']} | {_fmt(b['double_precision'])} |",
            f"| all targets | {b['target_predicted']} | {_fmt(b['target_precision'])} "
            f"(recall {_fmt(b.get('target_recall', float('nan')))}) |"]


def report_markdown(report: SimulationReport) -> str:
    lines = ["| iteration | training spectra | estimated precision | lower bound | true precision "
             "| true recall | predicted targets | oracle targets in batch |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report.iterations:
        lines.append(f"| {r['iteration']} | {r['n_train']} | {_estimate(r)} "
                     f"| {r['lower_bound']:.2f} | {_fmt(r['true_precision'])} | "
                     f"{_fmt(r['true_recall'])} | {r['predicted_targets']} | {r['oracle_targets']} |")
    if report.baseline:
        lines += ["", *_baseline_lines(report.baseline)]
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


def comparison_markdown(report: ComparisonReport) -> str:
    """The strategies side by side: a summary, then the estimated and true precision of every
    iteration, the shared baseline, and each strategy's long training where it ran."""
    runs = {name: report.runs[name] for name in report.strategies if name in report.runs}
    runs = {name: r if isinstance(r, dict) else asdict(r) for name, r in runs.items()}
    lines = ["| strategy | stop rule met at iteration | iterations run | oracle targets found "
             "| last estimated precision | last true precision | last true recall "
             "| minutes |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, run in runs.items():
        its = run["iterations"]
        last = its[-1] if its else None
        stopped = "—" if run["stopped_at"] is None else str(run["stopped_at"])
        lines.append(
            f"| {name} | {stopped} | {len(its)} | {sum(r['oracle_targets'] for r in its)} "
            f"| {_estimate(last) if last else '—'} "
            f"| {_fmt(last['true_precision']) if last else '—'} "
            f"| {_fmt(last['true_recall']) if last else '—'} "
            f"| {sum(r['seconds'] for r in its) / 60:.0f} |")
    lines += ["", "Estimated precision (hits / sample) · true precision, per iteration:", "",
              "| iteration | " + " | ".join(runs) + " |",
              "|---:|" + "---|" * len(runs)]
    by_iteration: dict = {}
    for name, run in runs.items():
        for r in run["iterations"]:
            by_iteration.setdefault(r["iteration"], {})[name] = r
    for it in sorted(by_iteration):
        cells = [f"{_estimate(row)} · {_fmt(row['true_precision'])}" if row else ""
                 for row in (by_iteration[it].get(name) for name in runs)]
        lines.append(f"| {it} | " + " | ".join(cells) + " |")
    if report.baseline:
        lines += ["", *_baseline_lines(report.baseline)]
    finals = {name: run["final"] for name, run in runs.items() if run.get("final")}
    if finals:
        lines += ["", "After long training:", "",
                  "| strategy | predicted targets | true precision | true recall "
                  "| oracle targets |", "|---|---:|---:|---:|---:|"]
        for name, f in finals.items():
            lines.append(f"| {name} | {f['target_predicted']} | {_fmt(f['target_precision'])} "
                         f"| {_fmt(f['target_recall'])} | {f['oracle_targets']} |")
    return "\n".join(lines) + "\n"
