"""`vo-al crossmatch`, `vo-al radius-scan` and `vo-al export`: thin calls into vo_al.core.xmatch
and the session's candidates.

Wired into the parser by `add_crossmatch_commands(sub)` (vo_al.cli.commands).
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

from vo_al.cli.common import WHERE_HELP, open_session
from vo_al.core.base.errors import ParameterError
from vo_al.core.export.formats import EXPORT_FORMATS, TABLE_FORMATS, parse_formats


def _candidates(project_folder):
    """(project, SessionCandidates) of a project folder."""
    from vo_al.core.session.candidates import session_candidates

    session = open_session(project_folder)
    return session.project, session_candidates(session)


def _simbad_route(args):
    """The SIMBAD route (xmatch.SimbadRoute) of --catalogue FILE (a local SIMBAD-like file) or
    --simbad-service simbad|local|URL|none, with --tap-table and the --*-column names."""
    from vo_al.core import xmatch as xm

    service = getattr(args, "simbad_service", None)
    if args.catalogue:
        if service not in (None, "none"):
            raise ParameterError("--catalogue", args.catalogue,
                                 "either --catalogue or --simbad-service, not both")
        return xm.SimbadRoute("file", file=args.catalogue)
    service = service or "simbad"
    columns = dict(table=args.tap_table or "", id_column=args.id_column,
                   ra_column=args.ra_column, dec_column=args.dec_column,
                   otype_column=args.otype_column)
    if service in ("simbad", "local", "none"):
        return xm.SimbadRoute(service, **columns)
    if not xm.is_tap_url(service):
        raise ParameterError("--simbad-service", service, "simbad, local, none or a TAP URL")
    return xm.SimbadRoute("url", url=service, **columns)


def _reading_catalogues(load):
    """`load()`, printing each catalogue's skipped rows (SkippedRowsWarning: the file, the count
    and the first rows) as one 'warning:' line on stderr; other warnings go on as they were."""
    from vo_al.core.xmatch import SkippedRowsWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SkippedRowsWarning)
        value = load()
    for w in caught:
        if issubclass(w.category, SkippedRowsWarning):
            print(f"warning: {w.message}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return value


def parse_radii(text: str) -> list[float]:
    """'5,10,20' -> radii in arcsec, each checked (ParameterError naming --radii and the value)."""
    from vo_al.core.xmatch import check_radius

    radii = [check_radius(r.strip(), "--radii") for r in str(text).split(",") if r.strip()]
    if not radii:
        raise ParameterError("--radii", text, "comma-separated radii in arcsec, e.g. 5,10,20")
    return radii


def cmd_crossmatch(args):
    from vo_al.core import xmatch as xm

    project, found = _candidates(args.project)
    candidates, rejected, params = found.candidates, found.rejected, found.provenance
    simbad, h16 = _reading_catalogues(lambda: (
        xm.simbad_catalogue(_simbad_route(args)),
        xm.h16_catalogue(args.h16) if args.h16 else None))
    result = xm.crossmatch_candidates(candidates, simbad, h16, radius=args.radius,
                                      h16_radius=args.h16_radius, rejected=rejected,
                                      params=params)
    out = Path(args.out) if args.out else project.folder / "crossmatch"
    paths = xm.write_tables(result, out, parse_formats(args.formats))
    print(json.dumps({"counts": result.counts(), "groups": result.groups,
                      "out": str(out), "files": len(paths)}, indent=1))


def cmd_radius_scan(args):
    from vo_al.core import xmatch as xm
    from vo_al.core.export.catalogue import write_catalogue

    radii = parse_radii(args.radii)                 # a typo is reported before any work
    project, found = _candidates(args.project)
    candidates, params = found.candidates, found.provenance
    catalogue = _reading_catalogues(lambda: xm.simbad_catalogue(_simbad_route(args)))
    if catalogue is None:
        raise ParameterError("--simbad-service", "none", "a catalogue to scan")
    scan = xm.radius_scan(catalogue, candidates["ra"], candidates["dec"], radii)
    out = Path(args.out) if args.out else project.folder / "crossmatch"
    params = dict(params, catalogue=getattr(catalogue, "name", ""),
                  radii=",".join(f"{r:g}" for r in radii))
    for fmt in parse_formats(args.formats):
        write_catalogue(scan, out / f"radius_scan{TABLE_FORMATS[fmt].suffix}", fmt, params)
    png = xm.plot_radius_scan(scan, out / "radius_scan.png", chosen=args.chosen)
    shown = scan.copy(copy_data=False)     # the files keep every digit; the screen what they mean
    shown["radius"].format = "g"
    for column in ("fraction_matched", "mean_objects"):
        shown[column].format = ".3f"
    shown.pprint(max_lines=-1, max_width=-1)
    print(f"plot: {png}")


def cmd_export(args):
    from vo_al.core.session.candidates import export_candidates

    done = export_candidates(open_session(args.project), Path(args.out), args.rejected,
                             args.format, where=args.where)
    of = f" of {done['of']}" if done["rows"] != done["of"] else ""
    print(f"wrote {done['rows']}{of} rows to {done['path']}")


def _add_catalogue_args(p):
    p.add_argument("--simbad-service", default=None,
                   help="simbad (default: the CDS SIMBAD TAP), local (the local DaCHS's "
                        "lamost.simbad_like), none, or a TAP URL")
    p.add_argument("--catalogue", help="a local catalogue file (VOTable, FITS, CSV, ECSV) used "
                                       "instead of the SIMBAD service")
    p.add_argument("--tap-table", help="TAP table (default basic, or lamost.simbad_like for "
                                       "local)")
    p.add_argument("--id-column", default="main_id")
    p.add_argument("--ra-column", default="ra")
    p.add_argument("--dec-column", default="dec")
    p.add_argument("--otype-column", default="otype")
    p.add_argument("--out", help="output folder (default PROJECT/crossmatch)")
    p.add_argument("--formats", default=",".join(EXPORT_FORMATS), help=",".join(EXPORT_FORMATS))


def add_crossmatch_commands(sub) -> None:
    """Add `crossmatch`, `radius-scan` and `export` to an argparse subparsers object."""
    from vo_al.core.xmatch import DEFAULT_H16_RADIUS, DEFAULT_SIMBAD_RADIUS, SCAN_RADII

    p = sub.add_parser("crossmatch", help="cross-match the candidates with SIMBAD and H16; "
                       "write the four tables (known in H16, new in SIMBAD, new and unknown, "
                       "rejected)")
    p.add_argument("project", help="project folder")
    _add_catalogue_args(p)
    p.add_argument("--h16", help="H16 catalogue file (Hou et al. 2016 table as published)")
    p.add_argument("--radius", type=float, default=DEFAULT_SIMBAD_RADIUS,
                   help="SIMBAD radius in arcsec, 5-300 (20)")
    p.add_argument("--h16-radius", type=float, default=DEFAULT_H16_RADIUS,
                   help="H16 radius in arcsec (5)")
    p.set_defaults(func=cmd_crossmatch)

    p = sub.add_parser("radius-scan", help="match counts for radii 5-300 arcsec: table and PNG")
    p.add_argument("project", help="project folder")
    _add_catalogue_args(p)
    p.add_argument("--radii", default=",".join(str(r) for r in SCAN_RADII))
    p.add_argument("--chosen", type=float, default=DEFAULT_SIMBAD_RADIUS,
                   help="radius marked on the plot")
    p.set_defaults(func=cmd_radius_scan)

    p = sub.add_parser("export", help="write the candidates (or rejected spectra) as VOTable, "
                       "CSV or ECSV with the run's settings")
    p.add_argument("project", help="project folder")
    p.add_argument("--out", default="candidates.vot",
                   help="file (.vot/.xml, .csv, .ecsv; default candidates.vot)")
    p.add_argument("--format", choices=list(EXPORT_FORMATS),
                   help="format (default from the suffix)")
    p.add_argument("--rejected", action="store_true", help="export the rejected spectra")
    p.add_argument("--where", default="", metavar="EXPR", help=WHERE_HELP)
    p.set_defaults(func=cmd_export)
