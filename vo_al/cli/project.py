"""The commands that make and fill a project: create, settings, import-training, ingest.

Wired into the parser by `add_project_commands(sub)` (vo_al.cli.commands).
"""

from __future__ import annotations

import json
from pathlib import Path

from vo_al.cli.common import add_command, apply_sets, open_session, parse_sets, run_job
from vo_al.cli.spectra import medium_argument


def cmd_create(args):
    from vo_al.core.session.project import Project
    from vo_al.core.session.settings import ProjectSettings

    settings = apply_sets(ProjectSettings.default(), args.set)
    pool = Path(args.pool) if args.pool else Path(args.project) / "pool"
    project = Project.create(args.project, pool, settings)
    print(f"created project {project.folder} (pool {project.pool_folder})")


def cmd_settings(args):
    project = open_session(args.project).project
    if args.set:
        project.change_settings(**parse_sets(args.set))
    print(project.settings.to_json())


def cmd_import_training(args):
    from vo_al.core.base.errors import ParameterError

    project = open_session(args.project).project
    labels = args.labels_option or args.labels
    if args.ssap:
        if args.folder or not labels or args.labels:
            raise ParameterError("import-training", args.folder or args.labels,
                                 "--ssap SERVICE --labels labels.csv (no folder)")
        from vo_al.core.vo.services import load_services, resolve_service

        service = resolve_service(args.ssap, "ssap", load_services(project=args.project))
        result = run_job(project.import_training_from_service(
            service, Path(labels), scheme=args.scheme, form=args.form, medium=args.medium,
            workers=args.workers))
        print(f"{result['labelled']} labelled spectra from {result['service']}: "
              f"{result['matched']} of {result['labels']} label ids found "
              f"({result['ingested']} new, {result['skipped']} already imported, "
              f"{result['failed']} failed); {result['not_found']} ids not on the service "
              f"-> {result['not_found_file']}")
        for did, reason in result["failures"]:
            print(f"  failed: {did}: {reason}")
        return
    if not args.folder or not labels:
        raise ParameterError("import-training", args.folder, "FOLDER LABELS.csv, or --ssap "
                             "SERVICE --labels LABELS.csv")
    result = run_job(project.import_training_set(Path(args.folder), Path(labels),
                                                 workers=args.workers, scheme=args.scheme,
                                                 medium=args.medium))
    print(json.dumps(result))


def cmd_ingest(args):
    from vo_al.core.pool.ingest import ingest_folder

    session = open_session(args.project)
    project = session.project
    report = run_job(session.grow_pool("ingest", ingest_folder(
        project.pool, Path(args.folder), settings=project.settings.preprocess,
        workers=args.workers, limits=project.settings.limits, medium=args.medium)))
    print(f"added {report.added}, skipped {report.skipped} already in the pool, "
          f"rejected {len(report.rejected)}; pool holds {len(project.pool)} spectra")
    for path, reason in report.rejected[:20]:
        print(f"  rejected {path}: {reason}")
    if len(report.rejected) > 20:
        print(f"  ... and {len(report.rejected) - 20} more (see `vo-al status`)")


def add_project_commands(sub) -> None:
    """Add `create`, `settings`, `import-training` and `ingest` to an argparse subparsers object."""
    p = add_command(sub, "create", cmd_create, "create a project folder")
    p.add_argument("--pool", help="pool folder (default: PROJECT/pool); may be shared")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="a method setting")
    p = add_command(sub, "settings", cmd_settings, "show or change the project's method settings")
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
    p = add_command(sub, "import-training", cmd_import_training,
                    "import the labelled training set: a folder of spectra and a CSV "
                    "name,label, or straight from an SSAP service (--ssap)")
    p.add_argument("folder", nargs="?", help="a folder of spectrum files")
    p.add_argument("labels", nargs="?", help="the CSV id,label (ids: file names or DIDs)")
    p.add_argument("--labels", dest="labels_option", metavar="LABELS.csv",
                   help="the labels CSV (with --ssap)")
    p.add_argument("--ssap", metavar="SERVICE",
                   help="fetch the labelled spectra from this SSAP service (name or URL), "
                        "matching the labels' ids to its publisher DIDs")
    p.add_argument("--form", choices=["native", "sdm-votable", "sdm-fits"],
                   help="with --ssap: the form to download (DataLink); default: the query's "
                        "access URLs")
    medium_argument(p)
    p.add_argument("--scheme", default="vo-al", choices=["vo-al", "ondrejov"],
                   help="class numbering of the CSV: vo-al 0 non-target/1 single/2 double; "
                        "ondrejov 0 emission/1 absorption/2 unknown (skipped)/3 double")
    p.add_argument("--workers", type=int, default=4,
                   help="reading processes (a folder) or concurrent downloads (--ssap)")
    p = add_command(sub, "ingest", cmd_ingest,
                    "add a folder of spectra (FITS, SDM VOTables, what specutils reads) to the "
                    "pool (resumable)")
    p.add_argument("folder")
    p.add_argument("--workers", type=int, default=2)
    medium_argument(p)
