"""Synthetic spectra written straight into a pool as preprocessed rows, without files: the paper
preset's pool (200 000 spectra would be ~15 GB of FITS) and its labelled set.

Each spectrum is the demo's (datasets.PoolLayout, datasets.training_spectrum) drawn with a
survey's S/N and radial velocities (survey.SurveyModel), made into the `Spectrum` its reader
would make of its file (vacuum wavelengths, the bad-pixel mask from ivar and andmask, the
header's metadata), and preprocessed by ingest's own code (pool.ingest.pool_rows) into the pool's
writer, one committed chunk at a time: a run that stops resumes after its last chunk. The truth
is kept beside the pool as make_pool keeps it (truth.csv: name,label,kind) for the oracle.
Rows have no file behind them: their `source` is empty.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vo_al.core.base.errors import Cancelled, PoolError
from vo_al.core.base.progress import CancelToken, Job, Progress
from vo_al.core.demo.datasets import (PoolLayout, child_rng, training_labels, training_name,
                                      training_spectrum, write_truth_csv)
from vo_al.core.demo.files import LamostHeader, PoolEntry
from vo_al.core.demo.kinds import KIND_LABEL
from vo_al.core.demo.observations import LamostSpectrum
from vo_al.core.demo.survey import SurveyModel
from vo_al.core.pool.ingest import pool_rows
from vo_al.core.pool.store import FinishedChunk, PoolStore
from vo_al.core.spectra.preprocess import air_to_vacuum
from vo_al.core.spectra.record import Spectrum, SpectrumMeta
from vo_al.core.spectra.settings import PreprocessSettings

CHUNK_ROWS = 1000                  # spectra per committed chunk


def pool_layout(n: int, survey: SurveyModel, seed: int, target_fraction: float) -> PoolLayout:
    """The kinds, plates and seeds of a rows pool (as make_pool draws them from its seed)."""
    return PoolLayout.draw(n, np.random.default_rng(seed), seed, target_fraction, survey.mix)


def pool_spectrum(layout: PoolLayout, i: int, survey: SurveyModel
                  ) -> tuple[LamostSpectrum, LamostHeader]:
    """Pool spectrum i with the survey's S/N and radial velocity, and its file's header."""
    child = layout.child(i)
    snr, rv = survey.snr(child, layout.kinds[i]), survey.rv(child)
    return layout.spectrum(i, child, snr=snr, rv=rv)


def lamost_record(layout: PoolLayout, i: int, survey: SurveyModel) -> Spectrum:
    """Pool spectrum i as the LAMOST reader makes it of its file (readers._lamost_spectrum)."""
    spectrum, header = pool_spectrum(layout, i, survey)
    flux, ivar = spectrum.flux.astype(np.float64), spectrum.ivar.astype(np.float64)
    mask = ~np.isfinite(flux) | ~(ivar > 0) | (spectrum.andmask != 0)
    return Spectrum(spectrum.wavelength, flux, ivar, mask, "lamost", header.meta())


def ccd700_spectrum(i: int, label: int, seed: int, survey: SurveyModel
                    ) -> tuple[np.ndarray, np.ndarray, SpectrumMeta]:
    """Training spectrum i with the survey's radial velocity: (air wavelength, flux, header)."""
    child = child_rng(seed, i)
    return training_spectrum(i, label, child, rv=survey.rv(child))


def ccd700_record(i: int, label: int, seed: int, survey: SurveyModel) -> Spectrum:
    """Training spectrum i as the CCD700 reader makes it of its file: air → vacuum, no ivar."""
    wl_air, flux, meta = ccd700_spectrum(i, label, seed, survey)
    flux = flux.astype(np.float64)
    return Spectrum(air_to_vacuum(wl_air), flux, None, ~np.isfinite(flux), "ccd700", meta,
                    medium="air")


def _append_chunk(out, key: str, spectra: list, settings: PreprocessSettings) -> int:
    """Preprocess and commit one chunk; returns the rows added. A spectrum whose preprocessing
    raised (not a verdict on the spectrum: a bug) stops the run."""
    rows, metas, rejected = pool_rows(spectra, settings)
    failed = [(name, why) for name, why, remember in rejected if not remember]
    if failed:
        raise PoolError(f"{out.pool.folder}: preprocessing failed on synthetic spectra "
                        f"{failed[:3]}")
    out.append(rows, metas if len(rows) else None,
               rejected=[(name, why) for name, why, _ in rejected],
               chunk=FinishedChunk(key, len(spectra), 0))
    return len(rows)


def write_pool_rows(pool: PoolStore, truth_csv: Path, n: int, survey: SurveyModel, seed: int,
                    target_fraction: float, settings: PreprocessSettings,
                    cancel: CancelToken | None = None) -> Job[dict]:
    """Job: n LAMOST-like pool spectra of `survey` as rows of `pool`, their truth in `truth_csv`
    (written first: it follows from the seed alone). Chunks already committed are skipped."""
    layout = pool_layout(n, survey, seed, target_fraction)
    truth_csv.parent.mkdir(parents=True, exist_ok=True)
    write_truth_csv(truth_csv, [PoolEntry(layout.file_name(i), KIND_LABEL[kind], kind)
                                for i, kind in enumerate(layout.kinds)])
    added = yield from _write_chunks(
        pool, n, settings, cancel, f"synthetic-pool:{seed}:{n}", "synthetic pool",
        "synthetic pool spectra", lambda i: lamost_record(layout, i, survey), reserve=True)
    return {"spectra": n, "added": added, "rows": len(pool), "rejected": len(pool.rejected())}


def _write_chunks(pool: PoolStore, n: int, settings: PreprocessSettings,
                  cancel: CancelToken | None, key_prefix: str, what: str, spectra_text: str,
                  record, reserve: bool = False) -> Job[int]:
    """Job: spectra `record(i)` for i < n appended as rows of `pool`, CHUNK_ROWS at a time, each
    chunk committed under its own key (a stopped run resumes with the chunks not done);
    returns the rows added."""
    starts = range(0, n, CHUNK_ROWS)
    keys = [f"{key_prefix}:{start}" for start in starts]
    added = 0
    with pool.writer("ingest", settings) as out:
        if reserve:
            out.reserve(n)
        done = out.chunks_done(keys)
        for start, key in zip(starts, keys):
            stop = min(start + CHUNK_ROWS, n)
            if key not in done:
                if cancel is not None and cancel.cancelled:
                    raise Cancelled(f"{what} cancelled after {start} of {n} spectra")
                added += _append_chunk(out, key, [record(i) for i in range(start, stop)],
                                       settings)
            yield Progress("rows", stop, n, f"{spectra_text}, preprocessed")
    return added


def write_training_rows(pool: PoolStore, n: int, survey: SurveyModel, seed: int,
                        settings: PreprocessSettings, cancel: CancelToken | None = None
                        ) -> Job[dict[str, int]]:
    """Job: n CCD700-like labelled spectra (the training-set classes) as rows of `pool`; returns
    {name: label} of the rows the pool holds."""
    labels = training_labels(n, np.random.default_rng(seed))
    yield from _write_chunks(pool, n, settings, cancel, f"synthetic-training:{seed}:{n}",
                             "synthetic training set", "synthetic training spectra",
                             lambda i: ccd700_record(i, int(labels[i]), seed, survey))
    label_of = {training_name(i): int(label) for i, label in enumerate(labels)}
    names = pool.metadata(columns=["name"])["name"]
    return {str(name): label_of[str(name)] for name in names}
