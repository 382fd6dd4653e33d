"""Spectra of other surveys through specutils, and LAMOST's DR8-and-later file layout.

Real files: the DESI test files the specutils package ships (reduced from DESI EDR files by
specutils' generate_desi_test_data.py: 5 fibres, all arms, all HDUs). specutils ships no SDSS
file (its SDSS tests download one), so the SDSS-III/IV spec-lite file here is written to the
SDSS data model from a synthetic star.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.constants import c
from astropy.io import fits
from astropy.table import Table

from vo_al.core.base.errors import SpectrumReadError
from vo_al.core.base.sky import separation_arcsec
from vo_al.core.demo import (LamostHeader, lamost_spectrum, make_ccd700_spectrum,
                             write_ccd700_fits, write_lamost_fits)
from vo_al.core.spectra.fits_header import NotSpectrum
from vo_al.core.spectra.preprocess import air_to_vacuum
from vo_al.core.spectra.readers import read_spectrum
from vo_al.core.spectra.settings import PreprocessSettings
from vo_al.core.spectra.specutils_reader import (read_all_with_specutils,
                                                 read_with_specutils)

DESI_FILES = {"coadd-sv3-dark-26065.fits": "DESI coadd",
              "coadd-5-169-thru20210419.fits": "DESI coadd",
              "spectra-sv3-dark-26065.fits": "DESI spectra",
              "spectra-5-169-thru20210419.fits": "DESI spectra"}


def desi_file(name: str) -> Path:
    try:
        folder = importlib.resources.files("specutils.io.default_loaders.tests") / \
            "desi_test_data"
    except ModuleNotFoundError as exc:
        pytest.skip(f"specutils has no test data package ({exc})")
    path = Path(str(folder / name))
    if not path.is_file():
        pytest.skip(f"the installed specutils does not ship {name} (looked in {folder})")
    return path


def masked_ivar(hdul, arm: str) -> np.ndarray:
    """An arm's inverse variance with its masked pixels at 0: the weight desispec gives them."""
    return np.where(hdul[f"{arm}_MASK"].data != 0, 0.0, hdul[f"{arm}_IVAR"].data.astype(float))


# ---------------------------------------------------------------- DESI (real files)

@pytest.mark.parametrize("name", sorted(DESI_FILES))
def test_a_desi_file_gives_one_vacuum_spectrum_per_fibre(name):
    path = desi_file(name)
    spectra = read_all_with_specutils(path)
    with fits.open(path) as hdul:
        fibermap = hdul["FIBERMAP"].data
        first, last = hdul["B_WAVELENGTH"].data[0], hdul["Z_WAVELENGTH"].data[-1]
    assert len(spectra) == len(fibermap) == 5
    window = PreprocessSettings()
    for k, sp in enumerate(spectra):
        assert sp.reader == f"specutils:{DESI_FILES[name]}" and sp.instrument == "other"
        assert sp.medium == "vacuum" and "DESI data model" in sp.medium_reason
        assert sp.meta.name == f"{name}[{k}]" and sp.meta.source == str(path)
        assert sp.meta.obsid == str(int(fibermap["TARGETID"][k]))
        # arms b, r, z joined on DESI's 0.8 Å grid, in Angstrom, ascending, covering the window
        assert sp.wavelength[0] == pytest.approx(first) and sp.wavelength[-1] == pytest.approx(last)
        assert np.allclose(np.diff(sp.wavelength), 0.8, atol=1e-6)
        assert sp.wavelength[0] < window.window_min and sp.wavelength[-1] > window.window_max
        good = ~sp.mask
        assert np.isfinite(sp.flux[good]).all() and (sp.ivar[good] > 0).all()
        assert 0 <= sp.meta.ra <= 360 and -90 <= sp.meta.dec <= 90
    # one petal (tile files) or one nside-64 HEALPix pixel: the fibres lie within 2 degrees
    ra = np.array([sp.meta.ra for sp in spectra])
    dec = np.array([sp.meta.dec for sp in spectra])
    assert separation_arcsec(ra[:, None], dec[:, None], ra, dec).max() < 2 * 3600
    # the files hold real targets with data next to unassigned or broken fibres (no data)
    usable = [int((~sp.mask).sum()) for sp in spectra]
    assert max(usable) > 0.9 * spectra[0].wavelength.size and min(usable) == 0


def test_desi_arms_are_joined_by_inverse_variance_where_they_overlap():
    path = desi_file("coadd-sv3-dark-26065.fits")
    spectra = read_all_with_specutils(path)
    with fits.open(path) as hdul:
        row = int(np.argmax([(hdul["R_IVAR"].data[i] > 0).sum() for i in range(5)]))
        b_wl, r_wl = hdul["B_WAVELENGTH"].data, hdul["R_WAVELENGTH"].data
        b_flux, r_flux = hdul["B_FLUX"].data[row], hdul["R_FLUX"].data[row]
        b_ivar, r_ivar = masked_ivar(hdul, "B")[row], masked_ivar(hdul, "R")[row]
    sp = spectra[row]
    # a pixel only the r arm covers: its own value
    j = int(np.searchsorted(r_wl, 6600.0))
    i = int(np.argmin(np.abs(sp.wavelength - r_wl[j])))
    assert sp.flux[i] == r_flux[j] and sp.ivar[i] == pytest.approx(r_ivar[j])
    # a pixel of the b/r overlap (5760-5800 Å): the inverse-variance weighted mean of both
    jb, jr = int(np.searchsorted(b_wl, 5780.0)), int(np.searchsorted(r_wl, 5780.0))
    assert b_wl[jb] == pytest.approx(r_wl[jr])
    i = int(np.argmin(np.abs(sp.wavelength - b_wl[jb])))
    weight = b_ivar[jb] + r_ivar[jr]
    assert weight > 0
    expected = (b_ivar[jb] * b_flux[jb] + r_ivar[jr] * r_flux[jr]) / weight
    assert sp.flux[i] == pytest.approx(expected, rel=1e-12)
    assert sp.ivar[i] == pytest.approx(weight, rel=1e-12)


def test_a_desi_file_is_refused_as_one_spectrum_with_its_count(tmp_path):
    path = desi_file("coadd-5-169-thru20210419.fits")
    with pytest.raises(NotSpectrum, match=r"holds 5 spectra .*DESI coadd"):
        read_with_specutils(path)
    with pytest.raises(SpectrumReadError) as info:
        read_spectrum(path)
    assert info.value.path == str(path) and "holds 5 spectra" in info.value.reason


def test_ingest_adds_every_spectrum_of_a_desi_file_and_reads_each_back(tmp_path):
    """A DESI coadd or spectra file holds a spectrum per fibre: ingest adds each usable one as
    a row named FILE[k] with the source PATH[k] (rejecting the fibres without data by that
    source), exactly once on a rerun; the labelling view's prefetcher reads a row's source back
    to that one spectrum; SAMP says why it cannot send it as a URL."""
    import shutil

    from vo_al.core.base.errors import SampMessageError
    from vo_al.core.base.progress import run_job
    from vo_al.core.pool.ingest import ingest_files
    from vo_al.core.pool.store import PoolStore
    from vo_al.core.samp.messages import source_url
    from vo_al.core.spectra.preprocess import preprocess_spectra
    from vo_al.core.spectra.readers import read_spectra, source_part
    from vo_al.core.vo.prefetch import SourceUnavailable, SpectrumPrefetcher

    paths = []
    for name in sorted(DESI_FILES):
        shutil.copy(desi_file(name), tmp_path / name)
        paths.append(str(tmp_path / name))
    every = [(path, k, sp) for path in paths for k, sp in enumerate(read_spectra(path))]
    assert len(every) == 4 * 5
    batch = preprocess_spectra([sp for _, _, sp in every])
    usable = [i for i, why in enumerate(batch.reasons) if why is None]
    assert 0 < len(usable) < len(every)          # the files hold fibres without data too
    with PoolStore.create(tmp_path / "pool") as pool:
        report = run_job(ingest_files(pool, paths, workers=0, chunk_files=2))
        assert report.added == len(usable) and report.files == 4
        md = pool.metadata()
        assert list(md["name"]) == [f"{Path(every[i][0]).name}[{every[i][1]}]" for i in usable]
        assert list(md["source"]) == [f"{every[i][0]}[{every[i][1]}]" for i in usable]
        np.testing.assert_allclose(pool.rows(np.arange(len(usable))), batch.rows[usable],
                                   atol=1e-6)
        rejected = dict(report.rejected)
        assert sorted(rejected) == sorted(f"{every[i][0]}[{every[i][1]}]"
                                          for i in range(len(every)) if i not in usable)
        assert all(rejected.values())
        again = run_job(ingest_files(pool, paths, workers=0))
        assert again.added == 0 and len(pool) == len(usable)
        # in worker processes: the same rows
        with PoolStore.create(tmp_path / "pool2") as other:
            run_job(ingest_files(other, paths, workers=2))
            assert list(other.metadata()["source"]) == list(md["source"])

    source = md["source"][-1]
    path, k = source_part(source)
    assert (path, k) == (every[usable[-1]][0], every[usable[-1]][1])
    prefetcher = SpectrumPrefetcher(None)
    try:
        shown = prefetcher.request(source).result(timeout=60)
        np.testing.assert_array_equal(shown.flux, every[usable[-1]][2].flux)
        with pytest.raises(SourceUnavailable, match="holds 5 spectra now, not a spectrum 9"):
            prefetcher.request(f"{path}[9]").result(timeout=60)
    finally:
        prefetcher.close()
    assert source_part(paths[0]) == (paths[0], None)
    with pytest.raises(SampMessageError, match="which holds several"):
        source_url(source)


def test_desi_arms_on_shifted_grids_are_refused_not_resampled(tmp_path):
    path = tmp_path / "coadd-sv3-dark-26065.fits"
    with fits.open(desi_file(path.name)) as hdul:
        hdul["R_WAVELENGTH"].data = hdul["R_WAVELENGTH"].data + 0.4     # half a pixel
        hdul.writeto(path)
    with pytest.raises(NotSpectrum, match="overlap on different pixel grids"):
        read_all_with_specutils(path)


# ---------------------------------------------------------------- LAMOST DR8 layout

def test_the_dr8_table_layout_is_written_as_dr8_and_read_like_the_image_layout(tmp_path):
    spectrum = lamost_spectrum(1, np.random.default_rng(12), "single", snr=60.0)
    header = LamostHeader(obsid=802114052, ra=83.8221, dec=-5.3911, snr_r=60.0)
    image = write_lamost_fits(tmp_path / "spec-image.fits", *spectrum.arrays(), meta=header,
                              layout="image")
    table = write_lamost_fits(tmp_path / "spec-dr8.fits.gz", *spectrum.arrays(), meta=header,
                              layout="table")
    with fits.open(table) as hdul:
        assert len(hdul) == 2 and hdul[0].header["NAXIS"] == 0
        assert hdul[0].header["OBSID"] == 802114052 and "OBSID" not in hdul[1].header
        assert hdul[1].header["EXTNAME"] == "COADD" and len(hdul[1].data) == 1
        assert hdul[1].columns.names == ["FLUX", "IVAR", "WAVELENGTH", "ANDMASK", "ORMASK",
                                         "NORMALIZATION"]
        assert all(form == f"{spectrum.flux.size}E" for form in hdul[1].columns.formats)
        normalised = hdul[1].data["NORMALIZATION"][0].astype(float)
    # continuum-normalised: the continuum at 1, the star's Hα emission above it
    assert np.median(normalised) == pytest.approx(1.0, abs=0.05)
    near_halpha = np.abs(spectrum.wavelength - 6564.6) < 15
    assert normalised[near_halpha].max() > 1.1
    a, b = read_spectrum(image), read_spectrum(table)
    assert (a.reader, b.reader) == ("lamost-image", "lamost-table")
    assert np.array_equal(a.flux, b.flux) and np.array_equal(a.ivar, b.ivar)
    assert np.array_equal(a.mask, b.mask)
    # DR8 stores float32 wavelengths: equal to the image layout's axis to float32 precision
    assert np.array_equal(b.wavelength, spectrum.wavelength.astype(np.float32))
    assert np.allclose(a.wavelength, b.wavelength, rtol=1e-7, atol=0)
    assert b.meta.obsid == "802114052" and b.medium == "vacuum"


# ---------------------------------------------------------------- ASCII / ECSV

def write_ecsv(path: Path, wavelength, flux, error=None, unit=u.AA) -> Path:
    columns = {"wavelength": wavelength * unit, "flux": flux * u.adu}
    if error is not None:
        columns["flux_error"] = error * u.adu
    Table(columns).write(path, format="ascii.ecsv")
    return path


def test_an_ecsv_spectrum_takes_the_medium_setting_and_without_one_is_refused(tmp_path):
    wl_air, flux = make_ccd700_spectrum(1, np.random.default_rng(5))   # an air spectrum (ADU)
    error = np.sqrt(np.clip(flux, 1, None) + 49.0)
    path = write_ecsv(tmp_path / "hd-ecsv.ecsv", wl_air, flux, error)
    air = read_with_specutils(path, "air")
    assert air.reader == "specutils:ECSV" and air.instrument == "other"
    assert air.medium == "air" and "medium=air" in air.medium_reason
    assert np.allclose(air.wavelength, air_to_vacuum(wl_air), rtol=1e-12)
    assert np.array_equal(air.flux, flux.astype(np.float64))
    assert np.allclose(air.ivar, 1.0 / error ** 2, rtol=1e-12)
    assert air.meta.name == "hd-ecsv.ecsv"
    vacuum = read_with_specutils(path, "vacuum")
    assert np.array_equal(vacuum.wavelength, wl_air) and vacuum.medium == "vacuum"
    with pytest.raises(NotSpectrum, match="does not say whether its wavelengths are in air"):
        read_with_specutils(path, None)
    with pytest.raises(SpectrumReadError) as info:
        read_spectrum(path)
    assert info.value.path == str(path) and "air or vacuum" in info.value.reason
    assert read_spectrum(path, medium="air").reader == "specutils:ECSV"


def test_a_frequency_axis_is_vacuum_and_turned_ascending(tmp_path):
    wl_vac = air_to_vacuum(make_ccd700_spectrum(0, np.random.default_rng(8))[0])
    flux = np.linspace(900.0, 1100.0, wl_vac.size)
    frequency = (c / (wl_vac * u.AA)).to_value(u.Hz)            # descending with wavelength
    path = write_ecsv(tmp_path / "radio-style.ecsv", frequency[::-1], flux[::-1], unit=u.Hz)
    sp = read_with_specutils(path, "air")                       # the axis itself says vacuum
    assert sp.medium == "vacuum" and "c/ν" in sp.medium_reason
    assert np.all(np.diff(sp.wavelength) > 0)
    assert np.allclose(sp.wavelength, wl_vac, rtol=1e-12)
    assert np.array_equal(sp.flux, flux)


# ---------------------------------------------------------------- what specutils cannot read

def test_a_file_no_loader_identifies_is_not_a_spectrum(tmp_path):
    path = tmp_path / "photometry.csv"
    path.write_text("ra,dec,g\n150.1,2.2,17.3\n")
    with pytest.raises(NotSpectrum, match="no specutils loader identifies the file"):
        read_with_specutils(path, "vacuum")
    with pytest.raises(SpectrumReadError) as info:
        read_spectrum(path, medium="vacuum")
    assert info.value.path == str(path) and "no specutils loader" in info.value.reason


def test_a_loader_that_fails_is_a_typed_error_naming_the_loader(tmp_path):
    # an IRAF-style 1-D image whose BUNIT 'ADU' astropy does not parse (it knows 'adu'): the
    # wcs1d-fits loader claims it and raises
    wl_air, flux = make_ccd700_spectrum(1, np.random.default_rng(2))
    path = write_ccd700_fits(tmp_path / "oe-like.fits", wl_air, flux, "HD 1", 330.0, 50.0)
    with pytest.raises(NotSpectrum, match=r"loader 'wcs1d-fits' failed: ValueError: 'ADU'"):
        read_with_specutils(path, "air")


def test_a_missing_file_is_a_retryable_read_error(tmp_path):
    with pytest.raises(SpectrumReadError) as info:
        read_with_specutils(tmp_path / "gone.fits")
    assert info.value.retryable and "gone.fits" in info.value.path


# ---------------------------------------------------------------- SDSS spec-lite

SDSS_GRID = 3.5798 + 1e-4 * np.arange(3780)          # log10 Å: 3800-9073 Å, SDSS's 69 km/s


def write_sdss_spec_lite(path: Path, rng, extra_cards=()) -> dict:
    """An SDSS-III/IV spec-lite file (data.sdss.org datamodel spec.html): primary header of the
    plate and fibre (TELESCOP, VERS2D, FIBERID, PLUG_RA/PLUG_DEC; RA/DEC the plate centre),
    HDU 1 COADD with flux, loglam, ivar, and_mask, or_mask, wdisp, sky, model, HDU 2 SPALL.
    The star is the demo's (an Hα emitter, R ≈ 1 800 like SDSS's ≈ 2 000) on SDSS's grid."""
    star = lamost_spectrum(1, rng, "single", snr=40.0)
    wl = 10.0 ** SDSS_GRID
    flux = np.interp(wl, star.wavelength, star.flux).astype(np.float32)
    ivar = np.interp(wl, star.wavelength, star.ivar).astype(np.float32)
    and_mask = np.zeros(wl.size, np.int32)
    and_mask[:14] = 1 << 22                                     # the blue edge, as real files
    ivar[and_mask != 0] = 0.0
    plug_ra, plug_dec = 247.3125, 40.4312
    primary = fits.PrimaryHDU()
    for key, value in [("TELESCOP", "SDSS 2.5-M"), ("PLATEID", 4055), ("MJD", 55359),
                       ("FIBERID", 596), ("VERS2D", "v5_7_0"), ("RUN2D", "v5_7_0"),
                       ("RA", 246.1), ("DEC", 41.0), ("PLUG_RA", plug_ra),
                       ("PLUG_DEC", plug_dec), ("BUNIT", "1E-17 erg/cm^2/s/Ang"),
                       *extra_cards]:
        primary.header[key] = value
    coadd = fits.BinTableHDU.from_columns([
        fits.Column("flux", "E", array=flux), fits.Column("loglam", "E", array=SDSS_GRID),
        fits.Column("ivar", "E", array=ivar), fits.Column("and_mask", "J", array=and_mask),
        fits.Column("or_mask", "J", array=and_mask),
        fits.Column("wdisp", "E", array=np.full(wl.size, 1.1, np.float32)),
        fits.Column("sky", "E", array=np.full(wl.size, 3.0, np.float32)),
        fits.Column("model", "E", array=flux)], name="COADD")
    spall = fits.BinTableHDU.from_columns([
        fits.Column("PLATE", "J", array=[4055]), fits.Column("MJD", "J", array=[55359]),
        fits.Column("FIBERID", "J", array=[596]), fits.Column("CLASS", "6A", array=["STAR"]),
        fits.Column("Z", "E", array=[star.star.rv / 299792.458])], name="SPALL")
    fits.HDUList([primary, coadd, spall]).writeto(path)
    return {"flux": flux, "ivar": ivar, "and_mask": and_mask, "ra": plug_ra, "dec": plug_dec}


def test_an_sdss_spec_lite_file_is_read_in_vacuum_at_the_fibre_position(tmp_path):
    path = tmp_path / "spec-4055-55359-0596.fits"
    truth = write_sdss_spec_lite(path, np.random.default_rng(21))
    for sp in (read_with_specutils(path), read_spectrum(path)):
        assert sp.reader == "specutils:SDSS-III/IV spec" and sp.instrument == "other"
        assert sp.medium == "vacuum" and "SDSS data model" in sp.medium_reason
        assert np.allclose(sp.wavelength, 10.0 ** SDSS_GRID.astype(np.float32), rtol=1e-12)
        assert np.array_equal(sp.flux, truth["flux"].astype(np.float64))
        assert np.allclose(sp.ivar, truth["ivar"], rtol=1e-12)
        assert np.array_equal(sp.mask, (truth["and_mask"] != 0) | (truth["ivar"] == 0))
        # PLUG_RA/PLUG_DEC, the fibre: not RA/DEC, the plate centre
        assert (sp.meta.ra, sp.meta.dec) == (truth["ra"], truth["dec"])
        assert sp.meta.name == path.name


def test_a_file_contradicting_its_data_model_medium_is_refused(tmp_path):
    path = tmp_path / "spec-4055-55359-0597.fits"
    write_sdss_spec_lite(path, np.random.default_rng(22), [("AIRORVAC", "air")])
    with pytest.raises(NotSpectrum, match="both in air and in vacuum"):
        read_with_specutils(path, "vacuum")


# ---------------------------------------------------------------- WCS 1-D FITS

def test_a_wcs1d_file_in_awav_is_air_by_its_keyword(tmp_path):
    wl_air, flux = make_ccd700_spectrum(0, np.random.default_rng(4))
    step = (wl_air[-1] - wl_air[0]) / (wl_air.size - 1)
    hdu = fits.PrimaryHDU(flux.astype(np.float32))
    for key, value in [("CTYPE1", "AWAV"), ("CUNIT1", "Angstrom"), ("CRVAL1", wl_air[0]),
                       ("CDELT1", step), ("CRPIX1", 1.0), ("BUNIT", "adu")]:
        hdu.header[key] = value
    path = tmp_path / "awav.fits"
    hdu.writeto(path)
    sp = read_with_specutils(path, "vacuum")                   # the file's word wins
    assert sp.reader == "specutils:wcs1d-fits" and sp.medium == "air"
    assert "AWAV" in sp.medium_reason
    assert np.allclose(sp.wavelength, air_to_vacuum(wl_air), rtol=1e-9)
