"""The one record type every reader returns."""

from __future__ import annotations

from dataclasses import dataclass, field, asdict

import numpy as np

# "other": a spectrum of another survey or instrument (SDM products, specutils loaders) whose
# resolution preprocessing leaves as it is (CCD700's is degraded to LAMOST's; METHOD.md step 3)
INSTRUMENTS = ("lamost", "ccd700", "other")
MEDIA = ("air", "vacuum")


@dataclass
class SpectrumMeta:
    """What we keep about a spectrum besides its pixels (all optional except `name`).

    These fields, in this order and with these types, are the pool's metadata columns (derived
    in vo_al.core.pool.schema): a new field changes pool.sqlite, so it needs a new pool format.
    """

    name: str                      # file name or obsid: how a person finds the spectrum again
    designation: str = ""
    ra: float = float("nan")       # deg, ICRS
    dec: float = float("nan")      # deg
    obsid: str = ""
    cls: str = ""                  # survey pipeline CLASS
    subclass: str = ""
    z: float = float("nan")
    snr: float = float("nan")      # r-band S/N where the survey gives one
    source: str = ""               # file path or access URL (accref) of the original spectrum

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Spectrum:
    """A 1-D spectrum on a linear VACUUM wavelength axis in Angstrom.

    `mask` is True where a pixel is bad (survey and/or or-mask set, or zero inverse variance).
    `reader` names the reader that made it ('lamost-image', 'sdm-votable', 'specutils:...');
    `medium` is what the FILE's wavelengths were in ('air' or 'vacuum'; converted to vacuum here)
    and `medium_reason` why vo-al believes so: a person can check it (`vo-al preprocess`).
    `flux_unit` is the flux's unit as the file states it (BUNIT, the flux column's unit), ''
    where it states none (LAMOST's relative fluxes): the plots' y-axis says so.
    """

    wavelength: np.ndarray
    flux: np.ndarray
    ivar: np.ndarray | None
    mask: np.ndarray | None
    instrument: str
    meta: SpectrumMeta = field(default_factory=lambda: SpectrumMeta(name=""))
    reader: str = ""
    medium: str = "vacuum"
    medium_reason: str = ""
    flux_unit: str = ""

    def __post_init__(self) -> None:
        if self.instrument not in INSTRUMENTS:
            raise ValueError(f"instrument {self.instrument!r} not one of {INSTRUMENTS}")
        if self.medium not in MEDIA:
            raise ValueError(f"medium {self.medium!r} not one of {MEDIA}")
        self.wavelength = np.asarray(self.wavelength, dtype=np.float64)
        self.flux = np.asarray(self.flux, dtype=np.float64)
        if self.wavelength.shape != self.flux.shape or self.flux.ndim != 1:
            raise ValueError(
                f"{self.meta.name}: wavelength {self.wavelength.shape} and flux "
                f"{self.flux.shape} must be equal 1-D arrays")
