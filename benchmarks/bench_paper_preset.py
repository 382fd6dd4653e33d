"""The paper's experiment at the paper's shape: `vo-al simulate --preset paper` with query
strategies compared on the same data and seed; writes the "Paper preset simulation" section of
RESULTS.md from the run's comparison.json.

The whole preset (a 200 000-spectrum pool, 13 000 labelled spectra, four strategies, each to the
stop rule, the baseline's and every strategy's long training) is many hours on two cores; a
scaled run says its size, and every setting that differs from METHOD.md's is listed with the
figures (read from the run's own settings.json).

Usage: python benchmarks/bench_paper_preset.py [--out DIR] [--write] -- SIMULATE-ARGS
         runs `vo-al simulate --preset paper --out DIR SIMULATE-ARGS` (default: all four
         strategies), then writes the section
       python benchmarks/bench_paper_preset.py --out DIR [--out DIR2 ...] --write
         only the section, from DIR/comparison.json of runs made before, one after another
         (their command lines are given with --command, once per --out, for the record)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import fields
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

FULL_RUN = ("vo-al simulate --preset paper --strategies entropy,margin,least-confidence,random "
            "--out paper-simulation")


def settings_changed(project_folder: Path) -> list[str]:
    """'key=value (default d)' of every method setting of the run that is not the default
    (METHOD.md's numbers)."""
    from vo_al.core.session.settings import ProjectSettings

    used = ProjectSettings.load(project_folder / "settings.json").method
    default = ProjectSettings.default().method
    return [f"{f.name}={getattr(used, f.name)} (default {getattr(default, f.name)})"
            for f in fields(used)
            if f.name != "strategy" and getattr(used, f.name) != getattr(default, f.name)]


def section(out: Path, command: str, seconds: float | None) -> list[str]:
    from vo_al.core.demo.simulate import PAPER_POOL, PAPER_TRAIN, ComparisonReport, \
        comparison_markdown

    report = ComparisonReport(**json.loads((out / "comparison.json").read_text()))
    config = report.config
    changed = settings_changed(out / report.strategies[0])
    scaled = config["n_pool"] < PAPER_POOL or config["n_train"] < PAPER_TRAIN
    truth = [line.split(",") for line in (out / "data" / "pool" / "truth.csv").read_text()
             .splitlines()[1:]]
    targets = sum(1 for row in truth if row[1] in ("1", "2"))
    lines = [f"`{command}`" + (f" (whole run {seconds / 60:.0f} min" if seconds else "")
             + (f" on {os.cpu_count()} shared cores)" if seconds else ""), "",
             f"{'**Scaled run**' if scaled else 'Full preset'}: a pool of "
             f"{config['n_pool']:,} LAMOST DR2-like spectra ({targets:,} targets) and "
             f"{config['n_train']:,} labelled CCD700-like spectra"
             + (f" (the preset: {PAPER_POOL:,} and {PAPER_TRAIN:,})" if scaled else "")
             + f", seed {config['seed']}, max_iterations {config['max_iterations']}; "
             + ("every method setting at its default (METHOD.md's numbers) except "
                + ", ".join(changed) if changed else "every method setting at its default "
                "(METHOD.md's numbers)")
             + ("; no long training after the active phase" if not config["finish"] else "")
             + "." + ("" if (out / "comparison.png").exists() else
                      " **The run had not ended when this was written: figures so far.**"),
             "", comparison_markdown(report).rstrip()]
    return lines


PAPER_LINES = ["The paper (4.1 M LAMOST DR2 spectra, entropy): the stop rule at iteration 17; the "
               "non-active baseline at 3.0-4.1 % precision for single peaks and 0-2 % for "
               "double peaks (Table A.1).", "",
               f"All four strategies on the full preset: `{FULL_RUN}` (many hours on two cores: "
               "run it where the machine is free; `--out` resumes it)."]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    rest = argv[argv.index("--") + 1:] if "--" in argv else None
    own = argv[:argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", action="append", help="the run's folder (default paper-simulation)")
    ap.add_argument("--command", action="append", default=[],
                    help="the command line of a run made before (one per --out)")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args(own)
    outs = [Path(o) for o in args.out or ["paper-simulation"]]
    if rest is not None and len(outs) > 1:
        ap.error("a run goes into one --out folder")
    if args.command and len(args.command) != len(outs):
        ap.error("--command: give one per --out")
    lines: list[str] = []
    for k, out in enumerate(outs):
        lines += run_section(out, args.command[k] if args.command else None, rest) + [""]
    lines += PAPER_LINES
    print("\n".join(lines))
    if args.write:
        from results import replace_section

        replace_section("Paper preset simulation", lines)


def run_section(out: Path, command: str | None, rest: list | None) -> list[str]:
    """The lines of one run: made now (`rest`: the simulate arguments) or read from `out`."""
    seconds = None
    if rest is not None:
        from vo_al.cli.commands import main as vo_al

        if "--strategies" not in rest:
            rest += ["--strategies", "entropy,margin,least-confidence,random"]
        simulate = ["simulate", "--preset", "paper", "--out", str(out), *rest]
        command = "vo-al " + " ".join(simulate)
        t0 = time.monotonic()
        if vo_al(simulate):
            raise SystemExit("the simulation failed")
        seconds = time.monotonic() - t0
    elif (out / "comparison.json").exists() and (out / "simulation-config.json").exists():
        seconds = ((out / "comparison.json").stat().st_mtime
                   - (out / "simulation-config.json").stat().st_mtime)
    return section(out, command or f"vo-al simulate --preset paper --out {out} ...", seconds)


if __name__ == "__main__":
    main()
