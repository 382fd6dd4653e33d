"""The commands of the active-learning loop: train, score, query, label, estimate, finish,
status, candidates (each a call into vo_al.core.session, as the GUI's buttons are).

Wired into the parser by `add_loop_commands(sub)` (vo_al.cli.commands).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from vo_al.cli.common import WHERE_HELP, add_command, open_session, run_job


def _device_line(what: str, precision: str | None) -> None:
    """The backend, device and precision a step runs on (stderr: stdout stays the result)."""
    from vo_al.core.learning.device import describe_device

    print(f"{what} on {describe_device(precision)}", file=sys.stderr)


def cmd_train(args):
    session = open_session(args.project)
    _device_line("training", "float32")
    print(json.dumps(run_job(session.train())))


def _scheduler(args, session) -> str:
    """The Dask scheduler a scoring runs on: --scheduler, else the project's setting ('' = here)."""
    return (session.method.scoring_scheduler if args.scheduler is None
            else args.scheduler.strip())


def _scoring_line(session, scheduler: str) -> None:
    precision = session.method.scoring_precision
    if scheduler:                       # the workers import Keras; this process never does
        print(f"scoring on the Dask cluster at {scheduler} ({precision})", file=sys.stderr)
    else:
        _device_line("scoring", precision)


def cmd_score(args):
    session = open_session(args.project)
    scheduler = _scheduler(args, session)
    _scoring_line(session, scheduler)
    path = run_job(session.score(scheduler=scheduler))
    where = f"on {scheduler}, " if scheduler else ""
    print(f"scored {len(session.project.pool)} spectra -> {path} "
          f"({where}{session.method.scoring_precision})")


def cmd_query(args):
    from vo_al.core.session.labels import write_pending_csv

    session = open_session(args.project)
    if session.next_step() == "query":
        result = session.query()
        print(f"iteration {result['iteration'] + 1}: {len(result['batch'])} spectra for the oracle, "
              f"{len(result['sample'])} for the precision estimate "
              f"({result['predicted_targets']} predicted targets in the pool)")
    to_stdout = args.out in (None, "-")
    pending = write_pending_csv(session, sys.stdout if to_stdout else Path(args.out))
    if not to_stdout:
        print(f"{len(pending)} spectra waiting for labels -> {args.out}")


def batch_lines(session) -> list[str]:
    """The current iteration's batch and sample, one line each in their order: number, pool
    index, name, set, the label recorded ('waiting' when none), then whether labels may change."""
    from vo_al.core.learning.classes import CLASS_NAMES
    from vo_al.core.session.loop import PURPOSE_NAMES

    items = session.batch_labels()
    if not items:
        return [f"iteration {session.iteration + 1}: no batch queried "
                f"(next step {session.next_step()})"]
    width = max(len(item.name) for item in items)
    lines = [f"{'#':>4}  {'pool':>8}  {'name':<{width}}  {'set':<16}  label"]
    for number, item in enumerate(items, 1):
        label = "waiting" if item.label is None else f"{item.label} {CLASS_NAMES[item.label]}"
        lines.append(f"{number:>4}  {item.pool_index:>8}  {item.name:<{width}}  "
                     f"{PURPOSE_NAMES[item.purpose]:<16}  {label}")
    waiting = sum(1 for item in items if item.label is None)
    locked = session.labels_locked()
    lines.append(f"iteration {session.iteration + 1}: {len(items) - waiting} of {len(items)} "
                 f"labelled, {waiting} waiting" + (f"; {locked}" if locked else ""))
    return lines


def cmd_label(args):
    from vo_al.core.session.labels import apply_label_csv

    session = open_session(args.project)
    if args.list:
        print("\n".join(batch_lines(session)))
        return
    done = 0
    with session.project.writing("label"):          # one writer for the whole file
        for row in apply_label_csv(session, Path(args.csv)):
            if row.item is None:
                print(f"skip {row.name}: not waiting for a label", file=sys.stderr)
                continue
            done += 1
            # printed only after the label is committed: an "ack" is a promise it survives a
            # crash
            print(f"ack {row.item.name} {row.label} {row.item.purpose}", flush=True)
    print(f"{done} labels recorded; {len(session.pending())} still pending", file=sys.stderr)


def cmd_estimate(args):
    session = open_session(args.project)
    est = session.estimate()
    print(f"precision {est.precision:.3f} ({est.true_positives}/{est.sample_size}), "
          f"{est.confidence:.0%} lower bound {est.lower_bound:.3f}; threshold reached "
          f"{session.threshold_hits()} time(s); next step: {session.next_step()}")


def cmd_finish(args):
    session = open_session(args.project)
    scheduler = _scheduler(args, session)
    _scoring_line(session, scheduler)
    print(json.dumps(run_job(session.finish(scheduler=scheduler))))


# what to type for each next step of the session (vo-al status)
_NEXT_COMMAND = {"train": "vo-al train P", "score": "vo-al score P",
                 "query": "vo-al query P --out to-label.csv",
                 "label": "vo-al label P --csv my-labels.csv", "estimate": "vo-al estimate P",
                 "finish": "vo-al finish P", "done": "vo-al candidates P --out candidates.csv"}


def status_summary(status: dict, method) -> list[str]:
    """A person's view of `status` (ActiveLearningSession.status): a few rounded lines.
    Iterations are numbered from 1 here, as in the progress bars (the JSON's `iteration`, like
    the file names iter-000, counts from 0)."""
    lines = [f"project   {status['project']}",
             f"pool      {status['pool_size']:,} spectra".replace(",", " ")]
    estimates = [r for r in status["iterations"] if r.get("estimate")]
    lines.append(f"iteration {status['iteration'] + 1}: next step {status['next_step']}"
                 + (f" ({status['pending']} spectra wait for a label)" if status["pending"]
                    else ""))
    lines.append(f"labels    {status['oracle_labels']} from the oracle")
    if estimates:
        last = estimates[-1]
        e = last["estimate"]
        lines.append(f"precision {e['precision']:.2f} (lower bound {e['lower_bound']:.2f} at "
                     f"{e['confidence']:.0%}, {e['true_positives']}/{e['sample_size']}) in "
                     f"iteration {last['iteration'] + 1}")
    lines.append(f"stop rule {status['threshold_hits']} of {method.threshold_hits} estimates "
                 f">= {method.precision_threshold:.2f}"
                 + (" — met: finish" if status["threshold_hits"] >= method.threshold_hits
                    else ""))
    command = _NEXT_COMMAND.get(status["next_step"])
    if command:
        lines.append(f"next      {command.replace(' P', ' ' + status['project'], 1)}")
    return lines


def cmd_status(args):
    session = open_session(args.project)
    status = session.status()
    if args.json:
        print(json.dumps(status, indent=2, default=float))
        return
    print("\n".join(status_summary(status, session.method)))


def cmd_candidates(args):
    from vo_al.core.export.filters import parse_filter
    from vo_al.core.session.candidates import session_candidates, write_table_csv

    table = session_candidates(open_session(args.project)).candidates
    total = len(table["pool_index"])
    table = parse_filter(args.where, table, "--where").apply(table)
    out = Path(args.out)
    write_table_csv(table, out)
    kept = len(table["pool_index"])
    print(f"{kept} candidates -> {out}" if kept == total else
          f"{kept} of {total} candidates ({args.where.strip()}) -> {out}")


def _scheduler_argument(parser) -> None:
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="score the pool on this Dask scheduler (tcp://host:8786), whose "
                             "workers see the project folder at the same path; '' scores in "
                             "this process (default: the project's scoring_scheduler setting)")


def add_loop_commands(sub) -> None:
    """Add the loop's commands, in the order of an iteration, to an argparse subparsers object."""
    add_command(sub, "train", cmd_train, "train the CNN of the current iteration")
    p = add_command(sub, "score", cmd_score, "score the whole pool with the current model")
    _scheduler_argument(p)
    p = add_command(sub, "query", cmd_query,
                    "choose the oracle batch and precision sample; list pending")
    p.add_argument("--out", help="CSV of spectra waiting for labels (default stdout)")
    p = add_command(sub, "label", cmd_label, "record labels from a CSV with columns name,label")
    given = p.add_mutually_exclusive_group(required=True)
    given.add_argument("--csv", help="the labels file (name,label) for the spectra waiting")
    given.add_argument("--list", action="store_true",
                       help="list the current batch and sample with the label recorded for each")
    add_command(sub, "estimate", cmd_estimate, "estimate precision from the labelled sample")
    p = add_command(sub, "finish", cmd_finish, "long training, final scoring and candidates")
    _scheduler_argument(p)
    p = add_command(sub, "status", cmd_status, "where the session stands (a short summary)")
    p.add_argument("--json", action="store_true", help="everything, as JSON (for scripts)")
    p = add_command(sub, "candidates", cmd_candidates, "write the current candidates to CSV")
    p.add_argument("--out", default="candidates.csv")
    p.add_argument("--where", default="", metavar="EXPR", help=WHERE_HELP)
