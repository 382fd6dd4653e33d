"""Read one spectrum file (LAMOST or Ondřejov CCD700 FITS, optionally gzipped) into a `Spectrum`.

Layouts, detected from the headers (never from the file name):

* ``lamost-image``: LAMOST DR1-DR5, a 2-D primary image whose rows are flux, inverse variance,
  wavelength (DR1: a normalised flux instead), andmask, ormask. The wavelength is always computed
  from COEFF0/COEFF1 (log10 λ = COEFF0 + COEFF1·i, vacuum), which is right for both DR1 and DR2+.
* ``lamost-table``: later LAMOST releases, one row of vector columns FLUX, IVAR, WAVELENGTH,
  ANDMASK, ORMASK in binary-table HDU 1 (column names in any case), OBSID in the primary header.
* ``ccd700``: a 1-D primary image on a linear AIR wavelength axis (CRVAL1, CDELT1 or CD1_1,
  CRPIX1), converted here to vacuum with `preprocess.air_to_vacuum`.

Mask choice for LAMOST: a pixel is bad where ANDMASK != 0 (bad in every exposure), where the inverse
variance is not > 0, or where the flux is not finite. ORMASK (bad in at least one exposure) is not
used: it flags large parts of good spectra near sky lines and would throw away usable pixels.

Speed: the LAMOST image layout is the bulk of an ingest (millions of files), so it has a fast path
that parses the primary header cards itself and reads the pixels with `numpy.frombuffer`; anything
the fast path does not recognise with certainty goes through astropy (`memmap=False`,
`lazy_load_hdus=True`, no Table objects).
"""

from __future__ import annotations

import gzip
import io
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np
from astropy.io import fits

from vo_al.core.base.errors import SpectrumReadError
from vo_al.core.spectra.preprocess import air_to_vacuum
from vo_al.core.spectra.record import Spectrum, SpectrumMeta

LAMOST_IMAGE = "lamost-image"
LAMOST_TABLE = "lamost-table"
CCD700 = "ccd700"
LAYOUTS = (LAMOST_IMAGE, LAMOST_TABLE, CCD700)

_FITS_BLOCK = 2880
_CARD = 80
_END_CARD = "END".ljust(80)
GZIP_MAGIC = b"\x1f\x8b"
FITS_MAGIC = b"SIMPLE  ="        # the first card of every FITS file
_BITPIX_DTYPES = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
# header keywords whose presence marks a 2-D primary image as a LAMOST spectrum
_LAMOST_MARKERS = ("EXTEN0", "ROW1", "COEFF0")
_TABLE_COLUMNS = ("flux", "ivar", "wavelength", "andmask", "ormask")


class _NotSpectrum(Exception):
    """Internal: the content is not a spectrum we know; carries the human-readable reason."""


# ---------------------------------------------------------------- public API

def read_spectrum(path) -> Spectrum:
    """Read a LAMOST (image or table layout) or CCD700 FITS file, plain or gzipped.

    Raises SpectrumReadError(path, reason) for anything that is not a usable spectrum.
    """
    path = Path(path)
    try:
        raw = _read_bytes(path)
    except OSError as exc:
        raise SpectrumReadError(path, f"cannot read file: {exc}") from exc
    try:
        fast = _try_fast_lamost_image(raw, path)
        return fast if fast is not None else _read_with_astropy(raw, path)
    except _NotSpectrum as exc:
        raise SpectrumReadError(path, str(exc)) from None
    except (OSError, EOFError, ValueError, TypeError, KeyError, IndexError) as exc:
        # astropy raises these for corrupt or truncated FITS structures
        raise SpectrumReadError(path, f"corrupt or truncated FITS file: {exc}") from exc


def detect_layout(hdul: fits.HDUList) -> str:
    """Which spectrum layout an open HDUList holds: 'lamost-image', 'lamost-table' or 'ccd700'.

    Raises SpectrumReadError naming the file when it is FITS but not a spectrum we know.
    """
    try:
        return _detect_layout(hdul)
    except _NotSpectrum as exc:
        raise SpectrumReadError(hdul.filename() or "<memory>", str(exc)) from None


def fits_bytes(raw: bytes, where, head_only: bool = False) -> bytes:
    """The FITS content of a file's bytes `raw`: gunzipped when they start with the gzip magic.

    Raises SpectrumReadError(where, reason) when `raw` is empty, a broken gzip stream or not
    FITS (no SIMPLE card at the start). With `head_only`, `raw` is only the start of a file (a
    download's first block) and only its first card is unpacked: enough to see the FITS magic,
    not to find a truncated stream.
    """
    if not raw:
        raise SpectrumReadError(where, "empty file (0 bytes)")
    if raw[:2] == GZIP_MAGIC:
        try:
            if head_only:
                raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw, _CARD)
            else:
                raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise SpectrumReadError(where, f"broken gzip stream (truncated?): {exc}") from None
    if not raw.startswith(FITS_MAGIC):
        raise SpectrumReadError(where, f"not a FITS file (no SIMPLE card at the start: "
                                       f"{raw[:20]!r})")
    return raw


def spectrum_name(path) -> str:
    """The display name of a spectrum file: its base name without a trailing .gz."""
    name = Path(path).name
    return name[:-3] if name.lower().endswith(".gz") else name


# ---------------------------------------------------------------- bytes and layout

def _read_bytes(path: Path) -> bytes:
    """The whole (decompressed) file: spectra are small, and one read is faster than seeks."""
    with open(path, "rb") as fh:
        return fits_bytes(fh.read(), path)


def _primary_layout(header) -> str | None:
    """Layout from the primary header alone; None means 'look at extension 1'."""
    naxis = int(header.get("NAXIS", 0) or 0)
    if naxis == 2:
        if not any(key in header for key in _LAMOST_MARKERS) and \
                str(header.get("TELESCOP", "")).strip().upper() != "LAMOST":
            raise _NotSpectrum(
                f"2-D image ({header.get('NAXIS2')}x{header.get('NAXIS1')}) without LAMOST "
                "spectrum keywords (EXTEN0/ROW1/COEFF0): not a spectrum")
        return LAMOST_IMAGE
    if naxis == 1:
        return CCD700
    if naxis == 0:
        return None
    raise _NotSpectrum(f"{naxis}-D primary image: not a 1-D spectrum")


def _detect_layout(hdul: fits.HDUList) -> str:
    layout = _primary_layout(hdul[0].header)
    if layout is not None:
        return layout
    try:
        ext = hdul[1]
    except IndexError:
        raise _NotSpectrum("primary HDU has no data and there is no extension") from None
    if not isinstance(ext, fits.BinTableHDU):
        raise _NotSpectrum(f"HDU 1 is a {type(ext).__name__}, not a binary table spectrum")
    names = {name.lower() for name in ext.columns.names}
    if "flux" not in names:
        raise _NotSpectrum(f"binary table in HDU 1 has no FLUX column (columns: "
                           f"{', '.join(ext.columns.names) or 'none'})")
    return LAMOST_TABLE


# ---------------------------------------------------------------- fast LAMOST image path

class _RawHeader:
    """Just enough of a FITS header parser for the fixed LAMOST layout: keyword -> value text."""

    def __init__(self, cards: dict):
        self._cards = cards

    def __contains__(self, key) -> bool:
        return key in self._cards

    def get(self, key, default=None):
        text = self._cards.get(key)
        if text is None:
            return default
        return _parse_value(text, default)


def _parse_value(text: str, default):
    text = text.strip()
    if text.startswith("'"):
        # string: ends at the first single quote not doubled; '' is an escaped quote
        out, i = [], 1
        while i < len(text):
            ch = text[i]
            if ch == "'":
                if text[i + 1:i + 2] == "'":
                    out.append("'")
                    i += 2
                    continue
                break
            out.append(ch)
            i += 1
        return "".join(out).rstrip()
    value = text.split("/", 1)[0].strip()
    if value == "T":
        return True
    if value == "F":
        return False
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value.replace("D", "E"))
    except ValueError:
        return value


def _parse_primary_header(raw: bytes) -> tuple[_RawHeader, int] | None:
    """Cards of the primary header and the offset of its data, or None if no END card."""
    cards: list = []
    for block_start in range(0, len(raw) - _FITS_BLOCK + 1, _FITS_BLOCK):
        # one decode and C-level slicing per block: parsing card by card in bytes is 3x slower
        text = raw[block_start:block_start + _FITS_BLOCK].decode("latin-1")
        block = [text[i:i + _CARD] for i in range(0, _FITS_BLOCK, _CARD)]
        if _END_CARD in block:
            cards.extend(block[:block.index(_END_CARD)])
            values = {card[:8].rstrip(): card[10:] for card in reversed(cards)
                      if card[8:10] == "= "}
            return _RawHeader(values), block_start + _FITS_BLOCK
        cards.extend(block)
    return None


def _try_fast_lamost_image(raw: bytes, path: Path) -> Spectrum | None:
    """The LAMOST image layout without astropy, or None to let astropy decide."""
    parsed = _parse_primary_header(raw)
    if parsed is None:
        return None
    header, data_start = parsed
    if header.get("NAXIS") != 2 or _primary_layout_or_none(header) != LAMOST_IMAGE:
        return None
    dtype = _BITPIX_DTYPES.get(header.get("BITPIX"))
    if dtype is None or "BSCALE" in header or "BZERO" in header or "BLANK" in header:
        return None                      # scaled data: let astropy apply the scaling
    n_pix, n_rows = int(header.get("NAXIS1", 0)), int(header.get("NAXIS2", 0))
    n_bytes = n_pix * n_rows * np.dtype(dtype).itemsize
    if len(raw) < data_start + n_bytes:
        raise _NotSpectrum(f"file is truncated: {len(raw)} bytes, the header announces "
                           f"{data_start + n_bytes}")
    data = np.frombuffer(raw, dtype=dtype, count=n_pix * n_rows, offset=data_start)
    return _lamost_image_spectrum(header, data.reshape(n_rows, n_pix), path)


def _primary_layout_or_none(header) -> str | None:
    try:
        return _primary_layout(header)
    except _NotSpectrum:
        return None


# ---------------------------------------------------------------- astropy path

def _read_with_astropy(raw: bytes, path: Path) -> Spectrum:
    with fits.open(io.BytesIO(raw), memmap=False, lazy_load_hdus=True) as hdul:
        layout = _detect_layout(hdul)
        if layout == LAMOST_IMAGE:
            return _lamost_image_spectrum(hdul[0].header, hdul[0].data, path)
        if layout == LAMOST_TABLE:
            return _lamost_table_spectrum(hdul[0].header, hdul[1], path)
        return _ccd700_spectrum(hdul[0].header, hdul[0].data, path)


# ---------------------------------------------------------------- layout readers

@lru_cache(maxsize=32)
def _log_linear_axis(coeff0: float, coeff1: float, n_pix: int) -> np.ndarray:
    axis = 10.0 ** (coeff0 + coeff1 * np.arange(n_pix))
    axis.setflags(write=False)
    return axis


def _lamost_wavelength(header, n_pix: int) -> np.ndarray:
    coeff0 = header.get("COEFF0", header.get("CRVAL1"))
    coeff1 = header.get("COEFF1", header.get("CD1_1", header.get("CDELT1")))
    if not isinstance(coeff0, (int, float)) or not isinstance(coeff1, (int, float)):
        raise _NotSpectrum("LAMOST image without numeric COEFF0/COEFF1 (log10 wavelength "
                           "keywords): cannot build the wavelength axis")
    if not coeff1 > 0:
        raise _NotSpectrum(f"COEFF1={coeff1}: the wavelength step must be positive")
    if not 2.5 < coeff0 < 5.0:
        raise _NotSpectrum(f"COEFF0={coeff0} is not a log10 wavelength in Angstrom")
    return _log_linear_axis(float(coeff0), float(coeff1), n_pix).copy()


def _lamost_image_spectrum(header, data, path: Path) -> Spectrum:
    if data is None or data.ndim != 2:
        raise _NotSpectrum("LAMOST image layout without a 2-D data array")
    n_rows, n_pix = data.shape
    if n_rows < 2 or n_pix < 2:
        raise _NotSpectrum(f"LAMOST image of {n_rows}x{n_pix}: needs at least flux and "
                           "inverse-variance rows")
    wavelength = _lamost_wavelength(header, n_pix)
    flux = data[0].astype(np.float64)
    ivar = data[1].astype(np.float64)
    andmask = data[3] if n_rows >= 4 else None
    return _lamost_spectrum(wavelength, flux, ivar, andmask, header, path)


def _lamost_table_spectrum(primary_header, table_hdu, path: Path) -> Spectrum:
    by_lower = {name.lower(): name for name in table_hdu.columns.names}
    missing = [c.upper() for c in ("flux", "ivar", "wavelength") if c not in by_lower]
    if missing:
        raise _NotSpectrum(f"binary table lacks column(s) {', '.join(missing)}")
    rows = table_hdu.data
    if rows is None or len(rows) != 1:
        raise _NotSpectrum(f"binary table holds {0 if rows is None else len(rows)} rows; "
                           "a LAMOST spectrum file holds exactly one")

    def column(key):
        return np.asarray(rows.field(by_lower[key])[0], dtype=np.float64).ravel()

    flux, ivar, wavelength = column("flux"), column("ivar"), column("wavelength")
    andmask = column("andmask") if "andmask" in by_lower else None
    lengths = {len(flux), len(ivar), len(wavelength)} | ({len(andmask)} if andmask is not None
                                                         else set())
    if len(lengths) != 1:
        raise _NotSpectrum(f"columns of unequal lengths: FLUX {len(flux)}, IVAR {len(ivar)}, "
                           f"WAVELENGTH {len(wavelength)}"
                           + (f", ANDMASK {len(andmask)}" if andmask is not None else ""))
    if len(flux) < 2 or not np.all(np.diff(wavelength) > 0):
        raise _NotSpectrum("WAVELENGTH column is not strictly increasing")
    header = _merged_header(primary_header, table_hdu.header)
    return _lamost_spectrum(wavelength, flux, ivar, andmask, header, path)


def _merged_header(primary, extension) -> dict:
    """Meta keywords may sit in either header; the primary one wins."""
    merged = {}
    for key in ("OBSID", "DESIG", "RA", "DEC", "CLASS", "SUBCLASS", "Z", "SNRR", "SN_R"):
        value = primary.get(key, extension.get(key))
        if value is not None:
            merged[key] = value
    return merged


def _lamost_spectrum(wavelength, flux, ivar, andmask, header, path: Path) -> Spectrum:
    finite = np.isfinite(flux)
    if not finite.any():
        raise _NotSpectrum("flux has no finite value")
    mask = ~finite | ~(ivar > 0)
    if andmask is not None:
        mask |= andmask != 0
    return Spectrum(wavelength, flux, ivar, mask, "lamost", _lamost_meta(header, path))


def _ccd700_spectrum(header, data, path: Path) -> Spectrum:
    if data is None or data.ndim != 1 or data.shape[0] < 2:
        raise _NotSpectrum("1-D layout without a data array of at least 2 pixels")
    n_pix = data.shape[0]
    start = header.get("CRVAL1")
    step = header.get("CDELT1", header.get("CD1_1"))
    if not isinstance(start, (int, float)) or not isinstance(step, (int, float)):
        raise _NotSpectrum("1-D spectrum without numeric CRVAL1 and CDELT1/CD1_1: cannot build "
                           "the wavelength axis")
    if not step > 0:
        raise _NotSpectrum(f"CDELT1={step}: the wavelength step must be positive")
    ref_pix = float(header.get("CRPIX1", 1.0) or 1.0)
    axis = start + (np.arange(n_pix) + 1.0 - ref_pix) * step
    if header.get("DC-FLAG") == 1:       # IRAF log-linear axis
        axis = 10.0 ** axis
    if not (1000.0 < axis[0] and axis[-1] < 100000.0):
        raise _NotSpectrum(f"wavelength axis {axis[0]:.4g}-{axis[-1]:.4g} is not in Angstrom")
    wavelength = axis if _is_vacuum(header) else air_to_vacuum(axis)
    flux = data.astype(np.float64)
    finite = np.isfinite(flux)
    if not finite.any():
        raise _NotSpectrum("flux has no finite value")
    return Spectrum(wavelength, flux, None, ~finite, "ccd700", _ccd700_meta(header, path))


def _is_vacuum(header) -> bool:
    """CCD700 spectra are in air; respect an explicit vacuum statement if a file makes one."""
    ctype = str(header.get("CTYPE1", "")).strip().upper()
    return ctype.startswith("VAWE") or header.get("VACUUM") is True


# ---------------------------------------------------------------- meta

def _lamost_meta(header, path: Path) -> SpectrumMeta:
    snr = header.get("SNRR", header.get("SN_R"))
    obsid = header.get("OBSID")
    return SpectrumMeta(
        name=spectrum_name(path),
        designation=_text(header.get("DESIG")),
        ra=_number(header.get("RA")),
        dec=_number(header.get("DEC")),
        obsid="" if obsid is None else _text(obsid),
        cls=_text(header.get("CLASS")),
        subclass=_text(header.get("SUBCLASS")),
        z=_number(header.get("Z")),
        snr=_number(snr),
        source=str(path),
    )


def _ccd700_meta(header, path: Path) -> SpectrumMeta:
    return SpectrumMeta(
        name=spectrum_name(path),
        designation=_text(header.get("OBJECT")),
        ra=_sexagesimal(header.get("RA"), hours=True),
        dec=_sexagesimal(header.get("DEC"), hours=False),
        source=str(path),
    )


def _text(value) -> str:
    return "" if value is None else str(value).strip()


def _number(value) -> float:
    if isinstance(value, bool) or value is None:
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _sexagesimal(value, hours: bool) -> float:
    """Degrees from 'HH:MM:SS.s' / '+DD:MM:SS' (or spaces); a plain number is taken as degrees."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = _text(value)
    if not text:
        return float("nan")
    sign = -1.0 if text.startswith("-") else 1.0
    parts = text.lstrip("+-").replace(":", " ").split()
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        return float("nan")
    if not 1 <= len(numbers) <= 3:
        return float("nan")
    numbers += [0.0] * (3 - len(numbers))
    degrees = numbers[0] + numbers[1] / 60.0 + numbers[2] / 3600.0
    return sign * degrees * (15.0 if hours and len(parts) > 1 else 1.0)
