"""vo_al.core.spectra.readers on the real archive files and on every kind of broken input."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from conftest import real_data_dir as shared_real_data
from fits_mutations import delete_card, flip_bits, gzip_bomb, header_end, set_card
from vo_al.core.base.errors import SpectrumReadError
from vo_al.core.base.limits import DEFAULT_LIMITS, LimitSettings
from vo_al.core.demo import (LamostHeader, make_ccd700_spectrum, make_lamost_spectrum,
                             write_ccd700_fits, write_lamost_fits)
from vo_al.core.spectra.lines import HALPHA_VAC
from vo_al.core.spectra.preprocess import air_to_vacuum
from vo_al.core.spectra.readers import (CCD700, LAMOST_IMAGE, LAMOST_TABLE, detect_layout,
                                        read_spectrum)


def real_data_dir() -> Path:
    """conftest's folder of real files, or where it would be (absent: the tests skip)."""
    return shared_real_data() or Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


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


def test_raw_header_reading_equals_astropy(real):
    """Headers are parsed and pixels read without astropy: what astropy reads from each real
    file is what the reader returns."""
    files = dr2_files(real) + sorted((real / "lamost-dr1").glob("*.fits"))
    for path in files:
        spectrum = read_spectrum(path)
        data, header = fits.getdata(path, header=True)
        np.testing.assert_array_equal(spectrum.flux, data[0].astype(np.float64))
        np.testing.assert_array_equal(spectrum.ivar, data[1].astype(np.float64))
        assert spectrum.meta.z == header["Z"] and spectrum.meta.ra == header["RA"]
    ccd = real / "ondrejov" / "oe270005.fits"
    np.testing.assert_array_equal(read_spectrum(ccd).flux,
                                  fits.getdata(ccd).astype(np.float64))


def test_scaled_integer_image_reads_through_astropy_scaling(tmp_path):
    """BSCALE/BZERO/BLANK images are scaled by astropy, exactly as before."""
    wl = 6400.0 + 0.25 * np.arange(1200)
    counts = (1000 + 100 * np.sin(np.arange(1200) / 30.0)).astype(np.int16)
    counts[5] = -32768
    hdu = fits.PrimaryHDU(counts)
    hdu.header.update({"BSCALE": 0.5, "BZERO": 10.0, "BLANK": -32768, "CRVAL1": wl[0],
                       "CDELT1": 0.25, "CRPIX1": 1.0})
    path = tmp_path / "scaled.fits"
    hdu.writeto(path)
    spectrum = read_spectrum(path)
    expected = fits.getdata(path).astype(np.float64)
    np.testing.assert_array_equal(spectrum.flux, expected)
    assert np.isnan(spectrum.flux[5]) and spectrum.mask[5]
    assert spectrum.flux[0] == 0.5 * 1000 + 10.0


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
                    "table without FLUX": "no flux column", "mismatched columns": "unequal lengths",
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


# ------------------------------------------------------------ headers that contradict themselves

SOURCES = ("real-lamost", "real-ccd700", "synthetic-lamost", "synthetic-ccd700")


def source_bytes(kind: str, folder: Path) -> bytes:
    """The bytes of one good file of `kind`: a real archive file (skipped where the shared
    folder is absent) or one written by the demo's writers."""
    if kind.startswith("real"):
        real = real_data_dir()
        if not (real / "lamost-dr2").is_dir():
            pytest.skip(f"real spectra not found at {real} (set VO_AL_REAL_DATA to run these)")
        path = dr2_files(real)[0] if kind == "real-lamost" else real / "ondrejov" / "oe270005.fits"
        return path.read_bytes()
    rng = np.random.default_rng(7)
    if kind == "synthetic-lamost":
        wl, flux, ivar, andmask, ormask = make_lamost_spectrum(1, rng)
        path = write_lamost_fits(folder / "synthetic.fits", wl, flux, ivar, andmask, ormask,
                                 LamostHeader(obsid=5, ra=150.0, dec=20.0, snr_r=40.0))
    else:
        wl, flux = make_ccd700_spectrum(1, rng)
        path = write_ccd700_fits(folder / "synthetic.fits", wl, flux, "HD 1", ra=30.0, dec=40.0)
    return path.read_bytes()


@pytest.fixture(params=SOURCES)
def source(request, tmp_path) -> tuple[str, bytes]:
    return request.param, source_bytes(request.param, tmp_path)


def card_value(raw: bytes, key: str):
    return fits.Header.fromstring(raw[:header_end(raw)].decode("ascii"))[key]


def rejected(folder: Path, raw: bytes, *patterns, name: str = "mutated.fits") -> str:
    """Read `raw` as a file: it must be a SpectrumReadError naming the file, whose reason
    matches every pattern; returns the reason."""
    path = folder / name
    path.write_bytes(raw)
    with pytest.raises(SpectrumReadError) as info:
        read_spectrum(path)
    assert info.value.path == str(path) and str(path) in str(info.value)
    for pattern in patterns:
        assert re.search(pattern, info.value.reason), info.value.reason
    return info.value.reason


def test_bitpix_that_contradicts_the_data_size_is_rejected(source, tmp_path):
    kind, raw = source
    original = card_value(raw, "BITPIX")
    for bitpix in (8, 16, 32, 64, -32, -64):
        if abs(bitpix) != abs(original):
            rejected(tmp_path, set_card(raw, "BITPIX", str(bitpix)),
                     "after the end of the last HDU|truncated|padding")
    rejected(tmp_path, set_card(raw, "BITPIX", "12"), "BITPIX = 12 .* not a FITS data type")
    if "lamost" in kind:
        # same size, other type: the rows are no longer what EXTEN0 says they are
        rejected(tmp_path, set_card(raw, "BITPIX", str(-original)), "wavelength row")


@pytest.mark.parametrize("kind", ["real-lamost", "synthetic-lamost"])
def test_naxis_1_on_a_lamost_file_is_rejected(kind, tmp_path):
    """Read as CCD700, a LAMOST flux row would be shifted air -> vacuum and blurred: garbage
    that passes for a spectrum."""
    raw = source_bytes(kind, tmp_path)
    one = set_card(raw, "NAXIS", "1")
    rejected(tmp_path, one, r"NAXIS = 1 but NAXIS2 = 5 is set")
    without_naxis2 = delete_card(one, "NAXIS2")
    rejected(tmp_path, without_naxis2, "bytes after the end of the last HDU")
    n_pix, itemsize = card_value(raw, "NAXIS1"), abs(card_value(raw, "BITPIX")) // 8
    end = header_end(raw) + (-header_end(raw) % 2880) + n_pix * itemsize
    one_row = without_naxis2[:end] + bytes(-end % 2880)
    rejected(tmp_path, one_row, r"NAXIS = 1 in a LAMOST header")


def test_a_logical_is_never_a_number(source, tmp_path):
    kind, raw = source
    step = "COEFF1" if "lamost" in kind else "CDELT1"
    rejected(tmp_path, set_card(raw, step, "T"), rf"{step} = T .*is a logical, not a number")
    rejected(tmp_path, set_card(raw, "CRVAL1", "F"), r"CRVAL1 = F .*is a logical")


def test_simple_false_is_rejected(source, tmp_path):
    _, raw = source
    rejected(tmp_path, set_card(raw, "SIMPLE", "F"), "SIMPLE = F")


def test_cards_that_state_the_same_axis_must_agree(source, tmp_path):
    kind, raw = source
    if "lamost" in kind:
        rejected(tmp_path, set_card(raw, "CRVAL1", "3.6"), "COEFF0 = 3.5682 but CRVAL1")
        rejected(tmp_path, set_card(raw, "CD1_1", "0.0002"), "COEFF1 = 0.0001 but CD1_1")
        rejected(tmp_path, set_card(raw, "DC-FLAG", "0"), "DC-FLAG = 0 .*LAMOST")
    else:
        step = card_value(raw, "CDELT1")
        rejected(tmp_path, set_card(raw, "CDELT1", repr(step * 1.01)), "CDELT1 = .* but CD1_1")
        rejected(tmp_path, set_card(raw, "DC-FLAG", "-1"), "not dispersion-corrected")
    # a second NAXIS1 card with another value: which one holds?
    end = header_end(raw)
    twice = raw[:end - 80] + f"NAXIS1  = {card_value(raw, 'NAXIS1') + 1:>20}".ljust(80).encode() \
        + b"END".ljust(80) + raw[end + 80:]
    rejected(tmp_path, twice, "NAXIS1 appears more than once .* different values")


@pytest.mark.parametrize("kind", ["real-lamost", "synthetic-lamost"])
def test_naxisn_that_misplace_the_rows_are_rejected(kind, tmp_path):
    raw = source_bytes(kind, tmp_path)
    n_pix = card_value(raw, "NAXIS1")
    rejected(tmp_path, set_card(raw, "NAXIS1", str(n_pix - 1)), "wavelength row|padding")
    rejected(tmp_path, set_card(raw, "NAXIS1", str(n_pix + 1)),
             "truncated|after the end of the last HDU|wavelength row")
    rejected(tmp_path, set_card(raw, "NAXIS2", "4"), "after the end of the last HDU|padding")
    rejected(tmp_path, set_card(raw, "NAXIS2", "6"), "truncated")
    rejected(tmp_path, set_card(raw, "NAXIS1", "10000000000000"), "truncated")


def test_data_after_the_last_hdu_is_rejected(source, tmp_path):
    _, raw = source
    rejected(tmp_path, raw + bytes(2880), "2880 bytes after the end of the last HDU")
    rejected(tmp_path, raw + b"garbage", "7 bytes after the end of the last HDU")
    # the same below the size bound in a gzip file: a real FITS in front of zeros
    small_bomb = gzip.compress(raw + bytes(8 << 20))
    rejected(tmp_path, small_bomb, "after the end of the last HDU", name="zeros.fits.gz")


def test_a_file_whose_final_padding_is_missing_loses_nothing(source, tmp_path):
    _, raw = source
    n_pix, itemsize = card_value(raw, "NAXIS1"), abs(card_value(raw, "BITPIX")) // 8
    rows = card_value(raw, "NAXIS2") if card_value(raw, "NAXIS") == 2 else 1
    start = header_end(raw) + (-header_end(raw) % 2880)
    whole, cut = tmp_path / "whole.fits", tmp_path / "cut.fits"
    whole.write_bytes(raw)
    cut.write_bytes(raw[:start + n_pix * rows * itemsize])
    np.testing.assert_array_equal(read_spectrum(cut).flux, read_spectrum(whole).flux)


# ---------------------------------------------------------------- invalid values: typed errors

@pytest.mark.parametrize("value", ["NaN", "Inf", "-Inf", "1E999", "1.2.3"])
def test_invalid_numbers_are_typed_errors_naming_the_file_and_the_card(source, tmp_path, value):
    kind, raw = source
    keys = ["CRVAL1", "CD1_1", "CRPIX1", "RA", "DEC"]
    keys += ["COEFF0", "COEFF1", "Z"] if "lamost" in kind else ["CDELT1"]
    for key in keys:
        rejected(tmp_path, set_card(raw, key, value), rf"{key} = {re.escape(value)}")


@pytest.mark.parametrize("kind", ["real-lamost", "real-ccd700"])
def test_bit_flips_in_the_cards_the_reader_uses_never_escape(kind, tmp_path):
    """Every single-bit flip of the keyword and value of the cards that matter is a spectrum
    or a SpectrumReadError naming the file: never astropy's VerifyError or a ValueError."""
    from fits_mutations import card_offset

    raw = source_bytes(kind, tmp_path)
    path = tmp_path / "flipped.fits"
    keys = ["NAXIS1", "CRVAL1", "CRPIX1", "RA"] + (["COEFF1"] if "lamost" in kind else ["CDELT1"])
    outcomes = {"read": 0, "rejected": 0}
    for key in keys:
        at = card_offset(raw, key)
        for pos in range(at + 10, at + 30):             # the value field
            for bit in range(8):
                flipped = bytearray(raw)
                flipped[pos] ^= 1 << bit
                path.write_bytes(bytes(flipped))
                try:
                    read_spectrum(path)
                    outcomes["read"] += 1
                except SpectrumReadError as exc:
                    assert exc.path == str(path) and exc.reason
                    outcomes["rejected"] += 1
    assert outcomes["rejected"] > 0 and sum(outcomes.values()) == len(keys) * 20 * 8


@pytest.mark.parametrize("key, value, words", [
    ("TFORM1", "'QQ'", "TFORMn"), ("TFORM1", "NaN", "TFORM1 = NaN"),
    ("TTYPE1", "NaN", "TTYPE1 = NaN"), ("TFIELDS", "NaN", "TFIELDS = NaN"),
    ("TFIELDS", "7", "no TFORM7 card"), ("TFORM3", "'3909A'", "TFORMn")])
def test_a_broken_binary_table_header_is_a_typed_error(tmp_path, key, value, words):
    wl, flux, ivar, andmask, ormask = make_lamost_spectrum(0, np.random.default_rng(1))
    path = write_lamost_fits(tmp_path / "table.fits", wl, flux, ivar, andmask, ormask,
                             LamostHeader(obsid=9, ra=1.0, dec=2.0), layout="table")
    raw = path.read_bytes()
    ext = raw.index(b"XTENSION")
    at = raw.index(key.encode().ljust(8) + b"= ", ext)
    broken = raw[:at] + f"{key:<8}= {value:>20}".ljust(80).encode() + raw[at + 80:]
    rejected(tmp_path, broken, re.escape(words))


def test_detect_layout_turns_astropy_errors_into_typed_ones(tmp_path):
    path = tmp_path / "image.fits"
    fits.PrimaryHDU(np.zeros((4, 8), np.float32)).writeto(path)
    raw = set_card(path.read_bytes(), "TELESCOP", "NaN")
    path.write_bytes(raw)
    with fits.open(path) as hdul:
        with pytest.raises(SpectrumReadError) as info:
            detect_layout(hdul)
    assert info.value.path == str(path)


# ---------------------------------------------------------------- the size bound

BOUND_MB = DEFAULT_LIMITS.max_spectrum_mb


def test_a_gzip_bomb_is_rejected_in_bounded_memory(tmp_path):
    """2 MB of .fits.gz that expand to 2 GiB, a real FITS in front of the zeros: once read
    whole into memory (4 GB) and accepted. Now the decompression stops at the bound; the child
    process that reads the bombs grows by a few times the bound at most."""
    fits_raw = source_bytes("synthetic-ccd700", tmp_path)
    if (real_data_dir() / "ondrejov").is_dir():
        fits_raw = source_bytes("real-ccd700", tmp_path)
    paths = []
    for one_member in (True, False):
        path = tmp_path / f"bomb-{'one' if one_member else 'many'}.fits.gz"
        path.write_bytes(gzip_bomb(fits_raw, 2 << 30, one_member))
        assert path.stat().st_size < 3 << 20
        paths.append(str(path))
    code = ("import json, resource, sys\n"
            "from vo_al.core.base.errors import SpectrumReadError\n"
            "from vo_al.core.spectra.readers import read_spectrum\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "out = []\n"
            "for path in sys.argv[1:]:\n"
            "    try:\n"
            "        read_spectrum(path)\n"
            "        out.append('accepted')\n"
            "    except SpectrumReadError as exc:\n"
            "        out.append(exc.reason)\n"
            "grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\n"
            "print(json.dumps({'outcomes': out, 'grew_kib': grew}))\n")
    result = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for reason in report["outcomes"]:
        assert re.search(rf"more than {BOUND_MB:g} MB .*max_spectrum_mb.*decompression bomb",
                         reason), reason
    assert report["grew_kib"] * 1024 < 4 * DEFAULT_LIMITS.max_spectrum_bytes, report


def test_the_bound_is_the_limits_parameter(source, tmp_path):
    _, raw = source
    tight = LimitSettings(max_spectrum_mb=0.005)           # 5 kB: below any FITS file
    plain, zipped = tmp_path / "plain.fits", tmp_path / "zipped.fits.gz"
    plain.write_bytes(raw)
    zipped.write_bytes(gzip.compress(raw))
    for path in (plain, zipped):
        with pytest.raises(SpectrumReadError, match=r"more than 0.005 MB .*max_spectrum_mb"):
            read_spectrum(path, limits=tight)
        read_spectrum(path, limits=LimitSettings(max_spectrum_mb=1.0))


def test_a_plain_file_over_the_bound_is_not_read_into_memory(source, tmp_path):
    _, raw = source
    path = tmp_path / "huge.fits"
    with open(path, "wb") as fh:
        fh.write(raw)
        fh.truncate(4 << 30)                            # sparse: 4 GiB, no disk used
    tracemalloc.start()
    try:
        with pytest.raises(SpectrumReadError, match=rf"{4 << 30} bytes, more than "
                                                    rf"{BOUND_MB:g} MB"):
            read_spectrum(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_what_follows_a_gzip_stream(source, tmp_path):
    """Zero bytes after a gzip member are padding gzip allows; anything else is garbage."""
    _, raw = source
    stream = gzip.compress(raw)
    plain, padded = tmp_path / "plain.fits", tmp_path / "padded.fits.gz"
    plain.write_bytes(raw)
    padded.write_bytes(stream + bytes(1000))
    np.testing.assert_array_equal(read_spectrum(padded).flux, read_spectrum(plain).flux)
    rejected(tmp_path, stream + b"PK\x03\x04 a zip", "garbage after the end of the gzip stream",
             name="garbage.fits.gz")
    rejected(tmp_path, stream[:-4], "truncated", name="cut.fits.gz")
    rejected(tmp_path, stream[:-8] + b"\0\0\0\0" + stream[-4:], "broken gzip stream",
             name="crc.fits.gz")


def test_fits_bytes_bounds_what_it_unpacks():
    from vo_al.core.spectra.readers import fits_bytes

    card = b"SIMPLE  =                    T" + b" " * 50
    body = card * 36 + bytes(2 << 20)
    with pytest.raises(SpectrumReadError, match="more than 1 MB"):
        fits_bytes(gzip.compress(body), "x.fits.gz", max_bytes=1 << 20)
    with pytest.raises(SpectrumReadError, match="more than 1 MB"):
        fits_bytes(body, "x.fits", max_bytes=1 << 20)
    assert fits_bytes(gzip.compress(body), "x.fits.gz") == body


# -------------------------------------------------------- the callers pass the project's bound

TIGHT = LimitSettings(max_spectrum_mb=0.05)  # 52 kB: a LAMOST file (86 kB) is over, CCD700 not


def _one_of_each(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    lamost, ccd = folder / "lamost.fits", folder / "ccd700.fits"
    lamost.write_bytes(source_bytes("synthetic-lamost", folder))
    ccd.write_bytes(source_bytes("synthetic-ccd700", folder))
    (folder / "synthetic.fits").unlink()
    assert lamost.stat().st_size > TIGHT.max_spectrum_bytes > ccd.stat().st_size
    return lamost, ccd


def test_ingest_reads_with_the_projects_bound_in_its_workers(tmp_path):
    from vo_al.core.base.progress import run_job
    from vo_al.core.pool.ingest import ingest_folder
    from vo_al.core.pool.store import PoolStore

    lamost, ccd = _one_of_each(tmp_path / "files")
    with PoolStore.create(tmp_path / "pool") as pool:
        report = run_job(ingest_folder(pool, tmp_path / "files", workers=1, limits=TIGHT))
    assert report.added == 1
    assert [path for path, _ in report.rejected] == [str(lamost)]
    assert re.search(r"more than 0.05 MB .*max_spectrum_mb", report.rejected[0][1])


def test_prefetch_reads_with_the_projects_bound(tmp_path):
    from vo_al.core.vo.prefetch import SpectrumPrefetcher

    lamost, ccd = _one_of_each(tmp_path / "files")
    fetch = SpectrumPrefetcher(None, limits=TIGHT)
    try:
        with pytest.raises(SpectrumReadError, match="more than 0.05 MB"):
            fetch.request(str(lamost)).result(timeout=60)
        assert fetch.request(str(ccd)).result(timeout=60).instrument == "ccd700"
    finally:
        fetch.close()


@pytest.fixture
def served(tmp_path):
    """A folder served over HTTP on loopback: (folder, base URL)."""
    import threading
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    folder = tmp_path / "served"
    folder.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_downloads_and_harvests_read_with_the_projects_bound(served, tmp_path):
    """A download is checked by read_spectrum under the spectrum bound: a small .fits.gz that
    expands past it fails as a download, and a harvest bounded by the project's limits fails
    what is over them and carries on."""
    from vo_al.core.base.errors import DownloadError
    from vo_al.core.base.progress import run_job
    from vo_al.core.pool.store import PoolStore
    from vo_al.core.vo.harvest import HarvestItem, download, harvest
    from vo_al.core.vo.network import make_session

    folder, base = served
    lamost, ccd = _one_of_each(folder)
    (folder / "zeros.fits.gz").write_bytes(gzip_bomb(ccd.read_bytes(), 64 << 20, True))
    http = make_session()
    dest = tmp_path / "cache" / "zeros.fits"
    with pytest.raises(DownloadError, match=r"not a usable spectrum: decompresses to more "
                                            rf"than {BOUND_MB:g} MB") as info:
        download(f"{base}/zeros.fits.gz", dest, session=http, retries=0)
    assert info.value.url == f"{base}/zeros.fits.gz" and not dest.exists()
    items = [HarvestItem(f"{base}/{p.name}", p.stem) for p in (lamost, ccd)]
    with PoolStore.create(tmp_path / "pool") as pool:
        report = run_job(harvest(pool, tmp_path / "harvest", items, session=http, workers=1,
                                 retries=0, limits=TIGHT))
        assert report.added == 1 and pool.metadata(columns=["name"])["name"] == ["ccd700"]
    assert [url for url, _ in report.failed] == [items[0].url]
    assert "more than 0.05 MB" in report.failed[0][1]
