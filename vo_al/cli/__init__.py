"""The command line, `vo-al`: a thin layer over the core (each command one core call)."""

from vo_al.cli.main import main

__all__ = ["main"]
