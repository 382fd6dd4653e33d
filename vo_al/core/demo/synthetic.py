"""Physically plausible synthetic spectra and the FITS files that hold them.

It feeds the demo, the simulation experiment and the tests, so it imitates what matters in the
paper (Škoda et al. 2020): a clean, high-resolution labelled set (Ondřejov CCD700, R ≈ 13 000, air
wavelengths, S/N 100-300) and an unlabelled pool of a different domain (LAMOST, R ≈ 1 800, vacuum
log-λ grid, S/N 2-200) whose non-target class holds absorption stars AND the artefacts a model
trained on clean data mistakes for emission (cosmic-ray spikes, arm-join steps, gaps, nebular lines,
noise, molecular bands). Targets are rare (1 % by default), single : double ≈ 6 : 1.

Line model: every line is an area-normalised Voigt (Gaussian for weak metal lines) whose Gaussian
width adds intrinsic, rotational and instrumental widths in quadrature, so the instrument's
resolution is applied analytically. Absorption enters as optical depth (F/C = exp(-τ), saturating
naturally); emission is added in continuum units on top, so a Be star's emission fills its own
photospheric trough. Molecular (TiO) bands are sharp-headed, red-degraded depressions.

Everything is seeded (numpy Generator); file makers derive one child seed per file, so a file's
content does not depend on how many files came before it.
"""

from __future__ import annotations

import csv
import gzip
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import erf, voigt_profile

from vo_al.core.spectra.preprocess import HALPHA_VAC, HEI_6678_VAC, air_to_vacuum
from vo_al.core.learning.classes import DOUBLE_PEAK, NON_TARGET, SINGLE_PEAK
from vo_al.core.spectra.record import SpectrumMeta

C_KMS = 299_792.458

# ---------------------------------------------------------------- instrument grids
LAMOST_COEFF0 = 3.5682            # log10(λ/Å) of pixel 0, vacuum
LAMOST_COEFF1 = 1.0e-4            # log10 step per pixel
LAMOST_NPIX = 3909                # 3700-9099 Å
LAMOST_RESOLUTION = 1800.0
CCD700_CRVAL1 = 6265.0            # Å air, first pixel (oe270005.fits: 6265.017)
CCD700_CDELT1 = 0.2567            # Å per pixel (oe270005.fits: 0.25670607904715)
CCD700_NPIX = 1997                # oe270005.fits: NAXIS1 = 1997 -> up to ~6777 Å
CCD700_RESOLUTION = 13000.0
# resolution after the σ = 7 px (1.8 Å) Gaussian degradation of METHOD.md, at Hα
CCD700_DEGRADED_RESOLUTION = 6564.6 / (2.3548 * math.hypot(7 * CCD700_CDELT1,
                                                          6564.6 / 13000 / 2.3548))

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
# narrow nebular / sky lines (air): [N II], [S II], [O I] sky
_NII_AIR = (6548.05, 6583.45)
_SII_AIR = (6716.44, 6730.82)
_SKY_AIR = (5577.34, 6300.30, 6363.78)

BALMER_VAC = {name: float(air_to_vacuum(w)) for name, w in _BALMER_AIR.items()}
HELIUM_VAC = tuple(float(air_to_vacuum(w)) for w in _HELIUM_AIR)
METAL_LINES_VAC = tuple((float(air_to_vacuum(w)), ew) for w, ew in _METAL_LINES_AIR)
SILICON_VAC = tuple((float(air_to_vacuum(w)), ew) for w, ew in _SILICON_AIR)
TELLURIC_VAC = tuple(float(air_to_vacuum(w)) for w in _TELLURIC_AIR)
TIO_HEADS_VAC = tuple((float(air_to_vacuum(w)), s) for w, s in _TIO_HEADS_AIR)
NII_VAC = tuple(float(air_to_vacuum(w)) for w in _NII_AIR)
SII_VAC = tuple(float(air_to_vacuum(w)) for w in _SII_AIR)
SKY_VAC = tuple(float(air_to_vacuum(w)) for w in _SKY_AIR)

# ---------------------------------------------------------------- spectral types


@dataclass(frozen=True)
class SpectralType:
    """Ranges that make a type look like itself around Hα."""

    teff: tuple              # K
    halpha_ew: tuple         # Å, photospheric Hα absorption
    halpha_gamma: tuple      # Å, Lorentz half-width (Stark / damping wings)
    metals: float            # scale of the metal-line list
    silicon: float           # scale of Si II / Mg II (hot stars)
    helium: float            # He I absorption EW at 6678 Å
    vsini: tuple             # km/s
    tio: tuple               # TiO band depth


SPECTRAL_TYPES = {
    "B": SpectralType((11000, 28000), (3.0, 6.0), (2.0, 5.0), 0.04, 1.0, 0.6, (50, 350), (0, 0)),
    "A": SpectralType((7500, 10500), (8.0, 14.0), (4.0, 9.0), 0.2, 0.4, 0.0, (30, 250), (0, 0)),
    "F": SpectralType((6000, 7500), (4.0, 8.0), (1.5, 3.5), 0.5, 0.0, 0.0, (5, 80), (0, 0)),
    "G": SpectralType((5200, 6000), (2.2, 3.5), (0.6, 1.2), 1.0, 0.0, 0.0, (2, 10), (0, 0)),
    "K": SpectralType((3900, 5200), (1.0, 2.0), (0.3, 0.8), 1.5, 0.0, 0.0, (2, 8), (0, 0.1)),
    "M": SpectralType((2800, 3900), (0.3, 0.8), (0.2, 0.4), 1.8, 0.0, 0.0, (2, 8), (0.3, 0.8)),
}
TYPE_NAMES = tuple(SPECTRAL_TYPES)
# Ondřejov observes bright, hot stars (a Be-star programme); LAMOST mostly FGK field stars
TRAINING_TYPE_WEIGHTS = {"B": 0.35, "A": 0.27, "F": 0.15, "G": 0.11, "K": 0.09, "M": 0.03}
POOL_TYPE_WEIGHTS = {"B": 0.02, "A": 0.07, "F": 0.22, "G": 0.34, "K": 0.29, "M": 0.06}
# single peaks: Be/Ae stars, and T Tauri / dMe stars among the cool ones; double peaks come from
# disks around hot stars (Be, CV-like), so no molecular bands there
SINGLE_TYPE_WEIGHTS = {"B": 0.55, "A": 0.15, "F": 0.05, "G": 0.05, "K": 0.10, "M": 0.10}
DOUBLE_TYPE_WEIGHTS = {"B": 0.75, "A": 0.20, "F": 0.05}

# ---------------------------------------------------------------- classes and kinds
TARGET_KINDS = {"single": SINGLE_PEAK, "double": DOUBLE_PEAK}
NON_TARGET_KINDS = ("absorption", "cool", "spike", "join", "gap", "nebular", "noise")
KIND_LABEL = {**{k: NON_TARGET for k in NON_TARGET_KINDS}, **TARGET_KINDS}
LABEL_DEFAULT_KIND = {NON_TARGET: "absorption", SINGLE_PEAK: "single", DOUBLE_PEAK: "double"}
BROKEN_KINDS = ("broken-truncated", "broken-not-spectrum", "broken-nan", "broken-window")
BROKEN_LABEL = -1

TRAINING_CLASS_FRACTIONS = {NON_TARGET: 0.4717, SINGLE_PEAK: 0.4098, DOUBLE_PEAK: 0.1185}
SINGLE_TO_DOUBLE = 6.0            # paper: 3 574 predicted single vs 587 double


@dataclass
class PoolMix:
    """Relative weights of the non-target kinds in the pool (normalised when used)."""

    absorption: float = 0.62
    cool: float = 0.08
    spike: float = 0.06
    join: float = 0.05
    gap: float = 0.04
    nebular: float = 0.09
    noise: float = 0.06

    def fractions(self) -> dict:
        weights = {k: float(getattr(self, k)) for k in NON_TARGET_KINDS}
        total = sum(weights.values())
        if total <= 0 or any(w < 0 for w in weights.values()):
            raise ValueError(f"pool mix weights must be >= 0 with a positive sum: {weights}")
        return {k: w / total for k, w in weights.items()}


# ---------------------------------------------------------------- line rendering

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
    """A molecular band: sharp head at `head`, depth `depth`, e-folding length `length` to the red."""

    head: float
    depth: float
    length: float = 60.0


@dataclass
class StarModel:
    spectral_type: str
    teff: float
    rv: float                                    # km/s
    vsini: float                                 # km/s
    tilt: float                                  # continuum power-law tilt (reddening, calibration)
    absorption: list = field(default_factory=list)
    emission: list = field(default_factory=list)
    bands: list = field(default_factory=list)
    telluric: list = field(default_factory=list)  # lines fixed in the observer's frame

    def subclass(self, rng: np.random.Generator) -> str:
        lo, hi = SPECTRAL_TYPES[self.spectral_type].teff
        digit = int(np.clip(9.99 * (hi - self.teff) / (hi - lo), 0, 9))
        return f"{self.spectral_type}{digit}"


def _instrument_sigma(wavelength: float, resolution: float) -> float:
    return wavelength / resolution / 2.3548


def _add_line(acc: np.ndarray, wl: np.ndarray, center: float, area: float, sigma: float,
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


def _line_widths(line: Line, star: StarModel, resolution: float) -> tuple[float, float, float]:
    """Observed centre and total Gaussian σ of a line; rotation is approximated as a Gaussian."""
    center = line.center * (1.0 + (star.rv + line.velocity) / C_KMS)
    rotation = center * star.vsini / C_KMS / 2.0 if line.rotates else 0.0
    sigma = math.sqrt(line.sigma ** 2 + rotation ** 2 + _instrument_sigma(center, resolution) ** 2)
    return center, sigma, line.gamma


def normalised_profile(star: StarModel, wl: np.ndarray, resolution: float) -> np.ndarray:
    """F/C: absorption as exp(-τ), molecular bands, then emission added in continuum units."""
    tau = np.zeros_like(wl)
    for line in star.absorption:
        center, sigma, gamma = _line_widths(line, star, resolution)
        _add_line(tau, wl, center, line.area, sigma, gamma)
    for line in star.telluric:
        sigma = math.sqrt(line.sigma ** 2 + _instrument_sigma(line.center, resolution) ** 2)
        _add_line(tau, wl, line.center, line.area, sigma, 0.0)
    profile = np.exp(-tau)
    for band in star.bands:
        head = band.head * (1.0 + star.rv / C_KMS)
        sigma = _instrument_sigma(head, resolution)
        onset = 0.5 * (1.0 + erf((wl - head) / (math.sqrt(2) * sigma)))
        decay = np.exp(-np.clip(wl - head, 0, None) / band.length)
        profile *= 1.0 - band.depth * onset * decay
    emission = np.zeros_like(wl)
    for line in star.emission:
        center, sigma, gamma = _line_widths(line, star, resolution)
        _add_line(emission, wl, center, line.area, sigma, gamma)
    return profile + emission


def planck_continuum(wl: np.ndarray, teff: float, tilt: float) -> np.ndarray:
    """Black body at `teff` times (λ/6500)^tilt, normalised to 1 at 6500 Å."""
    hc_k = 1.438777e8                     # hc/k in Å·K

    def planck(w):
        return w ** -5 / np.expm1(hc_k / (w * teff))

    return planck(wl) / planck(6500.0) * (wl / 6500.0) ** tilt


# ---------------------------------------------------------------- star models

def _uniform(rng: np.random.Generator, bounds: tuple) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _choose(rng: np.random.Generator, weights: dict) -> str:
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=float)
    return keys[int(rng.choice(len(keys), p=p / p.sum()))]


def absorption_star(rng: np.random.Generator, spectral_type: str | None = None,
                    type_weights: dict | None = None) -> StarModel:
    """A normal star: Balmer, He I, metal lines and molecular bands fitting its type."""
    name = spectral_type or _choose(rng, type_weights or POOL_TYPE_WEIGHTS)
    st = SPECTRAL_TYPES[name]
    teff = _uniform(rng, st.teff)
    star = StarModel(name, teff, rv=float(rng.uniform(-150, 150)), vsini=_uniform(rng, st.vsini),
                     tilt=float(rng.normal(0.0, 0.6)))
    halpha_ew = _uniform(rng, st.halpha_ew)
    gamma = _uniform(rng, st.halpha_gamma)
    sigma = 0.6 + 0.3 * gamma
    star.absorption.append(Line(HALPHA_VAC, halpha_ew, sigma, gamma))
    for i, center in enumerate(BALMER_VAC.values()):
        # higher series lines: similar EW, a little narrower wings
        star.absorption.append(Line(center, halpha_ew * (1.1 - 0.1 * i), sigma, gamma * 0.8))
    if st.helium > 0:
        he = st.helium * float(rng.uniform(0.5, 1.3))
        star.absorption.append(Line(HEI_6678_VAC, he, 0.5, 0.2))
        for center in HELIUM_VAC:
            star.absorption.append(Line(center, he * 1.3, 0.5, 0.2))
    metal_scale = st.metals * float(rng.lognormal(0.0, 0.25))      # metallicity spread
    for center, ew in METAL_LINES_VAC:
        star.absorption.append(Line(center, ew * metal_scale, 0.08))
    for center, ew in SILICON_VAC:
        if st.silicon > 0:
            star.absorption.append(Line(center, ew * st.silicon, 0.15))
    tio = _uniform(rng, st.tio)
    if tio > 0:
        star.bands.extend(Band(head, min(0.95, tio * strength), float(rng.uniform(40, 90)))
                          for head, strength in TIO_HEADS_VAC)
    return star


def _velocity_sigma(rng: np.random.Generator, star: StarModel) -> float:
    """Emission-line velocity dispersion: broad in Be/Ae disks, narrower in cool active stars."""
    bounds = (80, 250) if star.spectral_type in "BA" else (30, 150)
    return _uniform(rng, bounds)


def add_single_peak(star: StarModel, rng: np.random.Generator) -> StarModel:
    """Hα (and Hβ, sometimes He I 6678) in emission as one Gaussian or Lorentzian-winged peak."""
    ew = _log_uniform(rng, 1.0, 100.0)
    sigma = HALPHA_VAC * _velocity_sigma(rng, star) / C_KMS
    gamma = sigma * float(rng.uniform(0.3, 1.0)) if rng.random() < 0.4 else 0.0
    shift = float(rng.normal(0, 15))
    star.emission.append(Line(HALPHA_VAC, ew, sigma, gamma, shift, rotates=False))
    star.emission.append(Line(BALMER_VAC["Hbeta"], ew * 0.3, sigma * 0.75, gamma, shift,
                              rotates=False))
    if rng.random() < 0.3:
        star.emission.append(Line(HEI_6678_VAC, _log_uniform(rng, 0.2, 2.0), sigma * 0.8, 0.0,
                                  rotates=False))
    return star


def add_double_peak(star: StarModel, rng: np.random.Generator) -> StarModel:
    """Disk-like emission: two peaks 100-600 km/s apart, V/R asymmetry, optional shell dip."""
    ew = _log_uniform(rng, 2.0, 60.0)
    separation = float(rng.uniform(100, 600))                    # km/s, peak to peak
    peak_sigma = HALPHA_VAC * separation * float(rng.uniform(0.2, 0.35)) / C_KMS
    v_over_r = float(np.exp(rng.uniform(-0.5, 0.5)))
    violet, red = ew * v_over_r / (1 + v_over_r), ew / (1 + v_over_r)
    for flux_share, velocity in ((violet, -separation / 2), (red, separation / 2)):
        star.emission.append(Line(HALPHA_VAC, flux_share, peak_sigma, 0.0, velocity,
                                  rotates=False))
    if rng.random() < 0.3:                                        # shell absorption core
        star.absorption.append(Line(HALPHA_VAC, float(rng.uniform(0.3, 1.5)), peak_sigma * 0.6,
                                    rotates=False))
    star.emission.append(Line(BALMER_VAC["Hbeta"], ew * 0.3, peak_sigma * 2.0, rotates=False))
    if rng.random() < 0.3:
        he = _log_uniform(rng, 0.2, 1.5)
        for sign in (-1, 1):
            star.emission.append(Line(HEI_6678_VAC, he / 2, peak_sigma * 0.8, 0.0,
                                      sign * separation / 2, rotates=False))
    return star


def _emission_peak_height(star: StarModel, resolution: float) -> float:
    """Highest F/C - 1 within ±20 Å of Hα: how visible the emission is at this resolution."""
    center = HALPHA_VAC * (1 + star.rv / C_KMS)
    wl = np.linspace(center - 20, center + 20, 401)
    return float(normalised_profile(star, wl, resolution).max() - 1.0)


def ensure_visible_emission(star: StarModel, resolution: float, min_height: float) -> StarModel:
    """Scale the emission up until its peak clears the continuum by `min_height`.

    A weak emission inside a broad A-star trough, or at S/N 3, would otherwise carry a target
    label while looking like an absorption star: the label must describe what a person sees.
    """
    for _ in range(12):
        if _emission_peak_height(star, resolution) >= min_height:
            break
        for line in star.emission:
            line.area *= 1.5
    return star


def target_star(label: int, rng: np.random.Generator, resolution: float,
                min_height: float) -> StarModel:
    if label == SINGLE_PEAK:
        star = add_single_peak(absorption_star(rng, type_weights=SINGLE_TYPE_WEIGHTS), rng)
    elif label == DOUBLE_PEAK:
        star = add_double_peak(absorption_star(rng, type_weights=DOUBLE_TYPE_WEIGHTS), rng)
    else:
        raise ValueError(f"label {label} is not a target class")
    return ensure_visible_emission(star, resolution, min_height)


# ---------------------------------------------------------------- CCD700 (training) spectra

def ccd700_air_axis(start: float = CCD700_CRVAL1, step: float = CCD700_CDELT1,
                    n_pix: int = CCD700_NPIX) -> np.ndarray:
    return start + step * np.arange(n_pix)


def _telluric_lines(rng: np.random.Generator) -> list:
    scale = float(rng.uniform(0.0, 1.0))               # humidity and airmass
    return [Line(center, 0.03 * scale * float(rng.uniform(0.5, 1.5)), 0.05)
            for center in TELLURIC_VAC]


def make_ccd700_spectrum(label: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One Ondřejov-like spectrum: (air wavelength Å, flux ADU) on a linear axis, R ≈ 13 000."""
    start = CCD700_CRVAL1 + float(rng.uniform(-10, 10))     # grating setting varies a little
    wl_air = ccd700_air_axis(start)
    wl_vac = air_to_vacuum(wl_air)
    snr = float(rng.uniform(100, 300))
    if label == NON_TARGET:
        star = absorption_star(rng, type_weights=TRAINING_TYPE_WEIGHTS)
    else:
        # visibility is judged after the 7-px degradation of METHOD.md, which the model sees
        star = target_star(label, rng, CCD700_DEGRADED_RESOLUTION, min_height=0.1)
    star.telluric = _telluric_lines(rng)
    profile = normalised_profile(star, wl_vac, CCD700_RESOLUTION)
    # the CCD700 spectra are not flux calibrated: black body times a smooth instrument response
    x = np.linspace(-1, 1, wl_air.size)
    response = 1.0 + rng.uniform(-0.15, 0.15) * x + rng.uniform(-0.15, 0.1) * x ** 2
    level = snr ** 2                                        # photon-limited counts
    continuum = level * planck_continuum(wl_vac, star.teff, star.tilt) * response
    signal = continuum * profile
    noise = np.sqrt(np.clip(signal, 0, None) + 7.0 ** 2)    # photon + read noise (ADU, gain ~1)
    flux = signal + rng.normal(0.0, 1.0, wl_air.size) * noise
    return wl_air, flux.astype(np.float32)


# ---------------------------------------------------------------- LAMOST (pool) spectra

def lamost_wavelength() -> np.ndarray:
    return 10.0 ** (LAMOST_COEFF0 + LAMOST_COEFF1 * np.arange(LAMOST_NPIX))


@dataclass
class LamostSpectrum:
    """Pixels of one LAMOST-like spectrum plus what the header will say about it."""

    wavelength: np.ndarray        # vacuum Å, log-λ grid
    flux: np.ndarray
    ivar: np.ndarray
    andmask: np.ndarray
    ormask: np.ndarray
    snr: float
    star: StarModel

    def arrays(self) -> tuple:
        return self.wavelength, self.flux, self.ivar, self.andmask, self.ormask


def _pool_snr(rng: np.random.Generator, kind: str) -> float:
    if kind == "noise":
        return _log_uniform(rng, 0.3, 2.0)
    return _log_uniform(rng, 2.0, 200.0)


def _star_for_kind(kind: str, rng: np.random.Generator, snr: float) -> StarModel:
    if kind in TARGET_KINDS:
        return target_star(TARGET_KINDS[kind], rng, LAMOST_RESOLUTION,
                           min_height=max(0.1, 4.0 / snr))
    if kind == "cool":
        star = absorption_star(rng, "M" if rng.random() < 0.7 else "K")
        for band in star.bands:
            band.depth = min(0.95, band.depth * 1.5 + 0.2)
        if not star.bands:                                  # K giant with TiO
            star.bands = [Band(h, 0.3 * s, 60.0) for h, s in TIO_HEADS_VAC]
        return star
    return absorption_star(rng)


def _lamost_noise_sigma(wl: np.ndarray, signal: np.ndarray, level: float, snr: float) -> np.ndarray:
    """Per-pixel σ: sky floor + photon term, worse at the blue end (low throughput) and at sky
    lines."""
    relative = np.clip(signal / level, 0.0, None)
    sigma = level / snr * np.sqrt(0.3 + 0.7 * relative)
    sigma *= 1.0 + 3.0 * np.exp(-(wl - 3700.0) / 250.0)
    for center in SKY_VAC:
        sigma *= 1.0 + 2.0 * np.exp(-0.5 * ((wl - center) / 2.0) ** 2)
    return sigma


def _apply_arm_join(flux: np.ndarray, wl: np.ndarray, rng: np.random.Generator,
                    strength: float) -> None:
    """Blue/red arm mismatch around the dichroic (5700-6000 Å): a step in the red part."""
    join = float(rng.uniform(5800, 6000))
    factor = float(np.exp(rng.normal(0.0, strength)))
    flux[wl > join] *= factor


def _add_spikes(flux, wl, continuum, rng, near: float) -> None:
    """Cosmic-ray hits that slipped through: 1-2 px spikes, at least one close to Hα."""
    centers = [near + float(rng.uniform(-25, 25))]
    centers += [float(rng.uniform(6519, 6732)) for _ in range(int(rng.integers(0, 3)))]
    for center in centers:
        i = int(np.searchsorted(wl, center))
        width = float(rng.uniform(0.4, 1.2))                 # px
        amp = float(rng.uniform(0.4, 4.0)) * continuum[i]
        pix = np.arange(max(i - 4, 0), min(i + 5, wl.size))
        flux[pix] += amp * np.exp(-0.5 * ((pix - i - rng.uniform(-0.5, 0.5)) / width) ** 2)


def _add_window_artefact(flux, wl, continuum, rng) -> str:
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


def _add_gap(flux, ivar, andmask, wl, rng) -> None:
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


def _add_nebular(flux, wl, continuum, rng, rv: float) -> None:
    """H II-region or sky residual lines: narrow Hα, [N II], [S II] (some over-subtracted)."""
    strength = _log_uniform(rng, 0.5, 40.0)                  # Hα EW (Å) of the nebula
    sigma = math.sqrt(0.3 ** 2 + _instrument_sigma(6564.0, LAMOST_RESOLUTION) ** 2)
    sign = -1.0 if rng.random() < 0.15 else 1.0                # over-subtracted sky
    with_halpha = rng.random() < 0.8
    lines = [(NII_VAC[0], 0.33 * rng.uniform(0.1, 0.6)), (NII_VAC[1], rng.uniform(0.1, 0.6)),
             (SII_VAC[0], rng.uniform(0.1, 0.4)), (SII_VAC[1], rng.uniform(0.1, 0.4))]
    if with_halpha:
        lines.append((HALPHA_VAC, 1.0))
    shift = 1.0 + (rv + float(rng.normal(0, 20))) / C_KMS
    acc = np.zeros_like(wl)
    for center, ratio in lines:
        _add_line(acc, wl, center * shift, sign * strength * float(ratio), sigma, 0.0)
    flux += acc * continuum


def make_lamost_spectrum(label: int, rng: np.random.Generator, kind: str | None = None,
                         snr: float | None = None):
    """One LAMOST-like spectrum: (wavelength_vac, flux, ivar, andmask, ormask), R ≈ 1 800.

    `kind` is one of NON_TARGET_KINDS for label 0 (default 'absorption'), 'single' / 'double' for
    labels 1 / 2 (default).
    """
    return lamost_spectrum(label, rng, kind, snr).arrays()


def lamost_spectrum(label: int, rng: np.random.Generator, kind: str | None = None,
                    snr: float | None = None) -> LamostSpectrum:
    kind = kind or LABEL_DEFAULT_KIND[label]
    if KIND_LABEL.get(kind) != label:
        raise ValueError(f"kind {kind!r} does not belong to label {label}")
    wl = lamost_wavelength()
    snr = float(snr) if snr is not None else _pool_snr(rng, kind)
    star = _star_for_kind(kind, rng, snr)
    level = _log_uniform(rng, 30.0, 3000.0)                  # 1e-17 erg/s/cm²/Å
    continuum = level * planck_continuum(wl, star.teff, star.tilt)
    flux = continuum * normalised_profile(star, wl, LAMOST_RESOLUTION)
    _apply_arm_join(flux, wl, rng, 0.25 if kind == "join" else 0.03)
    halpha_obs = HALPHA_VAC * (1 + star.rv / C_KMS)
    if kind == "spike":
        _add_spikes(flux, wl, continuum, rng, halpha_obs)
    elif kind == "join":
        _add_window_artefact(flux, wl, continuum, rng)
    elif kind == "nebular":
        _add_nebular(flux, wl, continuum, rng, star.rv)
    sigma = _lamost_noise_sigma(wl, np.abs(flux), level, snr)
    flux = flux + rng.normal(0.0, 1.0, wl.size) * sigma
    ivar = 1.0 / sigma ** 2
    andmask = np.zeros(wl.size, dtype=np.int32)
    ormask = np.zeros(wl.size, dtype=np.int32)
    andmask[:int(rng.integers(0, 25))] = 1                   # blue edge, as in real files
    for center in SKY_VAC:                                  # strong sky lines: flagged sometimes
        i = int(np.searchsorted(wl, center))
        ormask[i - 2:i + 3] = 1 << 23
    if kind == "gap":
        _add_gap(flux, ivar, andmask, wl, rng)
    ormask |= andmask
    return LamostSpectrum(wl, flux.astype(np.float32), ivar.astype(np.float32), andmask,
                          ormask, snr, star)


# ---------------------------------------------------------------- in-memory generators

@dataclass
class SyntheticArrays:
    """Raw spectra of one instrument on one grid, for fast tests and simulations."""

    wavelength: np.ndarray      # (L,) vacuum Å
    flux: np.ndarray            # (n, L)
    labels: np.ndarray          # (n,) int
    kinds: list                 # n kind names
    instrument: str             # 'lamost' or 'ccd700'

    @property
    def sigma_px(self) -> float:
        """The Gaussian degradation METHOD.md applies before interpolation (CCD700 only)."""
        return 7.0 if self.instrument == "ccd700" else 0.0


def exact_counts(n: int, fractions: dict) -> dict:
    """Integer counts summing to n, as close to n·fraction as possible (largest remainder)."""
    raw = {k: n * f for k, f in fractions.items()}
    counts = {k: int(math.floor(v)) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: raw[k] - counts[k], reverse=True)[:n - sum(counts.values())]:
        counts[k] += 1
    return counts


def training_labels(n: int, rng: np.random.Generator) -> np.ndarray:
    counts = exact_counts(n, TRAINING_CLASS_FRACTIONS)
    labels = np.concatenate([np.full(c, k, dtype=np.int64) for k, c in counts.items()])
    return rng.permutation(labels)


def pool_kinds(n: int, rng: np.random.Generator, target_fraction: float = 0.01,
               mix: PoolMix | None = None) -> list:
    """Kinds of n pool spectra: targets (single:double = 6:1) and the non-target mix, shuffled."""
    if not 0 <= target_fraction <= 1:
        raise ValueError(f"target_fraction={target_fraction} must be in [0, 1]")
    non_target = (mix or PoolMix()).fractions()
    fractions = {k: (1 - target_fraction) * f for k, f in non_target.items()}
    fractions["single"] = target_fraction * SINGLE_TO_DOUBLE / (SINGLE_TO_DOUBLE + 1)
    fractions["double"] = target_fraction / (SINGLE_TO_DOUBLE + 1)
    counts = exact_counts(n, fractions)
    kinds = [k for k, c in counts.items() for _ in range(c)]
    return [kinds[i] for i in rng.permutation(len(kinds))]


def _children(seed, n: int) -> list:
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


def training_arrays(n: int, rng: np.random.Generator) -> SyntheticArrays:
    """n CCD700 spectra on one vacuum grid (fixed grating setting) with training-set classes."""
    labels = training_labels(n, rng)
    children = _children(int(rng.integers(2 ** 63)), n)
    wl_vac = air_to_vacuum(ccd700_air_axis())
    flux = np.empty((n, wl_vac.size), dtype=np.float32)
    for i, (label, child) in enumerate(zip(labels, children)):
        wl_air, f = make_ccd700_spectrum(int(label), child)
        flux[i] = np.interp(wl_vac, air_to_vacuum(wl_air), f)
    kinds = [LABEL_DEFAULT_KIND[int(k)] for k in labels]
    return SyntheticArrays(wl_vac, flux, labels, kinds, "ccd700")


def pool_arrays(n: int, rng: np.random.Generator, target_fraction: float = 0.01,
                mix: PoolMix | None = None) -> SyntheticArrays:
    """n LAMOST-like spectra (flux only) with their truth, without touching the disk."""
    kinds = pool_kinds(n, rng, target_fraction, mix)
    children = _children(int(rng.integers(2 ** 63)), n)
    flux = np.empty((n, LAMOST_NPIX), dtype=np.float32)
    for i, (kind, child) in enumerate(zip(kinds, children)):
        flux[i] = lamost_spectrum(KIND_LABEL[kind], child, kind).flux
    labels = np.array([KIND_LABEL[k] for k in kinds], dtype=np.int64)
    return SyntheticArrays(lamost_wavelength(), flux, labels, kinds, "lamost")


# ---------------------------------------------------------------- FITS writing (raw, fast)
# Headers are formatted here instead of through astropy.io.fits: building Header/HDU objects costs
# ~2.8 ms a file, this ~0.1 ms, and the output is plain standard FITS (tests read it back with
# astropy and verify it).

def _format_value(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return f"{'T' if value else 'F':>20}"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):>20}"
    if isinstance(value, (float, np.floating)):
        text = repr(float(value)).upper()
        if "E" in text and "." not in text:
            text = text.replace("E", ".0E")
        elif "." not in text and "E" not in text:
            text += ".0"
        return f"{text:>20}"
    quoted = "'" + str(value).replace("'", "''").ljust(8) + "'"
    return f"{quoted:<20}"


def _card(key: str, value, comment: str = "") -> str:
    text = f"{key:<8}= {_format_value(value)}"
    if len(text) > 80:
        raise ValueError(f"header value of {key} does not fit on one card")
    if comment:
        text = f"{text} / {comment}"[:80]             # comments may be cut, values never
    return text.ljust(80)


def _header_bytes(cards: list) -> bytes:
    """Header cards [(key, value, comment)] -> padded header bytes; None values are skipped."""
    lines = []
    for key, value, comment in cards:
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            continue
        lines.append(_card(key, value, comment))
    lines.append("END".ljust(80))
    text = "".join(lines)
    return _pad(text.encode("ascii"), b" ")


def _pad(data: bytes, fill: bytes) -> bytes:
    return data + fill * (-len(data) % 2880)


def _write_fits_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.lower().endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)
    path.write_bytes(data)


@dataclass
class LamostHeader:
    """Header content of a LAMOST-like file (keywords of vo-stack/make_lamost_fits.py)."""

    obsid: int
    ra: float
    dec: float
    designation: str = ""
    cls: str = "STAR"
    subclass: str = ""
    z: float = 0.0
    snr_r: float = float("nan")
    snr_g: float = float("nan")
    objname: str = ""
    planid: str = "SYNTHPLAN"
    lmjd: int = 56300
    spid: int = 1
    fiberid: int = 1
    date_obs: str = "2013-01-01T18:00:00"
    exptime: float = 1800.0
    filename: str = ""

    @classmethod
    def from_meta(cls, meta: SpectrumMeta, obsid: int | None = None) -> "LamostHeader":
        return cls(obsid=int(obsid if obsid is not None else (meta.obsid or 0)),
                   ra=meta.ra, dec=meta.dec, designation=meta.designation,
                   cls=meta.cls or "STAR", subclass=meta.subclass,
                   z=meta.z if math.isfinite(meta.z) else 0.0, snr_r=meta.snr)

    def cards(self) -> list:
        designation = self.designation or designation_for(self.ra, self.dec)
        return [
            ("FILENAME", self.filename or None, ""),
            ("AUTHOR", "vo-al synthetic", "Who compiled the information"),
            ("TELESCOP", "LAMOST", "GuoShouJing Telescope"),
            ("OBSID", int(self.obsid), "Unique number ID of this spectrum"),
            ("DESIG", designation, "Designation of LAMOST target"),
            ("OBJNAME", self.objname or str(self.obsid), "Name of object"),
            ("OBJTYPE", "Star", "Object type from input catalog"),
            ("RA", float(self.ra), "[deg] Right ascension of object"),
            ("DEC", float(self.dec), "[deg] Declination of object"),
            ("RA_OBS", float(self.ra), "[deg] Right ascension during observing"),
            ("DEC_OBS", float(self.dec), "[deg] Declination during observing"),
            ("RADECSYS", "FK5", "Equatorial coordinate system"),
            ("EQUINOX", 2000.0, "Equinox in years"),
            ("DATE-OBS", self.date_obs, "The observation median UTC"),
            ("LMJD", int(self.lmjd), "Local Modified Julian Day"),
            ("MJD", int(self.lmjd) + 1, "Modified Julian Day"),
            ("EXPTIME", float(self.exptime), "[s] Minimum of exposure time for all cameras"),
            ("PLANID", self.planid, "Plan ID in use"),
            ("SPID", int(self.spid), "Spectrograph ID"),
            ("FIBERID", int(self.fiberid), "Fiber ID of Object"),
            ("HELIO", True, "Heliocentric correction"),
            ("VACUUM", True, "Wavelengths are in vacuum"),
            ("CLASS", self.cls, "Class of object"),
            ("SUBCLASS", self.subclass, "Subclass of object"),
            ("Z", float(self.z), "Redshift of object"),
            ("Z_ERR", 1e-5, "Redshift error of object"),
            ("SNRG", _round(self.snr_g), "Signal to noise ratio of g filter"),
            ("SNRR", _round(self.snr_r), "Signal to noise ratio of r filter"),
            ("SN_G", _round(self.snr_g), "SNR of g filter"),
            ("SN_R", _round(self.snr_r), "SNR of r filter"),
            ("BUNIT", "10**-17 erg/s/cm^2/A", "Unit of the flux"),
        ]


def _round(value: float) -> float | None:
    return round(float(value), 2) if value is not None and math.isfinite(value) else None


def designation_for(ra: float, dec: float) -> str:
    """'LAMOST JHHMMSS.ss+DDMMSS.s' from degrees, truncated (not rounded) as IAU names are."""
    ra_cs = int(math.floor((ra % 360.0) / 15.0 * 360000.0))      # centiseconds of time
    hh, rem = divmod(ra_cs, 360000)
    mm, cs = divmod(rem, 6000)
    sign = "-" if dec < 0 else "+"
    dec_ds = int(math.floor(abs(dec) * 36000.0))                  # deciseconds of arc
    dd, rem = divmod(dec_ds, 36000)
    dm, ds = divmod(rem, 600)
    return f"LAMOST J{hh:02d}{mm:02d}{cs // 100:02d}.{cs % 100:02d}{sign}{dd:02d}{dm:02d}" \
           f"{ds // 10:02d}.{ds % 10:d}"


def _log_linear_coefficients(wavelength: np.ndarray) -> tuple[float, float]:
    logw = np.log10(np.asarray(wavelength, dtype=np.float64))
    coeff1 = (logw[-1] - logw[0]) / (logw.size - 1)
    model = logw[0] + coeff1 * np.arange(logw.size)
    if not coeff1 > 0 or np.max(np.abs(model - logw)) > 1e-6:
        raise ValueError("wavelength is not an ascending log-linear grid")
    return round(float(logw[0]), 10), round(float(coeff1), 12)


def write_lamost_fits(path, wavelength, flux, ivar, andmask, ormask,
                      meta: LamostHeader | SpectrumMeta, layout: str = "image") -> Path:
    """Write a LAMOST-like file: 'image' = DR2-like primary 5×N float32 image with the headers of
    make_lamost_fits.py; 'table' = later-release binary table in HDU 1, OBSID in the primary
    header. Gzipped when `path` ends in .gz."""
    path = Path(path)
    header = meta if isinstance(meta, LamostHeader) else LamostHeader.from_meta(meta)
    if not header.filename:
        header = LamostHeader(**{**header.__dict__, "filename": path.name.removesuffix(".gz")})
    arrays = [np.asarray(a, dtype=np.float32) for a in (flux, ivar, wavelength, andmask, ormask)]
    if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 1:
        raise ValueError(f"arrays of unequal shapes: {[a.shape for a in arrays]}")
    if layout == "image":
        data = _lamost_image_bytes(header, arrays, _log_linear_coefficients(wavelength))
    elif layout == "table":
        data = _lamost_table_bytes(header, arrays)
    else:
        raise ValueError(f"layout {layout!r} is not 'image' or 'table'")
    _write_fits_bytes(path, data)
    return path


def _lamost_image_bytes(header: LamostHeader, arrays: list, coeffs: tuple) -> bytes:
    coeff0, coeff1 = coeffs
    n_pix = arrays[0].size
    cards = [("SIMPLE", True, "conforms to FITS standard"), ("BITPIX", -32, "array data type"),
             ("NAXIS", 2, "number of array dimensions"), ("NAXIS1", n_pix, ""),
             ("NAXIS2", 5, ""), ("EXTEND", True, ""),
             ("EXTEN0", "Flux Inverse Wavelength Andmask Ormask", ""),
             ("EXTNAME", "Flux", "The extension name")]
    cards += header.cards()
    cards += [("NWORDER", 2, "Number of linear-log10 coefficients"),
              ("WFITTYPE", "LOG-LINEAR", "Linear-log10 dispersion"),
              ("COEFF0", coeff0, "Center wavelength (log10) of first pixel"),
              ("COEFF1", coeff1, "Log10 dispersion per pixel"),
              ("CRVAL1", coeff0, "Central wavelength (log10) of first pixel"),
              ("CD1_1", coeff1, "Log10 dispersion per pixel"),
              ("CRPIX1", 1, "Starting pixel (1-indexed)"), ("CTYPE1", "LINEAR", ""),
              ("DC-FLAG", 1, "Log-linear flag"),
              ("ROW1", "Flux", ""), ("ROW2", "Inverse Variance", ""), ("ROW3", "WaveLength", ""),
              ("ROW4", "Andmask", ""), ("ROW5", "Ormask", "")]
    pixels = np.vstack(arrays).astype(">f4").tobytes()
    return _header_bytes(cards) + _pad(pixels, b"\0")


_TABLE_COLUMNS = ("FLUX", "IVAR", "WAVELENGTH", "ANDMASK", "ORMASK")


def _lamost_table_bytes(header: LamostHeader, arrays: list) -> bytes:
    n_pix = arrays[0].size
    primary = [("SIMPLE", True, "conforms to FITS standard"), ("BITPIX", 8, ""),
               ("NAXIS", 0, ""), ("EXTEND", True, "")] + header.cards()
    ext = [("XTENSION", "BINTABLE", "binary table extension"), ("BITPIX", 8, ""),
           ("NAXIS", 2, ""), ("NAXIS1", 4 * n_pix * len(_TABLE_COLUMNS), "bytes per row"),
           ("NAXIS2", 1, "rows"), ("PCOUNT", 0, ""), ("GCOUNT", 1, ""),
           ("TFIELDS", len(_TABLE_COLUMNS), "")]
    for i, name in enumerate(_TABLE_COLUMNS, start=1):
        ext += [(f"TTYPE{i}", name, ""), (f"TFORM{i}", f"{n_pix}E", "")]
    ext += [("EXTNAME", "COADD", "")]
    row = b"".join(a.astype(">f4").tobytes() for a in arrays)
    return _header_bytes(primary) + _header_bytes(ext) + _pad(row, b"\0")


def write_ccd700_fits(path, wavelength_air, flux, object_name: str = "",
                      ra: float = float("nan"), dec: float = float("nan"),
                      date_obs: str = "2005-05-27") -> Path:
    """A 1-D Ondřejov-like file: linear AIR axis (CRVAL1/CDELT1/CD1_1/CRPIX1, CTYPE1 'WAVE'),
    OBJECT, RA/DEC as sexagesimal strings like the real headers. Gzipped when path ends in .gz."""
    wl = np.asarray(wavelength_air, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float32)
    if wl.shape != flux.shape or wl.ndim != 1 or wl.size < 2:
        raise ValueError(f"wavelength {wl.shape} and flux {flux.shape} must be equal 1-D arrays")
    step = (wl[-1] - wl[0]) / (wl.size - 1)
    if not step > 0 or np.max(np.abs(wl - (wl[0] + step * np.arange(wl.size)))) > 1e-3 * step:
        raise ValueError("wavelength is not an ascending linear grid")
    cards = [("SIMPLE", True, "Fits standard"), ("BITPIX", -32, "Bits per pixel"),
             ("NAXIS", 1, "Number of axes"), ("NAXIS1", wl.size, "Axis length"),
             ("EXTEND", False, "File may contain extensions"),
             ("OBJECT", object_name, "Title of observation"),
             ("OBSERVAT", "ONDREJOV", "Name of observatory (IRAF style)"),
             ("TELESCOP", "ZEISS-2m", "2m Ondrejov observatory telescope"),
             ("INSTRUME", "COUDE700", "Coude spectrograph setup - 1400/700mm focus"),
             ("DATE-OBS", date_obs, "UTC date start of observation"),
             ("EXPTIME", 1800.0, "Length of observation excluding pauses"),
             ("BUNIT", "ADU", "Unit of the array of image data"),
             ("RA", _sexagesimal(ra / 15.0) if math.isfinite(ra) else None, "hours"),
             ("DEC", _sexagesimal(dec, signed=True) if math.isfinite(dec) else None, "degrees"),
             ("EQUINOX", 2000.0, "Equinox of RA and DEC"),
             ("CTYPE1", "WAVE", "air wavelength"), ("CUNIT1", "Angstrom", ""),
             ("CRVAL1", round(float(wl[0]), 8), ""), ("CRPIX1", 1.0, ""),
             ("CDELT1", round(float(step), 12), ""), ("CD1_1", round(float(step), 12), ""),
             ("DC-FLAG", 0, "linear"),
             ("WAT1_001", "wtype=linear label=Wavelength units=angstroms", "")]
    _write_fits_bytes(Path(path), _header_bytes(cards) + _pad(flux.astype(">f4").tobytes(), b"\0"))
    return Path(path)


def _sexagesimal(value: float, signed: bool = False) -> str:
    sign = "-" if value < 0 else ("+" if signed else "")
    tenths = int(round(abs(value) * 36000.0))
    whole, rem = divmod(tenths, 36000)
    minutes, t = divmod(rem, 600)
    return f"{sign}{whole:02d}:{minutes:02d}:{t // 10:02d}.{t % 10:d}"


# ---------------------------------------------------------------- folder makers

def _write_csv(path: Path, header: list, rows: list) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def make_training_set(out_dir, n: int = 2000, seed: int = 0) -> Path:
    """n CCD700 FITS files (classes ≈ 47 % absorption, 41 % single, 12 % double) + labels.csv."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = training_labels(n, rng)
    children = _children(seed, n)
    rows = []
    for i, (label, child) in enumerate(zip(labels, children)):
        name = f"ccd700-{i:06d}.fits"
        wl_air, flux = make_ccd700_spectrum(int(label), child)
        ra = float(child.uniform(0, 360))
        dec = float(np.degrees(np.arcsin(child.uniform(-0.3, 1))))    # northern sky
        write_ccd700_fits(out / name, wl_air, flux, f"SYN {i:06d}", ra, dec)
        rows.append((name, int(label)))
    _write_csv(out / "labels.csv", ["name", "label"], rows)
    return out


@dataclass
class Plate:
    """A LAMOST plate: field centre, plan id, night. Fibres lie within 2.5° of the centre."""

    planid: str
    ra: float
    dec: float
    lmjd: int


def _plates(n: int, rng: np.random.Generator) -> list:
    count = max(3, -(-n // 3000))
    plates = []
    for k in range(count):
        ra = float(rng.uniform(0, 360))
        dec = float(rng.uniform(-5, 60))                  # LAMOST's sky
        lmjd = 55900 + int(rng.integers(0, 1000))
        prefix = "GAC" if rng.random() < 0.5 else "HD"
        planid = f"{prefix}{int(ra / 15):02d}{int(round(abs(dec))):02d}{'N' if dec >= 0 else 'S'}" \
                 f"{k:02d}V{int(rng.integers(1, 4))}"
        plates.append(Plate(planid, ra, dec, lmjd))
    return plates


def _fibre_position(plate: Plate, rng: np.random.Generator) -> tuple[float, float]:
    radius = 2.5 * math.sqrt(float(rng.random()))                  # uniform in the 5° field
    angle = float(rng.uniform(0, 2 * math.pi))
    dec = plate.dec + radius * math.sin(angle)
    ra = (plate.ra + radius * math.cos(angle) / max(math.cos(math.radians(dec)), 1e-3)) % 360.0
    return ra, dec


@dataclass
class PoolEntry:
    name: str
    label: int
    kind: str


def make_pool(out_dir, n: int = 20000, target_fraction: float = 0.01, seed: int = 1,
              gz_fraction: float = 0.05, table_fraction: float = 0.2, broken: int = 0,
              mix: PoolMix | None = None) -> Path:
    """n LAMOST-like FITS files (image and table layouts, some gzipped) + truth.csv.

    truth.csv has columns name,label,kind; the FITS headers carry no truth (CLASS is 'STAR').
    `broken` extra files (label -1, kind 'broken-...') are written only when asked.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    kinds = pool_kinds(n, rng, target_fraction, mix)
    plates = _plates(n, rng)
    fibres_per_plate = -(-n // len(plates))
    gz = rng.random(n) < gz_fraction
    table = rng.random(n) < table_fraction
    children = _children(seed, n)
    entries = []
    for i, (kind, child) in enumerate(zip(kinds, children)):
        plate = plates[i // fibres_per_plate]
        slot = i % fibres_per_plate
        spid, fiberid = 1 + slot // 250, 1 + slot % 250
        name = f"spec-{plate.lmjd}-{plate.planid}_sp{spid:02d}-{fiberid:03d}.fits" + \
               (".gz" if gz[i] else "")
        spectrum = lamost_spectrum(KIND_LABEL[kind], child, kind)
        ra, dec = _fibre_position(plate, child)
        header = LamostHeader(
            obsid=100_000_000 + i, ra=round(ra, 6), dec=round(dec, 6),
            subclass=spectrum.star.subclass(child),
            z=round(spectrum.star.rv / C_KMS, 8), snr_r=spectrum.snr,
            snr_g=spectrum.snr * float(child.uniform(0.4, 0.9)),
            objname=str(int(child.integers(10 ** 14, 10 ** 15))), planid=plate.planid,
            lmjd=plate.lmjd, spid=spid, fiberid=fiberid,
            date_obs=_date_obs(plate.lmjd), filename=name.removesuffix(".gz"))
        write_lamost_fits(out / name, *spectrum.arrays(), meta=header,
                          layout="table" if table[i] else "image")
        entries.append(PoolEntry(name, KIND_LABEL[kind], kind))
    entries += write_broken_files(out, broken, rng)
    _write_csv(out / "truth.csv", ["name", "label", "kind"],
               [(e.name, e.label, e.kind) for e in entries])
    return out


def _date_obs(lmjd: int) -> str:
    import datetime

    day = datetime.date(1858, 11, 17) + datetime.timedelta(days=lmjd)
    return f"{day.isoformat()}T18:30:00"


def write_broken_files(out_dir, count: int, rng: np.random.Generator) -> list:
    """`count` files that must not become pool rows, cycling through BROKEN_KINDS."""
    out = Path(out_dir)
    entries = []
    for k in range(count):
        kind = BROKEN_KINDS[k % len(BROKEN_KINDS)]
        name = f"broken-{k:04d}.fits"
        _write_broken(out / name, kind, rng, k)
        entries.append(PoolEntry(name, BROKEN_LABEL, kind))
    return entries


def _write_broken(path: Path, kind: str, rng: np.random.Generator, k: int) -> None:
    spectrum = lamost_spectrum(NON_TARGET, rng, "absorption")
    header = LamostHeader(obsid=900_000_000 + k, ra=10.0 + k * 0.01, dec=20.0,
                          subclass="G5", snr_r=spectrum.snr)
    if kind == "broken-truncated":
        write_lamost_fits(path, *spectrum.arrays(), meta=header)
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 2])
    elif kind == "broken-not-spectrum":
        image = rng.normal(100, 10, (64, 64)).astype(">f4")
        cards = [("SIMPLE", True, ""), ("BITPIX", -32, ""), ("NAXIS", 2, ""),
                 ("NAXIS1", 64, ""), ("NAXIS2", 64, ""), ("OBJECT", "flat field", "")]
        _write_fits_bytes(path, _header_bytes(cards) + _pad(image.tobytes(), b"\0"))
    elif kind == "broken-nan":
        flux = np.full_like(spectrum.flux, np.nan)
        write_lamost_fits(path, spectrum.wavelength, flux, spectrum.ivar, spectrum.andmask,
                          spectrum.ormask, meta=header)
    elif kind == "broken-window":
        stop = int(np.searchsorted(spectrum.wavelength, 6000.0))   # blue arm only
        arrays = [a[:stop] for a in spectrum.arrays()]
        write_lamost_fits(path, *arrays, meta=header)
    else:
        raise ValueError(f"unknown broken kind {kind!r}")
