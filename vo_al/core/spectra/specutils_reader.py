"""Spectra of other surveys through specutils' loaders: the files no vo-al reader claims.

specutils (astropy's spectroscopy package) has loaders for SDSS (spSpec, spec-lite, spPlate),
SDSS-V, APOGEE, DESI, MaNGA, JWST, HST, GAMA, 6dFGS, tabular and WCS FITS, ECSV, ASCII and
more. A file is read as specutils reads it when no format is given: every registered loader's
identifier looks at it, and the identified loaders of the highest priority are tried in name
order; the first that reads it wins and is recorded as `reader = "specutils:<format>"`. Lower-
priority loaders are never a fallback: where the loader made for a file fails, a generic one
(tabular FITS) would read some other table of it as a spectrum.

What one vo-al `Spectrum` is:
* a 1-D spectrum in the list specutils returns is one Spectrum; a 2-D flux (one spectrum per
  row on a shared spectral axis: MaNGA RSS, SDSS-V visits) is one Spectrum per row;
* a DESI `coadd` or `spectra` file holds the b, r and z arms of N fibres (coadd: one row per
  target; spectra: one per exposure): one Spectrum per fibre, its three arms joined on DESI's
  common 0.8 Å grid, where the arms overlap by inverse-variance weighting as desispec's
  `coadd_cameras` does (the arms' pixels coincide there; arms that do not are refused, not
  resampled). Fibres without data (unassigned, broken: IVAR 0 everywhere) are kept: their
  pixels are all masked, and preprocessing rejects them with its reason, so a file's every
  fibre is accounted for;
* a data cube (3-D flux: MaNGA and JWST cubes) is refused.
`read_with_specutils` returns a file's only spectrum and refuses a file of several (NotSpectrum
saying how many); `read_all_with_specutils` returns them all, named `<file>[k]` in file order.

Units: the spectral axis goes to Angstrom through astropy's spectral equivalencies (wavelength,
frequency, energy; a velocity or pixel axis is refused) and is made ascending; the flux keeps
its values (float64; its unit does not matter, preprocessing normalises); the uncertainty
becomes an inverse variance (InverseVariance, StdDevUncertainty, VarianceUncertainty, in the
flux's unit; another kind gives none); a pixel is bad where specutils' mask is set (True =
bad, as in astropy NDData), the flux is not finite, or the inverse variance is not > 0.

Air or vacuum (media.py): specutils does not record it. What decides, in this order: what the
file states (AIRORVAC, VACUUM, CTYPE1 AWAV in its headers; a frequency or energy axis, whose
λ = c/ν is a vacuum wavelength), the data model of the format (`VACUUM_FORMATS`), the caller's
medium setting; with none of them the file is refused with the reason. All survey loaders not
in `VACUUM_FORMATS` (GAMA, 6dFGS, 2dFGRS, GALAH, HST, JWST, ...) take the setting: vo-al has not
checked their data models.

Failures: anything specutils or a loader raises becomes NotSpectrum naming the format(s) tried
and the loader's message (cut to one line); an I/O error opening the file is a retryable
SpectrumReadError. specutils is imported inside the functions: importing vo_al.core.spectra
stays light (specutils and its gwcs/asdf take about 2 s to import).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vo_al.core.base.errors import SpectrumReadError, reason_text
from vo_al.core.base.parsing import library_parse
from vo_al.core.spectra.fits_header import NotSpectrum, checked_sky, finite_number
from vo_al.core.spectra.media import VACUUM, medium_in_keywords, settle_medium, to_vacuum
from vo_al.core.spectra.readers import spectrum_name
from vo_al.core.spectra.record import Spectrum, SpectrumMeta

READER_PREFIX = "specutils:"
OTHER = "other"

_SDSS = ("SDSS data model: heliocentric vacuum wavelengths (sdss.org, 'Understanding the "
         "optical data', DR15)")
_APOGEE = "APOGEE data model: vacuum wavelengths (sdss.org, APOGEE spectra, DR17)"
_SDSS_V = ("SDSS-V data model: BOSS and APOGEE spectra in vacuum wavelengths (idlspec2d and "
           "apogee_drp, as SDSS-IV)")
_DESI = ("DESI data model: vacuum wavelengths (desidatamodel, spectra/coadd files; DESI EDR, "
         "AJ 168, 58)")
_MANGA = "MaNGA data model: vacuum wavelengths (Law et al. 2016, AJ 152, 83)"

# specutils formats whose survey publishes vacuum wavelengths, and where it says so
VACUUM_FORMATS = {
    "SDSS-I/II spSpec": _SDSS,
    "SDSS-III/IV spec": _SDSS,
    "SDSS spPlate": _SDSS,
    "APOGEE apStar": _APOGEE,
    "APOGEE apVisit": _APOGEE,
    "APOGEE aspcapStar": _APOGEE,
    "SDSS-V spec": _SDSS_V,
    "SDSS-V apStar": _SDSS_V,
    "SDSS-V apVisit": _SDSS_V,
    "SDSS-V mwm": _SDSS_V,
    "SDSS-V astra": _SDSS_V,
    "DESI coadd": _DESI,
    "DESI spectra": _DESI,
    "MaNGA rss": _MANGA,
    "MaNGA cube": _MANGA,
}
DESI_FORMATS = ("DESI coadd", "DESI spectra")
# DESI's arms are cut from one grid (3600 + 0.8 i Å); its values agree to ~1e-9 Å between
# arms, so pixels are matched after rounding to a µÅ
_GRID_DECIMALS = 6
# header keywords of a target's position, most specific first (SDSS: PLUG_RA/PLUG_DEC are the
# fibre's position, RA/DEC the plate centre's; HST RA_TARG, JWST TARG_RA)
_RA_KEYS = ("PLUG_RA", "TARG_RA", "RA_TARG", "RA_OBJ", "RA")
_DEC_KEYS = ("PLUG_DEC", "TARG_DEC", "DEC_TARG", "DEC_OBJ", "DEC")


@dataclass
class _Block:
    """Spectra on one spectral axis, as read: n rows of pixels."""

    wavelength: np.ndarray           # (pix,) Angstrom, ascending, in the file's medium
    flux: np.ndarray                 # (n, pix)
    ivar: np.ndarray | None          # (n, pix)
    mask: np.ndarray                 # (n, pix) True = bad
    header: object                   # the loader's meta['header'] (astropy Header, dict, None)
    stated: list                     # what the file states about its medium
    flux_unit: str = ""              # as specutils read it ('' for a bare number)


# ---------------------------------------------------------------- public API

def read_with_specutils(path, medium: str | None = None,
                        medium_origin: str = "the medium setting", *,
                        max_bytes: int | None = None) -> Spectrum:
    """The one spectrum of a file that a specutils loader reads (NotSpectrum why not).

    A file of several spectra (a DESI coadd, an RSS) is refused with how many it holds:
    `read_all_with_specutils` reads them. `medium` ('air'/'vacuum'/None) is used only where
    neither the file nor its format's data model says (`medium_origin` names the setting).
    `max_bytes`: refuse a file larger than this on disk (None: the caller has bounded it, as
    read_spectrum does).
    """
    spectra, _ = _read(path, medium, medium_origin, max_bytes, single=True)
    return spectra[0]


def read_all_with_specutils(path, medium: str | None = None,
                            medium_origin: str = "the medium setting", *,
                            max_bytes: int | None = None) -> list[Spectrum]:
    """Every spectrum of a file a specutils loader reads, in file order (NotSpectrum why not).

    A file of one spectrum gives one, named like the file; a file of several gives `<file>[k]`
    (k from 0, in the order of the file: DESI's FIBERMAP rows)."""
    spectra, _ = _read(path, medium, medium_origin, max_bytes, single=False)
    return spectra


# ---------------------------------------------------------------- identification and reading

def _read(path, medium, medium_origin, max_bytes, single: bool) -> tuple[list, str]:
    path = Path(os.path.abspath(os.fspath(path)))     # absolute: never taken for a URL
    try:
        status = path.stat()
        if stat.S_ISREG(status.st_mode):
            with open(path, "rb"):
                pass
    except OSError as exc:
        raise SpectrumReadError(path, f"cannot read file: {exc}", retryable=True) from exc
    if not stat.S_ISREG(status.st_mode):
        raise NotSpectrum("not a regular file")
    size = status.st_size
    if max_bytes is not None and size > max_bytes:
        raise NotSpectrum(f"file of {size} bytes, more than {max_bytes} bytes (the project "
                          "setting max_spectrum_mb)")
    spectrum_list = _spectrum_list_class()
    # loaders warn about every non-standard card or unit; the result or the error says
    # what matters, and an ingest of a million files must not print a million warnings
    with library_parse():
        formats = _identified_formats(path, spectrum_list)
        listing, fmt = _load(path, formats, spectrum_list)
        blocks, what = _blocks(listing, fmt)
    count = sum(block.flux.shape[0] for block in blocks)
    if count == 0:
        raise NotSpectrum(f"the specutils loader {fmt!r} found no spectrum in the file")
    if single and count != 1:
        raise NotSpectrum(f"the file holds {count} spectra ({what}, specutils format "
                          f"{fmt!r}); vo-al reads a file of one spectrum here (an ingest "
                          "takes each of them)")
    primary = _primary_header(path)
    spectra = []
    for block in blocks:
        stated = list(block.stated) + _header_statements(block.header)
        if primary is not None and primary is not block.header:
            stated += _header_statements(primary)
        if fmt in VACUUM_FORMATS:
            stated.append((VACUUM, VACUUM_FORMATS[fmt]))
        file_medium, reason = settle_medium(stated, medium, medium_origin)
        wavelength = to_vacuum(block.wavelength, file_medium)
        for row in range(block.flux.shape[0]):
            k = len(spectra)
            name = spectrum_name(path) if count == 1 else f"{spectrum_name(path)}[{k}]"
            meta = _meta(listing, fmt, block.header, primary, row if fmt in DESI_FORMATS
                         else None, name, str(path))
            flux = block.flux[row]
            if single and not np.isfinite(flux).any():
                raise NotSpectrum("flux has no finite value")
            # copies: each record owns its pixels (no view keeps a whole file's block alive,
            # no change to one spectrum's axis reaches its neighbours)
            spectra.append(Spectrum(
                wavelength.copy(), flux.copy(),
                None if block.ivar is None else block.ivar[row].copy(),
                block.mask[row].copy(), OTHER, meta, reader=READER_PREFIX + fmt,
                medium=file_medium, medium_reason=reason, flux_unit=block.flux_unit))
    return spectra, what


def _spectrum_list_class():
    """specutils' SpectrumList with every default loader registered.

    specutils registers its loaders by importing the modules its `default_loaders` folder
    globs for `*.py` files; a frozen application (PyInstaller) has no such files and would have
    no loaders, so they are imported here by name (pkgutil sees frozen modules too). In a normal
    install they are all loaded already and this imports nothing."""
    import importlib
    import pkgutil
    import sys

    try:
        import specutils.io.default_loaders as loaders
        from specutils import SpectrumList
    except ImportError as exc:
        raise NotSpectrum(f"specutils is not installed ({exc})") from None
    for module in pkgutil.iter_modules(loaders.__path__):
        name = f"{loaders.__name__}.{module.name}"
        if not module.ispkg and name not in sys.modules:
            try:
                importlib.import_module(name)
            except ImportError:       # a loader whose optional dependency is missing
                continue
    return SpectrumList


def _identified_formats(path: Path, list_class) -> list[str]:
    """The formats whose identifiers claim the file, of the highest priority among them, in
    name order. The identifiers get what astropy's `read` gives them without a format: the path
    and an open binary file object."""
    from astropy.io import registry
    from astropy.utils.data import get_readable_fileobj

    try:
        with get_readable_fileobj(str(path), encoding="binary") as fileobj:
            found = registry.identify_format("read", list_class, str(path), fileobj,
                                             [fileobj], {})
    except MemoryError:
        raise
    except Exception as exc:          # noqa: BLE001 - an identifier that raises past specutils
        raise NotSpectrum(f"specutils could not identify the file ({_short(exc)})") from None
    if not found:
        raise NotSpectrum(f"no specutils loader identifies the file (tried the "
                          f"{_format_count(list_class)} registered formats: SDSS, DESI, "
                          "APOGEE, tabular and WCS FITS, ECSV, ASCII, ...)")
    priority = {fmt: _priority(registry, fmt, list_class) for fmt in found}
    best = max(priority.values())
    return sorted(fmt for fmt in found if priority[fmt] == best)


def _priority(registry, fmt: str, list_class) -> float:
    # astropy keeps (reader, priority) per format in its registry's `_readers`; there is no
    # public accessor, and `read` itself chooses by this number
    entry = getattr(registry, "_readers", {}).get((fmt, list_class))
    if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], (int, float)):
        return float(entry[1])
    return 0.0


def _format_count(list_class) -> int:
    from astropy.io import registry

    return sum(1 for (_, cls) in getattr(registry, "_readers", {}) if cls is list_class)


def _load(path: Path, formats: list[str], list_class):
    """(SpectrumList, format): the first of `formats` whose loader reads the file."""
    failures = []
    for fmt in formats:
        try:
            listing = list_class.read(str(path), format=fmt)
        except MemoryError:
            raise
        except Exception as exc:      # noqa: BLE001 - a loader's failure on a file it claimed
            failures.append(f"the specutils loader {fmt!r} failed: {_short(exc)}")
            continue
        return listing, fmt
    raise NotSpectrum("; ".join(failures))


def _short(exc: BaseException) -> str:
    """One line of an exception (astropy's registry errors append a table of every format)."""
    text = str(exc).strip().splitlines()
    line = reason_text(text[0]) if text else ""         # the whole first line, never cut
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def _primary_header(path: Path):
    """The primary header of a FITS file (medium keywords and meta may be there rather than
    in the header the loader kept); None for a file that is not FITS."""
    from astropy.io import fits

    try:
        with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
            return hdul[0].header.copy()
    except MemoryError:
        raise
    except Exception:                 # noqa: BLE001 - not FITS (ECSV, ASCII): no such header
        return None


# ---------------------------------------------------------------- specutils objects -> arrays

def _blocks(listing, fmt: str) -> tuple[list[_Block], str]:
    """The blocks of a SpectrumList and what they are, in words."""
    spectra = list(listing)
    if not spectra:
        return [], "no spectrum"
    if fmt in DESI_FORMATS:
        arms = [_block(spec, f"DESI arm {spec.meta.get('band', i)!r}")
                for i, spec in enumerate(spectra)]
        bands = [str(spec.meta.get("band", i)) for i, spec in enumerate(spectra)]
        merged = _join_arms(arms, bands)
        merged.header = spectra[0].meta.get("header")
        what = f"{merged.flux.shape[0]} fibres, arms {', '.join(bands)} joined"
        return [merged], what
    blocks = [_block(spec, f"spectrum {i} of the file") for i, spec in enumerate(spectra)]
    rows = sum(b.flux.shape[0] for b in blocks)
    what = (f"{len(blocks)} spectra" if rows == len(blocks)
            else f"{rows} spectra in {len(blocks)} block(s) of rows")
    return blocks, what


def _block(spec, what: str) -> _Block:
    wavelength, stated = _angstrom(spec.spectral_axis, what)
    flux = np.asarray(getattr(spec.flux, "value", spec.flux), dtype=np.float64)
    if flux.ndim > 2:
        raise NotSpectrum(f"{what} is a data cube (flux of shape {flux.shape}), not 1-D "
                          "spectra")
    flux = flux.reshape(1, -1) if flux.ndim == 1 else flux
    if flux.shape[-1] != wavelength.size:
        raise NotSpectrum(f"{what}: flux of {flux.shape[-1]} pixels on a spectral axis of "
                          f"{wavelength.size}")
    flux_unit = getattr(spec.flux, "unit", None)
    ivar = _inverse_variance(spec.uncertainty, flux_unit, flux.shape, what)
    mask = ~np.isfinite(flux)
    if spec.mask is not None:
        given = np.asarray(spec.mask)
        if given.size == flux.size:
            mask |= given.reshape(flux.shape) != 0
        elif given.shape == (flux.shape[-1],):
            mask |= given[np.newaxis, :] != 0
        else:
            raise NotSpectrum(f"{what}: a mask of shape {given.shape} for flux of {flux.shape}")
    if ivar is not None:
        mask |= ~(ivar > 0)
    order = _ascending(wavelength, what)
    if order is not None:
        wavelength, flux, mask = wavelength[order], flux[:, order], mask[:, order]
        ivar = None if ivar is None else ivar[:, order]
    return _Block(wavelength, flux, ivar, mask, spec.meta.get("header") if
                  hasattr(spec.meta, "get") else None, stated,
                  "" if flux_unit is None else flux_unit.to_string())


def _angstrom(axis, what: str) -> tuple[np.ndarray, list]:
    """The spectral axis in Angstrom, and what its unit states about the medium."""
    import astropy.units as u

    unit = getattr(axis, "unit", None)
    if unit is None or unit == u.dimensionless_unscaled or unit == u.pix:
        raise NotSpectrum(f"{what}: the spectral axis is in pixels (no physical unit)")
    try:
        values = np.asarray(axis.to_value(u.AA, equivalencies=u.spectral()), dtype=np.float64)
    except u.UnitConversionError:
        raise NotSpectrum(f"{what}: the spectral axis is in {unit}, not a wavelength, frequency "
                          "or energy") from None
    values = values.ravel()
    if values.size < 2 or not np.all(np.isfinite(values)) or not np.all(values > 0):
        raise NotSpectrum(f"{what}: the spectral axis has values that are not positive finite "
                          "wavelengths")
    stated = []
    if unit.physical_type in ("frequency", "energy"):
        stated.append((VACUUM, f"spectral axis in {unit} (λ = c/ν is a vacuum wavelength)"))
    return values, stated


def _ascending(wavelength: np.ndarray, what: str) -> np.ndarray | None:
    """None where the axis is strictly ascending, the reversing index where it is strictly
    descending (a frequency axis); NotSpectrum otherwise."""
    step = np.diff(wavelength)
    if np.all(step > 0):
        return None
    if np.all(step < 0):
        return np.arange(wavelength.size)[::-1]
    raise NotSpectrum(f"{what}: the spectral axis is not strictly monotonic (repeated or "
                      "unordered values)")


def _inverse_variance(uncertainty, flux_unit, shape, what: str) -> np.ndarray | None:
    """The inverse variance of an NDData uncertainty, in the flux's unit; 0 where the
    uncertainty is not a positive finite number; None for an unknown kind of uncertainty."""
    if uncertainty is None:
        return None
    from astropy.nddata import InverseVariance, StdDevUncertainty, VarianceUncertainty

    power = {InverseVariance: -2, StdDevUncertainty: 1, VarianceUncertainty: 2}.get(
        type(uncertainty))
    if power is None:
        return None
    values = np.asarray(uncertainty.array, dtype=np.float64)
    unit = uncertainty.unit
    if unit is not None and flux_unit is not None:
        try:
            values = (values * unit).to_value(flux_unit ** power)
        except Exception:             # noqa: BLE001 - astropy's UnitConversionError and kin
            raise NotSpectrum(f"{what}: the uncertainty is in {unit}, which does not go with "
                              f"flux in {flux_unit}") from None
    if values.size != int(np.prod(shape)):
        raise NotSpectrum(f"{what}: an uncertainty of shape {values.shape} for flux of {shape}")
    values = values.reshape(shape)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ivar = values if power == -2 else 1.0 / values ** (2 if power == 1 else 1)
    return np.where(np.isfinite(ivar) & (ivar > 0) & np.isfinite(values), ivar, 0.0)


def _join_arms(arms: list[_Block], bands: list[str]) -> _Block:
    """DESI's arms of the same fibres on one grid: inverse-variance weighted where they
    overlap (desispec.coaddition.coadd_cameras), each arm's own pixels elsewhere."""
    n_rows = {arm.flux.shape[0] for arm in arms}
    if len(n_rows) != 1:
        raise NotSpectrum(f"DESI arms {', '.join(bands)} hold different numbers of fibres "
                          f"({sorted(n_rows)})")
    if any(arm.ivar is None for arm in arms):
        raise NotSpectrum("a DESI arm without IVAR: its arms cannot be joined")
    keys = [np.round(arm.wavelength, _GRID_DECIMALS) for arm in arms]
    for i in range(len(arms)):
        for j in range(i + 1, len(arms)):
            low, high = max(keys[i][0], keys[j][0]), min(keys[i][-1], keys[j][-1])
            if low > high:
                continue
            inside_i = keys[i][(keys[i] >= low) & (keys[i] <= high)]
            inside_j = keys[j][(keys[j] >= low) & (keys[j] <= high)]
            if inside_i.shape != inside_j.shape or not np.array_equal(inside_i, inside_j):
                raise NotSpectrum(f"DESI arms {bands[i]} and {bands[j]} overlap on different "
                                  "pixel grids; vo-al joins arms only where their pixels "
                                  "coincide (it does not resample them)")
    grid = np.unique(np.concatenate(keys))
    n = n_rows.pop()
    weighted = np.zeros((n, grid.size))
    weight = np.zeros((n, grid.size))
    plain = np.zeros((n, grid.size))
    count = np.zeros((n, grid.size))
    for arm, key in zip(arms, keys):
        where = np.searchsorted(grid, key)
        good = ~arm.mask & np.isfinite(arm.flux)
        w = np.where(good, arm.ivar, 0.0)
        weighted[:, where] += w * np.where(good, arm.flux, 0.0)
        weight[:, where] += w
        finite = np.isfinite(arm.flux)
        plain[:, where] += np.where(finite, arm.flux, 0.0)
        count[:, where] += finite
    with np.errstate(divide="ignore", invalid="ignore"):
        # where no arm has a good pixel the flux is the arms' plain mean, masked: kept as the
        # file has it, not invented
        flux = np.where(weight > 0, weighted / weight,
                        np.where(count > 0, plain / np.maximum(count, 1), np.nan))
    return _Block(grid.astype(np.float64), flux, weight, ~(weight > 0), None, [],
                  arms[0].flux_unit)


# ---------------------------------------------------------------- medium and meta

def _header_statements(header) -> list:
    if header is None or not hasattr(header, "get"):
        return []
    return medium_in_keywords(lambda key: _header_value(header, key))


def _header_value(header, key):
    try:
        return header.get(key)
    except Exception:                 # noqa: BLE001 - an astropy card that does not parse
        return None


def _meta(listing, fmt: str, header, primary, row: int | None, name: str,
          source: str) -> SpectrumMeta:
    if fmt in DESI_FORMATS and row is not None:
        return _desi_meta(list(listing)[0].meta, row, name, source)
    headers = [h for h in (header, primary) if h is not None and hasattr(h, "get")]

    def first(keys, kind):
        for h in headers:
            for key in keys:
                value = kind(_header_value(h, key))
                if value not in ("", None) and not (isinstance(value, float)
                                                    and not np.isfinite(value)):
                    return value
        return "" if kind is _text else float("nan")

    ra = checked_sky(first(_RA_KEYS, finite_number), "RA", is_ra=True)
    dec = checked_sky(first(_DEC_KEYS, finite_number), "DEC", is_ra=False)
    return SpectrumMeta(
        name=name,
        designation=first(("DESIG", "OBJNAME", "OBJECT", "TARGNAME"), _text),
        ra=ra, dec=dec,
        obsid=first(("OBSID", "SPECOBJID"), _text),
        z=first(("Z", "REDSHIFT"), finite_number),
        source=source,
    )


def _desi_meta(meta: dict, row: int, name: str, source: str) -> SpectrumMeta:
    """A DESI fibre's meta from the FIBERMAP (TARGETID, TARGET_RA/DEC) and SCORES (the median
    r-arm S/N of the coadd, else of the calibrated exposure) rows of the same index."""
    fibermap = meta.get("fibermap")
    scores = meta.get("scores")

    def cell(table, column):
        if table is None or column not in getattr(table, "colnames", ()) or row >= len(table):
            return None
        return table[column][row]

    targetid = cell(fibermap, "TARGETID")
    snr = float("nan")
    if scores is not None and cell(scores, "TARGETID") == targetid:
        for column in ("MEDIAN_COADD_SNR_R", "MEDIAN_CALIB_SNR_R"):
            value = finite_number(cell(scores, column))
            if np.isfinite(value):
                snr = value
                break
    return SpectrumMeta(
        name=name,
        ra=checked_sky(finite_number(cell(fibermap, "TARGET_RA")), "TARGET_RA", is_ra=True),
        dec=checked_sky(finite_number(cell(fibermap, "TARGET_DEC")), "TARGET_DEC", is_ra=False),
        obsid="" if targetid is None else str(int(targetid)),
        snr=snr,
        source=source,
    )


def _text(value) -> str:
    if value is None or isinstance(value, (bool, np.bool_)):
        return ""
    return str(value).strip()


