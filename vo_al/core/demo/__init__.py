"""The offline demo and the paper's experiment on synthetic data (Škoda et al. 2020).

Synthetic data, lowest first (each module imports only those above it):

* lines        line lists, a line or molecular band, drawing a line on a grid, Planck continuum
* stars        spectral types, the star model and its normalised profile, emission of targets,
               active stars' Hα cores
* instruments  LAMOST and CCD700 grids, resolutions, noise model, telluric lines
* kinds        the kinds of each class, broken kinds, the training and pool mixes (PoolMix)
* artefacts    what the pool holds that looks like emission: spikes, joins, gaps, nebular lines,
               OH sky residuals
* observations one spectrum of a kind through an instrument (lamost_spectrum, make_ccd700_...)
* survey       the paper preset's survey: its mix of kinds, S/N and radial velocities
* files        LAMOST-like and CCD700-like FITS writers, designations, broken files
* datasets     training and pool folders (make_training_set, make_pool), in-memory arrays
* rows         the paper preset's spectra written straight into a pool as preprocessed rows

Using them:

* catalogues   SIMBAD-like and H16-like catalogues of the demo's synthetic sky
* oracle       a simulated expert answering from the true labels
* simulate     the experiment (active learning vs the baseline), the comparison of query
               strategies, the demo's project and the paper preset

This package re-exports the synthetic-data API below; importing it loads numpy and scipy, never
the learning stack (simulate imports that, and is not imported here).
"""

from vo_al.core.demo.datasets import (SyntheticArrays, exact_counts, make_pool, make_training_set,
                                      pool_arrays, pool_kinds, training_arrays, training_labels)
from vo_al.core.demo.files import (LamostHeader, PoolEntry, designation_for, write_broken_files,
                                   write_ccd700_fits, write_lamost_fits)
from vo_al.core.demo.kinds import (BROKEN_KINDS, BROKEN_LABEL, KIND_LABEL, NON_TARGET_KINDS,
                                   TARGET_KINDS, PoolMix)
from vo_al.core.demo.observations import (LamostSpectrum, lamost_spectrum, make_ccd700_spectrum,
                                          make_lamost_spectrum)

__all__ = [
    "BROKEN_KINDS", "BROKEN_LABEL", "KIND_LABEL", "NON_TARGET_KINDS", "TARGET_KINDS",
    "LamostHeader", "LamostSpectrum", "PoolEntry", "PoolMix", "SyntheticArrays",
    "designation_for", "exact_counts", "lamost_spectrum", "make_ccd700_spectrum",
    "make_lamost_spectrum", "make_pool", "make_training_set", "pool_arrays", "pool_kinds",
    "training_arrays", "training_labels", "write_broken_files", "write_ccd700_fits",
    "write_lamost_fits",
]
