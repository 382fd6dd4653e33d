"""The survey the paper preset imitates: LAMOST DR2 as the paper's pool saw it, and the Ondřejov
set it was trained on: the mix of kinds, the S/N of the pool's spectra and everyone's radial
velocity.

Where the shapes come from (`../shared/data/real/` holds 16 real LAMOST DR1/DR2 spectra):

* S/N: log-normal in the r band. A maximum-likelihood fit to the SN_R of those 16 spectra gives
  a median of 26 and σ(ln S/N) = 0.98 (they span 3.2 to 182); PAPER_SURVEY takes 26 and 1.0.
  That puts 83 % above S/N 10, 9 % above 100 and 5 % below 5: a long tail both ways. For
  comparison, LAMOST's pilot data release kept 493 000 spectra after removing those below S/N
  10 in both g and r, of the 717 660 pilot-survey spectra that DR1 later released (~69 %: a
  younger survey's noisier data, and g is the noisier band);
* radial velocity: a Gaussian of σ 40 km/s, the spread of the 15 stars' Z there (σ 39.8 km/s,
  mean -14 ± 10), plus 10 % of stars from a hotter population (thick disc and halo, σ 120 km/s)
  that 15 stars are too few to show. The Ondřejov stars (bright, nearby) take the same;
* the mix of kinds: kinds.PAPER_MIX.

The CCD700 side keeps its own instrument (observations.make_ccd700_spectrum: R 13 000 on a
linear air axis, S/N 100-300, telluric lines, a hot-star programme); that, the pool's
artefacts and its S/N are the domain shift the paper met.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from vo_al.core.demo.kinds import PAPER_MIX, PoolMix
from vo_al.core.demo.observations import NOISE_SNR
from vo_al.core.demo.stars import log_uniform


@dataclass(frozen=True)
class SurveyModel:
    """How a survey's spectra are drawn besides their kind: S/N and radial velocity."""

    mix: PoolMix = field(default_factory=PoolMix)
    snr_median: float = 26.0          # r band
    snr_sigma: float = 1.0            # of ln S/N
    rv_sigma: float = 40.0            # km/s
    rv_hot_fraction: float = 0.1
    rv_hot_sigma: float = 120.0       # km/s

    def snr(self, rng: np.random.Generator, kind: str) -> float:
        """The r-band S/N of a pool spectrum of `kind` ('noise' keeps its own range)."""
        if kind == "noise":
            return log_uniform(rng, *NOISE_SNR)
        return float(math.exp(rng.normal(math.log(self.snr_median), self.snr_sigma)))

    def rv(self, rng: np.random.Generator) -> float:
        """A star's heliocentric radial velocity, km/s."""
        hot = rng.random() < self.rv_hot_fraction
        return float(rng.normal(0.0, self.rv_hot_sigma if hot else self.rv_sigma))


PAPER_SURVEY = SurveyModel(mix=PAPER_MIX)
