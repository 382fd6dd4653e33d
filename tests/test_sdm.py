"""SDM spectra (FITS binary tables and VOTables) as VO services serve them, air or vacuum as the
file says, and `vo-al preprocess`.

The SDM documents here are written with astropy in the shapes real servers produce (DaCHS's
column names, utypes and keywords; other namespaces and UCD-only or name-only tables as other
archives write them). The DaCHS-written forms are tested against the real server in
test_dachs_ccd700.py and test_vo_sdm.py.
"""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.units import UnitsWarning
from astropy.io.votable.tree import Field, Param, Resource, TableElement, VOTableFile

from vo_al.core.base.errors import SpectrumReadError
from vo_al.core.base.parsing import library_parse
from vo_al.core.demo.observations import make_ccd700_spectrum
from vo_al.core.spectra.preprocess import air_to_vacuum, preprocess_spectrum
from vo_al.core.spectra.readers import check_spectrum_head, read_spectrum

# astropy's VOTable writer warns that 'Angstrom' is deprecated VOUnit: what servers write
pytestmark = pytest.mark.filterwarnings("ignore::astropy.units.UnitsWarning")


def _ccd700(seed=3, label=1):
    """A CCD700-like spectrum: air axis 6250-6770 A, ~0.25 A/px (the demo's instrument)."""
    rng = np.random.default_rng(seed)
    return make_ccd700_spectrum(label, rng)


def sdm_fits_bytes(wavelength, flux, *, error=None, description="Wavelength in air",
                   names=("spectral", "flux"), utypes=("spec:Spectrum.Data.SpectralAxis.Value",
                                                       "spec:Spectrum.Data.FluxAxis.Value"),
                   unit="Angstrom", keywords=None, one_row=False) -> bytes:
    """An SDM FITS binary table like DaCHS's: one row per pixel (or one row of arrays)."""
    if one_row:
        n = len(wavelength)
        cols = [fits.Column(name=names[0], format=f"{n}D", unit=unit,
                            array=np.asarray(wavelength)[None, :]),
                fits.Column(name=names[1], format=f"{n}D", array=np.asarray(flux)[None, :])]
    else:
        cols = [fits.Column(name=names[0], format="D", unit=unit, array=wavelength),
                fits.Column(name=names[1], format="D", array=flux)]
    if error is not None:
        cols.append(fits.Column(name="flux_error", format="D", array=error))
    hdu = fits.BinTableHDU.from_columns(cols)
    for i, utype in enumerate(utypes, start=1):
        if utype:
            hdu.header[f"TUTYP{i}"] = utype
    if description:
        hdu.header["TCOMM1"] = description
    cards = {"DS_IDPUB": "ivo://asu.cas.cz/stel/ccd700/uc050029", "OBJECT": "HD 208905",
             "RA": 329.32583, "DEC": 61.29436, "TMID": 53517.9}
    cards.update(keywords or {})
    for key, value in cards.items():
        if value is not None:
            hdu.header[key] = value
    out = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(out)
    return out.getvalue()


def sdm_votable_bytes(wavelength, flux, *, serialization="tabledata", spectral_unit="Angstrom",
                      description="Wavelength in air", utype_prefix="spec:Spectrum.",
                      spectral_ucd="em.wl", flux_ucd="phot.flux.density;em.wl",
                      names=("spectral", "flux"), params=None) -> bytes:
    document = VOTableFile()
    resource = Resource()
    document.resources.append(resource)
    table = TableElement(document)
    resource.tables.append(table)
    # 'Angstrom' is what DaCHS and SPLAT write; astropy calls it deprecated in VOUnit. Under the
    # library lock: test_parsing_threads builds these while reader threads swap the filters too
    with library_parse(UnitsWarning):
        spectral_utype, flux_utype = ((utype_prefix + "Data.SpectralAxis.Value",
                                       utype_prefix + "Data.FluxAxis.Value")
                                      if utype_prefix is not None else (None, None))
        fields = [Field(document, name=names[0], datatype="double", unit=spectral_unit or None,
                        ucd=spectral_ucd or None, utype=spectral_utype),
                  Field(document, name=names[1], datatype="double", ucd=flux_ucd or None,
                        utype=flux_utype)]
    if description:
        fields[0].description = description
    table.fields.extend(fields)
    defaults = {"ssa_pubDID": ("spec:Spectrum.Curation.PublisherDID",
                               "ivo://asu.cas.cz/stel/ccd700/uc050029"),
                "ssa_targname": ("spec:Spectrum.Target.Name", "HD 208905"),
                "ssa_location": ("spec:Spectrum.Char.SpatialAxis.Coverage.Location.Value",
                                 "329.32583 61.29436")}
    defaults.update(params or {})
    for name, (utype, value) in defaults.items():
        table.params.append(Param(document, name=name, datatype="char", arraysize="*",
                                  utype=utype, value=value))
    table.create_arrays(len(wavelength))
    table.array[names[0]] = wavelength
    table.array[names[1]] = flux
    out = io.BytesIO()
    with library_parse(UnitsWarning):                  # 'Angstrom', as above
        document.to_xml(out, tabledata_format=serialization)
    return out.getvalue()


def _write(tmp_path, name, raw: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(raw)
    return path


# ---------------------------------------------------------------- the SDM forms agree

@pytest.mark.parametrize("form", ["fits", "fits-one-row", "tabledata", "binary", "binary2",
                                  "fits.gz"])
def test_every_sdm_form_gives_the_native_vector(tmp_path, form):
    """A CCD700 spectrum as an SDM FITS table (per pixel or one row of arrays, gzipped too) and
    as a VOTable in all three serialisations preprocesses to the native file's row."""
    from vo_al.core.demo.files import write_ccd700_fits

    air, flux = _ccd700()
    native = read_spectrum(write_ccd700_fits(tmp_path / "native.fits", air, flux,
                                             object_name="HD 208905", ra=329.32583,
                                             dec=61.29436))
    flux32 = flux.astype(np.float32).astype(np.float64)    # what the native file holds
    if form.startswith("fits"):
        raw = sdm_fits_bytes(air, flux32, one_row=form == "fits-one-row")
        path = _write(tmp_path, "sdm." + ("fits.gz" if form == "fits.gz" else "fits"),
                      gzip.compress(raw) if form == "fits.gz" else raw)
        reader = "sdm-fits"
    else:
        path = _write(tmp_path, "sdm.vot", sdm_votable_bytes(air, flux32, serialization=form))
        reader = "sdm-votable"
    sdm = read_spectrum(path)
    assert sdm.reader == reader and sdm.instrument == "ccd700"
    assert sdm.medium == "air" and "Wavelength in air" in sdm.medium_reason
    assert native.medium == "air"
    np.testing.assert_allclose(sdm.wavelength, air_to_vacuum(air), rtol=0, atol=1e-9)
    np.testing.assert_allclose(sdm.wavelength, native.wavelength, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(sdm.flux, native.flux)
    row_native, row_sdm = preprocess_spectrum(native), preprocess_spectrum(sdm)
    assert np.max(np.abs(row_native - row_sdm)) <= 1e-6
    assert sdm.meta.obsid == "ivo://asu.cas.cz/stel/ccd700/uc050029"
    assert sdm.meta.designation == "HD 208905"
    assert sdm.meta.ra == pytest.approx(329.32583) and sdm.meta.dec == pytest.approx(61.29436)


def test_vacuum_sdm_is_not_shifted_and_air_is(tmp_path):
    air, flux = _ccd700()
    vac = read_spectrum(_write(tmp_path, "v.fits", sdm_fits_bytes(
        air, flux, description="Vacuum wavelength")))
    assert vac.medium == "vacuum"
    np.testing.assert_array_equal(vac.wavelength, air)
    shifted = read_spectrum(_write(tmp_path, "a.fits", sdm_fits_bytes(air, flux)))
    # Halpha: 6562.801 A air is 6564.614 A in vacuum (METHOD.md's check value)
    assert air_to_vacuum(np.array([6562.801]))[0] == pytest.approx(6564.614, abs=1e-3)
    assert np.all(shifted.wavelength - air > 1.7)


# ---------------------------------------------------------------- columns by utype, UCD, name

@pytest.mark.parametrize("prefix", ["spec:Spectrum.", "ssa:", "", "SPEC:spectrum."])
def test_columns_found_by_utype_in_any_namespace(tmp_path, prefix):
    air, flux = _ccd700()
    raw = sdm_votable_bytes(air, flux, utype_prefix=prefix, spectral_ucd=None, flux_ucd=None,
                            names=("x", "y"))
    sp = read_spectrum(_write(tmp_path, "u.vot", raw))
    np.testing.assert_array_equal(sp.flux, flux)


def test_columns_found_by_ucd_then_by_name(tmp_path):
    air, flux = _ccd700()
    by_ucd = sdm_votable_bytes(air, flux, utype_prefix=None, names=("lam", "f_obs"))
    assert read_spectrum(_write(tmp_path, "ucd.vot", by_ucd)).flux.size == flux.size
    by_name = sdm_votable_bytes(air, flux, utype_prefix=None, spectral_ucd=None, flux_ucd=None,
                                names=("WAVELENGTH", "FLUX"))
    assert read_spectrum(_write(tmp_path, "name.vot", by_name)).flux.size == flux.size


def test_units_are_converted_and_frequency_axes_sorted(tmp_path):
    from astropy import units as u

    air, flux = _ccd700()
    nm = read_spectrum(_write(tmp_path, "nm.vot", sdm_votable_bytes(
        air / 10.0, flux, spectral_unit="nm")))
    np.testing.assert_allclose(nm.wavelength, air_to_vacuum(air), atol=1e-6)
    hz = (air * u.AA).to(u.Hz, equivalencies=u.spectral()).value
    freq = read_spectrum(_write(tmp_path, "hz.vot", sdm_votable_bytes(
        hz, flux, spectral_unit="Hz", spectral_ucd="em.freq", description="in air")))
    assert np.all(np.diff(freq.wavelength) > 0)
    np.testing.assert_allclose(freq.wavelength, air_to_vacuum(air), atol=1e-6)
    np.testing.assert_array_equal(freq.flux, flux)            # flux reordered with its axis


def test_flux_error_column_gives_inverse_variance_and_mask(tmp_path):
    air, flux = _ccd700()
    error = np.full(flux.size, 0.02)
    error[10] = 0.0                                           # no error given: not usable
    sp = read_spectrum(_write(tmp_path, "e.fits", sdm_fits_bytes(air, flux, error=error)))
    assert sp.ivar[0] == pytest.approx(2500.0) and sp.ivar[10] == 0.0
    assert sp.mask[10] and not sp.mask[0]


# ---------------------------------------------------------------- air or vacuum, never guessed

def test_medium_from_keywords_setting_or_a_typed_error(tmp_path):
    air, flux = _ccd700()
    silent = _write(tmp_path, "silent.fits", sdm_fits_bytes(air, flux, description=None))
    with pytest.raises(SpectrumReadError, match="air or vacuum") as info:
        read_spectrum(silent)
    assert info.value.path == str(silent) and "--medium" in info.value.reason
    given = read_spectrum(silent, medium="air", medium_origin="--medium")
    assert given.medium == "air" and "--medium: medium=air" in given.medium_reason
    keyword = read_spectrum(_write(tmp_path, "kw.fits", sdm_fits_bytes(
        air, flux, description=None, keywords={"AIRORVAC": "vac"})), medium="air")
    assert keyword.medium == "vacuum" and "AIRORVAC" in keyword.medium_reason   # file wins
    contradicting = _write(tmp_path, "both.fits", sdm_fits_bytes(
        air, flux, keywords={"VACUUM": True}))
    with pytest.raises(SpectrumReadError, match="both in air and in vacuum"):
        read_spectrum(contradicting)
    ucd = read_spectrum(_write(tmp_path, "ucd.vot", sdm_votable_bytes(
        air, flux, description=None, spectral_ucd="em.wl;obs.atmos")))
    assert ucd.medium == "air" and "obs.atmos" in ucd.medium_reason


def test_native_files_say_their_medium(real_data):
    lamost = read_spectrum(sorted((real_data / "lamost-dr2").glob("*.fits"))[0])
    assert (lamost.reader, lamost.medium) == ("lamost-image", "vacuum")
    ccd = read_spectrum(real_data / "ondrejov" / "oe270005.fits")
    assert (ccd.reader, ccd.medium) == ("ccd700", "air") and "COUDE700" in ccd.medium_reason


# ---------------------------------------------------------------- what is not an SDM spectrum

def test_unrecognisable_columns_name_the_file_and_its_columns(tmp_path):
    air, flux = _ccd700()
    raw = sdm_fits_bytes(air, flux, names=("alpha", "beta"), utypes=(None, None))
    path = _write(tmp_path, "odd.fits", raw)
    with pytest.raises(SpectrumReadError) as info:
        read_spectrum(path)
    assert info.value.path == str(path)
    assert "alpha" in info.value.reason and "beta" in info.value.reason


def test_votable_declaring_entities_is_refused_unparsed(tmp_path):
    bomb = (b'<?xml version="1.0"?><!DOCTYPE v [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><VOTABLE>&b;</VOTABLE>')
    with pytest.raises(SpectrumReadError, match="entities"):
        read_spectrum(_write(tmp_path, "bomb.vot", bomb))


def test_a_download_head_must_be_fits_or_votable():
    check_spectrum_head(b"SIMPLE  =                    T", "u")
    check_spectrum_head(b"<?xml version='1.0'?>\n<VOTABLE version='1.4'>", "u")
    check_spectrum_head(gzip.compress(b"<VOTABLE>" + b" " * 3000)[:200], "u")
    for head, words in ((b"<html><body>502</body></html>", "not a FITS file nor a VOTable"),
                        (b"", "empty")):
        with pytest.raises(SpectrumReadError, match=words):
            check_spectrum_head(head, "http://h/x")


def test_ingest_carries_on_past_a_bad_sdm_file(tmp_path):
    from vo_al.core.base.progress import run_job
    from vo_al.core.pool import PoolStore
    from vo_al.core.pool.ingest import ingest_folder

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        air, flux = _ccd700(seed=10 + i, label=i % 2)
        _write(folder, f"s{i}.vot", sdm_votable_bytes(air, flux))
    air, flux = _ccd700()
    _write(folder, "nocols.fits", sdm_fits_bytes(air, flux, names=("a", "b"), utypes=(None, None)))
    _write(folder, "silent.xml", sdm_votable_bytes(air, flux, description=None))
    with PoolStore.create(tmp_path / "pool") as pool:
        report = run_job(ingest_folder(pool, folder, workers=0))
        bad = {Path(p).name: r for p, r in report.rejected}
        assert report.added == 3 and set(bad) == {"nocols.fits", "silent.xml"}
        assert "air or vacuum" in bad["silent.xml"]
    with PoolStore.create(tmp_path / "pool2") as pool:
        report = run_job(ingest_folder(pool, folder, workers=0, medium="air"))
        assert report.added == 4                   # the silent file, with the import's medium


def test_a_file_read_with_the_imports_medium_is_read_back_with_it(tmp_path):
    """The whole-spectrum view reads a row's file again: a file that does not say its medium
    needs the one its ingest was given, which the pool keeps for its source."""
    from vo_al.core.base.progress import run_job
    from vo_al.core.pool import PoolStore
    from vo_al.core.pool.ingest import ingest_files
    from vo_al.core.vo.prefetch import SpectrumPrefetcher

    air, flux = _ccd700()
    silent = _write(tmp_path, "silent.xml", sdm_votable_bytes(air, flux, description=None))
    stated = _write(tmp_path, "stated.vot", sdm_votable_bytes(air, flux))   # 'Wavelength in air'
    with PoolStore.create(tmp_path / "pool") as pool:
        run_job(ingest_files(pool, [silent], workers=0, medium="vacuum"))
        run_job(ingest_files(pool, [stated], workers=0))
        assert pool.import_medium(str(silent)) == "vacuum"
        assert pool.import_medium(str(stated)) is None        # that import was given none
        bare, kept = SpectrumPrefetcher(None), SpectrumPrefetcher(None,
                                                                  import_medium=pool.import_medium)
        try:
            with pytest.raises(SpectrumReadError, match="air or vacuum"):
                bare.request(str(silent)).result(timeout=60)
            again = kept.request(str(silent)).result(timeout=60)
            assert again.medium == "vacuum" and "its import was given" in again.medium_reason
            np.testing.assert_allclose(again.wavelength, air)  # as ingest read it: no shift
            assert kept.request(str(stated)).result(timeout=60).medium == "air"
        finally:
            bare.close()
            kept.close()
    with PoolStore.open(tmp_path / "pool") as pool:                # kept on disk
        assert pool.import_medium(str(silent)) == "vacuum"


# ---------------------------------------------------------------- vo-al preprocess

def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "vo_al.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def test_cli_preprocess_rows_readers_media_and_exit_status(tmp_path):
    from vo_al.core.demo.files import write_ccd700_fits

    air, flux = _ccd700()
    native = write_ccd700_fits(tmp_path / "native.fits", air, flux, object_name="HD 1")
    sdm = _write(tmp_path, "sdm.vot", sdm_votable_bytes(air, flux.astype(np.float32)))
    silent = _write(tmp_path, "silent.fits", sdm_fits_bytes(air, flux, description=None))
    out, png = tmp_path / "rows.npy", tmp_path / "rows.png"
    done = _cli("preprocess", str(native), str(silent), str(sdm), "--out", str(out),
                "--plot", str(png))
    assert done.returncode == 1, done.stderr
    rows = np.load(out)
    assert rows.shape == (3, 140)
    assert np.max(np.abs(rows[0] - rows[2])) <= 1e-6 and np.isnan(rows[1]).all()
    lines = done.stdout.splitlines()
    assert "ccd700" in lines[0] and "air wavelengths" in lines[0]
    assert "REJECTED" in lines[1] and "air or vacuum" in lines[1]
    assert "sdm-votable" in lines[2] and "Wavelength in air" in lines[2]
    assert png.stat().st_size > 10_000 and "Traceback" not in done.stderr
    again = _cli("preprocess", str(silent), "--out", str(out), "--medium", "air")
    assert again.returncode == 0 and "medium=air" in again.stdout
    keep = _cli("preprocess", str(silent), str(tmp_path / "missing.fits"), "--out", str(out),
                "--keep-going")
    assert keep.returncode == 0 and "cannot read file" in keep.stdout


# ---------------------------------------------------------------- what SPLAT-VO is told

def test_samp_meta_for_an_sdm_product_names_format_and_axes():
    from vo_al.core.samp.messages import spectrum_access, spectrum_load

    air, flux = _ccd700()
    fmt, extra = spectrum_access("http://h/dlget?ID=x", sdm_votable_bytes(air, flux))
    assert fmt == "application/x-votable+xml"
    assert extra["vox:spectrum_axes"] == "spectral flux"
    assert extra["Dataset.SpectralAxis"] == "spectral" and extra["Dataset.FluxAxis"] == "flux"
    fmt, extra = spectrum_access("http://h/x", sdm_fits_bytes(air, flux))
    assert fmt == "application/fits" and extra["vox:spectrum_axes"] == "spectral flux"
    assert extra["vox:spectrum_units"] == "Angstrom"          # the flux has no unit
    assert spectrum_access("http://h/dlget?ID=x&FORMAT=application%2Fx-votable%2Bxml")[0] == \
        "application/x-votable+xml"
    message = spectrum_load("http://h/dlget?ID=x", "HD 1", fmt=fmt, extra_meta=extra)
    meta = message["samp.params"]["meta"]
    # SPLAT-VO's SpectrumLoadHandler reads these keys (SPLAT's SampCommunicator.getProps)
    assert meta["Access.Format"] == "application/fits" and meta["Target.Name"] == "HD 1"
    assert meta["vox:spectrum_axes"] == "spectral flux"


def test_a_harvest_keeps_the_medium_it_was_given_for_each_access_url(tmp_path):
    """A service whose spectra do not say their medium is harvested with its medium setting;
    the labelling view reads the cached file again with it, by the row's access URL."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from vo_al.core.base.progress import run_job
    from vo_al.core.pool import PoolStore
    from vo_al.core.vo.harvest import CACHE_DIR, HarvestItem, harvest
    from vo_al.core.vo.prefetch import SpectrumPrefetcher

    air, flux = _ccd700()
    body = sdm_votable_bytes(air, flux, description=None)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/x-votable+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/sdm/silent"
    try:
        with PoolStore.create(tmp_path / "pool") as pool:
            report = run_job(harvest(pool, tmp_path / "harvest", [HarvestItem(url, "silent")],
                                     workers=1, medium="vacuum"))
            assert report.added == 1 and pool.import_medium(url) == "vacuum"
            prefetcher = SpectrumPrefetcher(tmp_path / "harvest" / CACHE_DIR,
                                            import_medium=pool.import_medium)
            try:
                again = prefetcher.request(url).result(timeout=60)      # from the cache
            finally:
                prefetcher.close()
            assert again.medium == "vacuum" and "its import was given" in again.medium_reason
    finally:
        server.shutdown()
        server.server_close()
