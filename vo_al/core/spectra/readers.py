"""Read one spectrum file (LAMOST or Ondřejov CCD700 FITS, optionally gzipped) into a `Spectrum`.

Layouts, detected from the headers (never from the file name):

* ``lamost-image``: LAMOST DR1-DR5, a 2-D primary image whose rows are flux, inverse variance,
  wavelength (DR1: a normalised flux instead), andmask, ormask. The wavelength is always computed
  from COEFF0/COEFF1 (log10 λ = COEFF0 + COEFF1·i, vacuum), which is right for both DR1 and DR2+;
  where EXTEN0 says row 3 is the wavelength, it must agree with that axis.
* ``lamost-table``: later LAMOST releases, one row of vector columns FLUX, IVAR, WAVELENGTH,
  ANDMASK, ORMASK in binary-table HDU 1 (column names in any case), OBSID in the primary header.
* ``ccd700``: a 1-D primary image on a linear AIR wavelength axis (CRVAL1, CDELT1 or CD1_1,
  CRPIX1), converted here to vacuum with `preprocess.air_to_vacuum`.

Files that are none of these: an SDM spectrum (FITS binary table without LAMOST's FLUX, IVAR
and WAVELENGTH columns, or a VOTable; `sdm.py`), else specutils' loaders (SDSS, DESI, tabular
FITS, ASCII ...; `specutils_reader.py`). The first reader that claims a file reads it; the
Spectrum records which (`reader`) and whether the file was in air or vacuum, and why (`medium`,
`medium_reason`; rules in `media.py`). `medium` ('air'/'vacuum') is the user's setting for files
that do not say.

Mask choice for LAMOST: a pixel is bad where ANDMASK != 0 (bad in every exposure), where the inverse
variance is not > 0, or where the flux is not finite. ORMASK (bad in at least one exposure) is not
used: it flags large parts of good spectra near sky lines and would throw away usable pixels.

What is rejected (SpectrumReadError naming the file and the reason, never a guess): a file whose
decompressed size passes LimitSettings.max_spectrum_bytes, whose structure contradicts its
headers (see fits_header.split_hdus), whose keywords the reader uses are not valid values of
their kind (NaN, Inf, T for a number, two cards with different values), or whose keywords
contradict each other (COEFF0 vs CRVAL1, CDELT1 vs CD1_1, LAMOST keywords on a 1-D image).
Any other failure inside a reader (astropy, numpy) is turned into a SpectrumReadError too.

Speed: an ingest reads millions of files, so headers are parsed by `fits_header` (no astropy
Header objects) and unscaled image pixels are read with `numpy.frombuffer`; astropy reads only
binary tables and scaled images (BSCALE/BZERO/BLANK), from the bytes already in memory.
"""

from __future__ import annotations

import io
import re
import zlib
from pathlib import Path

import numpy as np
from astropy.io import fits

from vo_al.core.base.errors import SpectrumReadError
from vo_al.core.base.limits import DEFAULT_LIMITS, LimitSettings
from vo_al.core.base.sky import sexagesimal_degrees
from vo_al.core.base.xml_prolog import XML_PROLOG_BYTES, xml_declares_entities
from vo_al.core.spectra.fits_header import (BITPIX_DTYPES, FITS_MAGIC, GZIP_MAGIC, Hdu, NotSpectrum,
                                            RawHeader, Unparsable, checked_sky, fits_bytes,
                                            parse_value,
                                            read_file_bounded, split_hdus)
from vo_al.core.spectra.media import AIR, VACUUM, medium_in_keywords, settle_medium, to_vacuum
from vo_al.core.spectra.record import Spectrum, SpectrumMeta
from vo_al.core.spectra.sdm import SDM_FITS, SDM_VOTABLE, read_sdm_fits, read_sdm_votable

# fits_bytes lives in fits_header; re-exported here, where the download checks look for it
__all__ = ["CCD700", "LAMOST_IMAGE", "LAMOST_TABLE", "LAYOUTS", "SDM_FITS", "SDM_VOTABLE",
           "check_spectrum_head", "detect_layout", "fits_bytes", "read_spectra", "read_spectrum",
           "source_part", "spectrum_name"]

LAMOST_IMAGE = "lamost-image"
LAMOST_TABLE = "lamost-table"
CCD700 = "ccd700"
LAYOUTS = (LAMOST_IMAGE, LAMOST_TABLE, CCD700, SDM_FITS)
_LAMOST_TABLE_COLUMNS = ("flux", "ivar", "wavelength")
# a VOTable's root element within its prolog (XML declaration, comments, a DOCTYPE: entity
# declarations are refused before any parser sees them, xml_prolog)
_VOTABLE_ROOT = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?VOTABLE\b")
_XML_START = re.compile(rb"^(?:\xef\xbb\xbf)?\s*<")


def _votable_head(head: bytes) -> bool:
    """Whether the (decompressed) start of a file is a VOTable document."""
    if not _XML_START.match(head):
        return False
    first = re.search(rb"<(?![?!])", head)          # the root element's start
    return first is not None and _VOTABLE_ROOT.match(head, first.start()) is not None

# header keywords whose presence marks a primary image as a LAMOST spectrum
_LAMOST_MARKERS = ("EXTEN0", "ROW1", "COEFF0")
_SCALING = ("BSCALE", "BZERO", "BLANK")
_ANGSTROM = (1000.0, 100000.0)          # a wavelength axis outside this is not in Angstrom
_LAMOST_COEFF0 = (2.5, 5.0)             # log10 of the first wavelength
_AGREE_LOG = 1e-7                       # two cards of one log10 wavelength (0.002 Å at 6500 Å)
_AGREE_STEP = 1e-6                      # two cards of one step, relative


# ---------------------------------------------------------------- public API

def read_spectrum(path, limits: LimitSettings | None = DEFAULT_LIMITS,
                  medium: str | None = None,
                  medium_origin: str = "the medium setting") -> Spectrum:
    """Read one spectrum file, plain or gzipped: LAMOST (image or table layout) or CCD700 FITS,
    an SDM FITS table or VOTable, or what a specutils loader reads.

    Reads and decompresses at most `limits.max_spectrum_bytes` (the project's
    `settings.limits`; None: DEFAULT_LIMITS; a spectrum is well under 1 MB). `medium` ('air',
    'vacuum' or None) is used only for a file that does not say which its wavelengths are
    (`medium_origin` names where the setting came from, for the record). Raises
    SpectrumReadError(path, reason) for anything that is not a usable spectrum: every failure,
    of whatever kind, names the file.
    """
    return _read(path, limits, medium, medium_origin, several=False)[0]


def read_spectra(path, limits: LimitSettings | None = DEFAULT_LIMITS,
                 medium: str | None = None,
                 medium_origin: str = "the medium setting") -> list[Spectrum]:
    """Every spectrum of a file, as read_spectrum reads one: a file of one spectrum gives a list
    of one; a file of several that a specutils loader reads (a DESI coadd or spectra file: one
    per FIBERMAP row) gives each, named `<file>[k]` with k counted from 0 in file order. The
    same errors as read_spectrum."""
    return _read(path, limits, medium, medium_origin, several=True)


# a pool row's source 'FILE[k]': the k-th spectrum (from 0) of a file of several
_PART = re.compile(r"^(?P<file>.+)\[(?P<k>\d+)\]$")


def source_part(source: str) -> tuple[str, int | None]:
    """(file, k) of a pool row's source: ('/d/coadd.fits', 3) for '/d/coadd.fits[3]', the 4th
    spectrum of a file of several (k is the spectrum's place in the file, not an HDU, unlike
    CFITSIO's syntax); (source, None) for a file of one spectrum, or a file whose own name
    ends in [k] (it is there on disk)."""
    match = _PART.match(source)
    if match is None or Path(source).is_file():
        return source, None
    return match["file"], int(match["k"])


def _read(path, limits, medium, medium_origin, several: bool) -> list[Spectrum]:
    path = Path(path)
    try:
        raw = read_file_bounded(path, (limits or DEFAULT_LIMITS).max_spectrum_bytes)
        return _spectra_from_bytes(raw, path, medium, medium_origin, several)
    except SpectrumReadError:
        raise
    except NotSpectrum as exc:
        raise SpectrumReadError(path, str(exc)) from None
    except MemoryError:
        raise                  # the machine's state, not the file's: never reject a file for it
    except Exception as exc:   # noqa: BLE001 - astropy/numpy on a corruption not named above
        raise SpectrumReadError(path, f"corrupt file ({type(exc).__name__}: {exc})") from exc


def detect_layout(hdul: fits.HDUList) -> str:
    """Which spectrum layout an open HDUList holds: 'lamost-image', 'lamost-table' or 'ccd700'.

    Raises SpectrumReadError naming the file when it is FITS but not a spectrum we know.
    """
    where = hdul.filename() or "<memory>"
    try:
        return _layout([hdu.header for hdu in hdul])
    except NotSpectrum as exc:
        raise SpectrumReadError(where, str(exc)) from None
    except Exception as exc:   # noqa: BLE001 - astropy on an unparsable card
        raise SpectrumReadError(where, f"corrupt FITS header ({type(exc).__name__}: {exc})"
                                ) from exc


def check_spectrum_head(head: bytes, where) -> None:
    """The cheap check a download makes on a file's first bytes (plain or gzipped) before
    reading it all: FITS or a VOTable (an HTML error page is neither). SpectrumReadError(where,
    reason) otherwise: empty, a broken gzip stream, or what it starts with."""
    if not head:
        raise SpectrumReadError(where, "empty file (0 bytes)")
    if head[:2] == GZIP_MAGIC:
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 4096)
        except zlib.error as exc:
            raise SpectrumReadError(where, f"broken gzip stream (truncated?): {exc}") from None
    if not (head.startswith(FITS_MAGIC) or _votable_head(head)):
        raise SpectrumReadError(where, f"not a FITS file nor a VOTable (starts with "
                                       f"{head[:20]!r})")


def spectrum_name(path) -> str:
    """The display name of a spectrum file: its base name without a trailing .gz."""
    name = Path(path).name
    return name[:-3] if name.lower().endswith(".gz") else name


# ---------------------------------------------------------------- layout

def _is_lamost(header) -> bool:
    return any(key in header for key in _LAMOST_MARKERS) or \
        _text(header, "TELESCOP").upper() == "LAMOST"


def _primary_layout(header) -> str | None:
    """Layout from the primary header alone; None means 'look at extension 1'."""
    naxis = header.get("NAXIS", 0)
    if naxis == 2:
        if not _is_lamost(header):
            raise NotSpectrum(
                f"2-D image ({header.get('NAXIS2')}x{header.get('NAXIS1')}) without LAMOST "
                "spectrum keywords (EXTEN0/ROW1/COEFF0): not a spectrum")
        return LAMOST_IMAGE
    if naxis == 1:
        if _is_lamost(header):
            # a LAMOST file is a 2-D image or a table: NAXIS = 1 would read its flux row as a
            # CCD700 spectrum in air (shifted to vacuum, blurred): garbage that looks fine
            raise NotSpectrum("NAXIS = 1 in a LAMOST header (EXTEN0/ROW1/COEFF0/TELESCOP): "
                              "a LAMOST spectrum is never a 1-D image; the header contradicts "
                              "itself")
        return CCD700
    if naxis == 0:
        return None
    raise NotSpectrum(f"{naxis}-D primary image: not a 1-D spectrum")


def _layout(headers: list) -> str:
    """The layout of a file from its HDU headers (astropy Headers or RawHeaders)."""
    layout = _primary_layout(headers[0])
    if layout is not None:
        return layout
    if len(headers) < 2:
        raise NotSpectrum("primary HDU has no data and there is no extension")
    ext = headers[1]
    kind = str(ext.get("XTENSION", "")).strip().upper()
    if kind != "BINTABLE":
        raise NotSpectrum(f"HDU 1 is a {kind or 'headerless'} extension, not a binary table "
                          "spectrum")
    names = {name.lower() for name in _column_names(ext)}
    missing = [c.upper() for c in _LAMOST_TABLE_COLUMNS if c not in names]
    if not missing:
        return LAMOST_TABLE
    if _is_lamost(headers[0]):
        # a LAMOST file whose table lost a column (a damaged TTYPEn): the file contradicts
        # itself, not an SDM table to read by other rules
        raise NotSpectrum(f"a LAMOST file (EXTEN0/ROW1/COEFF0/TELESCOP) whose binary table "
                          f"lacks column(s) {', '.join(missing)}")
    # any other table: an SDM spectrum (sdm.py finds its columns by utype, UCD or name)
    return SDM_FITS


def _column_names(header) -> list:
    count = header.get("TFIELDS", 0)
    count = count if isinstance(count, int) and not isinstance(count, bool) else 0
    return [str(header.get(f"TTYPE{i}", "")).strip() for i in range(1, min(count, 999) + 1)]


def _spectra_from_bytes(raw: bytes, path: Path, medium: str | None, medium_origin: str,
                        several: bool) -> list[Spectrum]:
    """The file's spectrum, as a list of one; with `several`, every spectrum of a file of
    several that specutils reads (vo-al's own layouts hold one each)."""
    if not raw.startswith(FITS_MAGIC):
        return _not_fits_spectra(raw, path, medium, medium_origin, several)
    hdus = split_hdus(raw)
    primary = hdus[0].header
    layout = _layout([hdu.header for hdu in hdus])
    if layout == SDM_FITS:
        try:
            return [read_sdm_fits(raw, spectrum_name(path), str(path), medium, medium_origin)]
        except NotSpectrum as sdm_failure:
            # a table SDM rules cannot read may still be one a specutils loader knows
            return _specutils_spectra(path, medium, medium_origin, sdm_failure, several)
    if layout == LAMOST_TABLE:
        return [_lamost_table_spectrum(raw, primary, hdus[1].header, path)]
    data = _image_data(raw, hdus[0])
    if layout == LAMOST_IMAGE:
        return [_lamost_image_spectrum(primary, data, path)]
    return [_ccd700_spectrum(primary, data, path, medium, medium_origin)]


def _not_fits_spectra(raw: bytes, path: Path, medium, medium_origin,
                      several: bool) -> list[Spectrum]:
    """A VOTable (an SDM spectrum), or a file only specutils may know (ASCII ...)."""
    head = raw[:XML_PROLOG_BYTES]
    if _XML_START.match(head):
        refused = xml_declares_entities(head)
        if refused:
            raise NotSpectrum(f"an XML document that {refused}")
    if _votable_head(head):
        return [read_sdm_votable(raw, spectrum_name(path), str(path), medium, medium_origin)]
    return _specutils_spectra(
        path, medium, medium_origin,
        NotSpectrum(f"not a FITS file nor a VOTable (starts with {raw[:20]!r})"), several)


def _specutils_spectra(path: Path, medium, medium_origin, failure: NotSpectrum,
                       several: bool) -> list[Spectrum]:
    """What specutils' loaders make of a file no vo-al reader claims (without `several`, a file
    of one spectrum only); NotSpectrum with both reasons (`failure`: why vo-al's own readers
    could not) where they cannot either."""
    try:
        from vo_al.core.spectra.specutils_reader import (read_all_with_specutils,
                                                         read_with_specutils)
    except ImportError as exc:       # specutils missing from a broken install
        raise NotSpectrum(f"{failure}; specutils is not installed ({exc})") from None
    try:
        if several:
            return read_all_with_specutils(path, medium, medium_origin)
        return [read_with_specutils(path, medium, medium_origin)]
    except NotSpectrum as exc:
        raise NotSpectrum(f"{failure}; specutils: {exc}") from None


def _image_data(raw: bytes, hdu: Hdu) -> np.ndarray:
    """The primary image: numpy over the bytes, or astropy where scaling keywords apply
    (split_hdus has checked their values)."""
    if any(key in hdu.header for key in _SCALING):
        with _astropy(raw) as hdul:
            return np.asarray(hdul[0].data)
    count = hdu.data_size // np.dtype(BITPIX_DTYPES[hdu.bitpix]).itemsize
    data = np.frombuffer(raw, dtype=BITPIX_DTYPES[hdu.bitpix], count=count,
                         offset=hdu.data_start)
    return data.reshape(hdu.shape)


def _astropy(raw: bytes) -> fits.HDUList:
    """astropy over bytes already checked by split_hdus (no memmap, no Table objects)."""
    return fits.open(io.BytesIO(raw), memmap=False, lazy_load_hdus=True)


# ---------------------------------------------------------------- wavelength axes

def _checked_axis(axis: np.ndarray, source: str) -> np.ndarray:
    """`axis` if it is a strictly increasing axis in Angstrom, else NotSpectrum."""
    if not np.all(np.isfinite(axis)) or not np.all(np.diff(axis) > 0):
        raise NotSpectrum(f"the wavelength axis from {source} is not finite and strictly "
                          "increasing")
    if not (_ANGSTROM[0] < axis[0] and axis[-1] < _ANGSTROM[1]):
        raise NotSpectrum(f"wavelength axis {axis[0]:.4g}-{axis[-1]:.4g} (from {source}) is "
                          "not in Angstrom")
    return axis


def _agree(key: str, value: float, other: str, other_value: float | None, tolerance: float,
           relative: bool) -> None:
    """Two cards that state the same quantity must agree (NotSpectrum naming both)."""
    if other_value is None:
        return
    scale = abs(value) if relative else 1.0
    if not abs(other_value - value) <= tolerance * scale:
        raise NotSpectrum(f"{key} = {value!r} but {other} = {other_value!r}: they state the "
                          "same wavelength axis and disagree; the header contradicts itself")


def _step(header: RawHeader) -> tuple[str, float | None]:
    """CDELT1 or CD1_1 (which must agree when both are there): (keyword, value)."""
    cdelt, cd = header.number("CDELT1"), header.number("CD1_1")
    if cdelt is not None and cd is not None:
        _agree("CDELT1", cdelt, "CD1_1", cd, _AGREE_STEP, relative=True)
    return ("CDELT1", cdelt) if cdelt is not None else ("CD1_1", cd)


def _reference_pixel(header: RawHeader) -> float:
    ref = header.number("CRPIX1")
    return 1.0 if ref is None else ref


def _dc_flag(header: RawHeader) -> int:
    """IRAF's DC-FLAG: 0 (or absent) linear, 1 log-linear; -1 (not calibrated) and others are
    no wavelength axis."""
    flag = header.integer("DC-FLAG")
    if flag not in (None, 0, 1):
        raise NotSpectrum(f"DC-FLAG = {flag}: the spectrum is not dispersion-corrected "
                          "(0 linear or 1 log-linear)")
    return 0 if flag is None else flag


def _lamost_wavelength(header: RawHeader, n_pix: int) -> tuple[np.ndarray, float]:
    """(axis, COEFF1): the log-linear vacuum axis, checked against its WCS twin cards."""
    coeff0, coeff1 = header.number("COEFF0"), header.number("COEFF1")
    # CRVAL1/CD1_1 state the same axis in WCS form (value at pixel CRPIX1)
    step_key, step = _step(header)
    crval = header.number("CRVAL1")
    start = None if crval is None or step is None else \
        crval - (_reference_pixel(header) - 1.0) * step
    if coeff1 is None:
        coeff1 = step
    elif step is not None:
        _agree("COEFF1", coeff1, step_key, step, _AGREE_STEP, relative=True)
    if coeff0 is None:
        coeff0 = start
    elif start is not None:
        _agree("COEFF0", coeff0, "CRVAL1 at pixel 1", start, _AGREE_LOG, relative=False)
    if coeff0 is None or coeff1 is None:
        raise NotSpectrum("LAMOST image without numeric COEFF0/COEFF1 (log10 wavelength "
                          "keywords): cannot build the wavelength axis")
    if _dc_flag(header) != 1 and "DC-FLAG" in header:
        raise NotSpectrum("DC-FLAG = 0 (linear) in a LAMOST header whose COEFF0/COEFF1 are "
                          "log10: the header contradicts itself")
    if not coeff1 > 0:
        raise NotSpectrum(f"COEFF1={coeff1}: the wavelength step must be positive")
    if not _LAMOST_COEFF0[0] < coeff0 < _LAMOST_COEFF0[1]:
        raise NotSpectrum(f"COEFF0={coeff0} is not a log10 wavelength in Angstrom")
    with np.errstate(over="ignore"):
        axis = 10.0 ** (coeff0 + coeff1 * np.arange(n_pix))
    return _checked_axis(axis, "COEFF0/COEFF1"), coeff1


def _check_wavelength_row(header: RawHeader, row: np.ndarray, axis: np.ndarray,
                          coeff1: float) -> None:
    """Where EXTEN0 names row 3 the wavelength, it must be the axis COEFF0/COEFF1 give, to a
    quarter pixel (NaN pixels are not compared): otherwise the rows are not where the header
    says (NAXISn or BITPIX changed, rows swapped)."""
    words = _text(header, "EXTEN0").split()
    if len(words) < 3 or words[2].lower() != "wavelength":
        return                                  # DR1: row 3 is a normalised flux
    tolerance = 0.25 * coeff1 * np.log(10.0) * axis
    with np.errstate(invalid="ignore", over="ignore"):
        off = np.abs(row.astype(np.float64) - axis) > tolerance
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise NotSpectrum(f"the wavelength row (row 3 by EXTEN0) holds {float(row[i]):.2f} at "
                          f"pixel {i} where COEFF0/COEFF1 give {axis[i]:.2f} A: the data are not "
                          "where the header says")


# ---------------------------------------------------------------- layout readers

def _lamost_image_spectrum(header: RawHeader, data, path: Path) -> Spectrum:
    if data is None or data.ndim != 2:
        raise NotSpectrum("LAMOST image layout without a 2-D data array")
    n_rows, n_pix = data.shape
    if n_rows < 2 or n_pix < 2:
        raise NotSpectrum(f"LAMOST image of {n_rows}x{n_pix}: needs at least flux and "
                          "inverse-variance rows")
    wavelength, coeff1 = _lamost_wavelength(header, n_pix)
    if n_rows >= 3:
        _check_wavelength_row(header, data[2], wavelength, coeff1)
    flux = data[0].astype(np.float64)
    ivar = data[1].astype(np.float64)
    andmask = data[3] if n_rows >= 4 else None
    return _lamost_spectrum(wavelength, flux, ivar, andmask, header, path, LAMOST_IMAGE)


def _lamost_table_spectrum(raw: bytes, primary: RawHeader, extension: RawHeader,
                           path: Path) -> Spectrum:
    # columns by the names of the TTYPEn cards (split_hdus checked them), the first one wins;
    # _layout chose this layout because FLUX, IVAR and WAVELENGTH are all there
    names = [name.lower() for name in _column_names(extension)]
    by_lower = {name: i for i, name in reversed(list(enumerate(names))) if name}
    with _astropy(raw) as hdul:
        rows = hdul[1].data
        if rows is None or len(rows) != 1:
            raise NotSpectrum(f"binary table holds {0 if rows is None else len(rows)} rows; "
                              "a LAMOST spectrum file holds exactly one")

        def column(key):
            return np.array(rows.field(by_lower[key])[0], dtype=np.float64).ravel()

        flux, ivar, wavelength = column("flux"), column("ivar"), column("wavelength")
        andmask = column("andmask") if "andmask" in by_lower else None
    lengths = {len(flux), len(ivar), len(wavelength)} | ({len(andmask)} if andmask is not None
                                                         else set())
    if len(lengths) != 1:
        raise NotSpectrum(f"columns of unequal lengths: FLUX {len(flux)}, IVAR {len(ivar)}, "
                          f"WAVELENGTH {len(wavelength)}"
                          + (f", ANDMASK {len(andmask)}" if andmask is not None else ""))
    if len(flux) < 2 or not np.all(np.diff(wavelength) > 0):
        raise NotSpectrum("WAVELENGTH column is not strictly increasing")
    _checked_axis(wavelength, "the WAVELENGTH column")
    unit = _text_or_none(extension, f"TUNIT{by_lower['flux'] + 1}")
    return _lamost_spectrum(wavelength, flux, ivar, andmask, _MergedHeader(primary, extension),
                            path, LAMOST_TABLE, unit)


class _MergedHeader:
    """Meta keywords may sit in either header; the primary one wins."""

    def __init__(self, primary: RawHeader, extension: RawHeader):
        self._headers = (primary, extension)

    def _first(self, key) -> RawHeader:
        return next((h for h in self._headers if key in h), self._headers[0])

    def __contains__(self, key) -> bool:
        return any(key in h for h in self._headers)

    def get(self, key, default=None):
        return self._first(key).get(key, default)

    def number(self, key):
        return self._first(key).number(key)


def _lamost_spectrum(wavelength, flux, ivar, andmask, header, path: Path,
                     reader: str, flux_unit: str | None = None) -> Spectrum:
    finite = np.isfinite(flux)
    if not finite.any():
        raise NotSpectrum("flux has no finite value")
    mask = ~finite | ~(ivar > 0)
    if andmask is not None:
        mask |= andmask != 0
    return Spectrum(wavelength, flux, ivar, mask, "lamost", _lamost_meta(header, path),
                    reader=reader, medium=VACUUM,
                    medium_reason="LAMOST pipeline: vacuum wavelengths (METHOD.md)",
                    flux_unit=(flux_unit or _text_or_none(header, "BUNIT") or "").strip())


def _ccd700_spectrum(header: RawHeader, data, path: Path, medium: str | None = None,
                    medium_origin: str = "the medium setting") -> Spectrum:
    if data is None or data.ndim != 1 or data.shape[0] < 2:
        raise NotSpectrum("1-D layout without a data array of at least 2 pixels")
    n_pix = data.shape[0]
    start = header.number("CRVAL1")
    step_key, step = _step(header)
    if start is None or step is None:
        raise NotSpectrum("1-D spectrum without numeric CRVAL1 and CDELT1/CD1_1: cannot build "
                          "the wavelength axis")
    if not step > 0:
        raise NotSpectrum(f"{step_key}={step}: the wavelength step must be positive")
    with np.errstate(over="ignore", invalid="ignore"):
        axis = start + (np.arange(n_pix) + 1.0 - _reference_pixel(header)) * step
        if _dc_flag(header) == 1:         # IRAF log-linear axis
            axis = 10.0 ** axis
    axis = _checked_axis(axis, f"CRVAL1/{step_key}/CRPIX1")
    file_medium, reason = _image_medium(header, medium, medium_origin)
    flux = data.astype(np.float64)
    finite = np.isfinite(flux)
    if not finite.any():
        raise NotSpectrum("flux has no finite value")
    return Spectrum(to_vacuum(axis, file_medium), flux, None, ~finite, "ccd700",
                    _ccd700_meta(header, path), reader=CCD700, medium=file_medium,
                    medium_reason=reason, flux_unit=(_text_or_none(header, "BUNIT") or "").strip())


def _image_medium(header: RawHeader, medium: str | None, medium_origin: str):
    """A 1-D image's medium: what its keywords state (VACUUM, AIRORVAC, CTYPE1 AWAV/VAWE); an
    Ondřejov CCD700 file (INSTRUME COUDE700 or OBSERVAT ONDREJOV) is in air, as the archive
    documents; another 1-D image takes the user's setting, else air (the layout's convention),
    with that reason on record."""
    stated = medium_in_keywords(lambda key: header.logical(key) if key == "VACUUM"
                                else _text_or_none(header, key))
    if stated:
        return settle_medium(stated)
    instrument, site = _text(header, "INSTRUME").upper(), _text(header, "OBSERVAT").upper()
    if "700" in instrument or "ONDREJOV" in site:
        return AIR, (f"Ondřejov CCD700 file (INSTRUME = {instrument!r}, OBSERVAT = {site!r}): "
                     "air wavelengths, as the archive publishes them")
    if medium is not None:
        return settle_medium([], medium, medium_origin)
    return AIR, ("1-D linear image without a medium keyword: taken as air, the CCD700 "
                 "convention (give the medium setting if it is vacuum)")


def _text_or_none(header, key):
    value = header.get(key)
    return value if isinstance(value, str) else None


# ---------------------------------------------------------------- meta

def _meta_number(header, key) -> float:
    """A meta keyword as a number: NaN where absent, undefined or a string that is no number
    (the FITS value is valid, its meaning unknown); NotSpectrum for an invalid value (NaN, Inf,
    a logical, an unparsable card)."""
    value = header.get(key)
    if isinstance(value, str):
        parsed = parse_value(value)           # a number written as a string ('0.001'), or not
        if isinstance(parsed, bool) or not isinstance(parsed, (int, float)):
            return float("nan")
        return float(parsed) if np.isfinite(parsed) else float("nan")
    number = header.number(key)
    return float("nan") if number is None else number


def _sky(value: float, key: str) -> float:
    return checked_sky(value, key, is_ra=key == "RA")


def _lamost_meta(header, path: Path) -> SpectrumMeta:
    return SpectrumMeta(
        name=spectrum_name(path),
        designation=_text(header, "DESIG"),
        ra=_sky(_meta_number(header, "RA"), "RA"),
        dec=_sky(_meta_number(header, "DEC"), "DEC"),
        obsid=_text(header, "OBSID"),
        cls=_text(header, "CLASS"),
        subclass=_text(header, "SUBCLASS"),
        z=_meta_number(header, "Z"),
        snr=_meta_number(header, "SNRR" if "SNRR" in header else "SN_R"),
        source=str(path),
    )


def _ccd700_meta(header: RawHeader, path: Path) -> SpectrumMeta:
    return SpectrumMeta(
        name=spectrum_name(path),
        designation=_text(header, "OBJECT"),
        ra=_sky(_sexagesimal(header, "RA", hours=True), "RA"),
        dec=_sky(_sexagesimal(header, "DEC", hours=False), "DEC"),
        source=str(path),
    )


def _text(header, key) -> str:
    """A meta keyword as text ('' where absent; a number as written, e.g. an OBSID)."""
    value = header.get(key)
    if isinstance(value, Unparsable):
        raise NotSpectrum(f"{key} = {value.text} is not a valid FITS value")
    if isinstance(value, bool):
        raise NotSpectrum(f"{key} = {'T' if value else 'F'} is a logical, not a name")
    return "" if value is None else str(value).strip()


def _sexagesimal(header: RawHeader, key: str, hours: bool) -> float:
    """Degrees from 'HH:MM:SS.s' / '+DD:MM:SS' (or spaces); a plain number is taken as degrees."""
    value = header.get(key)
    if not isinstance(value, str):
        number = header.number(key)
        return float("nan") if number is None else number
    return sexagesimal_degrees(value, hours)
