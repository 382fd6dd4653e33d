"""Seeded fuzz test of read_spectrum: what any broken file may do, and what it may never do.

Over 1 000 mutations (bit flips, truncations, header card edits with NaN/Inf/T/F/huge values,
gzip wrapping, zero padding, and mixes of them) of the real archive files in
../shared/data/real (where present) and of files from the demo's writers. For every mutated
file, read_spectrum either returns a sane Spectrum or raises a vo-al error naming the file:
never astropy's, numpy's or zlib's exceptions. The spectra it accepts preprocess to the same
rows in one batch as one by one. Decompression bombs cost a bounded amount of memory.
The seed is fixed: a failure names the mutation, and the same run reproduces it.
"""

from __future__ import annotations

import gzip
import tracemalloc
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from conftest import real_data_dir
from fits_mutations import (BLOCK, delete_card, flip_bits, gzip_bomb, header_end, header_starts,
                            set_card)
from vo_al.core.base.errors import SpectrumReadError, UnusableSpectrumError, VoAlError
from vo_al.core.base.limits import DEFAULT_LIMITS
from vo_al.core.demo import (LamostHeader, make_ccd700_spectrum, make_lamost_spectrum,
                             write_ccd700_fits, write_lamost_fits)
from vo_al.core.spectra.preprocess import preprocess_spectra, preprocess_spectrum
from vo_al.core.spectra.readers import read_spectrum
from vo_al.core.spectra.record import Spectrum

SEED = 20_251_202
N_MUTATIONS = 1_200
KEYS = ("CRVAL1", "CDELT1", "CD1_1", "CRPIX1", "COEFF0", "COEFF1", "NAXIS", "NAXIS1", "NAXIS2",
        "BITPIX", "RA", "DEC", "SIMPLE", "DC-FLAG", "BSCALE", "BZERO", "TFIELDS", "TFORM1",
        "TTYPE1", "PCOUNT", "GCOUNT", "VACUUM", "CTYPE1", "EXTEN0", "Z")
VALUES = ("NaN", "Inf", "-Inf", "+NaN", "T", "F", "1E300", "-1E300", "1E999", "0", "-1", "1",
          "2", "5", "99999999999999999999", "3.5682", "3.6", "6500.0", "0.25", "0.01", "1E-5",
          "-0.0001", "", "'text'", "'3909E'", "1.2.3", "'Flux Inverse Wavelength Andmask Ormask'")


# ---------------------------------------------------------------- the files to break

def _synthetic_files(folder: Path, rng: np.random.Generator) -> dict:
    files = {}
    for label in (0, 1):
        wl, flux, ivar, andmask, ormask = make_lamost_spectrum(label, rng)
        header = LamostHeader(obsid=100 + label, ra=150.0 + label, dec=20.0, snr_r=40.0)
        for layout in ("image", "table"):
            path = write_lamost_fits(folder / f"lamost-{layout}-{label}.fits", wl, flux, ivar,
                                     andmask, ormask, header, layout=layout)
            files[path.name] = path.read_bytes()
    for label in (0, 1):
        wl, flux = make_ccd700_spectrum(label, rng)
        path = write_ccd700_fits(folder / f"ccd700-{label}.fits", wl, flux, f"HD {label}",
                                 ra=30.0, dec=40.0)
        files[path.name] = path.read_bytes()
    return files


def _real_files() -> dict:
    folder = real_data_dir()
    if folder is None:
        return {}
    paths = sorted(folder.glob("lamost-dr*/*.fits")) + sorted(folder.glob("ondrejov/*.fits"))
    return {p.name: p.read_bytes() for p in paths}


# ---------------------------------------------------------------- mutations

def _card_edit(raw: bytes, rng) -> tuple[str, bytes]:
    starts = header_starts(raw)
    start = starts[int(rng.integers(len(starts)))]
    key = KEYS[int(rng.integers(len(KEYS)))]
    if rng.random() < 0.1:
        return f"delete {key}@{start}", delete_card(raw, key, start)
    value = VALUES[int(rng.integers(len(VALUES)))]
    edited = set_card(raw, key, value, start)
    return f"{key}={value}@{start}", raw if edited is None else edited


def _mutate(raw: bytes, rng) -> tuple[str, bytes]:
    kind = int(rng.integers(6))
    if len(raw) < BLOCK:
        kind = 3                        # an earlier step cut the file: pad it
    elif kind in (0, 4, 5) and b"END     " not in raw[:BLOCK * 40]:
        kind = 1                        # an earlier step broke the header: flip bits instead
    if kind == 0:
        count = int(rng.integers(1, 5))
        return f"flip {count} header bits", flip_bits(raw, rng, count, 0, header_end(raw))
    if kind == 1:
        count = int(rng.integers(1, 17))
        return f"flip {count} bits", flip_bits(raw, rng, count)
    if kind == 2:
        cut = int(rng.integers(0, len(raw)))
        if rng.random() < 0.5:
            cut -= cut % BLOCK
        return f"truncate to {cut}", raw[:cut]
    if kind == 3:
        pad = int(rng.integers(1, 3 * BLOCK))
        return f"pad {pad} zeros", raw + bytes(pad)
    return _card_edit(raw, rng)


@dataclass
class Case:
    what: str                # how the file was made, to reproduce a failure
    raw: bytes
    gzipped: bool


def _cases(bases: dict, rng) -> list[Case]:
    names = sorted(bases)
    cases = []
    for _ in range(N_MUTATIONS):
        name = names[int(rng.integers(len(names)))]
        raw, steps = bases[name], []
        for _ in range(int(rng.integers(1, 4))):
            what, raw = _mutate(raw, rng)
            steps.append(what)
        gzipped = rng.random() < 0.25
        if gzipped:
            raw = gzip.compress(raw, compresslevel=1, mtime=0)
            tail = rng.random()
            if tail < 0.15:
                raw = raw[:int(rng.integers(0, len(raw)))]
                steps.append("gzip, truncated")
            elif tail < 0.3:
                raw += bytes(int(rng.integers(1, 4096))) if tail < 0.22 else b"junk"
                steps.append("gzip, padded" if tail < 0.22 else "gzip, garbage after")
            else:
                steps.append("gzip")
        cases.append(Case(f"{name}: " + " -> ".join(steps), raw, gzipped))
    return cases


# ---------------------------------------------------------------- one run for all the checks

@dataclass
class FuzzRun:
    n_cases: int
    escaped: list            # (case, exception) of non-vo-al exceptions
    untyped: list            # (case, exception) of vo-al errors that are not SpectrumReadError
    accepted: list           # (case, Spectrum)
    rejected: int
    originals: list          # the unmutated files, read


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory) -> FuzzRun:
    folder = tmp_path_factory.mktemp("fuzz")
    rng = np.random.default_rng(SEED)
    bases = {**_real_files(), **_synthetic_files(folder, rng)}
    originals = [_read_bytes_as(folder, f"original-{name}", raw)
                 for name, raw in sorted(bases.items())]
    run = FuzzRun(0, [], [], [], 0, originals)
    for case in _cases(bases, rng):
        path = folder / ("mutated.fits.gz" if case.gzipped else "mutated.fits")
        path.write_bytes(case.raw)
        run.n_cases += 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")        # astropy's VerifyWarnings: not errors
                spectrum = read_spectrum(path)
        except SpectrumReadError as exc:
            run.rejected += 1
            if exc.path != str(path) or not exc.reason:
                run.untyped.append((case, exc))
        except VoAlError as exc:
            run.untyped.append((case, exc))
        except Exception as exc:                       # noqa: BLE001 - what the test looks for
            run.escaped.append((case, exc))
        else:
            run.accepted.append((case, spectrum))
    return run


def _read_bytes_as(folder: Path, name: str, raw: bytes) -> Spectrum:
    path = folder / name
    path.write_bytes(raw)
    return read_spectrum(path)


def _show(items) -> str:
    return "\n".join(f"  {case.what}: {type(exc).__name__}: {exc}" for case, exc in items[:10])


def test_fuzz_covers_over_a_thousand_mutations_of_both_instruments(fuzz):
    assert fuzz.n_cases >= 1000
    kinds = {sp.instrument for _, sp in fuzz.accepted}
    assert kinds == {"lamost", "ccd700"}, "the mutations must leave readable files of both"
    assert fuzz.rejected > 0.3 * fuzz.n_cases and len(fuzz.accepted) > 0.1 * fuzz.n_cases
    if real_data_dir() is None:
        pytest.skip("real spectra folder ../shared/data/real (or $VO_AL_REAL_DATA) absent: "
                    "only the synthetic files were fuzzed")
    assert any(case.what.startswith("spec-") for case, _ in fuzz.accepted)


def test_no_foreign_exception_ever_escapes_read_spectrum(fuzz):
    assert not fuzz.escaped, (f"{len(fuzz.escaped)} of {fuzz.n_cases} mutated files raised a "
                              f"non-vo-al exception:\n{_show(fuzz.escaped)}")
    assert not fuzz.untyped, f"not a SpectrumReadError naming the file:\n{_show(fuzz.untyped)}"


def test_what_is_accepted_is_a_spectrum_not_garbage_structure(fuzz):
    """A flipped flux bit is undetectable; a broken axis, shape or position is not."""
    for case, sp in fuzz.accepted:
        wl = sp.wavelength
        assert wl.ndim == 1 and wl.size >= 2 and sp.flux.shape == wl.shape, case.what
        assert np.all(np.isfinite(wl)) and np.all(np.diff(wl) > 0), case.what
        assert 1000 < wl[0] and wl[-1] < 100_000, case.what
        for array in (sp.ivar, sp.mask):
            assert array is None or array.shape == wl.shape, case.what
        assert np.isnan(sp.meta.ra) or 0 <= sp.meta.ra <= 360, case.what
        assert np.isnan(sp.meta.dec) or -90 <= sp.meta.dec <= 90, case.what


def test_accepted_files_preprocess_alike_in_a_batch_and_one_by_one(fuzz):
    """The batch of every accepted mutated file (with the originals, so that each shares its
    group with good spectra) gives each spectrum the row it gets alone, and rejects exactly
    what is rejected alone."""
    spectra = fuzz.originals + [sp for _, sp in fuzz.accepted]
    whats = ["original"] * len(fuzz.originals) + [case.what for case, _ in fuzz.accepted]
    batch = preprocess_spectra(spectra)
    lost, differ, let_through = [], [], []
    for i, spectrum in enumerate(spectra):
        try:
            alone = preprocess_spectrum(spectrum)
        except UnusableSpectrumError:
            if batch.reasons[i] is None:
                let_through.append(whats[i])
            continue
        if batch.reasons[i] is not None:
            lost.append(f"{whats[i]}: {batch.reasons[i]}")
        elif not np.array_equal(batch.rows[i], alone):
            differ.append(f"{whats[i]}: max |diff| "
                          f"{np.nanmax(np.abs(batch.rows[i] - alone)):.3g}")
    assert not lost, f"accepted alone, rejected in the batch:\n  " + "\n  ".join(lost[:10])
    assert not let_through, "rejected alone, accepted in the batch:\n  " + \
        "\n  ".join(let_through[:10])
    assert not differ, "rows that differ between the batch and alone:\n  " + \
        "\n  ".join(differ[:10])


# ---------------------------------------------------------------- bombs

def test_decompression_bombs_cost_bounded_memory(tmp_path):
    """Bombs of every shape (one gzip stream or many members; a real or synthetic FITS in
    front of the zeros, or nothing) are rejected having held at most a few times the bound."""
    rng = np.random.default_rng(SEED)
    fronts = {"synthetic": _synthetic_files(tmp_path, rng)["ccd700-0.fits"], "none": b""}
    real = _real_files()
    if real:
        fronts["real"] = real[sorted(real)[0]]
    bound = DEFAULT_LIMITS.max_spectrum_bytes
    for name, front in fronts.items():
        for one_member in (True, False):
            path = tmp_path / f"bomb-{name}-{one_member}.fits.gz"
            path.write_bytes(gzip_bomb(front, 1 << 30, one_member))
            tracemalloc.start()
            try:
                with pytest.raises(SpectrumReadError, match="decompression bomb") as info:
                    read_spectrum(path)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert info.value.path == str(path)
            assert peak < 2 * bound, (name, one_member, peak)
