"""Preprocessing of METHOD.md (paper Sect. 3.2), vectorised over a batch of spectra.

air -> vacuum (CCD700 only, done by the reader), Gaussian degradation of CCD700 resolution
(sigma = 7 px, edges extended), linear interpolation onto 140 points over 6519-6732 A, and min-max
scaling of each spectrum to [-1, 1]. A spectrum that cannot give a meaningful row is rejected
with a reason instead of being turned into garbage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from vo_al.core.base.errors import UnusableSpectrumError
from vo_al.core.spectra.settings import PreprocessSettings
from vo_al.core.spectra.record import Spectrum

HALPHA_VAC = 6564.614   # Angstrom, vacuum (6562.801 in air)
HEI_6678_VAC = 6679.995


def air_to_vacuum(wavelength_air):
    """Air -> vacuum wavelength in Angstrom (Heiter 2014 / VALD formula of METHOD.md)."""
    wl = np.asarray(wavelength_air, dtype=np.float64)
    s2 = (1e4 / wl) ** 2
    n = (1.0 + 8.336624212083e-5 + 2.408926869968e-2 / (130.1065924522 - s2)
         + 1.599740894897e-4 / (38.92568793293 - s2))
    return wl * n


def window_grid(settings: PreprocessSettings | None = None) -> np.ndarray:
    s = settings or PreprocessSettings()
    return np.linspace(s.window_min, s.window_max, s.n_points)


@dataclass
class BatchResult:
    """Rows of a preprocessed batch; rows with a reason are NaN and must not be used."""

    rows: np.ndarray               # (n, n_points) float32
    reasons: list                  # None where the row is good, else why it was rejected

    @property
    def good(self) -> np.ndarray:
        return np.array([r is None for r in self.reasons], dtype=bool)


def _fill_nonfinite(flux: np.ndarray, reasons: list) -> np.ndarray:
    """Replace NaN/inf pixels by linear interpolation over the finite ones (per row)."""
    bad = ~np.isfinite(flux)
    if not bad.any():
        return flux
    flux = flux.copy()
    for i in np.flatnonzero(bad.any(axis=1)):
        ok = ~bad[i]
        if ok.sum() < 2:
            reasons[i] = reasons[i] or "flux is all NaN/inf in the window"
            flux[i] = 0.0
            continue
        x = np.arange(flux.shape[1])
        flux[i, bad[i]] = np.interp(x[bad[i]], x[ok], flux[i, ok])
    return flux


def interpolate_rows(wavelength: np.ndarray, flux: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """`numpy.interp` of every row at `grid`, in one searchsorted over the whole batch.

    Rows are shifted apart by a per-row offset so that the concatenation stays sorted; outside a
    row's range the edge value is held, exactly as numpy.interp does.
    """
    n, length = flux.shape
    lo = min(wavelength[:, 0].min(), grid[0])
    span = max(wavelength[:, -1].max(), grid[-1]) - lo + 1.0
    offset = (np.arange(n) * span)[:, None]
    flat_w = (wavelength - lo + offset).ravel()
    queries = (grid[None, :] - lo + offset)
    idx = np.searchsorted(flat_w, queries.ravel(), side="right").reshape(n, -1)
    idx -= (np.arange(n) * length)[:, None]
    idx = np.clip(idx, 1, length - 1)
    rows = np.arange(n)[:, None]
    w0, w1 = wavelength[rows, idx - 1], wavelength[rows, idx]
    f0, f1 = flux[rows, idx - 1], flux[rows, idx]
    t = np.clip((grid[None, :] - w0) / (w1 - w0), 0.0, 1.0)
    return f0 + t * (f1 - f0)


def preprocess_batch(wavelength: np.ndarray, flux: np.ndarray, sigma_px: float,
                     settings: PreprocessSettings | None = None) -> BatchResult:
    """Preprocess n spectra of equal length L: wavelength (n, L) or (L,), flux (n, L).

    `sigma_px` is the Gaussian degradation in pixels (7 for CCD700, 0 for LAMOST).
    """
    s = settings or PreprocessSettings()
    flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
    wavelength = np.asarray(wavelength, dtype=np.float64)
    if wavelength.ndim == 1:
        wavelength = np.broadcast_to(wavelength, flux.shape)
    if wavelength.shape != flux.shape:
        raise ValueError(f"wavelength {wavelength.shape} and flux {flux.shape} differ")
    n, length = flux.shape
    reasons: list = [None] * n
    if length < 2:
        return BatchResult(np.full((n, s.n_points), np.nan, np.float32),
                           ["fewer than 2 pixels"] * n)

    increasing = np.all(np.diff(wavelength, axis=1) > 0, axis=1)
    for i in np.flatnonzero(~increasing):
        reasons[i] = "wavelength axis is not strictly increasing"
    wl_ok = np.where(increasing[:, None], wavelength, np.linspace(1.0, 2.0, length)[None, :])

    # coverage of the window
    first, last = wl_ok[:, 0], wl_ok[:, -1]
    covered = (np.minimum(last, s.window_max) - np.maximum(first, s.window_min))
    coverage = np.clip(covered, 0, None) / (s.window_max - s.window_min)
    for i in np.flatnonzero(increasing & (coverage < s.min_window_coverage)):
        reasons[i] = (f"covers {coverage[i]:.0%} of the {s.window_min:.0f}-{s.window_max:.0f} A "
                      f"window (spectrum spans {first[i]:.0f}-{last[i]:.0f} A)")

    # Only pixels near the window matter: crop (with the blur's reach as margin) before the
    # NaN repair, blur and interpolation, which makes a LAMOST batch several times faster.
    margin = int(np.ceil(4.0 * sigma_px)) + 2       # gaussian_filter1d truncates at 4 sigma
    start = max(0, int(np.searchsorted(wl_ok.max(axis=0), s.window_min)) - margin)
    stop = min(length, int(np.searchsorted(wl_ok.min(axis=0), s.window_max)) + margin)
    if stop - start >= 2:
        wl_ok, flux = wl_ok[:, start:stop], flux[:, start:stop]

    flux = _fill_nonfinite(flux, reasons)
    if sigma_px > 0:
        flux = gaussian_filter1d(flux, sigma_px, axis=1, mode="nearest")

    grid = window_grid(s)
    rows = interpolate_rows(wl_ok, flux, grid)

    lo, hi = rows.min(axis=1), rows.max(axis=1)
    scale = hi - lo
    flat = ~(scale > 1e-12 * np.maximum(np.abs(hi), np.abs(lo))) | (scale == 0)
    for i in np.flatnonzero(flat):
        reasons[i] = reasons[i] or "flux is constant over the window"
    safe = np.where(flat, 1.0, scale)
    out = (2.0 * (rows - lo[:, None]) / safe[:, None] - 1.0).astype(np.float32)
    bad = np.array([r is not None for r in reasons])
    out[bad] = np.nan
    return BatchResult(out, reasons)


def sigma_for(spectrum: Spectrum, settings: PreprocessSettings | None = None) -> float:
    s = settings or PreprocessSettings()
    return s.ccd700_sigma_px if spectrum.instrument == "ccd700" else 0.0


def preprocess_spectrum(spectrum: Spectrum, settings: PreprocessSettings | None = None) -> np.ndarray:
    """The per-spectrum form: one row of `n_points` float32, or UnusableSpectrumError."""
    result = preprocess_batch(spectrum.wavelength, spectrum.flux, sigma_for(spectrum, settings),
                              settings)
    if result.reasons[0] is not None:
        raise UnusableSpectrumError(spectrum.meta.name or "spectrum", result.reasons[0])
    return result.rows[0]


def preprocess_spectra(spectra: list[Spectrum],
                       settings: PreprocessSettings | None = None) -> BatchResult:
    """Preprocess a list of spectra, batching those that share instrument and length."""
    s = settings or PreprocessSettings()
    out = np.full((len(spectra), s.n_points), np.nan, np.float32)
    reasons: list = [None] * len(spectra)
    groups: dict = {}
    for i, sp in enumerate(spectra):
        groups.setdefault((sp.instrument, sp.flux.shape[0]), []).append(i)
    for (instrument, _), idx in groups.items():
        wl = np.stack([spectra[i].wavelength for i in idx])
        fl = np.stack([spectra[i].flux for i in idx])
        res = preprocess_batch(wl, fl, sigma_for(spectra[idx[0]], s), s)
        out[idx] = res.rows
        for j, i in enumerate(idx):
            reasons[i] = res.reasons[j]
    return BatchResult(out, reasons)
