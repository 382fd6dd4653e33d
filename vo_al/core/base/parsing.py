"""Handing bytes to astropy, numpy or specutils from several threads at once.

Two process-wide states make such parsing unsafe in threads (the harvest reads its downloads on
its download threads; the GUI reads on workers while SAMP's server thread reads tables):

* ``warnings.catch_warnings()`` swaps the ``warnings`` module's filter list and puts it back on
  exit; two threads inside it at once restore each other's filters, so a warning meant to be
  silenced is printed (seen: astropy's UnitsWarning on 'Angstrom' from eight threads reading
  SDM VOTables) and a filter can outlive its block.
* CPython 3.11 keeps the AST constructor's recursion depth per interpreter, not per thread
  (python/cpython#106905): numpy parses dtype strings such as '(2,)f8' (astropy's VOTable and
  FITS table columns) and .npy headers with ``ast.literal_eval``, and two threads doing it at
  once fail with "SystemError: AST constructor recursion depth mismatch" (seen in CI, a harvest
  of DaCHS SDM VOTables on four threads). The app also opens pools in the window while a worker
  reads score files (`npy.open_npy`, `pool.segments.segment_shape`).

`LIBRARY_LOCK` is the one process-wide lock for all of these; `library_parse` holds it for a
whole parse and silences the warning categories it is given. Parsing a spectrum is bound by the GIL anyway: the downloads around it
stay concurrent, and the lock costs the harvest nothing it had.
"""

from __future__ import annotations

import threading
import warnings
from contextlib import contextmanager

LIBRARY_LOCK = threading.RLock()        # re-entrant: a reader may fall back to another inside


@contextmanager
def library_parse(*ignored: type[Warning]):
    """Hold the library-parse lock, with warnings of the `ignored` categories silenced (none
    given: every warning silenced)."""
    with LIBRARY_LOCK, warnings.catch_warnings():
        if ignored:
            for category in ignored:
                warnings.simplefilter("ignore", category)
        else:
            warnings.simplefilter("ignore")
        yield
