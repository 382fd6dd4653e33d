"""The two instruments the synthetic spectra imitate: their wavelength grids, resolutions and
what they add to a star (telluric lines, noise).

* Ondřejov CCD700 (the labelled training set): linear AIR axis near Hα, R ≈ 13 000, S/N 100-300,
  telluric H2O lines visible;
* LAMOST (the unlabelled pool): vacuum log-λ grid 3700-9099 Å, R ≈ 1 800, S/N 2-200, a sky floor
  and poor blue throughput in its noise.
"""

from __future__ import annotations

import math

import numpy as np

from vo_al.core.demo.lines import SKY_VAC, TELLURIC_VAC, Line

# ---------------------------------------------------------------- LAMOST
LAMOST_COEFF0 = 3.5682            # log10(λ/Å) of pixel 0, vacuum
LAMOST_COEFF1 = 1.0e-4            # log10 step per pixel
LAMOST_NPIX = 3909                # 3700-9099 Å
LAMOST_RESOLUTION = 1800.0

# ---------------------------------------------------------------- CCD700
CCD700_CRVAL1 = 6265.0            # Å air, first pixel (oe270005.fits: 6265.017)
CCD700_CDELT1 = 0.2567            # Å per pixel (oe270005.fits: 0.25670607904715)
CCD700_NPIX = 1997                # oe270005.fits: NAXIS1 = 1997 -> up to ~6777 Å
CCD700_RESOLUTION = 13000.0
# resolution after the σ = 7 px (1.8 Å) Gaussian degradation of METHOD.md, at Hα
CCD700_DEGRADED_RESOLUTION = 6564.6 / (2.3548 * math.hypot(7 * CCD700_CDELT1,
                                                          6564.6 / 13000 / 2.3548))


def lamost_wavelength() -> np.ndarray:
    return 10.0 ** (LAMOST_COEFF0 + LAMOST_COEFF1 * np.arange(LAMOST_NPIX))


def lamost_noise_sigma(wl: np.ndarray, signal: np.ndarray, level: float, snr: float) -> np.ndarray:
    """Per-pixel σ: sky floor + photon term, worse at the blue end (low throughput) and at sky
    lines."""
    relative = np.clip(signal / level, 0.0, None)
    sigma = level / snr * np.sqrt(0.3 + 0.7 * relative)
    sigma *= 1.0 + 3.0 * np.exp(-(wl - 3700.0) / 250.0)
    for center in SKY_VAC:
        sigma *= 1.0 + 2.0 * np.exp(-0.5 * ((wl - center) / 2.0) ** 2)
    return sigma


def ccd700_air_axis(start: float = CCD700_CRVAL1, step: float = CCD700_CDELT1,
                    n_pix: int = CCD700_NPIX) -> np.ndarray:
    return start + step * np.arange(n_pix)


def telluric_lines(rng: np.random.Generator) -> list:
    """The H2O lines near Hα of one CCD700 night, in the observer's frame."""
    scale = float(rng.uniform(0.0, 1.0))               # humidity and airmass
    return [Line(center, 0.03 * scale * float(rng.uniform(0.5, 1.5)), 0.05)
            for center in TELLURIC_VAC]
