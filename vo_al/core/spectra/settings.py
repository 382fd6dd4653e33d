"""What preprocessing needs to know: the window and its sampling (METHOD.md, Sect. 2.2)."""

from __future__ import annotations

from dataclasses import dataclass

from vo_al.core.base.errors import ParameterError


@dataclass
class PreprocessSettings:
    window_min: float = 6519.0          # Angstrom, vacuum
    window_max: float = 6732.0
    n_points: int = 140
    ccd700_sigma_px: float = 7.0        # Gaussian blur in CCD700 pixels (R 13 000 -> ~1 800)
    min_window_coverage: float = 0.75   # fraction of the window the spectrum must cover

    def validate(self) -> None:
        if not self.window_min < self.window_max:
            raise ParameterError("window_min", self.window_min, "must be < window_max")
        if self.n_points < 8:
            raise ParameterError("n_points", self.n_points, "must be >= 8")
        if self.ccd700_sigma_px < 0:
            raise ParameterError("ccd700_sigma_px", self.ccd700_sigma_px, "must be >= 0")
        if not 0 < self.min_window_coverage <= 1:
            raise ParameterError("min_window_coverage", self.min_window_coverage, "must be in (0, 1]")
