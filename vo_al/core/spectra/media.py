"""Air or vacuum: what a spectrum file's wavelengths are, and why vo-al believes it.

The model sees vacuum wavelengths (METHOD.md, preprocessing step 1): an air spectrum read as
vacuum puts Hα 1.8 Å (7 CCD700 pixels, about one window point) off, so the medium is never
guessed silently. A reader collects what a file states — a column or keyword description
('Wavelength in air'), a UCD (`em.wl;obs.atmos` is an air wavelength), the FITS keywords
AIRORVAC and VACUUM, the WCS axis type AWAV (Greisen et al. 2006, FITS WCS Paper III) — or what
the data model of a known survey fixes (LAMOST, SDSS and DESI publish vacuum wavelengths); the
user's setting (per import or per service) decides only where the file says nothing; with
neither, the file is rejected with a reason that says how to give the medium.

Not taken as a statement: CTYPE 'WAVE'. Paper III makes it vacuum, but IRAF writes it for air
spectra too (the Ondřejov CCD700 files), so it tells nothing.
"""

from __future__ import annotations

import re

import numpy as np

from vo_al.core.base.errors import ParameterError
from vo_al.core.spectra.fits_header import NotSpectrum
from vo_al.core.spectra.preprocess import air_to_vacuum
from vo_al.core.spectra.record import MEDIA

AIR, VACUUM = MEDIA
_AIR_WORD = re.compile(r"\bair\b", re.IGNORECASE)
_VACUUM_WORD = re.compile(r"\bvac(uum)?\b", re.IGNORECASE)

Statement = tuple[str, str]          # (medium, where the file says so)


def parse_medium(value, what: str = "medium") -> str | None:
    """A user's medium setting: 'air', 'vacuum' (also 'vac'), or ''/None for 'not given'."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if text == "":
        return None
    if text in ("vac", VACUUM):
        return VACUUM
    if text == AIR:
        return AIR
    raise ParameterError(what, value, "air or vacuum (or empty: the file must say)")


def medium_in_text(text, where: str) -> Statement | None:
    """The medium a description states ('Wavelength in air', 'Vacuum wavelength'), if exactly
    one: a text naming both says nothing."""
    if not text:
        return None
    text = str(text)
    air, vacuum = bool(_AIR_WORD.search(text)), bool(_VACUUM_WORD.search(text))
    if air == vacuum:
        return None
    return (AIR if air else VACUUM), f"{where} {text.strip()!r}"


def medium_in_ucd(ucd, where: str) -> Statement | None:
    """`em.wl;obs.atmos` (UCD1+: a wavelength in the atmosphere) is an air wavelength."""
    words = [w.strip().lower() for w in str(ucd or "").split(";")]
    if "em.wl" in words and "obs.atmos" in words:
        return AIR, f"{where} UCD {ucd!r}"
    return None


def medium_in_keywords(get) -> list[Statement]:
    """Statements of FITS keywords, `get(key)` giving a card's value or None: AIRORVAC ('air',
    'vac'), VACUUM (T/F), CTYPE1/TCTYPn 'AWAV' (air; see the module docstring for WAVE)."""
    found: list[Statement] = []
    value = get("AIRORVAC")
    if isinstance(value, str) and value.strip():
        text = value.strip().lower()
        if text.startswith("air"):
            found.append((AIR, f"AIRORVAC = {value.strip()!r}"))
        elif text.startswith("vac"):
            found.append((VACUUM, f"AIRORVAC = {value.strip()!r}"))
    value = get("VACUUM")
    if isinstance(value, bool):
        found.append((VACUUM if value else AIR, f"VACUUM = {'T' if value else 'F'}"))
    for key in ("CTYPE1",) + tuple(f"TCTYP{i}" for i in range(1, 10)):
        value = get(key)
        if isinstance(value, str) and value.strip().upper().startswith("AWAV"):
            found.append((AIR, f"{key} = {value.strip()!r} (FITS WCS: air wavelength)"))
        if isinstance(value, str) and value.strip().upper().startswith("VAWE"):
            found.append((VACUUM, f"{key} = {value.strip()!r}"))
    return found


def settle_medium(statements, default: str | None = None,
                  default_origin: str = "the medium setting") -> Statement:
    """(medium, reason) from what the file states (`statements`, None entries ignored) or, where
    it states nothing, from the user's `default` ('air'/'vacuum', from `default_origin`).

    NotSpectrum where the statements contradict each other or where there is neither: a wrong
    medium shifts every line, so vo-al asks rather than guesses.
    """
    said = [s for s in statements if s is not None]
    media = {medium for medium, _ in said}
    if len(media) > 1:
        parts = "; ".join(f"{m} ({why})" for m, why in said)
        raise NotSpectrum(f"the file says its wavelengths are both in air and in vacuum: {parts}")
    if said:
        medium, why = said[0]
        return medium, why
    if default is not None:
        return default, f"not stated in the file; {default_origin}: medium={default}"
    raise NotSpectrum("the file does not say whether its wavelengths are in air or vacuum: give "
                      "the medium (--medium air|vacuum for this import, or the service's medium "
                      "setting)")


def to_vacuum(wavelength: np.ndarray, medium: str) -> np.ndarray:
    """The vacuum wavelengths of an axis in `medium` (METHOD.md's air-to-vacuum formula)."""
    return air_to_vacuum(wavelength) if medium == AIR else np.asarray(wavelength, np.float64)
