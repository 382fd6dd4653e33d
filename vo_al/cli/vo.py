"""The VO subcommands of `vo-al`: ssap, tap, harvest, vo-services (thin wrappers over vo_al.core).

Wired into the parser by `add_vo_commands(sub)` (vo_al.cli.commands).
"""

from __future__ import annotations

import sys
from pathlib import Path

from vo_al.cli.common import open_session, run_job
from vo_al.cli.spectra import medium_argument
from vo_al.core.export.formats import format_of


def _services(args):
    from vo_al.core.vo.services import load_services

    return load_services(project=getattr(args, "config_project", None))


def _service(args, kind):
    from vo_al.core.vo.services import resolve_service

    default = "local-ssap" if kind == "ssap" else "local-tap"
    return resolve_service(args.service or default, kind, _services(args))


def _write_table(table, out: str | None) -> None:
    """Write a result: .csv / .ecsv by extension, else VOTable; stdout (CSV) without --out."""
    clean = table.copy(copy_data=False)
    clean.meta = {k: str(v) for k, v in table.meta.items()
                  if k in ("service", "query", "query_status", "overflow")}
    if out is None:
        # multidimensional columns (SSA positions, regions) do not fit CSV: leave them out
        flat = clean[[c for c in clean.colnames if clean[c].ndim == 1]]
        flat.write(sys.stdout, format="ascii.csv")
        return
    known = format_of(out, writable=True)
    fmt = known.astropy if known else "votable"
    if fmt == "ascii.csv":
        clean = clean[[c for c in clean.colnames if clean[c].ndim == 1]]
    import warnings

    from astropy.io.votable.exceptions import W04

    with warnings.catch_warnings():
        # DataLink's own content-type (…;content=datalink), copied from the server's FIELD:
        # astropy's MIME check does not know it; nothing a user can act on
        warnings.simplefilter("ignore", W04)
        clean.write(out, format=fmt, overwrite=True)


def _report_table(table, out) -> None:
    note = " (TRUNCATED: the server's MAXREC or limit was reached)" if table.meta.get(
        "overflow") else ""
    print(f"{len(table)} rows{note}" + (f" -> {out}" if out else ""), file=sys.stderr)


def _ssap_table(args, limits=None):
    """The SSAP query of `args`; `limits`: a project's LimitSettings (its query deadline)."""
    from vo_al.core.vo.query import ssap_search

    band = None
    if args.band:
        band = (args.band[0] * 1e-10, args.band[1] * 1e-10)       # Angstrom -> metres
    pos = None if args.ra is None and args.dec is None else (args.ra, args.dec)
    if (args.ra is None) != (args.dec is None):
        from vo_al.core.base.errors import ParameterError

        raise ParameterError("--ra/--dec", (args.ra, args.dec), "both, or neither (the whole "
                             "service, bounded by --maxrec)")
    params = {"FORMAT": args.ssa_format} if args.ssa_format else None
    return ssap_search(_service(args, "ssap"), pos, args.radius if pos else None, band=band,
                       time_range=tuple(args.time) if args.time else None, maxrec=args.maxrec,
                       params=params, limits=limits)


def _tap_table(args, limits=None):
    """The TAP query of `args`; `limits`: a project's LimitSettings (its query deadline)."""
    from vo_al.core.vo.query import PagedQuery, tap_query, tap_query_paged

    service = _service(args, "tap")
    if args.page_table:
        paged = PagedQuery(args.page_table, args.page_key, args.columns, args.where or "")
        return tap_query_paged(service, paged, page_size=args.page_size, limits=limits)
    if not args.adql:
        from vo_al.core.base.errors import ParameterError

        raise ParameterError("adql", None, "an ADQL query (or --page-table with --page-key)")
    return tap_query(service, args.adql, maxrec=args.maxrec, mode=args.mode, limits=limits)


def _show(table, out) -> None:
    _write_table(table, out)
    _report_table(table, out)


def cmd_ssap(args):
    _show(_ssap_table(args), args.out)


def cmd_tap(args):
    _show(_tap_table(args), args.out)


def cmd_harvest(args):
    from vo_al.core.vo.harvest import (harvest, harvest_table, project_harvest_folder,
                                       read_harvest_table)

    session = open_session(args.project)
    project = session.project
    session.require_pool_may_grow()
    folder = Path(args.harvest_dir) if args.harvest_dir else project_harvest_folder(args.project)
    limits = project.settings.limits           # the bounds of its queries and downloads
    medium = args.medium
    if args.table:
        table = read_harvest_table(args.table)
    elif args.adql or args.page_table:
        table = _tap_table(args, limits)
        medium = medium or _service(args, "tap").medium or None
    elif args.ra is not None or args.whole_service:
        table = _ssap_table(args, limits)
        medium = medium or _service(args, "ssap").medium or None
    else:
        table = None                                   # resume the harvest in `folder`
    common = dict(settings=project.settings.preprocess, workers=args.workers,
                  retries=args.retries, limits=limits, medium=medium)
    if table is not None:
        _report_table(table, None)
        if table.meta.get("overflow") in (True, "True"):
            print("warning: the query result was truncated; raise --maxrec or page it "
                  "(--page-table/--page-key)", file=sys.stderr)
        job = harvest_table(project.pool, folder, table, form=args.form, **common)
    else:
        job = harvest(project.pool, folder, **common)
    report = run_job(session.grow_pool("harvest", job))   # under the lock, checked again
    print(f"{report.summary()}; pool holds {len(project.pool)} spectra")
    for url, reason in report.failed[:20]:
        print(f"  failed: {url}: {reason}", file=sys.stderr)
    if len(report.failed) > 20:
        print(f"  ... and {len(report.failed) - 20} more (see {folder / 'failed.json'})",
              file=sys.stderr)


def cmd_vo_services(args):
    from vo_al.core.vo.services import (PUBLIC_SERVICES, VOService, load_services, save_services,
                                   services_path)

    project = getattr(args, "config_project", None)
    services = load_services(project=project)
    if args.action == "list":
        print(f"# {services_path(project)}")
        for s in services.values():
            print(f"{s.name}\t{s.kind}\t{s.url}\t{s.description}")
        print("# public services you may add (not tested offline):")
        for s in PUBLIC_SERVICES:
            print(f"#   {s.name}\t{s.kind}\t{s.url}\t{s.description}")
        return
    if args.action == "add":
        if len(args.values) != 3:
            from vo_al.core.base.errors import ParameterError

            raise ParameterError("add", args.values, "NAME KIND URL")
        name, kind, url = args.values
        services[name] = VOService(name, kind, url, ssa_size=args.ssa_size,
                                   medium=args.medium or "").validate()
    elif args.action == "remove":
        for name in args.values:
            services.pop(name, None)
    path = save_services(services, project=project)
    print(f"saved {len(services)} services -> {path}")


def _add_service_arg(p):
    p.add_argument("--service", help="configured service name or URL (default: the local DaCHS)")
    p.add_argument("--config-project", help="read vo_services.json from this project folder")


def _add_ssap_args(p, required: bool):
    p.add_argument("--ra", type=float, required=required, help="deg, ICRS")
    p.add_argument("--dec", type=float, required=required, help="deg, ICRS")
    p.add_argument("--radius", type=float, default=0.1 if not required else None,
                   required=required, help="search radius in degrees (a radius, also on DaCHS)")
    p.add_argument("--band", type=float, nargs=2, metavar=("MIN", "MAX"),
                   help="wavelength range in Angstrom")
    p.add_argument("--time", type=float, nargs=2, metavar=("MJD0", "MJD1"))
    p.add_argument("--ssa-format", metavar="FORMAT",
                   help="SSA FORMAT: compliant (SDM spectra the server writes), native, all, "
                        "or a MIME type")


def _add_tap_args(p, positional: bool):
    if positional:
        p.add_argument("adql", nargs="?", help="the ADQL query")
    else:
        p.add_argument("--adql", help="harvest the rows of this ADQL query (TAP)")
    p.add_argument("--mode", choices=["auto", "sync", "async"], default="auto")
    p.add_argument("--page-table", help="page through this table instead of one query")
    p.add_argument("--page-key", default="obsid", help="unique column to page on (obsid)")
    p.add_argument("--page-size", type=int, default=10_000)
    p.add_argument("--columns", default="*", help="columns of a paged query")
    p.add_argument("--where", help="condition of a paged query")


def _add_query_command(sub, name, help, func, add_query_args) -> None:
    """A command that asks a service one query and writes its table (`ssap`, `tap`)."""
    p = sub.add_parser(name, help=help)
    _add_service_arg(p)
    add_query_args(p)
    p.add_argument("--maxrec", type=int)
    p.add_argument("--out", help="write the result (.vot/.xml VOTable, .csv, .ecsv)")
    p.set_defaults(func=func)


def add_vo_commands(sub) -> None:
    """Add `ssap`, `tap`, `harvest` and `vo-services` to an argparse subparsers object."""
    _add_query_command(sub, "ssap", "search spectra with SSAP (position, radius, band, time)",
                       cmd_ssap, lambda p: _add_ssap_args(p, required=True))
    _add_query_command(sub, "tap", "run an ADQL query on a TAP service (sync, async or paged)",
                       cmd_tap, lambda p: _add_tap_args(p, positional=True))

    p = sub.add_parser("harvest", help="download the spectra of a VO query into the project's "
                       "pool (resumable: run it again to resume)")
    p.add_argument("project", help="project folder")
    _add_service_arg(p)
    p.add_argument("--table", help="a saved query result (VOTable/CSV with an access URL column)")
    _add_tap_args(p, positional=False)
    p.add_argument("--maxrec", type=int)
    _add_ssap_args(p, required=False)
    p.add_argument("--harvest-dir", help="job list and download cache (default PROJECT/harvest)")
    p.add_argument("--workers", type=int, default=8, help="concurrent downloads")
    p.add_argument("--retries", type=int, default=3)
    p.add_argument("--whole-service", action="store_true",
                   help="an SSAP query without a position: every spectrum (up to --maxrec)")
    p.add_argument("--form", choices=["native", "sdm-votable", "sdm-fits"],
                   help="download each spectrum in this form through the result's DataLink "
                        "service (default: the access URLs as the query gives them)")
    medium_argument(p)
    p.set_defaults(func=cmd_harvest)

    p = sub.add_parser("vo-services", help="list, add or remove configured VO services")
    p.add_argument("action", choices=["list", "add", "remove"])
    p.add_argument("values", nargs="*", help="add: NAME KIND(ssap|tap) URL; remove: NAME...")
    p.add_argument("--ssa-size", choices=["diameter", "radius"], default="diameter",
                   help="how the SSA server reads SIZE (DaCHS: radius)")
    medium_argument(p)
    p.add_argument("--config-project", help="use PROJECT/vo_services.json")
    p.set_defaults(func=cmd_vo_services)
