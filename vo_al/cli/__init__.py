"""The command line, `vo-al`: a thin layer over the core (each command one core call).

- `commands`: the parser (each command module adds its commands) and `main`, the entry point
- `common`: what the commands share: `open_session`, `run_job` (text progress bar), `--set`
- `project`: create, settings, import-training, ingest
- `loop`: train, score, query, label, estimate, finish, status, candidates
- `demo`: generate, simulate, gui, demo
- `vo`: ssap, tap, harvest, vo-services; `crossmatch`: crossmatch, radius-scan, export;
  `samp`: samp status, samp send

Nothing here imports Qt: `vo-al gui` imports vo_al.gui when it runs.
"""

from vo_al.cli.commands import main

__all__ = ["main"]
