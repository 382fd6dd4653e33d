"""Angles on the sky: the one angular separation every part of vo-al uses."""

from __future__ import annotations

import numpy as np


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
