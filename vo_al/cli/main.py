"""The `vo-al` command line: every step of the method, with progress bars.

Each subcommand is a thin call into vo_al.core; the GUI makes the same calls.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vo_al.core.base.errors import VoAlError
from vo_al.core.base.progress import run_with_text_bar as _run


def _open(args):
    from vo_al.core.session.project import Project
    from vo_al.core.session.loop import ActiveLearningSession

    project = Project.open(args.project)
    return project, ActiveLearningSession(project)


def _parse_sets(pairs):
    """key=value pairs -> dicts of method and preprocess changes."""
    from dataclasses import fields

    from vo_al.core.base.errors import ParameterError
    from vo_al.core.session.settings import MethodSettings
    from vo_al.core.spectra.settings import PreprocessSettings

    method_keys = {f.name for f in fields(MethodSettings)}
    pre_keys = {f.name for f in fields(PreprocessSettings)}
    method, pre = {}, {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ParameterError("--set", pair, "must be key=value")
        key, value = pair.split("=", 1)
        key = key.strip().replace("-", "_")
        if key in method_keys:
            method[key] = value
        elif key in pre_keys:
            pre[key] = value
        else:
            raise ParameterError(key, value, "unknown setting")
    return method, pre


def _apply_sets(settings, pairs):
    from vo_al.core.session.settings import update_settings

    method, pre = _parse_sets(pairs)
    update_settings(settings.method, **method)
    update_settings(settings.preprocess, **pre)
    settings.validate()
    return settings


# -- subcommands ----------------------------------------------------------------------------------
def cmd_create(args):
    from vo_al.core.session.project import Project
    from vo_al.core.session.settings import ProjectSettings

    settings = _apply_sets(ProjectSettings.default(), args.set)
    pool = Path(args.pool) if args.pool else Path(args.project) / "pool"
    project = Project.create(args.project, pool, settings)
    print(f"created project {project.folder} (pool {project.pool_folder})")


def cmd_settings(args):
    project, _ = _open(args)
    if args.set:
        method, pre = _parse_sets(args.set)
        project.change_settings(method, pre)
    print(project.settings.to_json())


def cmd_import_training(args):
    project, _ = _open(args)
    result = _run(project.import_training_set(Path(args.folder), Path(args.labels),
                                              workers=args.workers, scheme=args.scheme))
    print(json.dumps(result))


def cmd_ingest(args):
    from vo_al.core.pool.store import ingest_folder

    project, session = _open(args)
    session.require_pool_may_grow()
    report = _run(ingest_folder(project.pool, Path(args.folder),
                                settings=project.settings.preprocess, workers=args.workers))
    print(f"added {report.added}, skipped {report.skipped} already in the pool, "
          f"rejected {len(report.rejected)}; pool holds {len(project.pool)} spectra")
    for path, reason in report.rejected[:20]:
        print(f"  rejected {path}: {reason}")
    if len(report.rejected) > 20:
        print(f"  ... and {len(report.rejected) - 20} more (see `vo-al status`)")


def cmd_train(args):
    _, session = _open(args)
    summary = _run(session.train())
    print(json.dumps(summary))


def cmd_score(args):
    _, session = _open(args)
    path = _run(session.score())
    print(f"scored {len(session.project.pool)} spectra -> {path}")


def cmd_query(args):
    import csv

    _, session = _open(args)
    if session.next_step() == "query":
        result = session.query()
        print(f"iteration {result['iteration']}: {len(result['batch'])} spectra for the oracle, "
              f"{len(result['sample'])} for the precision estimate "
              f"({result['predicted_targets']} predicted targets in the pool)")
    pending = session.pending()
    out = sys.stdout if args.out in (None, "-") else open(args.out, "w", newline="")
    proba = session.probabilities()
    writer = csv.writer(out)
    writer.writerow(["pool_index", "name", "purpose", "p_non_target", "p_single", "p_double"])
    for p in pending:
        pr = proba[p.pool_index]
        writer.writerow([p.pool_index, p.name, p.purpose] + [f"{v:.4f}" for v in pr])
    if out is not sys.stdout:
        out.close()
        print(f"{len(pending)} spectra waiting for labels -> {args.out}")


def cmd_label(args):
    from vo_al.core.session.labels import read_label_csv, spectrum_key

    _, session = _open(args)
    pending = {spectrum_key(p.name): p for p in session.pending()}
    done = 0
    for name, label in read_label_csv(Path(args.csv)):
        item = pending.get(spectrum_key(name))
        if item is None:
            print(f"skip {name}: not waiting for a label", file=sys.stderr)
            continue
        session.label(item.pool_index, label)
        done += 1
        # printed only after the label is committed: an "ack" is a promise it survives a crash
        print(f"ack {item.name} {label} {item.purpose}", flush=True)
    print(f"{done} labels recorded; {len(session.pending())} still pending", file=sys.stderr)


def cmd_estimate(args):
    _, session = _open(args)
    est = session.estimate()
    print(f"precision {est.precision:.3f} ({est.true_positives}/{est.sample_size}), "
          f"{est.confidence:.0%} lower bound {est.lower_bound:.3f}; threshold reached "
          f"{session.threshold_hits()} time(s); next step: {session.next_step()}")


def cmd_finish(args):
    _, session = _open(args)
    result = _run(session.finish())
    print(json.dumps(result))


def cmd_status(args):
    _, session = _open(args)
    print(json.dumps(session.status(), indent=2, default=float))


def cmd_candidates(args):
    from vo_al.core.session.candidates import session_candidates, write_table_csv

    _, session = _open(args)
    table = session_candidates(session).candidates
    out = Path(args.out)
    write_table_csv(table, out)
    print(f"{len(table['pool_index'])} candidates -> {out}")


def cmd_generate(args):
    from vo_al.core.demo import synthetic

    if args.kind == "pool":
        path = synthetic.make_pool(Path(args.out), n=args.n, seed=args.seed,
                                   target_fraction=args.target_fraction)
    else:
        path = synthetic.make_training_set(Path(args.out), n=args.n, seed=args.seed)
    print(f"wrote {args.n} synthetic {args.kind} spectra to {path}")


def cmd_simulate(args):
    from vo_al.core.session.settings import ProjectSettings
    from vo_al.core.demo.simulate import SimulationConfig, report_markdown, run_simulation

    settings = _apply_sets(ProjectSettings.default(), args.set)
    config = SimulationConfig(n_train=args.train, n_pool=args.pool,
                              target_fraction=args.target_fraction,
                              max_iterations=args.max_iterations, seed=args.seed,
                              baseline=not args.no_baseline, finish=not args.no_finish)
    report = _run(run_simulation(Path(args.out), config, settings))
    print(report_markdown(report))
    if report.stopped_at is not None:
        print(f"stop rule met at iteration {report.stopped_at}")
    else:
        print("stop rule not met within the iterations allowed")
    print(f"plot: {Path(args.out) / 'precision.png'}; report: {Path(args.out) / 'simulation.json'}")


def cmd_demo(args):
    """A small offline demo: synthetic data, a project, active learning with a simulated oracle."""
    from vo_al.core.demo.simulate import DEMO_METHOD, demo_config, demo_settings, report_markdown, \
        run_simulation

    # a demo should finish in minutes on a laptop: shorter training than the paper's defaults
    # (every other parameter as in the paper; --set overrides these too)
    settings = _apply_sets(demo_settings(), args.set or [])
    config = demo_config(n_train=args.train, n_pool=args.pool, max_iterations=args.max_iterations)
    shortened = ", ".join(f"{k}={v}" for k, v in DEMO_METHOD.items())
    print(f"vo-al demo in {args.out}: {args.train} labelled CCD700-like spectra, a pool of "
          f"{args.pool} LAMOST-like spectra, the oracle answered from the synthetic truth; "
          f"training shortened for the demo ({shortened})")
    report = _run(run_simulation(Path(args.out), config, settings))
    print(report_markdown(report))
    print(f"candidates: {Path(args.out) / 'project' / 'candidates.csv'}")
    print(f"precision plot: {Path(args.out) / 'precision.png'}")
    print(f"continue by hand: vo-al status {Path(args.out) / 'project'}")


def cmd_gui(args):
    from vo_al.gui.app import main as gui_main  # lazy: the command line never imports Qt

    rc = gui_main([args.project] if args.project else [])
    if rc:
        raise SystemExit(rc)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vo-al", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name, func, help, project=True):
        p = sub.add_parser(name, help=help, description=help)
        if project:
            p.add_argument("project", help="project folder")
        p.set_defaults(func=func)
        return p

    p = add("create", cmd_create, "create a project folder")
    p.add_argument("--pool", help="pool folder (default: PROJECT/pool); may be shared")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="a method setting")
    p = add("settings", cmd_settings, "show or change the project's method settings")
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    p = add("import-training", cmd_import_training,
            "import the labelled training set: a folder of FITS and a CSV name,label")
    p.add_argument("folder")
    p.add_argument("labels")
    p.add_argument("--scheme", default="vo-al", choices=["vo-al", "ondrejov"],
                   help="class numbering of the CSV: vo-al 0 non-target/1 single/2 double; "
                        "ondrejov 0 emission/1 absorption/2 unknown (skipped)/3 double")
    p.add_argument("--workers", type=int, default=2)
    p = add("ingest", cmd_ingest, "add a folder of FITS spectra to the pool (resumable)")
    p.add_argument("folder")
    p.add_argument("--workers", type=int, default=2)
    add("train", cmd_train, "train the CNN of the current iteration")
    add("score", cmd_score, "score the whole pool with the current model")
    p = add("query", cmd_query, "choose the oracle batch and precision sample; list pending")
    p.add_argument("--out", help="CSV of spectra waiting for labels (default stdout)")
    p = add("label", cmd_label, "record labels from a CSV with columns name,label")
    p.add_argument("--csv", required=True)
    add("estimate", cmd_estimate, "estimate precision from the labelled sample")
    add("finish", cmd_finish, "long training, final scoring and candidates")
    add("status", cmd_status, "where the session stands")
    p = add("candidates", cmd_candidates, "write the current candidates to CSV")
    p.add_argument("--out", default="candidates.csv")

    p = add("generate", cmd_generate, "write synthetic FITS spectra", project=False)
    p.add_argument("kind", choices=["pool", "training"])
    p.add_argument("out")
    p.add_argument("-n", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target-fraction", type=float, default=0.01)

    p = add("simulate", cmd_simulate,
            "the paper's experiment with a simulated oracle, and the non-active baseline",
            project=False)
    p.add_argument("--out", default="simulation")
    p.add_argument("--train", type=int, default=2000)
    p.add_argument("--pool", type=int, default=20000)
    p.add_argument("--target-fraction", type=float, default=0.01)
    p.add_argument("--max-iterations", type=int, default=25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--no-finish", action="store_true")
    p.add_argument("--set", action="append", metavar="KEY=VALUE")

    p = add("gui", cmd_gui, "open the desktop application (also: vo-al with no arguments)",
            project=False)
    p.add_argument("project", nargs="?", help="project folder to open")

    p = add("demo", cmd_demo, "make and run a small offline demo project", project=False)
    p.add_argument("--out", default="demo-project")
    from vo_al.core.demo.simulate import DEMO_ITERATIONS, DEMO_POOL, DEMO_TRAIN

    p.add_argument("--train", type=int, default=DEMO_TRAIN)
    p.add_argument("--pool", type=int, default=DEMO_POOL)
    p.add_argument("--max-iterations", type=int, default=DEMO_ITERATIONS)
    p.add_argument("--set", action="append", metavar="KEY=VALUE")

    from vo_al.cli.vo import add_vo_commands

    add_vo_commands(sub)

    from vo_al.cli.crossmatch import add_crossmatch_commands

    add_crossmatch_commands(sub)

    from vo_al.cli.samp import add_samp_commands

    add_samp_commands(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv or ["gui"])
    try:
        args.func(args)
    except VoAlError as exc:
        print(f"vo-al {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vo-al {args.command}: interrupted; everything acknowledged is saved",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
