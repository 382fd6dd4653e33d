"""Star models of the synthetic spectra: spectral types, a star's lines and bands, its normalised
profile at a given resolution, and the emission that makes a target.

Line model: a line's Gaussian width adds intrinsic, rotational and instrumental widths in
quadrature, so the instrument's resolution is applied analytically. Absorption enters as optical
depth (F/C = exp(-τ), saturating naturally); emission is added in continuum units on top, so a Be
star's emission fills its own photospheric trough. Molecular (TiO) bands are sharp-headed,
red-degraded depressions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import erf

from vo_al.core.demo.lines import (BALMER_VAC, C_KMS, HELIUM_VAC, METAL_LINES_VAC, SILICON_VAC,
                                   TIO_HEADS_VAC, Band, Line, add_line, instrument_sigma)
from vo_al.core.learning.classes import DOUBLE_PEAK, SINGLE_PEAK
from vo_al.core.spectra.lines import HALPHA_VAC, HEI_6678_VAC

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


# ---------------------------------------------------------------- the star model

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


def _line_widths(line: Line, star: StarModel, resolution: float) -> tuple[float, float, float]:
    """Observed centre and total Gaussian σ of a line; rotation is approximated as a Gaussian."""
    center = line.center * (1.0 + (star.rv + line.velocity) / C_KMS)
    rotation = center * star.vsini / C_KMS / 2.0 if line.rotates else 0.0
    sigma = math.sqrt(line.sigma ** 2 + rotation ** 2 + instrument_sigma(center, resolution) ** 2)
    return center, sigma, line.gamma


def normalised_profile(star: StarModel, wl: np.ndarray, resolution: float) -> np.ndarray:
    """F/C: absorption as exp(-τ), molecular bands, then emission added in continuum units."""
    tau = np.zeros_like(wl)
    for line in star.absorption:
        center, sigma, gamma = _line_widths(line, star, resolution)
        add_line(tau, wl, center, line.area, sigma, gamma)
    for line in star.telluric:
        sigma = math.sqrt(line.sigma ** 2 + instrument_sigma(line.center, resolution) ** 2)
        add_line(tau, wl, line.center, line.area, sigma, 0.0)
    profile = np.exp(-tau)
    for band in star.bands:
        head = band.head * (1.0 + star.rv / C_KMS)
        sigma = instrument_sigma(head, resolution)
        onset = 0.5 * (1.0 + erf((wl - head) / (math.sqrt(2) * sigma)))
        decay = np.exp(-np.clip(wl - head, 0, None) / band.length)
        profile *= 1.0 - band.depth * onset * decay
    emission = np.zeros_like(wl)
    for line in star.emission:
        center, sigma, gamma = _line_widths(line, star, resolution)
        add_line(emission, wl, center, line.area, sigma, gamma)
    return profile + emission


# ---------------------------------------------------------------- random star models

def _uniform(rng: np.random.Generator, bounds: tuple) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A draw uniform in log between lo and hi (strengths, S/N and levels spanning decades)."""
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


# ---------------------------------------------------------------- emission (the targets)

def _velocity_sigma(rng: np.random.Generator, star: StarModel) -> float:
    """Emission-line velocity dispersion: broad in Be/Ae disks, narrower in cool active stars."""
    bounds = (80, 250) if star.spectral_type in "BA" else (30, 150)
    return _uniform(rng, bounds)


def add_single_peak(star: StarModel, rng: np.random.Generator) -> StarModel:
    """Hα (and Hβ, sometimes He I 6678) in emission as one Gaussian or Lorentzian-winged peak."""
    ew = log_uniform(rng, 1.0, 100.0)
    sigma = HALPHA_VAC * _velocity_sigma(rng, star) / C_KMS
    gamma = sigma * float(rng.uniform(0.3, 1.0)) if rng.random() < 0.4 else 0.0
    shift = float(rng.normal(0, 15))
    star.emission.append(Line(HALPHA_VAC, ew, sigma, gamma, shift, rotates=False))
    star.emission.append(Line(BALMER_VAC["Hbeta"], ew * 0.3, sigma * 0.75, gamma, shift,
                              rotates=False))
    if rng.random() < 0.3:
        star.emission.append(Line(HEI_6678_VAC, log_uniform(rng, 0.2, 2.0), sigma * 0.8, 0.0,
                                  rotates=False))
    return star


def add_double_peak(star: StarModel, rng: np.random.Generator) -> StarModel:
    """Disk-like emission: two peaks 100-600 km/s apart, V/R asymmetry, optional shell dip."""
    ew = log_uniform(rng, 2.0, 60.0)
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
        he = log_uniform(rng, 0.2, 1.5)
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


def _halpha_centre(star: StarModel, resolution: float) -> float:
    """F/C at the star's observed Hα centre."""
    centre = HALPHA_VAC * (1 + star.rv / C_KMS)
    return float(normalised_profile(star, np.array([centre]), resolution)[0])


def active_star(rng: np.random.Generator, resolution: float, min_depth: float) -> StarModel:
    """A chromospherically active K or M dwarf: a narrow Hα emission core (chromospheric widths,
    σ 0.4-1 Å) fills 20-90 % of the photospheric absorption, kept below the continuum by at
    least `min_depth` at this resolution.

    A person sees an absorption line (shallow, or with a reversed core at high resolution); dMe
    stars whose Hα rises above the continuum are single-peak targets (SINGLE_TYPE_WEIGHTS)."""
    star = absorption_star(rng, "M" if rng.random() < 0.5 else "K")
    photospheric = star.absorption[0]                    # Hα, first in absorption_star
    star.emission.append(Line(HALPHA_VAC, photospheric.area * float(rng.uniform(0.2, 0.9)),
                              float(rng.uniform(0.4, 1.0)), 0.0, rotates=True))
    for _ in range(12):
        if _halpha_centre(star, resolution) <= 1.0 - min_depth:
            break
        star.emission[-1].area *= 0.7
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
