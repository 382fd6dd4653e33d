"""Positions in a user's table: RA and Dec as numbers or as astronomers write them.

`table_positions(table, ra, dec)` gives degrees for every row, NaN on the rows it lists as
`SkippedRow`s (their row counted from 1, the column, the value as written, why): a missing
value, text that is no coordinate, a declination beyond ±90°. A number is degrees (or in the
column's angle unit); text is sexagesimal, RA in hours (19:36:04.4, 19 36 04.4, 19h36m04.4s)
and Dec in degrees (+10:12:13.5), and an explicit unit (292d31m06s) says its own. d:m:s forms
are parsed here, everything else by astropy's `Angle`. `filled` and `degrees` turn a (masked)
column into a plain array, as the catalogues and the TAP answers need.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass

import numpy as np


def filled(col) -> np.ndarray:
    """A column as a plain array: masked cells '' (text) or NaN (numbers)."""
    if getattr(col, "mask", None) is not None and np.any(col.mask):
        fill = "" if col.dtype.kind in "US O" else np.nan
        if col.dtype.kind in "iub":
            col = col.astype(float)
        return np.asarray(col.filled(fill))
    return np.asarray(col)


def degrees(col) -> np.ndarray:
    """A numeric column in degrees, converted from its unit where astropy knows it."""
    unit = getattr(col, "unit", None)
    values = np.asarray(filled(col), dtype=float)
    if unit is not None and str(unit) not in ("", "deg"):
        from astropy import units as u

        try:
            values = (values * u.Unit(unit)).to_value(u.deg)
        except (u.UnitsError, ValueError):
            pass
    return values


class SkippedRowsWarning(UserWarning):
    """Rows of a catalogue file were left out of the match (their position is unusable)."""


@dataclass(frozen=True)
class SkippedRow:
    """A catalogue row left out: its row (data rows counted from 1), column, value, reason."""

    row: int
    column: str
    value: str
    reason: str


_NOT_A_COORDINATE = "not a coordinate (degrees, or h:m:s for RA and d:m:s for Dec)"


def _angle_unit(col):
    """The column's unit when it is an angle (deg, hourangle, rad ...), else None: VizieR's
    'h:m:s' / 'd:m:s' are no units astropy knows, and say what the defaults say anyway."""
    from astropy import units as u

    unit = getattr(col, "unit", None)
    if unit is None:
        return None
    try:
        unit = u.Unit(unit)
        unit.to(u.deg)
    except (ValueError, TypeError, u.UnitsError):
        return None
    return unit


def _axis_degrees(col, is_ra: bool) -> tuple[np.ndarray, dict[int, tuple[str, str]]]:
    """Degrees of an RA or Dec column, NaN where unusable; {row index: (value, reason)}."""
    mask = np.asarray(getattr(col, "mask", np.zeros(len(col), bool)), bool).reshape(-1)
    if mask.size != len(col):
        mask = np.zeros(len(col), bool)
    bad: dict[int, tuple[str, str]] = {int(i): ("", "no value") for i in np.flatnonzero(mask)}
    if col.dtype.kind in "biuf":
        values = np.array(degrees(col), dtype=float)        # a copy: the table stays as read
        values[mask] = np.nan
    else:
        values = _text_degrees(np.asarray(filled(col)), mask, _angle_unit(col), is_ra, bad)
    for i in np.flatnonzero(~np.isfinite(values) & ~mask):
        bad.setdefault(int(i), (str(col[i]), _NOT_A_COORDINATE))
    if not is_ra:
        with np.errstate(invalid="ignore"):
            off_sky = np.isfinite(values) & (np.abs(values) > 90)
        for i in np.flatnonzero(off_sky):
            bad[int(i)] = (str(col[i]), "a declination beyond ±90°")
    values[list(bad)] = np.nan
    return values, bad


def _text_degrees(texts, mask, unit, is_ra: bool, bad) -> np.ndarray:
    """Degrees of position text. A number is degrees (or in the column's angle `unit`); other
    text goes through astropy's Angle, in `unit`, else hours for RA and degrees for Dec (an
    explicit 19h36m / 292d31m says its own unit). `bad` gets the rows that fail."""
    from astropy import units as u
    from astropy.coordinates import Angle

    texts = [(t.decode("utf-8", "replace") if isinstance(t, bytes) else str(t)).strip()
             for t in texts]
    values = [math.nan] * len(texts)          # a list: element access on numpy is slow here
    scale = unit.to(u.deg) if unit is not None else 1.0
    sexagesimal = []
    for i, (text, masked) in enumerate(zip(texts, mask.tolist())):
        if masked:
            continue
        if not text:
            bad[i] = (text, "no value")
        elif ":" in text:                   # no number: spare float() its exception
            sexagesimal.append(i)
        else:
            try:
                values[i] = float(text) * scale
            except ValueError:
                sexagesimal.append(i)
    unit = unit or (u.hourangle if is_ra else u.deg)
    sexagesimal = _colon_sexagesimal(texts, sexagesimal, unit, values)
    if sexagesimal:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")        # astropy's 60-second warnings
            try:                                   # one call for the whole column ...
                parsed = Angle([texts[i] for i in sexagesimal], unit=unit).deg
                for i, value in zip(sexagesimal, parsed.tolist()):
                    values[i] = value
            except (ValueError, TypeError, u.UnitsError):
                for i in sexagesimal:              # ... and row by row to find the bad ones
                    try:
                        values[i] = float(Angle(texts[i], unit=unit).deg)
                    except (ValueError, TypeError, u.UnitsError):
                        bad[i] = (texts[i], _NOT_A_COORDINATE)
    return np.array(values, dtype=float)


# d:m:s or d m s (the form VizieR and most tables write), parsed here: astropy's Angle parser
# takes ~0.5 ms a value, minutes for a catalogue of 10^5 rows; anything else goes to Angle
_COLON_SEXAGESIMAL = re.compile(r"([+-]?)(\d{1,3})(?::|\s+)(\d{1,2})"
                                r"(?:(?::|\s+)(\d{1,2}(?:\.\d*)?))?")


def _colon_sexagesimal(texts, rows, unit, values) -> list[int]:
    """Fill `values` (a list, degrees) for the rows of `texts` written as d:m:s or h:m:s in
    `unit` (hours or degrees) with minutes and seconds below 60 (hours below 24); return the
    rows left for astropy's Angle."""
    from astropy import units as u

    if unit not in (u.hourangle, u.deg):
        return rows
    scale, top = (15.0, 24) if unit == u.hourangle else (1.0, 360)
    match = _COLON_SEXAGESIMAL.fullmatch
    rest = []
    for i in rows:
        m = match(texts[i])
        if m is None:
            rest.append(i)
            continue
        sign, whole, minutes, seconds = m.groups()
        minutes, seconds = int(minutes), float(seconds or 0.0)
        if int(whole) >= top or minutes >= 60 or seconds >= 60:
            rest.append(i)                  # Angle says what is wrong with it
            continue
        value = (int(whole) + minutes / 60.0 + seconds / 3600.0) * scale
        values[i] = -value if sign == "-" else value
    return rest


def table_positions(table, ra: str, dec: str) -> tuple[np.ndarray, np.ndarray, list[SkippedRow]]:
    """(RA, Dec) in degrees of a table's position columns, NaN on the rows listed as skipped."""
    ra_v, ra_bad = _axis_degrees(table[ra], is_ra=True)
    dec_v, dec_bad = _axis_degrees(table[dec], is_ra=False)
    skipped = [SkippedRow(i + 1, ra, *ra_bad[i]) if i in ra_bad
               else SkippedRow(i + 1, dec, *dec_bad[i]) for i in sorted(set(ra_bad) | set(dec_bad))]
    bad = [s.row - 1 for s in skipped]
    ra_v[bad] = dec_v[bad] = np.nan
    return ra_v, dec_v, skipped


def skipped_note(source: str, skipped, total: int, shown: int = 3) -> str:
    """One line on a catalogue's skipped rows: the file, the count and the first rows."""
    first = "; ".join(f"row {s.row} {s.column}={s.value!r}: {s.reason}" for s in skipped[:shown])
    more = f"; ... and {len(skipped) - shown} more" if len(skipped) > shown else ""
    return (f"{source}: {len(skipped)} of {total} rows skipped, their position is unusable "
            f"({first}{more})")
