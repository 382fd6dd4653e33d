"""`vo-al preprocess`: what the model sees of some files, and why a file cannot be used.

Wired into the parser by `add_spectra_commands(sub)` (vo_al.cli.commands).
"""

from __future__ import annotations

import sys
from pathlib import Path

from vo_al.cli.common import add_command


def medium_argument(parser) -> None:
    """--medium: the one spelling of the per-import medium option (ingest, harvest, preprocess,
    import-training)."""
    parser.add_argument("--medium", choices=["air", "vacuum"],
                        help="wavelengths of files that do not say whether they are in air or "
                             "vacuum (a file's own statement always wins; without this such "
                             "files are rejected, saying so)")


def cmd_preprocess(args):
    import numpy as np

    from vo_al.core.spectra.inspect import plot_prepared, prepare_files

    settings = limits = None
    if args.project:
        from vo_al.cli.common import open_session

        project = open_session(args.project).project
        settings, limits = project.settings.preprocess, project.settings.limits
    prepared = prepare_files(args.files, settings, limits, args.medium)
    out = Path(args.out)
    np.save(out, np.stack([p.row for p in prepared]))
    for item in prepared:
        print(item.describe())
    failed = [p for p in prepared if not p.ok]
    print(f"{len(prepared) - len(failed)} of {len(prepared)} files usable -> {out} "
          f"({len(prepared)} rows in the order given; rejected rows are NaN)")
    if args.plot:
        print(f"plot -> {plot_prepared(prepared, args.plot, settings)}")
    if failed and not args.keep_going:
        print(f"vo-al preprocess: {len(failed)} file(s) rejected (--keep-going to exit 0)",
              file=sys.stderr)
        return 1
    return 0


def add_spectra_commands(sub) -> None:
    p = add_command(sub, "preprocess", cmd_preprocess,
                    "preprocess spectrum files as the model sees them: one row per file, "
                    "with the reader, air/vacuum and any reject reason", project=False)
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--out", required=True, metavar="OUT.npy", help="the rows (N x n_points)")
    p.add_argument("--plot", metavar="OUT.png", help="a picture of the usable rows")
    p.add_argument("--project", help="use this project's preprocessing and limits settings")
    p.add_argument("--keep-going", action="store_true",
                   help="exit 0 even when some files are rejected")
    medium_argument(p)
