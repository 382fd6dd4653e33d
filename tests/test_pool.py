"""The pool store: rows in .npy segments + SQLite metadata, and resumable multi-process ingest."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from vo_al.core.base.errors import Cancelled, PoolError
from vo_al.core.pool.ingest import IngestReport, find_spectrum_files, ingest_files, ingest_folder
from vo_al.core.pool.schema import META_COLUMNS, RECORD_FIELDS, SCHEMA
from vo_al.core.pool.store import FinishedChunk, PoolStore
from vo_al.core.spectra.preprocess import preprocess_spectra
from vo_al.core.base.progress import CancelToken, run_job
from vo_al.core.spectra.readers import read_spectrum
from vo_al.core.spectra.record import Spectrum, SpectrumMeta
from vo_al.core.spectra.settings import PreprocessSettings

REPO = Path(__file__).resolve().parents[1]
N_KILL_FILES = 3000


# ---------------------------------------------------------------- helpers

def lamost_like_hdu(i: int, rng) -> fits.PrimaryHDU:
    """A LAMOST DR2-like spectrum (primary image rows flux, ivar, wavelength, andmask, ormask),
    as /work/shared/vo-stack/make_lamost_fits.py writes them."""
    npix, coeff0, coeff1 = 3909, 3.5682, 1.0e-4
    wl = 10 ** (coeff0 + coeff1 * np.arange(npix))
    cont = 1000.0 * (wl / 5500.0) ** -1.5
    flux = cont * (1 - (0.2 + 0.01 * (i % 50)) * np.exp(-0.5 * ((wl - 6564.6) / 3.0) ** 2))
    flux = flux + rng.normal(0, 10, npix)
    mask = np.zeros(npix)
    mask[:20] = 1
    data = np.vstack([flux, np.full(npix, 0.01), wl, mask, mask]).astype(np.float32)
    h = fits.Header()
    ra, dec = 150.0 + 0.01 * i, 2.0 + 0.005 * (i % 200)
    for key, value in (("TELESCOP", "LAMOST"), ("OBSID", 100000000 + i),
                       ("DESIG", "J%08.4f%+08.4f" % (ra, dec)), ("CLASS", "STAR"),
                       ("SUBCLASS", "G2"), ("RA", ra), ("DEC", dec), ("Z", 0.0001 * (i % 10)),
                       ("SNRR", 60.0), ("CRVAL1", coeff0), ("CD1_1", coeff1), ("CRPIX1", 1),
                       ("COEFF0", coeff0), ("COEFF1", coeff1), ("VACUUM", True),
                       ("EXTEN0", "Flux Inverse Wavelength Andmask Ormask"), ("ROW1", "Flux"),
                       ("ROW2", "Inverse Variance"), ("ROW3", "WaveLength"),
                       ("ROW4", "Andmask"), ("ROW5", "Ormask")):
        h[key] = value
    return fits.PrimaryHDU(data=data, header=h)


def blue_hdu() -> fits.PrimaryHDU:
    """A readable LAMOST-like spectrum of 4000-5000 A: it does not cover the H-alpha window."""
    hdu = lamost_like_hdu(0, np.random.default_rng(0))
    hdu.header["COEFF0"] = hdu.header["CRVAL1"] = np.log10(4000.0)
    hdu.header["COEFF1"] = hdu.header["CD1_1"] = ((np.log10(5000.0) - np.log10(4000.0))
                                                  / (hdu.data.shape[1] - 1))
    hdu.data[2] = 10 ** (hdu.header["COEFF0"] + hdu.header["COEFF1"]
                         * np.arange(hdu.data.shape[1]))
    return hdu


def make_files(folder: Path, n: int, distinct: int = 32, seed: int = 1) -> list[str]:
    """n LAMOST-like files: `distinct` generated ones, the rest byte copies of them under their
    own names (fast to make; names, not contents, must be unique)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    templates = []
    for i in range(min(n, distinct)):
        path = folder / f"spec-SYNTH-{i:05d}.fits"
        lamost_like_hdu(i, rng).writeto(path)
        templates.append(path.read_bytes())
    for i in range(len(templates), n):
        (folder / f"spec-SYNTH-{i:05d}.fits").write_bytes(templates[i % len(templates)])
    return sorted(str(p) for p in folder.glob("*.fits"))


def meta(name: str, **kw) -> dict:
    return {"name": name, "designation": f"J-{name}", "ra": 10.0, "dec": -5.0, "obsid": "7",
            "cls": "STAR", "subclass": "G2", "z": 0.001, "snr": 40.0,
            "source": f"http://example.org/{name}", "instrument": "lamost", **kw}


def random_rows(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, 140)).astype(np.float32)


def crashing_reader(path):
    """A reader that kills its worker process on files whose name contains 'crash'."""
    if "crash" in os.path.basename(path):
        os._exit(3)
    return read_spectrum(path)


def unchecked_axis_reader(path):
    """A LAMOST image-layout reader that takes the axis from COEFF0/COEFF1 unchecked (as
    vo-al's reader did before it checked the axis), so that preprocessing sees absurd axes."""
    with fits.open(path) as hdul:
        header, data = hdul[0].header, hdul[0].data.astype(np.float64)
    wl = 10 ** (header["COEFF0"] + header["COEFF1"] * np.arange(data.shape[1]))
    flux, ivar, andmask = data[0], data[1], data[3]
    mask = ~np.isfinite(flux) | ~(ivar > 0) | (andmask != 0)
    return Spectrum(wl, flux, ivar, mask, "lamost",
                    SpectrumMeta(name=os.path.basename(path), source=str(path)))


def out_of_memory_reader(path):
    """A reader that runs out of memory on the third of files_40 (the machine, not the file)."""
    if os.path.basename(path) == "spec-SYNTH-00002.fits":
        raise MemoryError("cannot allocate 80.0 MiB")
    return read_spectrum(path)


def direct_rows(paths: list[str]) -> np.ndarray:
    batch = preprocess_spectra([read_spectrum(p) for p in paths])
    assert all(r is None for r in batch.reasons)
    return batch.rows


@pytest.fixture(scope="module")
def files_40(tmp_path_factory) -> list[str]:
    return make_files(tmp_path_factory.mktemp("fits40"), 40)


@pytest.fixture(scope="module")
def files_kill(tmp_path_factory) -> list[str]:
    return make_files(tmp_path_factory.mktemp("fits3000"), N_KILL_FILES)


# ---------------------------------------------------------------- create / open

def test_create_open_and_settings_file(tmp_path):
    folder = tmp_path / "pool"
    settings = PreprocessSettings()
    with PoolStore.create(folder, settings) as pool:
        assert len(pool) == 0
        assert pool.rows([]).shape == (0, 140)
        assert list(pool.iter_chunks(10)) == []
        assert pool.metadata()["name"].shape == (0,)
        assert pool.rejected() == []
    info = json.loads((folder / "pool.json").read_text())
    assert info["preprocess"]["window_min"] == settings.window_min
    with PoolStore.open(folder) as pool:
        assert len(pool) == 0 and pool.settings == settings
    with pytest.raises(PoolError, match="already holds a pool"):
        PoolStore.create(folder)


def test_open_errors_name_the_folder(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(PoolError, match=str(missing)):
        PoolStore.open(missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PoolError, match=f"{empty}.*not a pool"):
        PoolStore.open(empty)
    bad_json = tmp_path / "badjson"
    PoolStore.create(bad_json).close()
    (bad_json / "pool.json").write_text("{not json")
    with pytest.raises(PoolError, match=f"{bad_json}.*unreadable"):
        PoolStore.open(bad_json)
    bad_db = tmp_path / "baddb"
    PoolStore.create(bad_db).close()
    for extra in ("-wal", "-shm"):
        Path(str(bad_db / "pool.sqlite") + extra).unlink(missing_ok=True)
    (bad_db / "pool.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(PoolError, match=f"{bad_db}.*corrupt"):
        PoolStore.open(bad_db)


def test_missing_segment_is_reported(tmp_path):
    folder = tmp_path / "pool"
    with PoolStore.create(folder) as pool:
        pool.add_rows(random_rows(3), [meta(f"s{i}") for i in range(3)])
    (folder / "seg-000001.npy").unlink()
    with pytest.raises(PoolError, match=f"{folder}.*seg-000001.npy is missing"):
        PoolStore.open(folder)


# ---------------------------------------------------------------- add_rows and reading

def test_metadata_of_many_rows_is_read_a_range_at_a_time(tmp_path, monkeypatch):
    """Many rows (all, or more than 1/16 of the pool) are read a range of rows at a time (a
    4.1 M-row pool's metadata as Python tuples at once was 1.8 GB): the same columns, in the
    order asked, as row by row; names of every width; ranges that hold no wanted row skipped."""
    from vo_al.core.pool import store

    monkeypatch.setattr(store, "_SCAN_ROWS", 7)
    monkeypatch.setattr(store, "_SCAN_FROM", 10)
    names = [f"s{'x' * (i % 5)}{i}" for i in range(40)]
    with PoolStore.create(tmp_path / "pool") as pool:
        pool.add_rows(random_rows(40, 3), [meta(n, ra=float(i)) for i, n in enumerate(names)])
        everything = pool.metadata(columns=["name", "ra", "index"])
        assert list(everything["name"]) == names
        np.testing.assert_array_equal(everything["ra"], np.arange(40.0))
        np.testing.assert_array_equal(everything["index"], np.arange(40))
        order = [39, 3, 3, 0, 21, 22, 38, 5, 4, 12, 13, 2]      # > 40 / 16: the scan
        some = pool.metadata(order, columns=["ra", "name"])
        assert list(some["name"]) == [names[i] for i in order]
        np.testing.assert_array_equal(some["ra"], np.array(order, float))
        assert pool.metadata([], columns=["name"])["name"].size == 0


def test_add_rows_rows_metadata_index_of(tmp_path):
    folder = tmp_path / "pool"
    a, b = random_rows(5, 1), random_rows(7, 2)
    with PoolStore.create(folder) as pool:
        got = pool.add_rows(a, [meta(f"a{i}", ra=float(i)) for i in range(5)])
        np.testing.assert_array_equal(got, np.arange(5))
        pool.seal()                                    # end of a harvest: next add is a new segment
        got = pool.add_rows(b, [meta(f"b{i}", z=float("nan")) for i in range(7)])
        np.testing.assert_array_equal(got, np.arange(5, 12))
        assert len(pool) == 12
    with PoolStore.open(folder) as pool:
        everything = np.concatenate([a, b])
        order = [11, 0, 4, 4, 6, 2, 10]                # unsorted, repeated, across segments
        np.testing.assert_array_equal(pool.rows(order), everything[order])
        assert pool.rows(order).dtype == np.float32
        md = pool.metadata()
        assert list(md["name"][:2]) == ["a0", "a1"] and md["name"][11] == "b6"
        np.testing.assert_array_equal(md["index"], np.arange(12))
        np.testing.assert_array_equal(md["segment"], [1] * 5 + [2] * 7)
        np.testing.assert_array_equal(md["row"], list(range(5)) + list(range(7)))
        assert np.isnan(md["z"][5:]).all() and md["z"][0] == pytest.approx(0.001)
        assert md["source"][3] == "http://example.org/a3"
        sub = pool.metadata([7, 1, 7], columns=["name", "ra"])
        assert set(sub) == {"name", "ra"}
        assert list(sub["name"]) == ["b2", "a1", "b2"]
        np.testing.assert_array_equal(sub["ra"], [10.0, 1.0, 10.0])
        np.testing.assert_array_equal(pool.index_of(["b0", "a4", "a0"]), [5, 4, 0])
        with pytest.raises(PoolError, match="'nope'"):
            pool.index_of(["a1", "nope"])
        with pytest.raises(PoolError, match="unknown metadata column 'colour'"):
            pool.metadata(columns=["colour"])
        with pytest.raises(PoolError, match="index 12 out of range"):
            pool.rows([0, 12])


def test_add_rows_grows_one_open_segment_and_skips_known_names(tmp_path):
    with PoolStore.create(tmp_path / "pool") as pool:
        for k in range(5):                              # a harvest adding page after page
            pool.add_rows(random_rows(700, k), [meta(f"p{k}-{i}") for i in range(700)])
        assert len(pool) == 3500
        assert len(list((tmp_path / "pool").glob("seg-*.npy"))) == 1
        again = pool.add_rows(random_rows(2, 9), [meta("p0-3"), meta("new")])
        np.testing.assert_array_equal(again, [3, 3500])
        np.testing.assert_array_equal(pool.rows([3]), random_rows(700, 0)[[3]])
        with pytest.raises(PoolError, match="'p0-4' is already in the pool"):
            pool.add_rows(random_rows(1), [meta("p0-4")], skip_existing=False)
        with pytest.raises(PoolError, match="unknown metadata keys \\['colour'\\]"):
            pool.add_rows(random_rows(1), [meta("x", colour="red")])
        with pytest.raises(PoolError, match="120 points"):
            pool.add_rows(np.zeros((1, 120), np.float32), [meta("y")])
        pool.seal()
        assert len(pool) == 3501
    with PoolStore.open(tmp_path / "pool") as pool:
        assert pool.rows([3500]).shape == (1, 140)
        # sealed: the file holds exactly the committed rows
        assert np.load(tmp_path / "pool" / "seg-000001.npy", mmap_mode="r").shape == (3501, 140)


def test_iter_chunks_in_global_order_across_segments(tmp_path):
    with PoolStore.create(tmp_path / "pool") as pool:
        parts = [random_rows(n, n) for n in (10, 3, 25)]
        for j, part in enumerate(parts):
            pool.add_rows(part, [meta(f"s{j}-{i}") for i in range(len(part))])
            pool.seal()
        everything = np.concatenate(parts)
        for size in (1, 7, 13, 38, 1000):
            chunks = list(pool.iter_chunks(size))
            assert [s for s, _ in chunks] == list(range(0, 38, size))
            assert all(len(c) == size for _, c in chunks[:-1])
            np.testing.assert_array_equal(np.concatenate([c for _, c in chunks]), everything)
        # a chunk inside one segment is a memmap view, not a copy
        start, first = next(pool.iter_chunks(5))
        assert isinstance(first, np.memmap) or isinstance(first.base, np.memmap)


def test_second_writer_is_refused(tmp_path, files_40):
    with PoolStore.create(tmp_path / "pool") as pool, PoolStore.open(tmp_path / "pool") as other:
        job = ingest_files(pool, files_40, workers=0, chunk_files=10)
        next(job)                                       # holds the writer lock now
        with pytest.raises(PoolError, match="being written by another"):
            other.add_rows(random_rows(1), [meta("x")])
        report = run_job(job)
        assert report.added == 40
        other.refresh()
        assert len(other) == 40


# ---------------------------------------------------------------- ingest

def test_ingest_rows_equal_direct_preprocessing_and_metadata(tmp_path, files_40):
    with PoolStore.create(tmp_path / "pool") as pool:
        steps = []
        report = run_job(ingest_files(pool, files_40, workers=0, chunk_files=16), steps.append)
        assert isinstance(report, IngestReport)
        assert (report.added, report.rejected, report.skipped, report.files) == (40, [], 0, 40)
        assert steps[-1].done == steps[-1].total == 40 and steps[-1].stage == "ingest"
        np.testing.assert_array_equal(pool.rows(np.arange(40)), direct_rows(files_40))
        md = pool.metadata()
        assert list(md["name"]) == [os.path.basename(f) for f in files_40]
        assert list(md["source"]) == files_40
        assert set(md["instrument"]) == {"lamost"} and set(md["cls"]) == {"STAR"}
        assert md["obsid"][1] == "100000001"
        # again: everything is skipped
        again = run_job(ingest_files(pool, files_40, workers=0))
        assert (again.added, again.skipped) == (0, 40) and len(pool) == 40


def test_ingest_real_lamost_files(tmp_path, real_data):
    folder = real_data / "lamost-dr2"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    paths = find_spectrum_files(folder)
    with PoolStore.create(tmp_path / "pool") as pool:
        report = run_job(ingest_folder(pool, folder, workers=2))
        assert report.added + len(report.rejected) == len(paths) and report.added > 0
        assert all(reason for _, reason in report.rejected)
        sources = list(pool.metadata(columns=["source"])["source"])
        np.testing.assert_array_equal(pool.rows(np.arange(len(pool))), direct_rows(sources))
        md = pool.metadata()
        assert all(d.startswith("LAMOST J") for d in md["designation"])
        assert np.isfinite(md["ra"]).all() and np.isfinite(md["dec"]).all()


def test_two_workers_give_the_same_pool_as_one(tmp_path, files_40):
    pools = {}
    for workers in (1, 2):
        pool = PoolStore.create(tmp_path / f"w{workers}")
        report = run_job(ingest_files(pool, files_40, workers=workers, chunk_files=6))
        assert report.added == 40
        pools[workers] = pool
    np.testing.assert_array_equal(pools[1].rows(np.arange(40)), pools[2].rows(np.arange(40)))
    m1, m2 = pools[1].metadata(), pools[2].metadata()
    for col in m1:
        np.testing.assert_array_equal(m1[col], m2[col])
    for pool in pools.values():
        pool.close()


def test_broken_files_are_rejected_and_the_rest_ingests(tmp_path, files_40):
    folder = tmp_path / "in"
    folder.mkdir()
    good = []
    for f in files_40[:6]:
        good.append(str(folder / os.path.basename(f)))
        shutil.copy(f, good[-1])
    raw = Path(files_40[0]).read_bytes()
    (folder / "truncated.fits").write_bytes(raw[:len(raw) // 3])
    (folder / "notes.fits").write_text("this is a text file, not FITS\n" * 10)
    fits.PrimaryHDU(np.random.default_rng(0).normal(size=(32, 32)).astype(np.float32)) \
        .writeto(folder / "image.fits")
    # a readable spectrum that does not cover the H-alpha window: rejected by preprocessing
    blue_hdu().writeto(folder / "blue.fits")
    with gzip.open(folder / "zipped.fits.gz", "wb") as fh:
        fh.write(Path(files_40[7]).read_bytes())
    (folder / "readme.txt").write_text("ignored: does not match the patterns")
    with PoolStore.create(tmp_path / "pool") as pool:
        report = run_job(ingest_folder(pool, folder, workers=2, chunk_files=3))
        bad = {os.path.basename(f): reason for f, reason in report.rejected}
        assert set(bad) == {"truncated.fits", "notes.fits", "image.fits", "blue.fits"}
        assert all(reason for reason in bad.values())
        assert "not a FITS file" in bad["notes.fits"]
        assert "not a spectrum" in bad["image.fits"]
        assert "window" in bad["blue.fits"]
        assert report.added == 7 and len(pool) == 7
        assert sorted(pool.rejected()) == sorted(report.rejected)
        assert "zipped.fits" in set(pool.metadata(columns=["name"])["name"])
        again = run_job(ingest_folder(pool, folder, workers=0))
        assert (again.added, again.skipped, again.rejected) == (0, 11, [])


def test_find_spectrum_files_is_recursive_and_sorted(tmp_path):
    for rel in ("b/x.fits", "a/z.FITS", "a/y.fit.gz", "c.fits.gz", "d.txt", "a/deep/w.fit"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    got = [os.path.relpath(p, tmp_path) for p in find_spectrum_files(tmp_path)]
    assert got == ["a/deep/w.fit", "a/y.fit.gz", "a/z.FITS", "b/x.fits", "c.fits.gz"]
    with pytest.raises(FileNotFoundError, match="nowhere"):
        find_spectrum_files(tmp_path / "nowhere")


def test_ingest_folder_without_spectrum_files_is_an_error(tmp_path):
    folder = tmp_path / "no-spectra"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "notes.txt").write_text("not a spectrum")
    with PoolStore.create(tmp_path / "pool") as pool:
        with pytest.raises(PoolError) as info:
            run_job(ingest_folder(pool, folder, workers=0))
        assert str(info.value).startswith(f"{folder}: no spectrum files")
        assert "*.fits, *.fits.gz, *.fit, *.fit.gz" in str(info.value)
        with pytest.raises(PoolError, match=r"\*\.spec"):
            run_job(ingest_folder(pool, folder, pattern="*.spec", workers=0))
        with pytest.raises(PoolError, match=f"{tmp_path / 'nowhere'}: no such folder"):
            run_job(ingest_folder(pool, tmp_path / "nowhere", workers=0))
        assert len(pool) == 0 and pool.rejected() == []


def test_cli_ingest_of_an_empty_folder_says_so(tmp_path, capsys):
    from vo_al.cli import main

    project, empty = tmp_path / "proj", tmp_path / "empty"
    empty.mkdir()
    assert main(["create", str(project)]) == 0
    capsys.readouterr()
    assert main(["ingest", str(project), str(empty)]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("vo-al ingest: error: ") and str(empty) in err and "*.fits" in err
    assert "Traceback" not in err and "added" not in out


def test_other_preprocessing_settings_are_refused(tmp_path, files_40):
    with PoolStore.create(tmp_path / "pool") as pool:
        run_job(ingest_files(pool, files_40[:4], workers=0))
        assert pool.settings == PreprocessSettings()
        other = PreprocessSettings(window_min=6500.0)
        with pytest.raises(PoolError, match=f"{tmp_path / 'pool'}.*window_min"):
            run_job(ingest_files(pool, files_40[4:], settings=other, workers=0))
        assert len(pool) == 4


def test_settings_are_honoured(tmp_path, files_40):
    narrow = PreprocessSettings(n_points=64, window_min=6540.0, window_max=6590.0)
    with PoolStore.create(tmp_path / "pool") as pool:
        run_job(ingest_files(pool, files_40[:5], settings=narrow, workers=0))
        assert pool.rows([0]).shape == (1, 64)
        expected = preprocess_spectra([read_spectrum(f) for f in files_40[:5]], narrow).rows
        np.testing.assert_array_equal(pool.rows(np.arange(5)), expected)
    with PoolStore.open(tmp_path / "pool") as pool:
        assert pool.settings == narrow and pool.n_points == 64


def test_cancel_between_chunks_then_resume(tmp_path, files_40):
    token = CancelToken()
    with PoolStore.create(tmp_path / "pool") as pool:
        job = ingest_files(pool, files_40, workers=2, chunk_files=5, cancel=token)
        with pytest.raises(Cancelled, match="run it again to resume"):
            for step in job:
                if step.done >= 10:
                    token.cancel()
        assert 10 <= len(pool) < 40
        first = len(pool)
    with PoolStore.open(tmp_path / "pool") as pool:
        assert len(pool) == first
        report = run_job(ingest_files(pool, files_40, workers=2, chunk_files=5))
        assert report.skipped == first and report.added == 40 - first
        assert sorted(pool.metadata(columns=["source"])["source"]) == files_40
        np.testing.assert_array_equal(pool.rows(np.arange(40)), direct_rows(files_40))


def test_worker_crash_rejects_the_file_and_keeps_the_rest(tmp_path, files_40):
    folder = tmp_path / "in"
    folder.mkdir()
    paths = []
    for i, f in enumerate(files_40[:12]):
        name = "spec-crash.fits" if i == 7 else os.path.basename(f)
        paths.append(str(folder / name))
        shutil.copy(f, paths[-1])
    paths.sort()
    with PoolStore.create(tmp_path / "pool") as pool:
        report = run_job(ingest_files(pool, paths, workers=2, chunk_files=4,
                                      reader=crashing_reader))
        assert report.added == 11
        assert [(os.path.basename(f), "crashed" in r) for f, r in report.rejected] == \
            [("spec-crash.fits", True)]
        # committed in input order despite the retries
        good = [p for p in paths if "crash" not in os.path.basename(p)]
        assert list(pool.metadata(columns=["source"])["source"]) == good
        # a crash is not the file's own, reproducible rejection: the pool does not remember it,
        # and the next ingest tries the file again
        assert pool.rejected() == [] and report.retry == [str(folder / "spec-crash.fits")]
        again = run_job(ingest_files(pool, paths, workers=2, chunk_files=4))
        assert (again.added, again.skipped, again.rejected) == (1, 11, [])
        assert len(pool) == 12


def test_a_batch_rejection_that_the_spectrum_does_not_repeat_alone_is_not_kept(
        tmp_path, files_40, monkeypatch):
    """Defence in depth against a preprocessing bug that lets spectra spoil each other: every
    rejection is checked on the spectrum alone; only one it repeats there counts."""
    from vo_al.core.spectra import preprocess

    real = preprocess.preprocess_spectra

    def neighbours_spoil(spectra, settings=None):
        result = real(spectra, settings)
        for i in range(1, len(spectra)):           # as a lost-precision batch bug did
            result.reasons[i], result.rows[i] = "flux is constant over the window", np.nan
        return result

    monkeypatch.setattr(preprocess, "preprocess_spectra", neighbours_spoil)
    with PoolStore.create(tmp_path / "pool") as pool:
        report = run_job(ingest_files(pool, files_40[:8], workers=0))
        assert (report.added, report.rejected, pool.rejected()) == (8, [], [])
        monkeypatch.setattr(preprocess, "preprocess_spectra", real)
        np.testing.assert_array_equal(pool.rows(np.arange(8)), direct_rows(files_40[:8]))


def test_a_file_with_an_absurd_axis_rejects_only_itself(tmp_path, files_40):
    """A LAMOST header with COEFF1 = 0.01 (an axis up to ~4e42 A) among good files of the same
    length, through a reader that lets it pass: the good ones are all added, with the rows they
    have alone; the odd one is rejected for itself, remembered, and a rerun changes nothing."""
    folder = tmp_path / "in"
    folder.mkdir()
    paths = []
    for f in files_40[:15]:
        paths.append(str(folder / os.path.basename(f)))
        shutil.copy(f, paths[-1])
    hdu = lamost_like_hdu(3, np.random.default_rng(3))
    hdu.header["COEFF1"] = hdu.header["CD1_1"] = 0.01
    absurd = str(folder / "spec-absurd-axis.fits")
    hdu.writeto(absurd)
    alone = preprocess_spectra([unchecked_axis_reader(p) for p in paths[:1]]).rows
    for workers in (0, 2):
        with PoolStore.create(tmp_path / f"pool{workers}") as pool:
            report = run_job(ingest_folder(pool, folder, workers=workers, chunk_files=16,
                                           reader=unchecked_axis_reader))
            assert report.added == 15 and [f for f, _ in report.rejected] == [absurd]
            assert "pixels lie in the" in report.rejected[0][1]
            assert [f for f, _ in pool.rejected()] == [absurd]     # its own, reproducible
            rows = pool.rows(np.arange(15))
            for i, p in enumerate(paths):
                single = preprocess_spectra([unchecked_axis_reader(p)]).rows[0]
                np.testing.assert_array_equal(rows[i], single)
            np.testing.assert_array_equal(rows[:1], alone)
            again = run_job(ingest_folder(pool, folder, workers=workers,
                                          reader=unchecked_axis_reader))
            assert (again.added, again.skipped, again.rejected) == (0, 16, [])


def test_retry_rejected_gives_the_files_an_earlier_run_rejected_another_chance(tmp_path,
                                                                              files_40):
    """A pool made by a vo-al whose batch preprocessing let spectra spoil each other remembers
    good files as rejected, and a rerun skips them; with retry_rejected they are read again: the
    good ones are added and no longer listed as rejected, a bad one keeps today's reason."""
    blue = str(tmp_path / "blue.fits")
    blue_hdu().writeto(blue)
    paths = files_40[:8] + [blue]
    with PoolStore.create(tmp_path / "pool") as pool:
        run_job(ingest_files(pool, paths[:2], workers=0))
        with pool.writer("ingest", PreprocessSettings()) as out:   # as that vo-al left it
            out.append(np.empty((0, 140), np.float32), None,
                       rejected=[(p, "flux is constant over the window") for p in paths[2:]])
        again = run_job(ingest_files(pool, paths, workers=0))
        assert (again.added, again.skipped) == (0, 9)                 # remembered
        fixed = run_job(ingest_files(pool, paths, workers=0, retry_rejected=True))
        assert (fixed.added, fixed.skipped) == (6, 2)
        assert [f for f, _ in fixed.rejected] == [blue] and "covers 0%" in fixed.rejected[0][1]
        assert pool.rejected() == fixed.rejected
        np.testing.assert_array_equal(pool.rows(np.arange(8)), direct_rows(paths[:8]))
        assert run_job(ingest_files(pool, paths, workers=0)).skipped == 9


def test_a_file_that_cannot_be_read_now_is_not_remembered(tmp_path, files_40):
    """An I/O error (a file gone for now: a network share away, a move in progress) is not the
    file's rejection: reported, not remembered, and the next ingest adds the file."""
    folder = tmp_path / "in"
    folder.mkdir()
    paths = []
    for f in files_40[:6]:
        paths.append(str(folder / os.path.basename(f)))
        shutil.copy(f, paths[-1])
    os.rename(paths[2], paths[2] + ".away")
    with PoolStore.create(tmp_path / "pool") as pool:
        report = run_job(ingest_files(pool, paths, workers=0))
        assert report.added == 5 and [f for f, _ in report.rejected] == [paths[2]]
        assert "cannot read file" in report.rejected[0][1] and report.retry == [paths[2]]
        assert "1 to retry" in report.summary()
        assert pool.rejected() == []
        os.rename(paths[2] + ".away", paths[2])
        again = run_job(ingest_files(pool, paths, workers=0))
        assert (again.added, again.skipped, again.rejected) == (1, 5, [])
        assert sorted(pool.metadata(columns=["source"])["source"]) == sorted(paths)


def test_an_unexpected_error_is_reported_not_remembered(tmp_path, files_40):
    with PoolStore.create(tmp_path / "pool") as pool:
        report = run_job(ingest_files(pool, files_40[:5], workers=0,
                                      reader=out_of_memory_reader))
        assert report.added == 4 and report.retry == [files_40[2]]
        assert report.rejected[0][1].startswith("MemoryError")
        assert pool.rejected() == []
        again = run_job(ingest_files(pool, files_40[:5], workers=0))
        assert (again.added, again.skipped) == (1, 4)


# ---------------------------------------------------------------- the writer and the schema

def test_writer_appends_rows_rejections_and_chunks_in_one_transaction(tmp_path):
    with PoolStore.create(tmp_path / "pool") as pool:
        with pool.writer("ingest", PreprocessSettings()) as out:
            with pytest.raises(PoolError, match="being written"):
                pool.writer("add")
            out.reserve(10)
            cols = {k: [meta(f"w{i}")[k] for i in range(3)] for k in RECORD_FIELDS}
            got = out.append(random_rows(3), cols, rejected=[("/x/bad.fits", "broken")],
                             chunk=FinishedChunk("k1", files=5, skipped=1))
            assert list(got) == [0, 1, 2] and len(pool) == 3
            assert out.names_in_pool(["w1", "w9"]) == {"w1": 1}
            assert out.files_done(["http://example.org/w2", "/x/bad.fits", "/x/new.fits"]) == \
                {"http://example.org/w2", "/x/bad.fits"}
            assert out.chunks_done(["k1", "k2"]) == {"k1"}
            assert list(out.append(np.empty((0, 140)), None, chunk=FinishedChunk("k2", 0, 0))) == []
            with pytest.raises(PoolError, match="metadata column"):
                out.append(random_rows(1), {k: [] for k in RECORD_FIELDS})
            with pytest.raises(PoolError, match=r"missing \['instrument'\], unknown \[\]"):
                out.append(random_rows(1), {k: ["x"] for k in RECORD_FIELDS if k != "instrument"})
        with pytest.raises(PoolError, match="closed"):
            out.append(random_rows(1), cols)
        assert pool.rejected() == [("/x/bad.fits", "broken")]
        np.testing.assert_array_equal(pool.rows([0, 1, 2]), random_rows(3))
        md = pool.metadata()
        assert list(md["name"]) == ["w0", "w1", "w2"] and list(md["ra"]) == [10.0] * 3
    # the run's segment was sealed to its 3 rows when the writer closed
    assert np.load(tmp_path / "pool" / "seg-000001.npy", mmap_mode="r").shape == (3, 140)
    db = sqlite3.connect(tmp_path / "pool" / "pool.sqlite")
    assert db.execute("SELECT chunk, files, added, rejected, skipped FROM ingest_progress "
                      "ORDER BY chunk").fetchall() == [("k1", 5, 3, 1, 1), ("k2", 0, 0, 0, 0)]
    db.close()


# pool.sqlite as pool format version 1 wrote it, before the schema was derived from SpectrumMeta
_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY, file TEXT NOT NULL, kind TEXT NOT NULL,
    committed INTEGER NOT NULL DEFAULT 0, sealed INTEGER NOT NULL DEFAULT 0, created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS spectra (
    idx INTEGER PRIMARY KEY,
    segment INTEGER NOT NULL,
    row INTEGER NOT NULL,
    name TEXT NOT NULL UNIQUE,
    designation TEXT NOT NULL DEFAULT '',
    ra REAL, dec REAL,
    obsid TEXT NOT NULL DEFAULT '',
    cls TEXT NOT NULL DEFAULT '',
    subclass TEXT NOT NULL DEFAULT '',
    z REAL, snr REAL,
    source TEXT NOT NULL DEFAULT '',
    instrument TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS spectra_source ON spectra(source);
CREATE TABLE IF NOT EXISTS rejected (file TEXT PRIMARY KEY, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ingest_progress (
    chunk TEXT PRIMARY KEY, files INTEGER NOT NULL, added INTEGER NOT NULL,
    rejected INTEGER NOT NULL, skipped INTEGER NOT NULL, finished TEXT NOT NULL
);
"""


def _tables(db: sqlite3.Connection) -> dict:
    names = [n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {n: (db.execute(f"PRAGMA table_info({n})").fetchall(),
                sorted(tuple(r[1:]) for r in db.execute(f"PRAGMA index_list({n})")))
            for n in sorted(names)}


def test_schema_derived_from_spectrum_meta_is_format_1_column_for_column(tmp_path):
    legacy, derived = sqlite3.connect(":memory:"), sqlite3.connect(":memory:")
    legacy.executescript(_SCHEMA_V1)
    derived.executescript(SCHEMA)
    # format 1's tables, and the media table (the imports' media), which no reader of format 1
    # looks at and which a pool of format 1 gains when opened
    media = _tables(derived).pop("media")
    assert [(c[1], c[2]) for c in media[0]] == [("source", "TEXT"), ("medium", "TEXT")]
    assert {n: t for n, t in _tables(derived).items() if n != "media"} == _tables(legacy)
    spectra = [row[1] for row in _tables(derived)["spectra"][0]]
    assert spectra == ["idx", "segment", "row", *(f.name for f in fields(SpectrumMeta)),
                       "instrument"]
    assert list(META_COLUMNS) == ["index", "segment", "row", *spectra[3:]]
    # a pool whose database format 1 made opens, and takes rows
    folder = tmp_path / "old"
    PoolStore.create(folder).close()
    (folder / "pool.sqlite").unlink()
    db = sqlite3.connect(folder / "pool.sqlite")
    db.executescript(_SCHEMA_V1)
    db.close()
    with PoolStore.open(folder) as pool:
        pool.add_rows(random_rows(2), [meta("o1"), SpectrumMeta(name="o2", ra=1.5)])
        md = pool.metadata(columns=["name", "ra", "instrument", "cls"])
        assert list(md["name"]) == ["o1", "o2"] and list(md["ra"]) == [10.0, 1.5]
        assert list(md["instrument"]) == ["lamost", ""] and list(md["cls"]) == ["STAR", ""]
        # and keeps the medium an import was given, in the table it gained
        pool.add_rows(random_rows(1), [SpectrumMeta(name="o3", source="/d/o3.fits")],
                      medium="air")
        assert pool.import_medium("/d/o3.fits") == "air" and pool.import_medium("o1") is None


def test_ingest_and_harvest_use_only_the_pools_public_members():
    import ast

    for rel in ("vo_al/core/pool/ingest.py", "vo_al/core/vo/harvest.py"):
        tree = ast.parse((REPO / rel).read_text())
        private = sorted({f"{node.value.id}.{node.attr}" for node in ast.walk(tree)
                          if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                          and node.value.id in ("pool", "out") and node.attr.startswith("_")})
        assert private == [], f"{rel} reaches into the pool: {private}"


# ---------------------------------------------------------------- kill -9 and resume

_CHILD = textwrap.dedent("""
    import sys
    from vo_al.core.pool.ingest import ingest_files
    from vo_al.core.pool.store import PoolStore
    if __name__ == "__main__":
        folder, listing = sys.argv[1], sys.argv[2]
        paths = open(listing).read().split("\\n")
        try:
            pool = PoolStore.open(folder)
        except Exception:
            pool = PoolStore.create(folder)
        for step in ingest_files(pool, paths, workers=2, chunk_files=40):
            print(step.done, flush=True)
        print("finished", flush=True)
""")


def _ingest_and_kill(pool_dir: Path, listing: Path, script: Path, kill_after: int) -> bool:
    """Run an ingest in a subprocess; SIGKILL it once `kill_after` files are reported done.
    Returns whether it was killed (False: it finished first)."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, str(script), str(pool_dir), str(listing)],
                            stdout=subprocess.PIPE, text=True, env=env, start_new_session=True)
    killed = False
    try:
        for line in proc.stdout:
            if line.strip() == "finished":
                break
            if int(line) >= kill_after:
                os.kill(proc.pid, signal.SIGKILL)       # the ingesting process, mid-chunk
                killed = True
                break
        proc.wait(timeout=60)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)        # its orphaned workers / forkserver
        except ProcessLookupError:
            pass
        proc.stdout.close()
    return killed


def test_kill_9_mid_ingest_then_resume_adds_every_file_once(tmp_path, files_kill):
    listing = tmp_path / "files.txt"
    listing.write_text("\n".join(files_kill))
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    pool_dir = tmp_path / "pool"
    assert _ingest_and_kill(pool_dir, listing, script, kill_after=500)
    with PoolStore.open(pool_dir) as pool:
        first = len(pool)
        assert 0 < first < N_KILL_FILES
        assert len(pool.metadata(columns=["name"])["name"]) == first
    # a second kill, later on, while resuming
    assert _ingest_and_kill(pool_dir, listing, script, kill_after=first + 800)
    with PoolStore.open(pool_dir) as pool:
        second = len(pool)
        assert first < second < N_KILL_FILES
        report = run_job(ingest_files(pool, files_kill, workers=2, chunk_files=40))
        assert report.skipped == second and report.added == N_KILL_FILES - second
        assert report.rejected == [] and len(pool) == N_KILL_FILES
        md = pool.metadata(columns=["name", "source", "index"])
        assert len(set(md["name"])) == N_KILL_FILES                 # no duplicates
        assert set(md["source"]) == set(files_kill)                  # nothing missing
        np.testing.assert_array_equal(md["index"], np.arange(N_KILL_FILES))
        order = np.argsort(md["source"])
        np.testing.assert_array_equal(pool.rows(order), direct_rows(sorted(files_kill)))
        # the database and the segment files agree
        db = sqlite3.connect(pool_dir / "pool.sqlite")
        committed = db.execute("SELECT sum(committed) FROM segments").fetchone()[0]
        db.close()
        assert committed == N_KILL_FILES
        assert sum(np.load(p, mmap_mode="r").shape[0]
                   for p in pool_dir.glob("seg-*.npy")) == N_KILL_FILES


def test_a_script_without_a_main_guard_is_told_why_workers_fail(tmp_path):
    """Worker processes start by importing the main module again: a script without an
    `if __name__ == "__main__"` guard runs again in each of them and they die. That is said,
    instead of rejecting every file as 'the reader crashed its worker process'."""
    import subprocess
    import sys
    import textwrap

    folder = tmp_path / "in"
    folder.mkdir()
    from vo_al.core.demo.files import write_lamost_fits
    from vo_al.core.demo.observations import lamost_spectrum
    from vo_al.core.spectra.record import SpectrumMeta
    rng = np.random.default_rng(0)
    for i in range(4):
        sp = lamost_spectrum(0, rng)
        write_lamost_fits(folder / f"s{i}.fits", sp.wavelength, sp.flux, sp.ivar, sp.andmask,
                          sp.ormask, SpectrumMeta(name=f"s{i}.fits", ra=10.0 + i, dec=20.0))
    script = tmp_path / "unguarded.py"
    script.write_text(textwrap.dedent(f"""
        from vo_al.core.base.progress import run_job
        from vo_al.core.pool import PoolStore, ingest_folder
        import os
        pool = PoolStore.create({str(tmp_path / 'pool')!r} + str(os.getpid()))
        run_job(ingest_folder(pool, {str(folder)!r}, workers=2))
        print("ingested")
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode != 0 and "ingested" not in done.stdout
    assert 'if __name__ == "__main__"' in done.stderr and "workers=0" in done.stderr
    assert "reader crashed" not in done.stderr
