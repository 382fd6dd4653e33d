"""What a synthetic spectrum can be: the kinds of each class, the broken files, and the mixes the
training set and the pool are drawn from.

Targets are rare in the pool (1 % by default), single : double ≈ 6 : 1; the pool's non-target
class holds absorption stars AND the artefacts a model trained on clean data mistakes for
emission (cosmic-ray spikes, arm-join steps, gaps, nebular lines, noise, molecular bands). The
paper preset's pool (PAPER_MIX) adds two more: chromospherically active cool dwarfs, whose Hα
absorption is partly filled by an emission core, and sky-subtraction residuals of the OH lines.
"""

from __future__ import annotations

from dataclasses import dataclass

from vo_al.core.learning.classes import DOUBLE_PEAK, NON_TARGET, SINGLE_PEAK

TARGET_KINDS = {"single": SINGLE_PEAK, "double": DOUBLE_PEAK}
NON_TARGET_KINDS = ("absorption", "cool", "spike", "join", "gap", "nebular", "noise", "active",
                    "sky")
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
    # not in the demo's pool (its recorded runs are made without them); in PAPER_MIX
    active: float = 0.0
    sky: float = 0.0

    def fractions(self) -> dict:
        weights = {k: float(getattr(self, k)) for k in NON_TARGET_KINDS}
        total = sum(weights.values())
        if total <= 0 or any(w < 0 for w in weights.values()):
            raise ValueError(f"pool mix weights must be >= 0 with a positive sum: {weights}")
        return {k: w / total for k, w in weights.items()}


# The paper preset's pool, LAMOST DR2 as the paper's pool saw it. The weights are judgement, not
# measurements, with one anchor: DR2 calls 7.4 % of its spectra 'unknown' (306 185 of 4 136 482,
# its data description), mostly too noisy to classify; the S/N spread of survey.PAPER_SURVEY puts
# about 5 % of every kind below S/N 5 already, so 'noise' (S/N < 2: sky-dominated and failed
# fibres) keeps 3 %. Artefacts (spike, join, gap, sky) are 21 % of the non-targets, nebular and
# active stars 5 % each, cool K/M stars 10 %.
PAPER_MIX = PoolMix(absorption=0.56, cool=0.10, spike=0.05, join=0.05, gap=0.03, nebular=0.05,
                    noise=0.03, active=0.05, sky=0.08)
