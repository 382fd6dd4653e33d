"""The commands that need no project of one's own: generate (synthetic FITS), simulate (the
paper's experiment with a simulated oracle), gui (the desktop app) and demo (a small offline run).

Wired into the parser by `add_demo_commands(sub)` (vo_al.cli.commands).
"""

from __future__ import annotations

from pathlib import Path

from vo_al.cli.common import add_command, apply_sets, run_job


def cmd_generate(args):
    from vo_al.core.demo import make_pool, make_training_set

    if args.kind == "pool":
        path = make_pool(Path(args.out), n=args.n, seed=args.seed,
                         target_fraction=args.target_fraction)
    else:
        path = make_training_set(Path(args.out), n=args.n, seed=args.seed)
    print(f"wrote {args.n} synthetic {args.kind} spectra to {path}")


def cmd_simulate(args):
    from vo_al.core.session.settings import ProjectSettings
    from vo_al.core.demo.simulate import (PRESETS, SimulationConfig, check_strategies,
                                          comparison_markdown, report_markdown, run_comparison,
                                          run_simulation)

    make_config, make_settings = PRESETS[args.preset] if args.preset else \
        (SimulationConfig, ProjectSettings.default)
    settings = apply_sets(make_settings(), args.set)
    given = dict(n_train=args.train, n_pool=args.pool, target_fraction=args.target_fraction,
                 max_iterations=args.max_iterations, seed=args.seed)
    config = make_config(**{k: v for k, v in given.items() if v is not None},
                         baseline=not args.no_baseline, finish=not args.no_finish)
    config.validate()
    out = Path(args.out)
    if args.strategies is not None:
        names = check_strategies(args.strategies.split(","))
        report = run_job(run_comparison(out, config, names, settings))
        print(comparison_markdown(report))
        print(f"plot: {out / 'comparison.png'}; report: {out / 'comparison.json'}")
        return
    report = run_job(run_simulation(out, config, settings))
    print(report_markdown(report))
    if report.stopped_at is not None:
        print(f"stop rule met at iteration {report.stopped_at}")
    else:
        print("stop rule not met within the iterations allowed")
    print(f"plot: {out / 'precision.png'}; report: {out / 'simulation.json'}")


def cmd_demo(args):
    """A small offline demo: synthetic data, a project, active learning with a simulated oracle."""
    from vo_al.core.demo.simulate import DEMO_METHOD, demo_config, demo_settings, report_markdown, \
        run_simulation

    # a demo should finish in minutes on a laptop: shorter training than the paper's defaults
    # (every other parameter as in the paper; --set overrides these too)
    settings = apply_sets(demo_settings(), args.set or [])
    config = demo_config(n_train=args.train, n_pool=args.pool, max_iterations=args.max_iterations)
    shortened = ", ".join(f"{k}={v}" for k, v in DEMO_METHOD.items())
    print(f"vo-al demo in {args.out}: {args.train} labelled CCD700-like spectra, a pool of "
          f"{args.pool} LAMOST-like spectra, the oracle answered from the synthetic truth; "
          f"training shortened for the demo ({shortened})")
    report = run_job(run_simulation(Path(args.out), config, settings))
    print(report_markdown(report))
    print(f"candidates: {Path(args.out) / 'project' / 'candidates.csv'}")
    print(f"precision plot: {Path(args.out) / 'precision.png'}")
    print(f"continue by hand: vo-al status {Path(args.out) / 'project'}")


def cmd_gui(args):
    from vo_al.gui.app import main as gui_main  # lazy: the command line never imports Qt

    rc = gui_main([args.project] if args.project else [])
    if rc:
        raise SystemExit(rc)


def add_demo_commands(sub) -> None:
    """Add `generate`, `simulate`, `gui` and `demo` to an argparse subparsers object."""
    from vo_al.core.demo.simulate import (DEMO_ITERATIONS, DEMO_POOL, DEMO_TRAIN,
                                          PAPER_ITERATIONS, PAPER_POOL, PAPER_TRAIN, PRESETS,
                                          SimulationConfig)
    from vo_al.core.learning.strategies import STRATEGIES

    p = add_command(sub, "generate", cmd_generate, "write synthetic FITS spectra", project=False)
    p.add_argument("kind", choices=["pool", "training"])
    p.add_argument("out")
    p.add_argument("-n", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target-fraction", type=float, default=0.01)

    p = add_command(sub, "simulate", cmd_simulate,
                    "the paper's experiment with a simulated oracle, and the non-active baseline",
                    project=False)
    defaults = SimulationConfig()
    p.add_argument("--out", default="simulation")
    p.add_argument("--preset", choices=sorted(PRESETS),
                   help="'paper': a 200 000-spectrum LAMOST DR2-like pool (rows written "
                        "straight into it), a 13 000-spectrum labelled set, METHOD.md's "
                        "settings; --train, --pool, ... change it")
    p.add_argument("--strategies", metavar="A,B,...",
                   help=f"compare these query strategies ({', '.join(STRATEGIES)}) on the "
                        "same data and seed, one project each")
    p.add_argument("--train", type=int, help=f"labelled spectra (default {defaults.n_train}; "
                                              f"paper {PAPER_TRAIN})")
    p.add_argument("--pool", type=int, help=f"pool spectra (default {defaults.n_pool}; "
                                             f"paper {PAPER_POOL})")
    p.add_argument("--target-fraction", type=float,
                   help=f"default {defaults.target_fraction}")
    p.add_argument("--max-iterations", type=int,
                   help=f"default {defaults.max_iterations}; paper {PAPER_ITERATIONS}")
    p.add_argument("--seed", type=int, help=f"default {defaults.seed}")
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--no-finish", action="store_true")
    p.add_argument("--set", action="append", metavar="KEY=VALUE")

    p = add_command(sub, "gui", cmd_gui,
                    "open the desktop application (also: vo-al with no arguments)", project=False)
    p.add_argument("project", nargs="?", help="project folder to open")

    p = add_command(sub, "demo", cmd_demo, "make and run a small offline demo project",
                    project=False)
    p.add_argument("--out", default="demo-project")
    p.add_argument("--train", type=int, default=DEMO_TRAIN)
    p.add_argument("--pool", type=int, default=DEMO_POOL)
    p.add_argument("--max-iterations", type=int, default=DEMO_ITERATIONS)
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
