"""A table's values as a person reads them: each column to the digits its quantity means.

The column's UCD and unit in `COLUMN_INFO` (the facts a catalogue is written with) decide:
positions in decimal degrees to 6 decimals or sexagesimal (one choice for every table),
probabilities to 4 decimals (one too small for them in 2 significant digits, '3.2e-05': a
model's 'not this class' is rarely exactly 0, and '0.0000' hides how sure it is), separations in arcsec to 0.01″, S/N to 0.1, ratios to 3 decimals;
any other float keeps 4 significant digits. A missing value (NaN) is an empty cell. The app's
tables show these texts; sorting and filtering use the numbers themselves.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from vo_al.core.base.sky import DEGREE_DECIMALS, dec_dms, ra_hms
from vo_al.core.export.catalogue import COLUMN_INFO

CellFormat = Callable[[object], str]

# (a UCD word, decimals) in the order they are tried; the unit arcsec is a separation
PROBABILITY_DECIMALS = 4
_DECIMALS_BY_UCD = (("stat.snr", 1), ("arith.ratio", 3))
ARCSEC_DECIMALS = 2


def _number(value) -> float | None:
    """The float of a numeric cell (None for text, integers and booleans: shown as they are)."""
    if isinstance(value, (float, np.floating)):
        return float(value)
    return None


def _fixed(decimals: int) -> CellFormat:
    def write(value) -> str:
        number = _number(value)
        if number is None:
            return str(value)
        return "" if math.isnan(number) else f"{number:.{decimals}f}"
    return write


def _probability(value) -> str:
    number = _number(value)
    if number is None:
        return str(value)
    if math.isnan(number):
        return ""
    if 0 < number < 0.5 * 10 ** -PROBABILITY_DECIMALS:     # would read 0.0000
        return f"{number:.1e}"
    return f"{number:.{PROBABILITY_DECIMALS}f}"


def _general(value) -> str:
    number = _number(value)
    if number is None:
        return str(value)
    return "" if math.isnan(number) else f"{number:.4g}"


def _position(sexagesimal_text: Callable[[float], str]) -> CellFormat:
    def write(value) -> str:
        number = _number(value)
        if number is None:
            return str(value)
        return sexagesimal_text(number)
    return write


def _ucd_words(column: str) -> set:
    return set((COLUMN_INFO.get(column, (None, "", ""))[1] or "").split(";"))


def is_position(column: str) -> bool:
    """Whether `column` is a right ascension or a declination (by its UCD)."""
    return bool(_ucd_words(column) & {"pos.eq.ra", "pos.eq.dec"})


def cell_format(column: str, sexagesimal: bool = False) -> CellFormat:
    """The function that writes a value of `column` for a person (see the module docstring);
    `sexagesimal` writes right ascensions as hh:mm:ss.sss and declinations as ±dd:mm:ss.ss."""
    unit = COLUMN_INFO.get(column, (None, "", ""))[0]
    words = _ucd_words(column)
    if "pos.eq.ra" in words:
        return _position(ra_hms) if sexagesimal else _fixed(DEGREE_DECIMALS)
    if "pos.eq.dec" in words:
        return _position(dec_dms) if sexagesimal else _fixed(DEGREE_DECIMALS)
    if unit == "arcsec":
        return _fixed(ARCSEC_DECIMALS)
    if "stat.probability" in words:
        return _probability
    for word, decimals in _DECIMALS_BY_UCD:
        if word in words:
            return _fixed(decimals)
    return _general
