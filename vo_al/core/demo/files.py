"""The files of the synthetic survey: LAMOST-like FITS (the DR2-like image layout and the
DR8-and-later binary-table layout), Ondřejov CCD700-like 1-D FITS, and the broken files a pool
must reject.

The headers carry the keywords the real files do (vo-stack/make_lamost_fits.py; oe270005.fits)
and never the truth: CLASS is 'STAR' whatever the kind. Bytes are written raw
(vo_al.core.spectra.fits_cards) for speed; gzipped when a path ends in .gz.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import median_filter

from vo_al.core.base.sky import dec_dms, ra_hms
from vo_al.core.demo.kinds import BROKEN_KINDS, BROKEN_LABEL
from vo_al.core.demo.observations import lamost_spectrum
from vo_al.core.learning.classes import NON_TARGET
from vo_al.core.spectra.fits_cards import header_bytes, pad_to_block, write_fits_bytes
from vo_al.core.spectra.record import SpectrumMeta

# ---------------------------------------------------------------- LAMOST

@dataclass
class LamostHeader:
    """Header content of a LAMOST-like file (keywords of vo-stack/make_lamost_fits.py)."""

    obsid: int
    ra: float
    dec: float
    designation: str = ""
    cls: str = "STAR"
    subclass: str = ""
    z: float = 0.0
    snr_r: float = float("nan")
    snr_g: float = float("nan")
    objname: str = ""
    planid: str = "SYNTHPLAN"
    lmjd: int = 56300
    spid: int = 1
    fiberid: int = 1
    date_obs: str = "2013-01-01T18:00:00"
    exptime: float = 1800.0
    filename: str = ""

    @classmethod
    def from_meta(cls, meta: SpectrumMeta, obsid: int | None = None) -> "LamostHeader":
        return cls(obsid=int(obsid if obsid is not None else (meta.obsid or 0)),
                   ra=meta.ra, dec=meta.dec, designation=meta.designation,
                   cls=meta.cls or "STAR", subclass=meta.subclass,
                   z=meta.z if math.isfinite(meta.z) else 0.0, snr_r=meta.snr)

    def meta(self) -> SpectrumMeta:
        """What the LAMOST reader finds in the file this header heads (its source aside): the
        rows written without a file (vo_al.core.demo.rows) carry it."""
        snr = _round(self.snr_r)
        return SpectrumMeta(name=self.filename,
                            designation=self.designation or designation_for(self.ra, self.dec),
                            ra=float(self.ra), dec=float(self.dec), obsid=str(int(self.obsid)),
                            cls=self.cls, subclass=self.subclass, z=float(self.z),
                            snr=math.nan if snr is None else snr)

    def cards(self) -> list:
        designation = self.designation or designation_for(self.ra, self.dec)
        return [
            ("FILENAME", self.filename or None, ""),
            ("AUTHOR", "vo-al synthetic", "Who compiled the information"),
            ("TELESCOP", "LAMOST", "GuoShouJing Telescope"),
            ("OBSID", int(self.obsid), "Unique number ID of this spectrum"),
            ("DESIG", designation, "Designation of LAMOST target"),
            ("OBJNAME", self.objname or str(self.obsid), "Name of object"),
            ("OBJTYPE", "Star", "Object type from input catalog"),
            ("RA", float(self.ra), "[deg] Right ascension of object"),
            ("DEC", float(self.dec), "[deg] Declination of object"),
            ("RA_OBS", float(self.ra), "[deg] Right ascension during observing"),
            ("DEC_OBS", float(self.dec), "[deg] Declination during observing"),
            ("RADECSYS", "FK5", "Equatorial coordinate system"),
            ("EQUINOX", 2000.0, "Equinox in years"),
            ("DATE-OBS", self.date_obs, "The observation median UTC"),
            ("LMJD", int(self.lmjd), "Local Modified Julian Day"),
            ("MJD", int(self.lmjd) + 1, "Modified Julian Day"),
            ("EXPTIME", float(self.exptime), "[s] Minimum of exposure time for all cameras"),
            ("PLANID", self.planid, "Plan ID in use"),
            ("SPID", int(self.spid), "Spectrograph ID"),
            ("FIBERID", int(self.fiberid), "Fiber ID of Object"),
            ("HELIO", True, "Heliocentric correction"),
            ("VACUUM", True, "Wavelengths are in vacuum"),
            ("CLASS", self.cls, "Class of object"),
            ("SUBCLASS", self.subclass, "Subclass of object"),
            ("Z", float(self.z), "Redshift of object"),
            ("Z_ERR", 1e-5, "Redshift error of object"),
            ("SNRG", _round(self.snr_g), "Signal to noise ratio of g filter"),
            ("SNRR", _round(self.snr_r), "Signal to noise ratio of r filter"),
            ("SN_G", _round(self.snr_g), "SNR of g filter"),
            ("SN_R", _round(self.snr_r), "SNR of r filter"),
            ("BUNIT", "10**-17 erg/s/cm^2/A", "Unit of the flux"),
        ]


def _round(value: float) -> float | None:
    return round(float(value), 2) if value is not None and math.isfinite(value) else None


def designation_for(ra: float, dec: float) -> str:
    """'LAMOST JHHMMSS.ss+DDMMSS.s' from degrees, truncated (not rounded) as IAU names are."""
    ra_cs = int(math.floor((ra % 360.0) / 15.0 * 360000.0))      # centiseconds of time
    hh, rem = divmod(ra_cs, 360000)
    mm, cs = divmod(rem, 6000)
    sign = "-" if dec < 0 else "+"
    dec_ds = int(math.floor(abs(dec) * 36000.0))                  # deciseconds of arc
    dd, rem = divmod(dec_ds, 36000)
    dm, ds = divmod(rem, 600)
    return f"LAMOST J{hh:02d}{mm:02d}{cs // 100:02d}.{cs % 100:02d}{sign}{dd:02d}{dm:02d}" \
           f"{ds // 10:02d}.{ds % 10:d}"


def _log_linear_coefficients(wavelength: np.ndarray) -> tuple[float, float]:
    logw = np.log10(np.asarray(wavelength, dtype=np.float64))
    coeff1 = (logw[-1] - logw[0]) / (logw.size - 1)
    model = logw[0] + coeff1 * np.arange(logw.size)
    if not coeff1 > 0 or np.max(np.abs(model - logw)) > 1e-6:
        raise ValueError("wavelength is not an ascending log-linear grid")
    return round(float(logw[0]), 10), round(float(coeff1), 12)


def write_lamost_fits(path, wavelength, flux, ivar, andmask, ormask,
                      meta: LamostHeader | SpectrumMeta, layout: str = "image") -> Path:
    """Write a LAMOST-like file: 'image' = DR2-like primary 5×N float32 image with the headers of
    make_lamost_fits.py; 'table' = the DR8-and-later layout (`_lamost_table_bytes`). Gzipped
    when `path` ends in .gz."""
    path = Path(path)
    header = meta if isinstance(meta, LamostHeader) else LamostHeader.from_meta(meta)
    if not header.filename:
        header = LamostHeader(**{**header.__dict__, "filename": path.name.removesuffix(".gz")})
    arrays = [np.asarray(a, dtype=np.float32) for a in (flux, ivar, wavelength, andmask, ormask)]
    if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 1:
        raise ValueError(f"arrays of unequal shapes: {[a.shape for a in arrays]}")
    if layout == "image":
        data = _lamost_image_bytes(header, arrays, _log_linear_coefficients(wavelength))
    elif layout == "table":
        data = _lamost_table_bytes(header, arrays)
    else:
        raise ValueError(f"layout {layout!r} is not 'image' or 'table'")
    write_fits_bytes(path, data)
    return path


def _lamost_image_bytes(header: LamostHeader, arrays: list, coeffs: tuple) -> bytes:
    coeff0, coeff1 = coeffs
    n_pix = arrays[0].size
    cards = [("SIMPLE", True, "conforms to FITS standard"), ("BITPIX", -32, "array data type"),
             ("NAXIS", 2, "number of array dimensions"), ("NAXIS1", n_pix, ""),
             ("NAXIS2", 5, ""), ("EXTEND", True, ""),
             ("EXTEN0", "Flux Inverse Wavelength Andmask Ormask", ""),
             ("EXTNAME", "Flux", "The extension name")]
    cards += header.cards()
    cards += [("NWORDER", 2, "Number of linear-log10 coefficients"),
              ("WFITTYPE", "LOG-LINEAR", "Linear-log10 dispersion"),
              ("COEFF0", coeff0, "Center wavelength (log10) of first pixel"),
              ("COEFF1", coeff1, "Log10 dispersion per pixel"),
              ("CRVAL1", coeff0, "Central wavelength (log10) of first pixel"),
              ("CD1_1", coeff1, "Log10 dispersion per pixel"),
              ("CRPIX1", 1, "Starting pixel (1-indexed)"), ("CTYPE1", "LINEAR", ""),
              ("DC-FLAG", 1, "Log-linear flag"),
              ("ROW1", "Flux", ""), ("ROW2", "Inverse Variance", ""), ("ROW3", "WaveLength", ""),
              ("ROW4", "Andmask", ""), ("ROW5", "Ormask", "")]
    pixels = np.vstack(arrays).astype(">f4").tobytes()
    return header_bytes(cards) + pad_to_block(pixels, b"\0")


# LAMOST DR8 and later (LRS, format v2.0): the primary HDU has no data, only the keywords (OBSID,
# DESIG, RA, DEC, CLASS, Z, SNR...); binary-table HDU 1, EXTNAME 'COADD', holds one row of six
# float32 vector columns of the spectrum's pixel count, in this order. NORMALIZATION is the
# pipeline's continuum-normalised flux (flux over a pseudo-continuum).
_TABLE_COLUMNS = ("FLUX", "IVAR", "WAVELENGTH", "ANDMASK", "ORMASK", "NORMALIZATION")
# the pseudo-continuum's running median: ~300 px (~20 000 km/s, ~450 Å at Hα) passes over every
# line of a star (a few pixels to ~100 for the widest Balmer wings) and follows the continuum
_CONTINUUM_PX = 301


def _normalised_flux(flux, ivar, andmask) -> np.ndarray:
    """Flux over its pseudo-continuum: a running median of the good pixels (ivar > 0, andmask
    0, finite flux; bad ones bridged by interpolation). 0 where the continuum is not positive,
    as nothing can be normalised there."""
    flux = np.asarray(flux, dtype=np.float64)
    good = np.isfinite(flux) & (np.asarray(ivar) > 0) & (np.asarray(andmask) == 0)
    if good.sum() < 2:
        return np.zeros(flux.size, dtype=np.float32)
    pixels = np.arange(flux.size)
    bridged = np.interp(pixels, pixels[good], flux[good])
    continuum = median_filter(bridged, size=min(_CONTINUUM_PX, flux.size), mode="nearest")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(continuum > 0, flux / continuum, 0.0)
    return np.where(np.isfinite(ratio), ratio, 0.0).astype(np.float32)


def _lamost_table_bytes(header: LamostHeader, arrays: list) -> bytes:
    n_pix = arrays[0].size
    flux, ivar, _, andmask, _ = arrays
    columns = list(arrays) + [_normalised_flux(flux, ivar, andmask)]
    primary = [("SIMPLE", True, "conforms to FITS standard"), ("BITPIX", 8, ""),
               ("NAXIS", 0, ""), ("EXTEND", True, "")] + header.cards()
    ext = [("XTENSION", "BINTABLE", "binary table extension"), ("BITPIX", 8, ""),
           ("NAXIS", 2, ""), ("NAXIS1", 4 * n_pix * len(_TABLE_COLUMNS), "bytes per row"),
           ("NAXIS2", 1, "rows"), ("PCOUNT", 0, ""), ("GCOUNT", 1, ""),
           ("TFIELDS", len(_TABLE_COLUMNS), "")]
    for i, name in enumerate(_TABLE_COLUMNS, start=1):
        ext += [(f"TTYPE{i}", name, ""), (f"TFORM{i}", f"{n_pix}E", "")]
    ext += [("EXTNAME", "COADD", "")]
    row = b"".join(np.asarray(a, dtype=np.float32).astype(">f4").tobytes() for a in columns)
    return header_bytes(primary) + header_bytes(ext) + pad_to_block(row, b"\0")


# ---------------------------------------------------------------- CCD700

def write_ccd700_fits(path, wavelength_air, flux, object_name: str = "",
                      ra: float = float("nan"), dec: float = float("nan"),
                      date_obs: str = "2005-05-27") -> Path:
    """A 1-D Ondřejov-like file: linear AIR axis (CRVAL1/CDELT1/CD1_1/CRPIX1, CTYPE1 'WAVE'),
    OBJECT, RA/DEC as sexagesimal strings like the real headers. Gzipped when path ends in .gz."""
    wl = np.asarray(wavelength_air, dtype=np.float64)
    flux = np.asarray(flux, dtype=np.float32)
    if wl.shape != flux.shape or wl.ndim != 1 or wl.size < 2:
        raise ValueError(f"wavelength {wl.shape} and flux {flux.shape} must be equal 1-D arrays")
    step = (wl[-1] - wl[0]) / (wl.size - 1)
    if not step > 0 or np.max(np.abs(wl - (wl[0] + step * np.arange(wl.size)))) > 1e-3 * step:
        raise ValueError("wavelength is not an ascending linear grid")
    cards = [("SIMPLE", True, "Fits standard"), ("BITPIX", -32, "Bits per pixel"),
             ("NAXIS", 1, "Number of axes"), ("NAXIS1", wl.size, "Axis length"),
             ("EXTEND", False, "File may contain extensions"),
             ("OBJECT", object_name, "Title of observation"),
             ("OBSERVAT", "ONDREJOV", "Name of observatory (IRAF style)"),
             ("TELESCOP", "ZEISS-2m", "2m Ondrejov observatory telescope"),
             ("INSTRUME", "COUDE700", "Coude spectrograph setup - 1400/700mm focus"),
             ("DATE-OBS", date_obs, "UTC date start of observation"),
             ("EXPTIME", 1800.0, "Length of observation excluding pauses"),
             ("BUNIT", "ADU", "Unit of the array of image data"),
             ("RA", ra_hms(ra, 1) if math.isfinite(ra) else None, "hours"),
             ("DEC", dec_dms(dec, 1) if math.isfinite(dec) else None, "degrees"),
             ("EQUINOX", 2000.0, "Equinox of RA and DEC"),
             ("CTYPE1", "WAVE", "air wavelength"), ("CUNIT1", "Angstrom", ""),
             ("CRVAL1", round(float(wl[0]), 8), ""), ("CRPIX1", 1.0, ""),
             ("CDELT1", round(float(step), 12), ""), ("CD1_1", round(float(step), 12), ""),
             ("DC-FLAG", 0, "linear"),
             ("WAT1_001", "wtype=linear label=Wavelength units=angstroms", "")]
    pixels = pad_to_block(flux.astype(">f4").tobytes(), b"\0")
    write_fits_bytes(Path(path), header_bytes(cards) + pixels)
    return Path(path)


# ---------------------------------------------------------------- broken files

@dataclass
class PoolEntry:
    """One file of a pool folder and its truth: a row of truth.csv."""

    name: str
    label: int
    kind: str


def write_broken_files(out_dir, count: int, rng: np.random.Generator) -> list:
    """`count` files that must not become pool rows, cycling through BROKEN_KINDS."""
    out = Path(out_dir)
    entries = []
    for k in range(count):
        kind = BROKEN_KINDS[k % len(BROKEN_KINDS)]
        name = f"broken-{k:04d}.fits"
        _write_broken(out / name, kind, rng, k)
        entries.append(PoolEntry(name, BROKEN_LABEL, kind))
    return entries


def _write_broken(path: Path, kind: str, rng: np.random.Generator, k: int) -> None:
    spectrum = lamost_spectrum(NON_TARGET, rng, "absorption")
    header = LamostHeader(obsid=900_000_000 + k, ra=10.0 + k * 0.01, dec=20.0,
                          subclass="G5", snr_r=spectrum.snr)
    if kind == "broken-truncated":
        write_lamost_fits(path, *spectrum.arrays(), meta=header)
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 2])
    elif kind == "broken-not-spectrum":
        image = rng.normal(100, 10, (64, 64)).astype(">f4")
        cards = [("SIMPLE", True, ""), ("BITPIX", -32, ""), ("NAXIS", 2, ""),
                 ("NAXIS1", 64, ""), ("NAXIS2", 64, ""), ("OBJECT", "flat field", "")]
        write_fits_bytes(path, header_bytes(cards) + pad_to_block(image.tobytes(), b"\0"))
    elif kind == "broken-nan":
        flux = np.full_like(spectrum.flux, np.nan)
        write_lamost_fits(path, spectrum.wavelength, flux, spectrum.ivar, spectrum.andmask,
                          spectrum.ormask, meta=header)
    elif kind == "broken-window":
        stop = int(np.searchsorted(spectrum.wavelength, 6000.0))   # blue arm only
        arrays = [a[:stop] for a in spectrum.arrays()]
        write_lamost_fits(path, *arrays, meta=header)
    else:
        raise ValueError(f"unknown broken kind {kind!r}")
