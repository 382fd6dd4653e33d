"""vo_al.core.spectra.readers on the real archive files and on every kind of broken input."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from vo_al.core.demo import LamostHeader, make_lamost_spectrum, write_lamost_fits
from vo_al.core.base.errors import SpectrumReadError
from vo_al.core.spectra.preprocess import HALPHA_VAC, air_to_vacuum
from vo_al.core.spectra.readers import (CCD700, LAMOST_IMAGE, LAMOST_TABLE, _read_bytes,
                                _read_with_astropy, detect_layout, read_spectrum)


def real_data_dir() -> Path:
    """The shared real files: $VO_AL_REAL_DATA, else ../shared/data/real beside the checkout."""
    env = os.environ.get("VO_AL_REAL_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


@pytest.fixture(scope="module")
def real() -> Path:
    folder = real_data_dir()
    if not (folder / "lamost-dr2").is_dir():
        pytest.skip(f"real spectra not found at {folder} (set VO_AL_REAL_DATA to run these)")
    return folder


def dr2_files(real: Path) -> list:
    files = sorted((real / "lamost-dr2").glob("*.fits"))
    assert files, "lamost-dr2 folder is empty"
    return files


# ---------------------------------------------------------------- real files

def test_every_dr2_file_reads_with_matching_meta(real):
    for path in dr2_files(real):
        spectrum = read_spectrum(path)
        header = fits.getheader(path)
        wl = spectrum.wavelength
        assert spectrum.instrument == "lamost"
        assert np.all(np.diff(wl) > 0)
        assert 3690 < wl[0] < 3710 and 9000 < wl[-1] < 9100
        assert wl[0] < 6519 and wl[-1] > 6732, "Hα window must be covered"
        assert spectrum.flux.shape == spectrum.ivar.shape == spectrum.mask.shape == wl.shape
        meta = spectrum.meta
        assert meta.name == path.name and meta.source == str(path)
        assert meta.designation == header["DESIG"].strip()
        assert meta.ra == pytest.approx(header["RA"]) and meta.dec == pytest.approx(header["DEC"])
        assert meta.cls == header["CLASS"].strip()
        assert meta.subclass == header["SUBCLASS"].strip()
        assert meta.snr == pytest.approx(header["SN_R"])
        with fits.open(path) as hdul:
            assert detect_layout(hdul) == LAMOST_IMAGE


def test_dr2_wavelength_equals_its_wavelength_row(real):
    path = dr2_files(real)[0]
    row = fits.getdata(path)[2]
    np.testing.assert_allclose(read_spectrum(path).wavelength, row, rtol=1e-9)


def test_mask_is_andmask_or_zero_ivar(real):
    path = dr2_files(real)[0]
    data = fits.getdata(path)
    expected = (data[3] != 0) | (data[1] == 0)
    np.testing.assert_array_equal(read_spectrum(path).mask, expected)


def test_fast_path_equals_astropy_path(real):
    files = dr2_files(real) + sorted((real / "lamost-dr1").glob("*.fits"))
    for path in files:
        fast = read_spectrum(path)
        slow = _read_with_astropy(_read_bytes(path), path)
        for name in ("wavelength", "flux", "ivar", "mask"):
            np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name))
        assert fast.meta == slow.meta


def test_dr1_wavelength_is_computed_not_its_normalised_flux_row(real):
    path = next((real / "lamost-dr1").glob("*.fits"))
    spectrum = read_spectrum(path)
    row2 = fits.getdata(path)[2]
    assert np.nanmax(np.abs(row2)) < 100, "DR1 row 2 is a normalised flux"
    expected = 10 ** (3.5682 + 1e-4 * np.arange(row2.size))
    np.testing.assert_allclose(spectrum.wavelength, expected, rtol=1e-7)
    assert spectrum.meta.designation.endswith("J111021.94+274358.6")


def test_ccd700_is_converted_to_vacuum(real):
    path = real / "ondrejov" / "oe270005.fits"
    spectrum = read_spectrum(path)
    header = fits.getheader(path)
    air = header["CRVAL1"] + (np.arange(header["NAXIS1"]) + 1 - header["CRPIX1"]) * header["CDELT1"]
    assert spectrum.instrument == "ccd700" and spectrum.ivar is None
    np.testing.assert_allclose(spectrum.wavelength, air_to_vacuum(air))
    i = np.searchsorted(air, 6562.8)
    assert spectrum.wavelength[i] - air[i] == pytest.approx(1.81, abs=0.02)
    assert spectrum.wavelength[0] < HALPHA_VAC < spectrum.wavelength[-1]
    assert spectrum.meta.designation == "HD 208905"
    assert spectrum.meta.ra == pytest.approx(21.955056 * 15, abs=1e-4)
    assert spectrum.meta.dec == pytest.approx(61.294361, abs=1e-5)
    with fits.open(path) as hdul:
        assert detect_layout(hdul) == CCD700


@pytest.mark.parametrize("sub", ["lamost-dr2", "lamost-dr1", "ondrejov"])
def test_gzip_round_trip(real, tmp_path, sub):
    source = sorted((real / sub).glob("*.fits"))[0]
    target = tmp_path / (source.stem + ".fit.gz")
    target.write_bytes(gzip.compress(source.read_bytes()))
    plain, zipped = read_spectrum(source), read_spectrum(target)
    np.testing.assert_array_equal(plain.wavelength, zipped.wavelength)
    np.testing.assert_array_equal(plain.flux, zipped.flux)
    assert zipped.meta.name == source.stem + ".fit"
    assert zipped.meta.designation == plain.meta.designation


def test_layout_comes_from_content_not_name(real, tmp_path):
    lamost_as_ccd = tmp_path / "oe123456.fits"
    shutil.copy(dr2_files(real)[0], lamost_as_ccd)
    ccd_as_lamost = tmp_path / "spec-55916-B5591606_sp01-001.fits"
    shutil.copy(real / "ondrejov" / "oe270005.fits", ccd_as_lamost)
    assert read_spectrum(lamost_as_ccd).instrument == "lamost"
    assert read_spectrum(ccd_as_lamost).instrument == "ccd700"


# ---------------------------------------------------------------- table layout

def _table_file(path: Path, names=("FLUX", "IVAR", "WAVELENGTH", "ANDMASK", "ORMASK"),
                lengths=(100, 100, 100, 100, 100)) -> Path:
    wl = np.linspace(6400, 6800, max(lengths))
    columns = [fits.Column(name=name, format=f"{n}E",
                           array=(wl[:n] if "wave" in name.lower() else np.ones(n))[None, :])
               for name, n in zip(names, lengths)]
    primary = fits.PrimaryHDU()
    primary.header["OBSID"] = 123456789
    primary.header["DESIG"] = "LAMOST J000000.00+000000.0"
    fits.HDUList([primary, fits.BinTableHDU.from_columns(columns)]).writeto(path)
    return path


def test_table_layout_with_lowercase_columns(tmp_path):
    path = _table_file(tmp_path / "lower.fits", names=("flux", "ivar", "wavelength",
                                                      "andmask", "ormask"))
    spectrum = read_spectrum(path)
    assert spectrum.meta.obsid == "123456789"
    assert spectrum.wavelength[0] == pytest.approx(6400)
    with fits.open(path) as hdul:
        assert detect_layout(hdul) == LAMOST_TABLE


# ---------------------------------------------------------------- broken input

def _broken_inputs(tmp_path: Path) -> dict:
    files = {}
    files["text"] = tmp_path / "text.fits"
    files["text"].write_text("this is not FITS\n" * 50)
    files["empty"] = tmp_path / "empty.fits"
    files["empty"].write_bytes(b"")
    wl, flux, ivar, andmask, ormask = make_lamost_spectrum(0, np.random.default_rng(0))
    header = LamostHeader(obsid=1, ra=1.0, dec=2.0)
    good = write_lamost_fits(tmp_path / "good.fits", wl, flux, ivar, andmask, ormask, header)
    files["truncated"] = tmp_path / "truncated.fits"
    files["truncated"].write_bytes(good.read_bytes()[:9000])
    files["truncated header"] = tmp_path / "truncated-header.fits"
    files["truncated header"].write_bytes(good.read_bytes()[:1000])
    files["truncated gzip"] = tmp_path / "truncated.fits.gz"
    files["truncated gzip"].write_bytes(gzip.compress(good.read_bytes())[:5000])
    files["2-D image"] = tmp_path / "image.fits"
    fits.PrimaryHDU(np.zeros((64, 64), np.float32)).writeto(files["2-D image"])
    files["3-D cube"] = tmp_path / "cube.fits"
    fits.PrimaryHDU(np.zeros((3, 4, 5), np.float32)).writeto(files["3-D cube"])
    files["header only"] = tmp_path / "header-only.fits"
    fits.PrimaryHDU().writeto(files["header only"])
    files["table without FLUX"] = _table_file(tmp_path / "noflux.fits",
                                              names=("A", "IVAR", "WAVELENGTH", "B", "C"))
    files["mismatched columns"] = _table_file(tmp_path / "mismatch.fits",
                                              lengths=(100, 90, 100, 100, 100))
    lamost = fits.PrimaryHDU(np.ones((5, 100), np.float32))
    lamost.header["EXTEN0"] = "Flux Inverse Wavelength Andmask Ormask"
    files["LAMOST without COEFF"] = tmp_path / "nocoeff.fits"
    lamost.writeto(files["LAMOST without COEFF"])
    ccd = fits.PrimaryHDU(np.ones(100, np.float32))
    ccd.header["CDELT1"] = 0.25
    files["1-D without CRVAL1"] = tmp_path / "nocrval.fits"
    ccd.writeto(files["1-D without CRVAL1"])
    files["all-NaN flux"] = write_lamost_fits(
        tmp_path / "nan.fits", wl, np.full_like(flux, np.nan), ivar, andmask, ormask, header)
    return files


@pytest.mark.filterwarnings("ignore::astropy.io.fits.verify.VerifyWarning")
def test_each_broken_input_raises_naming_the_file(tmp_path):
    for what, path in _broken_inputs(tmp_path).items():
        with pytest.raises(SpectrumReadError) as info:
            read_spectrum(path)
        assert info.value.path == str(path), what
        assert str(path) in str(info.value), what
        assert info.value.reason, what


def test_missing_file_raises_spectrum_read_error(tmp_path):
    with pytest.raises(SpectrumReadError, match="cannot read"):
        read_spectrum(tmp_path / "absent.fits")


@pytest.mark.filterwarnings("ignore::astropy.io.fits.verify.VerifyWarning")
def test_reasons_say_what_is_wrong(tmp_path):
    files = _broken_inputs(tmp_path)
    expectations = {"text": "not a FITS", "truncated": "truncated", "2-D image": "not a spectrum",
                    "table without FLUX": "FLUX", "mismatched columns": "unequal lengths",
                    "LAMOST without COEFF": "COEFF0", "1-D without CRVAL1": "CRVAL1",
                    "all-NaN flux": "finite", "truncated gzip": "gzip"}
    for what, words in expectations.items():
        with pytest.raises(SpectrumReadError, match=words):
            read_spectrum(files[what])


def test_fits_bytes_checks_the_magic_of_whole_files_and_of_download_heads():
    from vo_al.core.spectra.readers import fits_bytes

    card = b"SIMPLE  =                    T" + b" " * 50
    assert fits_bytes(card, "x") == card
    assert fits_bytes(gzip.compress(card * 36), "x") == card * 36
    # a download's first block: enough of the gzip stream is unpacked to see the magic
    head = gzip.compress(card * 36)[:40]
    assert fits_bytes(head, "u", head_only=True).startswith(b"SIMPLE  =")
    for raw, words in ((b"", "empty"), (b"<html>not FITS</html>", "not a FITS file.*html"),
                       (b"\x1f\x8bjunk", "broken gzip")):
        with pytest.raises(SpectrumReadError, match=words) as info:
            fits_bytes(raw, "http://h/f.fits", head_only=True)
        assert info.value.path == "http://h/f.fits"
    with pytest.raises(SpectrumReadError, match="truncated"):
        fits_bytes(head, "f.fits.gz")
