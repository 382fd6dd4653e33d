"""What preprocessing needs to know: the window and its sampling (METHOD.md, Sect. 2.2), and when
a spectrum is rejected instead of being turned into a row."""

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
    # Fraction of the spectrum's pixels inside the window that must be usable (finite flux,
    # ivar > 0 where there is an ivar, not flagged by the mask). Real good LAMOST spectra have
    # 96-100 % there; a window of flagged dead columns would otherwise become a fake trough.
    min_usable_fraction: float = 0.8
    # Replace flagged pixels by interpolation from their good neighbours before resampling. Off:
    # the paper used every pixel as it is, and the default rows must stay the method's.
    mask_flagged_pixels: bool = False

    def validate(self) -> None:
        if not self.window_min < self.window_max:
            raise ParameterError("window_min", self.window_min, "must be < window_max")
        if self.n_points < 8:
            raise ParameterError("n_points", self.n_points, "must be >= 8")
        if self.ccd700_sigma_px < 0:
            raise ParameterError("ccd700_sigma_px", self.ccd700_sigma_px, "must be >= 0")
        if not 0 < self.min_window_coverage <= 1:
            raise ParameterError("min_window_coverage", self.min_window_coverage, "must be in (0, 1]")
        if (isinstance(self.min_usable_fraction, bool)
                or not isinstance(self.min_usable_fraction, (int, float))
                or not 0 < self.min_usable_fraction <= 1):
            raise ParameterError("min_usable_fraction", self.min_usable_fraction,
                                 "must be a number in (0, 1]")
        if not isinstance(self.mask_flagged_pixels, bool):
            raise ParameterError("mask_flagged_pixels", self.mask_flagged_pixels,
                                 "must be true or false")
