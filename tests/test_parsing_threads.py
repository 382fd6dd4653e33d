"""Spectra read on several threads at once (the harvest reads its downloads on its download
threads): every read succeeds, and no thread's warning filter outlives it or silences another's.

Without one lock around the library parse (`base.parsing`), CPython 3.11 fails numpy's
`ast.literal_eval` of dtype strings with "SystemError: AST constructor recursion depth
mismatch" when two threads parse at once (CI, python/cpython#106905), and
`warnings.catch_warnings` blocks on two threads restore each other's filters.
"""

import threading
import warnings

import numpy as np

from test_sdm import sdm_fits_bytes, sdm_votable_bytes
from vo_al.core.spectra.sdm import read_sdm_fits, read_sdm_votable

THREADS = 4
READS_PER_THREAD = 30


def test_sdm_reads_on_threads_all_succeed_and_leave_the_warning_filters_as_they_were():
    wavelength = np.linspace(3900.0, 9000.0, 800)
    flux = 1.0 + 0.1 * np.exp(-0.5 * ((wavelength - 6564.6) / 3.0) ** 2)
    documents = [(read_sdm_votable, sdm_votable_bytes(wavelength, flux,
                                                      serialization=serialization))
                 for serialization in ("tabledata", "binary", "binary2")]
    documents.append((read_sdm_fits, sdm_fits_bytes(wavelength, flux)))
    filters_before = list(warnings.filters)
    failures: list[str] = []
    fluxes: list[np.ndarray] = []

    def read_many(offset: int) -> None:
        for k in range(READS_PER_THREAD):
            reader, raw = documents[(k + offset) % len(documents)]
            try:
                fluxes.append(reader(raw, f"t{offset}-{k}", "memory").flux)
            except Exception as exc:   # noqa: BLE001 - the test reports every kind
                failures.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=read_many, args=(k,)) for k in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert len(fluxes) == THREADS * READS_PER_THREAD
    assert all(np.allclose(f, flux) for f in fluxes)
    assert list(warnings.filters) == filters_before
