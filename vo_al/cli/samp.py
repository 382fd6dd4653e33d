"""The SAMP subcommands of `vo-al`: samp status, samp send, samp listen (thin over core.samp).

Wired into the parser by `add_samp_commands(sub)` (vo_al.cli.commands).
A short-lived command does not start a hub of its own (it would vanish when the command
ends): start TOPCAT, Aladin or `jsamp hub` first, or pass --start-hub.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from vo_al.cli.common import open_session


def _link(args):
    from vo_al.core.samp.link import SampLink

    return SampLink(name=args.name, start_hub=args.start_hub, timeout=args.timeout,
                    rpc_timeout=max(2.0, args.timeout))


def load_candidates(source: str) -> tuple[dict, str]:
    """Candidate columns and a table-id from a project folder or a candidates file
    (.csv as written by `vo-al candidates`, .vot/.xml, .ecsv)."""
    path = Path(source)
    if path.is_dir():
        from vo_al.core.session.candidates import session_candidates

        columns = session_candidates(open_session(path)).candidates
        return columns, f"vo-al:{path.resolve().name}:candidates"
    from astropy.table import Table

    from vo_al.core.base.errors import ParameterError

    from vo_al.core.export.formats import format_of

    fmt = format_of(path, writable=True)
    if fmt is None or not path.is_file():
        raise ParameterError("source", source, "a project folder or a candidates "
                             ".csv/.ecsv/.vot file")
    table = Table.read(path, format=fmt.astropy)
    columns = {c: np.asarray(table[c]) for c in table.colnames}
    return columns, f"vo-al:{path.resolve().stem}:candidates"


def _replies(out) -> list[dict]:
    return [{"client": r.client_name, "id": r.client_id, "mtype": r.mtype, "status": r.status,
             **({"error": r.error} if r.error else {})} for r in out]


def cmd_samp_status(args):
    link = _link(args)
    try:
        link.connect()
        status = link.status()
    except Exception:
        link.close()
        raise
    link.close()
    if args.json:
        print(json.dumps(status, indent=2))
        return
    hub = status["hub"]
    print(f"hub: {hub['url']} ({'embedded' if hub['embedded'] else 'running'}; "
          f"lockfile {hub['lockfile']})")
    for c in status["clients"]:
        subs = [s for s in c["subscriptions"] if not s.startswith("samp.")]
        print(f"  {c['id']:<8} {c['name']:<20} {', '.join(subs) or '-'}")
    for hint in status["hints"]:
        print(f"note: {hint}")


def cmd_samp_send(args):
    from vo_al.core.base.errors import ParameterError
    from vo_al.core.samp.messages import TABLE_LOAD
    from vo_al.core.samp.records import Delivery

    columns, table_id = load_candidates(args.source)
    n = len(next(iter(columns.values()))) if columns else 0
    if args.pool_index is not None:
        hits = np.flatnonzero(np.asarray(columns.get("pool_index", [])) == args.pool_index)
        if not len(hits):
            raise ParameterError("--pool-index", args.pool_index, "is not a candidate")
        row = int(hits[0])
    else:
        row = args.row
    if not 0 <= row < n:
        raise ParameterError("--row", row, f"must be in 0..{n - 1} ({n} candidates)")
    work = Path(args.source) / "samp" if Path(args.source).is_dir() else None
    link = _link(args)
    if work is not None:                 # the project's downloads: what each spectrum is
        from vo_al.core.vo.harvest import project_cache_folder

        link.spectrum_cache_folder = project_cache_folder(args.source)
    try:
        link.connect()
        link.set_candidates(columns, table_id=table_id, name=args.table_name,
                            path=(work / "candidates.vot") if work else None)
        report = {"row": row, "candidate": {k: v for k, v in link.candidates.row(row).items()
                                            if k in ("pool_index", "name", "designation", "ra",
                                                     "dec", "class", "source")}}
        to = args.to or None
        lines = []                          # who got what, one line per message
        if not args.no_table:
            try:
                replies = link.send_table(to=to)
                report[TABLE_LOAD] = _replies(replies)
                lines.append(f"{TABLE_LOAD}: {Delivery({TABLE_LOAD: replies}).text()}")
            except Exception as exc:           # noqa: BLE001 - `to` may not take tables
                report[TABLE_LOAD] = str(exc)
                lines.append(f"{TABLE_LOAD}: not sent: {exc}")
        out = link.send_candidate(row, to=to)
        report.update({k: _replies(v) for k, v in out.items()})
        lines += [f"{mtype}: {Delivery({mtype: replies}).text()}"
                  for mtype, replies in out.items()]
        report["hints"] = link.hints()
        if args.json:
            print(json.dumps(report, indent=2, default=str))
        else:
            cand = report["candidate"]
            print(f"row {row}: {cand.get('designation') or cand.get('name') or '-'} "
                  f"(pool index {cand.get('pool_index', '-')})")
            for line in lines + [f"note: {h}" for h in report["hints"]]:
                print(f"  {line}")
        sys.stdout.flush()
        if args.listen:
            _listen(link, args.listen)
    finally:
        if work is None and not args.listen:
            time.sleep(0.5)       # peers fetch the file:// table while it still exists
        link.close()


def _listen(link, seconds: float):
    """Print the peers' selections and the hub's comings and goings for `seconds`; a hub that
    goes away and comes back is joined again (the watchdog), "lost" then "reconnected"."""
    link.start_watchdog()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        event = link.wait_event(min(1.0, max(0.0, deadline - time.monotonic())),
                                kinds=("highlight", "select", "point", "hub"))
        if event is not None:
            print(json.dumps({"event": event.kind, "rows": list(event.rows),
                              "pool_indices": list(event.pool_indices),
                              "from": event.sender_name, "message": event.message}))
            sys.stdout.flush()


def add_samp_commands(sub) -> None:
    """Add `samp status` and `samp send` to an argparse subparsers object."""
    p = sub.add_parser("samp", help="SAMP: candidates to Aladin, SPLAT-VO and TOPCAT",
                       description="Talk to the SAMP hub the user runs (TOPCAT, Aladin, "
                                   "jsamp hub; SAMP_HUB is honoured).")
    samp_sub = p.add_subparsers(dest="samp_command", required=True)

    def common(q):
        q.add_argument("--name", default="vo-al", help="our samp.name (default vo-al)")
        q.add_argument("--timeout", type=float, default=5.0,
                       help="seconds to wait for each reply (default 5)")
        q.add_argument("--start-hub", action="store_true",
                       help="start an embedded hub when none runs (it ends with the command)")

    q = samp_sub.add_parser("status", help="the hub, who is connected, what each subscribes to")
    common(q)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_samp_status)

    q = samp_sub.add_parser("send", help="one candidate: point Aladin, load the spectrum in "
                                         "SPLAT-VO, the table to TOPCAT with the row highlighted")
    common(q)
    q.add_argument("source", help="project folder, or a candidates .csv/.vot/.ecsv file")
    g = q.add_mutually_exclusive_group()
    g.add_argument("--row", type=int, default=0, help="row of the candidate table (default 0)")
    g.add_argument("--pool-index", type=int, help="the candidate with this pool index")
    q.add_argument("--to", help="only this client (samp.name or client id); default everyone")
    q.add_argument("--table-name", default="vo-al candidates")
    q.add_argument("--no-table", action="store_true", help="do not (re)send the table")
    q.add_argument("--listen", type=float, default=0.0, metavar="SECONDS",
                   help="then print the selections peers send back, for SECONDS")
    q.add_argument("--json", action="store_true",
                   help="the report as JSON (every reply: client, id, mtype, status, error)")
    q.set_defaults(func=cmd_samp_send)
