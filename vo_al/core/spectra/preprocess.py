"""Preprocessing of METHOD.md (paper Sect. 3.2), vectorised over a batch of spectra.

air -> vacuum (CCD700 only, done by the reader), Gaussian degradation of CCD700 resolution
(sigma = 7 px, edges extended), linear interpolation onto 140 points over 6519-6732 A, and min-max
scaling of each spectrum to [-1, 1]. A spectrum that cannot give a meaningful row is rejected
with a reason instead of being turned into garbage: an axis that is not finite and increasing,
too little coverage of the window, too little usable data in it (see `preprocess_batch`), flux
that is constant over it, or flux too large to scale.

Every step works on each spectrum alone (its own crop around the window, its own search of the
grid in its own wavelengths), so that a batch gives each spectrum exactly, bit for bit, the row
and the reason it has alone, whatever else is in the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy.ndimage import gaussian_filter1d

from vo_al.core.base.errors import UnusableSpectrumError
from vo_al.core.spectra.settings import PreprocessSettings
from vo_al.core.spectra.record import Spectrum

# Fewest usable pixels in the window for a row, as few as the shortest row (n_points >= 8):
# fewer (an absurd wavelength axis puts 0-2 pixels there) would be a ramp between a handful of
# pixels, not a spectrum. LAMOST has ~140 pixels in the default window, CCD700 ~830.
MIN_WINDOW_PIXELS = 8


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


def _flat(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Where max `hi` and min `lo` are equal to float64 precision (or not numbers)."""
    scale = hi - lo
    return ~(scale > 1e-12 * np.maximum(np.abs(hi), np.abs(lo))) | (scale == 0)


def _percent(fraction: float) -> str:
    """A fraction as a percentage rounded down, so that a rejected one never reads as enough."""
    return f"{np.floor(fraction * 1000) / 10:g}%"


def _too_little_data(n_window: int, n_usable: int, s: PreprocessSettings, why) -> str | None:
    """Why the window's data is not enough for a row (None if it is); `why()` says, for a
    reason, how many of the window's pixels are unusable for which cause."""
    window = f"{s.window_min:.0f}-{s.window_max:.0f} A window"
    if n_window < MIN_WINDOW_PIXELS:
        return (f"only {n_window} pixels lie in the {window} (the wavelength axis is that "
                f"coarse there): at least {MIN_WINDOW_PIXELS} usable pixels are needed")
    if n_usable / n_window < s.min_usable_fraction:
        return (f"only {_percent(n_usable / n_window)} of the {n_window} pixels in the {window} "
                f"are usable ({why()}); min_usable_fraction is {s.min_usable_fraction * 100:g}%")
    if n_usable < MIN_WINDOW_PIXELS:
        return (f"only {n_usable} usable pixels in the {window} ({why()}): at least "
                f"{MIN_WINDOW_PIXELS} are needed")
    return None


def _unusable_counts(window: np.ndarray, finite: np.ndarray, ivar_bad, masked) -> str:
    """'N with NaN/inf flux, M with ivar <= 0 or NaN, K flagged by the mask' for one row's
    window pixels (a pixel can be in more than one)."""
    causes = [(~finite, "with NaN/inf flux"), (ivar_bad, "with ivar <= 0 or NaN"),
              (masked, "flagged by the mask")]
    counts = [(np.count_nonzero(window & pixels), what) for pixels, what in causes
              if pixels is not None]
    return ", ".join(f"{count} {what}" for count, what in counts if count)


def _per_row(values, name: str, n: int, length: int) -> list | None:
    """ivar or mask as n per-row arrays (or None), from an (n, L) or (L,) array or a list."""
    if values is None:
        return None
    rows = [values] if isinstance(values, np.ndarray) and values.ndim == 1 else list(values)
    shapes = {np.shape(v) for v in rows if v is not None}
    if len(rows) != n or not shapes <= {(length,)}:
        raise ValueError(f"{name} must be one array of {length} values per spectrum (or None), "
                         f"not {len(rows)} of shapes {sorted(shapes)}")
    return rows


def _cropped_rows(values, start: int, stop: int, absent, bad) -> np.ndarray | None:
    """(n, stop - start) bool: `bad` of the rows' values in [start, stop), a row without values
    taken as all `absent`; None when no row has any (`values` from `_per_row`)."""
    if values is None or all(v is None for v in values):
        return None
    filler = np.full(stop - start, absent)
    return bad(np.stack([filler if v is None else np.asarray(v)[start:stop] for v in values]))


def preprocess_batch(wavelength: np.ndarray, flux: np.ndarray, sigma_px: float,
                     settings: PreprocessSettings | None = None, *, ivar=None,
                     mask=None) -> BatchResult:
    """Preprocess n spectra of equal length L: wavelength (n, L) or (L,), flux (n, L), and
    optionally their inverse variance and bad-pixel mask (True = flagged): (n, L) arrays, or n
    arrays of L values or None (a spectrum without one).

    `sigma_px` is the Gaussian degradation in pixels (7 for CCD700, 0 for LAMOST). A pixel is
    usable where its flux is finite, its ivar > 0 (where there is an ivar) and the mask does not
    flag it; a spectrum is rejected when fewer than `settings.min_usable_fraction` of its pixels
    in the window are usable (or fewer than MIN_WINDOW_PIXELS), or when its usable flux there is
    constant. Non-finite pixels are interpolated from their finite neighbours (in pixel index);
    with `settings.mask_flagged_pixels` every unusable pixel is, else flagged pixels are used as
    they are, as the paper did.
    """
    s = settings or PreprocessSettings()
    flux = np.atleast_2d(np.asarray(flux, dtype=np.float64))
    wavelength = np.asarray(wavelength, dtype=np.float64)
    if wavelength.ndim == 1:
        wavelength = np.broadcast_to(wavelength, flux.shape)
    n, length = flux.shape
    if wavelength.shape != flux.shape:
        raise ValueError(f"wavelength {wavelength.shape} and flux {flux.shape} differ")
    ivar, mask = _per_row(ivar, "ivar", n, length), _per_row(mask, "mask", n, length)
    if length < 2 or n == 0:
        return BatchResult(np.full((n, s.n_points), np.nan, np.float32),
                           ["fewer than 2 pixels"] * n)
    # overflow and NaN are looked for explicitly, row by row, and end in a reason
    with np.errstate(all="ignore"):
        return _preprocess(wavelength, flux, ivar, mask, sigma_px, s)


def _preprocess(wavelength, flux, ivar, mask, sigma_px: float,
                s: PreprocessSettings) -> BatchResult:
    n, length = flux.shape
    reasons: list = [None] * n

    # a strictly increasing row with finite ends is finite throughout (NaN fails the test)
    increasing = (np.isfinite(wavelength[:, 0]) & np.isfinite(wavelength[:, -1])
                  & np.all(wavelength[:, 1:] > wavelength[:, :-1], axis=1))
    wl_ok = wavelength
    if not increasing.all():
        wl_ok = np.array(wavelength)
        wl_ok[~increasing] = np.linspace(1.0, 2.0, length)
        for i in np.flatnonzero(~increasing):
            reasons[i] = ("wavelength axis is not strictly increasing"
                          if np.isfinite(wavelength[i]).all()
                          else "wavelength axis has NaN or infinite values")

    # coverage of the window
    first, last = wl_ok[:, 0], wl_ok[:, -1]
    covered = (np.minimum(last, s.window_max) - np.maximum(first, s.window_min))
    coverage = np.clip(covered, 0, None) / (s.window_max - s.window_min)
    for i in np.flatnonzero(increasing & (coverage < s.min_window_coverage)):
        reasons[i] = (f"covers {coverage[i]:.0%} of the {s.window_min:.0f}-{s.window_max:.0f} A "
                      f"window (spectrum spans {first[i]:.0f}-{last[i]:.0f} A)")

    # Only pixels near the window matter: crop (with the blur's reach as margin) before the
    # repair, blur and interpolation, which makes a LAMOST batch several times faster. Each row
    # has its own crop [lo, hi) (what it has alone); the batch keeps their union, and no step
    # reads a row outside its own crop (the blur's reach from its used pixels stays inside).
    margin = int(np.ceil(4.0 * sigma_px)) + 2       # gaussian_filter1d truncates at 4 sigma
    lo = np.maximum(np.array([r.searchsorted(s.window_min) for r in wl_ok]) - margin, 0)
    hi = np.minimum(np.array([r.searchsorted(s.window_max) for r in wl_ok]) + margin,
                    length)                         # hi - lo >= min(length, margin) >= 2
    start, stop = int(lo.min()), int(hi.max())
    lo, hi = lo - start, hi - start
    wl_c, fl_c = wl_ok[:, start:stop], flux[:, start:stop]
    ivar_bad = _cropped_rows(ivar, start, stop, 1.0, lambda v: ~(v > 0))
    masked = _cropped_rows(mask, start, stop, False, lambda v: v.astype(bool))

    finite = np.isfinite(fl_c)
    usable = finite.copy()
    for flags in (ivar_bad, masked):
        if flags is not None:
            usable &= ~flags
    in_window = (wl_c >= s.window_min) & (wl_c <= s.window_max)
    use_window = in_window & usable
    n_window = np.count_nonzero(in_window, axis=1)
    n_usable = np.count_nonzero(use_window, axis=1)
    flat_window = _flat(fl_c.min(axis=1, where=use_window, initial=np.inf),
                        fl_c.max(axis=1, where=use_window, initial=-np.inf))
    for i in range(n):
        if reasons[i] is None:
            reasons[i] = _too_little_data(
                int(n_window[i]), int(n_usable[i]), s,
                partial(_unusable_counts, in_window[i], finite[i],
                        None if ivar_bad is None else ivar_bad[i],
                        None if masked is None else masked[i]))
        if reasons[i] is None and flat_window[i]:
            # the margin pixels alone would make a ramp or a spike of it
            reasons[i] = "flux is constant over the window"
    ok = np.array([r is None for r in reasons])

    # Repair, in pixel index from the row's own good pixels in its crop: the non-finite pixels,
    # and with mask_flagged_pixels every unusable one (the window holds >= 2 usable ones here).
    repair = ~(usable if s.mask_flagged_pixels else finite)
    todo = [i for i in np.flatnonzero(ok) if repair[i, lo[i]:hi[i]].any()]
    if todo:
        fl_c = np.array(fl_c)
        for i in todo:
            row, bad = fl_c[i, lo[i]:hi[i]], repair[i, lo[i]:hi[i]]
            x = np.arange(bad.size)
            row[bad] = np.interp(x[bad], x[~bad], row[~bad])

    if sigma_px > 0:
        fl_c = gaussian_filter1d(fl_c, sigma_px, axis=1, mode="nearest")

    # linear interpolation at the grid, edge values held as numpy.interp does. Each row is
    # searched in its own wavelengths: one offset axis for the whole batch (one searchsorted)
    # loses float64 precision when a row reaches 1e42 A, and with it its neighbours' rows.
    grid = window_grid(s)
    idx = np.ones((n, grid.size), np.intp)
    for i in np.flatnonzero(ok):
        idx[i] = wl_c[i].searchsorted(grid, side="right")
    idx = np.clip(idx, (lo + 1)[:, None], (hi - 1)[:, None])
    at = np.arange(n)[:, None]
    w0, w1 = wl_c[at, idx - 1], wl_c[at, idx]
    f0, f1 = fl_c[at, idx - 1], fl_c[at, idx]
    t = np.clip((grid[None, :] - w0) / (w1 - w0), 0.0, 1.0)
    rows = f0 + t * (f1 - f0)

    low, high = rows.min(axis=1), rows.max(axis=1)
    flat = _flat(low, high)
    safe = np.where(flat, 1.0, high - low)
    out = (2.0 * (rows - low[:, None]) / safe[:, None] - 1.0).astype(np.float32)
    overflow = ~np.isfinite(rows).all(axis=1) | ~np.isfinite(out).all(axis=1)
    for i in np.flatnonzero(overflow | flat):
        if reasons[i] is None:
            reasons[i] = ("flux values are too large to resample and scale (float overflow)"
                          if overflow[i] else "flux is constant over the window")
    bad = np.array([r is not None for r in reasons])
    out[bad] = np.nan
    return BatchResult(out, reasons)


def sigma_for(spectrum: Spectrum, settings: PreprocessSettings | None = None) -> float:
    s = settings or PreprocessSettings()
    return s.ccd700_sigma_px if spectrum.instrument == "ccd700" else 0.0


def preprocess_spectrum(spectrum: Spectrum, settings: PreprocessSettings | None = None) -> np.ndarray:
    """The per-spectrum form: one row of `n_points` float32, or UnusableSpectrumError."""
    result = preprocess_spectra([spectrum], settings)
    if result.reasons[0] is not None:
        raise UnusableSpectrumError(spectrum.meta.name or "spectrum", result.reasons[0])
    return result.rows[0]


def _shape_problem(spectrum: Spectrum) -> str | None:
    for name in ("ivar", "mask"):
        array = getattr(spectrum, name)
        if array is not None and np.shape(array) != spectrum.flux.shape:
            return (f"{name} has {np.size(array)} values for {spectrum.flux.size} flux values: "
                    "not one per pixel")
    return None


def preprocess_spectra(spectra: list[Spectrum],
                       settings: PreprocessSettings | None = None) -> BatchResult:
    """Preprocess a list of spectra, batching those that share instrument and length."""
    s = settings or PreprocessSettings()
    out = np.full((len(spectra), s.n_points), np.nan, np.float32)
    reasons: list = [None] * len(spectra)
    groups: dict = {}
    for i, sp in enumerate(spectra):
        reasons[i] = _shape_problem(sp)
        if reasons[i] is None:
            groups.setdefault((sp.instrument, sp.flux.shape[0]), []).append(i)
    for idx in groups.values():
        members = [spectra[i] for i in idx]
        res = preprocess_batch(np.stack([sp.wavelength for sp in members]),
                               np.stack([sp.flux for sp in members]),
                               sigma_for(members[0], s), s, ivar=[sp.ivar for sp in members],
                               mask=[sp.mask for sp in members])
        out[idx] = res.rows
        for j, i in enumerate(idx):
            reasons[i] = res.reasons[j]
    return BatchResult(out, reasons)


_MOVED_TO_LINES = ("HALPHA_VAC", "HEI_6678_VAC")


def __getattr__(name: str):
    """The line wavelengths of 0.2.0 moved to `core.spectra.lines` (their one owner); the old
    names still work, with a DeprecationWarning, until 0.3 (PEP 562; imported lazily: that
    module imports this one)."""
    if name in _MOVED_TO_LINES:
        import warnings

        from vo_al.core.spectra import lines

        warnings.warn(f"{__name__}.{name} moved to vo_al.core.spectra.lines after vo-al 0.2.0; "
                      "the old name goes in 0.3", DeprecationWarning, stacklevel=2)
        return getattr(lines, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
