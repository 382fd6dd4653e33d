"""Angles on the sky: the one angular separation every part of vo-al uses, and positions
written as people read them (decimal degrees or sexagesimal)."""

from __future__ import annotations

import math

import numpy as np

DEGREE_DECIMALS = 6         # 0.0036″: finer than the astrometry of any survey vo-al reads
RA_SECOND_DECIMALS = 3      # hh:mm:ss.sss, 0.015″ at the equator
DEC_SECOND_DECIMALS = 2     # ±dd:mm:ss.ss, 0.01″


def separation_arcsec(ra1, dec1, ra2, dec2) -> np.ndarray:
    """Angular separation in arcsec between positions in degrees, broadcast like numpy.

    Vincenty's formula, as astropy's `angular_separation`: accurate at every separation (the
    haversine loses precision near 180°, the cosine rule below ~1″), without building SkyCoord
    objects for what is one vectorised expression. NaN in, NaN out.
    """
    lon1, lat1 = np.radians(np.asarray(ra1, float)), np.radians(np.asarray(dec1, float))
    lon2, lat2 = np.radians(np.asarray(ra2, float)), np.radians(np.asarray(dec2, float))
    sdlon, cdlon = np.sin(lon2 - lon1), np.cos(lon2 - lon1)
    slat1, clat1 = np.sin(lat1), np.cos(lat1)
    slat2, clat2 = np.sin(lat2), np.cos(lat2)
    num1 = clat2 * sdlon
    num2 = clat1 * slat2 - slat1 * clat2 * cdlon
    denominator = slat1 * slat2 + clat1 * clat2 * cdlon
    return np.degrees(np.arctan2(np.hypot(num1, num2), denominator)) * 3600.0


def sexagesimal_degrees(text: str, hours: bool) -> float:
    """Degrees from a header's 'HH:MM:SS.s' / '+DD:MM:SS' (colons or spaces); a single number
    is taken as degrees (as FITS headers that write RA = '150.1' mean). NaN where it is not an
    angle. For whole catalogue columns, xmatch.positions parses faster and reports bad rows."""
    text = text.strip()
    if not text:
        return float("nan")
    sign = -1.0 if text.startswith("-") else 1.0
    parts = text.lstrip("+-").replace(":", " ").split()
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        return float("nan")
    if not 1 <= len(numbers) <= 3 or not all(np.isfinite(numbers)):
        return float("nan")
    numbers += [0.0] * (3 - len(numbers))
    degrees = numbers[0] + numbers[1] / 60.0 + numbers[2] / 3600.0
    return sign * degrees * (15.0 if hours and len(parts) > 1 else 1.0)


def sexagesimal(value: float, decimals: int, signed: bool = False) -> str:
    """`value` (hours or degrees) as 'HH:MM:SS.s…' with `decimals` of a second, '+' too when
    `signed`. Rounded once, on the whole count of the last digit, so 59.9996 s carries into the
    minute instead of showing as '60.000'."""
    scale = 10 ** decimals
    units = int(round(abs(value) * 3600 * scale))
    whole, rest = divmod(units, 3600 * scale)
    minutes, seconds = divmod(rest, 60 * scale)
    sign = "-" if value < 0 and units else ("+" if signed else "")
    second = f"{seconds // scale:02d}" + (f".{seconds % scale:0{decimals}d}" if decimals else "")
    return f"{sign}{whole:02d}:{minutes:02d}:{second}"


def ra_hms(ra_degrees: float, decimals: int = RA_SECOND_DECIMALS) -> str:
    """Right ascension in degrees as 'hh:mm:ss.sss' (0 <= hours < 24: 359.99999999° is
    '00:00:00.000', never '24:00:00.000'); '' for NaN."""
    if not math.isfinite(ra_degrees):
        return ""
    text = sexagesimal((ra_degrees / 15.0) % 24.0, decimals)
    return "00" + text[2:] if text.startswith("24:") else text


def dec_dms(dec_degrees: float, decimals: int = DEC_SECOND_DECIMALS) -> str:
    """Declination in degrees as '±dd:mm:ss.ss'; '' for NaN."""
    if not math.isfinite(dec_degrees):
        return ""
    return sexagesimal(dec_degrees, decimals, signed=True)
