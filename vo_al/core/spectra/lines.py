"""Rest wavelengths (vacuum, Å) of the lines around the Hα window: the one owner of them.

Hα is the target; the others are what fools the model or the eye near it: the nebular doublets
[N II] 6548/6583 and [S II] 6716/6731 (emission of an H II region or of the sky under a star),
He I 6678 (a hot star's own line) and the telluric O₂ B band (6867-6884 Å in air, the absorption
of Earth's atmosphere). The synthetic sky draws these lines (`core.demo`) and the app marks them
on every spectrum it plots (`MARKED_LINES`, `O2_B_BAND_VAC`). Names are the customary ones, by
air wavelength; the values are vacuum, like every wavelength of a `Spectrum`.
"""

from __future__ import annotations

from dataclasses import dataclass

from vo_al.core.spectra.preprocess import air_to_vacuum

HALPHA_VAC = 6564.614   # Angstrom, vacuum (6562.801 in air)
HEI_6678_VAC = 6679.995
# air wavelengths from standard tables, converted once to vacuum
NII_VAC = tuple(float(w) for w in air_to_vacuum((6548.05, 6583.45)))
SII_VAC = tuple(float(w) for w in air_to_vacuum((6716.44, 6730.82)))
O2_B_BAND_VAC = tuple(float(w) for w in air_to_vacuum((6867.0, 6884.0)))


TARGET, NEBULAR, STELLAR = "target", "nebular", "stellar"


@dataclass(frozen=True)
class MarkedLine:
    label: str              # short, as it is written over a plot
    wavelength: float       # vacuum, Å
    kind: str               # TARGET (Hα), NEBULAR ([N II], [S II]) or STELLAR (He I)


# in the order their labels are placed where they would overlap: the first ones win
MARKED_LINES = (
    MarkedLine("Hα", HALPHA_VAC, TARGET),
    MarkedLine("[N II]", NII_VAC[1], NEBULAR),
    MarkedLine("[S II]", SII_VAC[0], NEBULAR),
    MarkedLine("He I", HEI_6678_VAC, STELLAR),
    MarkedLine("[N II]", NII_VAC[0], NEBULAR),
    MarkedLine("[S II]", SII_VAC[1], NEBULAR),
)
O2_B_LABEL = "O₂ B"
