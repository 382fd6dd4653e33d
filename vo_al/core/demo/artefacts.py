"""Artefacts of the LAMOST-like pool: what a model trained on clean spectra mistakes for emission.

Each one changes a spectrum's pixels in place: cosmic-ray spikes near Hα, the blue/red arm join,
a bad join or flat-field residual inside the 6519-6732 Å window, gaps of dead pixels, nebular
lines, and the residuals of the OH sky lines that a fibre's sky subtraction leaves.
"""

from __future__ import annotations

import math

import numpy as np

from vo_al.core.demo.instruments import LAMOST_RESOLUTION
from vo_al.core.demo.lines import C_KMS, OH_VAC, add_line, instrument_sigma
from vo_al.core.demo.stars import log_uniform
from vo_al.core.spectra.lines import HALPHA_VAC, NII_VAC, SII_VAC


def apply_arm_join(flux: np.ndarray, wl: np.ndarray, rng: np.random.Generator,
                   strength: float) -> None:
    """Blue/red arm mismatch around the dichroic (5700-6000 Å): a step in the red part."""
    join = float(rng.uniform(5800, 6000))
    factor = float(np.exp(rng.normal(0.0, strength)))
    flux[wl > join] *= factor


def add_spikes(flux, wl, continuum, rng, near: float) -> None:
    """Cosmic-ray hits that slipped through: 1-2 px spikes, at least one close to Hα."""
    centers = [near + float(rng.uniform(-25, 25))]
    centers += [float(rng.uniform(6519, 6732)) for _ in range(int(rng.integers(0, 3)))]
    for center in centers:
        i = int(np.searchsorted(wl, center))
        width = float(rng.uniform(0.4, 1.2))                 # px
        amp = float(rng.uniform(0.4, 4.0)) * continuum[i]
        pix = np.arange(max(i - 4, 0), min(i + 5, wl.size))
        flux[pix] += amp * np.exp(-0.5 * ((pix - i - rng.uniform(-0.5, 0.5)) / width) ** 2)


def add_window_artefact(flux, wl, continuum, rng) -> str:
    """A bad join / flat-field residual inside the 6519-6732 Å window."""
    where = float(rng.uniform(6535, 6715))
    choice = rng.random()
    if choice < 0.5:
        factor = float(rng.uniform(0.55, 0.85)) if rng.random() < 0.5 else \
            float(rng.uniform(1.2, 1.7))
        flux[wl > where] *= factor
        return "step"
    width = float(rng.uniform(3, 15))
    amp = float(rng.uniform(0.2, 0.5)) * (-1 if choice < 0.75 else 1)
    flux += amp * continuum * np.exp(-0.5 * ((wl - where) / width) ** 2)
    return "dip" if amp < 0 else "bump"


def add_gap(flux, ivar, andmask, wl, rng) -> None:
    """Dead columns / rejected pixels: a run of zero flux and zero ivar."""
    length = int(rng.integers(15, 150))
    if rng.random() < 0.7:
        start = int(np.searchsorted(wl, float(rng.uniform(6480, 6720))))
    else:
        start = int(rng.integers(0, wl.size - length))
    stop = min(start + length, wl.size)
    flux[start:stop] = 0.0
    ivar[start:stop] = 0.0
    andmask[start:stop] = 1 << 22                             # 'bad pixel' style bit


def add_nebular(flux, wl, continuum, rng, rv: float) -> None:
    """H II-region or sky residual lines: narrow Hα, [N II], [S II] (some over-subtracted)."""
    strength = log_uniform(rng, 0.5, 40.0)                   # Hα EW (Å) of the nebula
    sigma = math.sqrt(0.3 ** 2 + instrument_sigma(6564.0, LAMOST_RESOLUTION) ** 2)
    sign = -1.0 if rng.random() < 0.15 else 1.0                # over-subtracted sky
    with_halpha = rng.random() < 0.8
    lines = [(NII_VAC[0], 0.33 * rng.uniform(0.1, 0.6)), (NII_VAC[1], rng.uniform(0.1, 0.6)),
             (SII_VAC[0], rng.uniform(0.1, 0.4)), (SII_VAC[1], rng.uniform(0.1, 0.4))]
    if with_halpha:
        lines.append((HALPHA_VAC, 1.0))
    shift = 1.0 + (rv + float(rng.normal(0, 20))) / C_KMS
    acc = np.zeros_like(wl)
    for center, ratio in lines:
        add_line(acc, wl, center * shift, sign * strength * float(ratio), sigma, 0.0)
    flux += acc * continuum


def add_sky_residuals(flux, wl, continuum, rng, snr: float) -> None:
    """What a fibre's sky subtraction leaves of the OH lines: a sky model scaled wrongly (every
    line positive or every line negative), or shifted against the object's spectrum (each line a
    positive and a negative lobe). Sky lines sit in the observer's frame, which the spectrum's
    heliocentric correction moves by up to ±30 km/s; the fainter the star (the lower its S/N),
    the larger the sky against its continuum."""
    sigma = instrument_sigma(6570.0, LAMOST_RESOLUTION)
    shift = 1.0 + float(rng.uniform(-30, 30)) / C_KMS
    strength = log_uniform(rng, 0.1, 1.0) * max(1.0, 25.0 / snr)     # Å per line, continuum units
    scale_error = rng.random() < 0.6
    sign = 1.0 if rng.random() < 0.5 else -1.0
    offset = float(rng.uniform(0.3, 1.0)) * sigma                     # Å, sky vs object
    acc = np.zeros_like(wl)
    for center in OH_VAC:
        area = strength * float(rng.uniform(0.3, 1.0))
        if scale_error:
            add_line(acc, wl, center * shift, sign * area, sigma, 0.0)
        else:
            add_line(acc, wl, center * shift + offset / 2, area, sigma, 0.0)
            add_line(acc, wl, center * shift - offset / 2, -area, sigma, 0.0)
    flux += acc * continuum
