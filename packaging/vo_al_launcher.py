"""Entry script of the PyInstaller app folder (packaging/vo-al.spec).

PyInstaller runs its entry script as __main__, so it cannot be a module of the vo_al package
itself; this calls the same `vo_al.cli:main` as the `vo-al` console script.
"""

import multiprocessing
import sys

from vo_al.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # ingest uses worker processes
    sys.exit(main())
