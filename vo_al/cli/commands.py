"""The `vo-al` command line: every step of the method, with progress bars.

Each subcommand is a thin call into vo_al.core; the GUI makes the same calls. This module builds
the parser from the command modules (project, loop, demo, vo, crossmatch, samp: each adds its
own commands) and runs one command, turning the core's typed errors into exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from vo_al.cli.crossmatch import add_crossmatch_commands
from vo_al.cli.demo import add_demo_commands
from vo_al.cli.loop import add_loop_commands
from vo_al.cli.project import add_project_commands
from vo_al.cli.samp import add_samp_commands
from vo_al.cli.spectra import add_spectra_commands
from vo_al.cli.vo import add_vo_commands
from vo_al.core.base.errors import VoAlError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vo-al", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    # the order of `vo-al --help`: a project's life, then the tools around it
    for add_commands in (add_project_commands, add_loop_commands, add_demo_commands,
                         add_spectra_commands, add_vo_commands, add_crossmatch_commands,
                         add_samp_commands):
        add_commands(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv or ["gui"])
    try:
        status = args.func(args)
    except VoAlError as exc:
        print(f"vo-al {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vo-al {args.command}: interrupted; everything acknowledged is saved",
              file=sys.stderr)
        return 130
    return status or 0          # a command may end non-zero without an error (preprocess)

