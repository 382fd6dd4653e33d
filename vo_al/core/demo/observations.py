"""One synthetic spectrum as an instrument records it: a star model of the asked class or kind,
through the instrument's resolution and continuum, with its artefacts and noise.

`make_ccd700_spectrum` gives an Ondřejov-like training spectrum, `lamost_spectrum` (and
`make_lamost_spectrum`, its bare arrays) a LAMOST-like pool spectrum. Both draw everything from
the `rng` they are given, so one seed gives one spectrum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vo_al.core.demo.artefacts import (add_gap, add_nebular, add_sky_residuals, add_spikes,
                                       add_window_artefact, apply_arm_join)
from vo_al.core.demo.instruments import (CCD700_CRVAL1, CCD700_DEGRADED_RESOLUTION,
                                         CCD700_RESOLUTION, LAMOST_RESOLUTION, ccd700_air_axis,
                                         lamost_noise_sigma, lamost_wavelength, telluric_lines)
from vo_al.core.demo.kinds import KIND_LABEL, LABEL_DEFAULT_KIND, TARGET_KINDS
from vo_al.core.demo.lines import C_KMS, SKY_VAC, TIO_HEADS_VAC, Band, planck_continuum
from vo_al.core.demo.stars import (TRAINING_TYPE_WEIGHTS, StarModel, absorption_star, active_star,
                                   log_uniform, normalised_profile, target_star)
from vo_al.core.learning.classes import NON_TARGET
from vo_al.core.spectra.lines import HALPHA_VAC
from vo_al.core.spectra.preprocess import air_to_vacuum

# ---------------------------------------------------------------- CCD700 (training) spectra


def make_ccd700_spectrum(label: int, rng: np.random.Generator,
                         rv: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One Ondřejov-like spectrum: (air wavelength Å, flux ADU) on a linear axis, R ≈ 13 000;
    `rv` (km/s) replaces the star's own draw."""
    start = CCD700_CRVAL1 + float(rng.uniform(-10, 10))     # grating setting varies a little
    wl_air = ccd700_air_axis(start)
    wl_vac = air_to_vacuum(wl_air)
    snr = float(rng.uniform(100, 300))
    if label == NON_TARGET:
        star = absorption_star(rng, type_weights=TRAINING_TYPE_WEIGHTS)
    else:
        # visibility is judged after the 7-px degradation of METHOD.md, which the model sees
        star = target_star(label, rng, CCD700_DEGRADED_RESOLUTION, min_height=0.1)
    if rv is not None:
        star.rv = float(rv)
    star.telluric = telluric_lines(rng)
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


NOISE_SNR = (0.3, 2.0)            # the 'noise' kind: sky-dominated and failed fibres


def _pool_snr(rng: np.random.Generator, kind: str) -> float:
    if kind == "noise":
        return log_uniform(rng, *NOISE_SNR)
    return log_uniform(rng, 2.0, 200.0)


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
    if kind == "active":
        return active_star(rng, LAMOST_RESOLUTION, min_depth=0.03)
    return absorption_star(rng)


def make_lamost_spectrum(label: int, rng: np.random.Generator, kind: str | None = None,
                         snr: float | None = None):
    """One LAMOST-like spectrum: (wavelength_vac, flux, ivar, andmask, ormask), R ≈ 1 800.

    `kind` is one of NON_TARGET_KINDS for label 0 (default 'absorption'), 'single' / 'double' for
    labels 1 / 2 (default).
    """
    return lamost_spectrum(label, rng, kind, snr).arrays()


def lamost_spectrum(label: int, rng: np.random.Generator, kind: str | None = None,
                    snr: float | None = None, rv: float | None = None) -> LamostSpectrum:
    """`snr` (r band) and `rv` (km/s) replace the demo's own draws where given."""
    kind = kind or LABEL_DEFAULT_KIND[label]
    if KIND_LABEL.get(kind) != label:
        raise ValueError(f"kind {kind!r} does not belong to label {label}")
    wl = lamost_wavelength()
    snr = float(snr) if snr is not None else _pool_snr(rng, kind)
    star = _star_for_kind(kind, rng, snr)
    if rv is not None:
        star.rv = float(rv)
    level = log_uniform(rng, 30.0, 3000.0)                   # 1e-17 erg/s/cm²/Å
    continuum = level * planck_continuum(wl, star.teff, star.tilt)
    flux = continuum * normalised_profile(star, wl, LAMOST_RESOLUTION)
    apply_arm_join(flux, wl, rng, 0.25 if kind == "join" else 0.03)
    halpha_obs = HALPHA_VAC * (1 + star.rv / C_KMS)
    if kind == "spike":
        add_spikes(flux, wl, continuum, rng, halpha_obs)
    elif kind == "join":
        add_window_artefact(flux, wl, continuum, rng)
    elif kind == "nebular":
        add_nebular(flux, wl, continuum, rng, star.rv)
    elif kind == "sky":
        add_sky_residuals(flux, wl, continuum, rng, snr)
    sigma = lamost_noise_sigma(wl, np.abs(flux), level, snr)
    flux = flux + rng.normal(0.0, 1.0, wl.size) * sigma
    ivar = 1.0 / sigma ** 2
    andmask = np.zeros(wl.size, dtype=np.int32)
    ormask = np.zeros(wl.size, dtype=np.int32)
    andmask[:int(rng.integers(0, 25))] = 1                   # blue edge, as in real files
    for center in SKY_VAC:                                  # strong sky lines: flagged sometimes
        i = int(np.searchsorted(wl, center))
        ormask[i - 2:i + 3] = 1 << 23
    if kind == "gap":
        add_gap(flux, ivar, andmask, wl, rng)
    ormask |= andmask
    return LamostSpectrum(wl, flux.astype(np.float32), ivar.astype(np.float32), andmask,
                          ormask, snr, star)
