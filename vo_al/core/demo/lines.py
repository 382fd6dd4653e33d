"""Spectral lines of the synthetic spectra: the line lists, one line or band, how a line is drawn
on a wavelength grid, and the black-body continuum under them.

Every line is an area-normalised Voigt (Gaussian for weak metal lines); `add_line` evaluates it
only on the pixels where it matters. The lists are standard air wavelengths, converted once to
vacuum at import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import voigt_profile

from vo_al.core.spectra.preprocess import air_to_vacuum

C_KMS = 299_792.458

# ---------------------------------------------------------------- line lists
# Air wavelengths from standard tables (rounded), converted once to vacuum below.
_BALMER_AIR = {"Hbeta": 4861.33, "Hgamma": 4340.47, "Hdelta": 4101.74, "Hepsilon": 3970.07}
_HELIUM_AIR = (5875.62, 4471.48, 4921.93)
# (air wavelength, equivalent width in Å for a solar-type dwarf)
_METAL_LINES_AIR = (
    (3933.66, 8.0), (3968.47, 6.0), (4226.73, 1.2), (4305.0, 2.0), (4383.55, 0.9),
    (5167.32, 0.6), (5172.68, 0.9), (5183.60, 1.1), (5269.54, 0.45), (5328.04, 0.35),
    (5889.95, 0.75), (5895.92, 0.55), (6122.22, 0.22), (6162.17, 0.22), (6191.56, 0.13),
    (6230.72, 0.14), (6252.56, 0.12), (6335.33, 0.10), (6393.60, 0.13), (6400.00, 0.15),
    (6411.65, 0.12), (6439.07, 0.15), (6462.57, 0.14), (6494.98, 0.17), (6496.90, 0.12),
    (6546.24, 0.10), (6592.91, 0.11), (6609.11, 0.06), (6643.63, 0.09), (6663.44, 0.07),
    (6677.99, 0.12), (6717.68, 0.12), (6750.15, 0.07), (7664.90, 0.9), (7699.00, 0.6),
    (8498.02, 1.0), (8542.09, 2.6), (8662.14, 2.2),
)
_SILICON_AIR = ((6347.11, 0.25), (6371.37, 0.18), (4481.13, 0.4))     # hot stars
# telluric H2O lines near Hα (air, topocentric): visible in high-resolution CCD700 spectra
_TELLURIC_AIR = (6543.91, 6548.62, 6552.63, 6557.17, 6564.21, 6572.09, 6574.85, 6580.79,
                 6586.66, 6599.32, 6868.0, 6884.0)
# TiO band heads (air), degraded to the red; relative strength
_TIO_HEADS_AIR = ((4954.6, 0.6), (5167.0, 0.7), (5448.0, 0.6), (5847.0, 0.7), (6158.6, 0.8),
                  (6651.0, 0.8), (6681.0, 0.5), (7054.0, 1.0), (7589.0, 0.9), (8432.0, 0.5))
# narrow [O I] sky lines (air); the nebular [N II] and [S II] are in core.spectra.lines
_SKY_AIR = (5577.34, 6300.30, 6363.78)
# OH Meinel (6-1) night-sky lines in and near the Hα window (air; the common sky-line
# calibration lists, from Osterbrock et al. 1996): what an imperfect fibre sky subtraction leaves
_OH_AIR = (6498.73, 6533.04, 6553.62, 6568.78, 6577.18, 6596.64, 6604.28)

BALMER_VAC = {name: float(air_to_vacuum(w)) for name, w in _BALMER_AIR.items()}
HELIUM_VAC = tuple(float(air_to_vacuum(w)) for w in _HELIUM_AIR)
METAL_LINES_VAC = tuple((float(air_to_vacuum(w)), ew) for w, ew in _METAL_LINES_AIR)
SILICON_VAC = tuple((float(air_to_vacuum(w)), ew) for w, ew in _SILICON_AIR)
TELLURIC_VAC = tuple(float(air_to_vacuum(w)) for w in _TELLURIC_AIR)
TIO_HEADS_VAC = tuple((float(air_to_vacuum(w)), s) for w, s in _TIO_HEADS_AIR)
SKY_VAC = tuple(float(air_to_vacuum(w)) for w in _SKY_AIR)
OH_VAC = tuple(float(air_to_vacuum(w)) for w in _OH_AIR)


# ---------------------------------------------------------------- lines and bands

@dataclass
class Line:
    """One spectral line: `area` in Å (optical-depth area for absorption, continuum units for
    emission; negative emission area carves a dip), widths in Å before instrumental broadening."""

    center: float            # rest vacuum wavelength, Å
    area: float
    sigma: float = 0.1       # intrinsic Gaussian σ (thermal, turbulence, rotation)
    gamma: float = 0.0       # Lorentz half width at half maximum
    velocity: float = 0.0    # km/s, added to the star's radial velocity
    rotates: bool = True     # photospheric lines take the star's v sin i; disk emission does not


@dataclass
class Band:
    """A molecular band: sharp head at `head`, depth `depth`, e-folding `length` (Å) to the red."""

    head: float
    depth: float
    length: float = 60.0


# ---------------------------------------------------------------- rendering

def instrument_sigma(wavelength: float, resolution: float) -> float:
    """Gaussian σ (Å) of an instrument of resolving power `resolution` at `wavelength`."""
    return wavelength / resolution / 2.3548


def add_line(acc: np.ndarray, wl: np.ndarray, center: float, area: float, sigma: float,
             gamma: float) -> None:
    """acc += area · Voigt(λ - center), evaluated only on the pixels where it matters."""
    half = 8.0 * sigma + 60.0 * gamma
    lo, hi = np.searchsorted(wl, (center - half, center + half))
    if hi <= lo:
        return
    x = wl[lo:hi] - center
    if gamma > 0:
        acc[lo:hi] += area * voigt_profile(x, sigma, gamma)
    else:
        acc[lo:hi] += area / (sigma * math.sqrt(2 * math.pi)) * np.exp(-0.5 * (x / sigma) ** 2)


def planck_continuum(wl: np.ndarray, teff: float, tilt: float) -> np.ndarray:
    """Black body at `teff` times (λ/6500)^tilt, normalised to 1 at 6500 Å."""
    hc_k = 1.438777e8                     # hc/k in Å·K

    def planck(w):
        return w ** -5 / np.expm1(hc_k / (w * teff))

    return planck(wl) / planck(6500.0) * (wl / 6500.0) ** tilt
