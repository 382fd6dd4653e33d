"""Preprocessing (METHOD.md Sect. 3.2): the method's rows, and what is rejected instead of
being turned into garbage; a batch gives every spectrum exactly the result it has alone."""

import copy
import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from conftest import real_data_dir
from vo_al.core.base.errors import ParameterError, UnusableSpectrumError
from vo_al.core.demo.observations import make_ccd700_spectrum, make_lamost_spectrum
from vo_al.core.learning.classes import DOUBLE_PEAK, NON_TARGET, SINGLE_PEAK
from vo_al.core.spectra.readers import read_spectrum
from vo_al.core.spectra.lines import HALPHA_VAC
from vo_al.core.spectra.preprocess import (air_to_vacuum, preprocess_batch,
                                   preprocess_spectra, preprocess_spectrum, window_grid)
from vo_al.core.spectra.settings import PreprocessSettings
from vo_al.core.spectra.record import Spectrum, SpectrumMeta


def reference_preprocess(wl, flux, sigma):
    """The per-spectrum recipe of METHOD.md written the plain way (numpy.interp)."""
    if sigma:
        flux = gaussian_filter1d(flux, sigma, mode="nearest")
    x = np.interp(np.linspace(6519, 6732, 140), wl, flux)
    return 2 * (x - x.min()) / (x.max() - x.min()) - 1


def test_air_to_vacuum_reference_value():
    assert air_to_vacuum(6562.801) == pytest.approx(6564.614, abs=5e-4)
    assert HALPHA_VAC == pytest.approx(float(air_to_vacuum(6562.801)), abs=1e-3)


def test_grid_is_140_points_over_the_window():
    g = window_grid()
    assert g.shape == (140,) and g[0] == 6519 and g[-1] == 6732


@pytest.mark.parametrize("sigma", [0.0, 7.0])
def test_batch_equals_per_spectrum_reference(sigma):
    rng = np.random.default_rng(3)
    n, length = 64, 2000
    start = rng.uniform(6200, 6300, n)[:, None]    # every row covers >= 6700 A
    wl = start + np.cumsum(rng.uniform(0.25, 0.4, (n, length)), axis=1)
    flux = 1 + 0.1 * rng.normal(size=(n, length)) + np.exp(-0.5 * ((wl - 6564.6) / 2) ** 2)
    batch = preprocess_batch(wl, flux, sigma)
    assert batch.good.all()
    for i in range(n):
        np.testing.assert_allclose(batch.rows[i], reference_preprocess(wl[i], flux[i], sigma),
                                   atol=2e-6)
    assert batch.rows.dtype == np.float32
    assert np.allclose(batch.rows.min(axis=1), -1) and np.allclose(batch.rows.max(axis=1), 1)


def _spectrum(wl, flux, name="s", instrument="lamost"):
    return Spectrum(wl, flux, None, None, instrument, SpectrumMeta(name=name))


def test_rejections_have_reasons_and_never_garbage():
    wl = np.linspace(6000, 7000, 2000)
    good = 1 + np.exp(-0.5 * ((wl - 6564.6) / 3) ** 2)
    blue = np.linspace(4000, 5000, 2000)
    spectra = [_spectrum(wl, good, "good"),
               _spectrum(wl, np.full_like(wl, np.nan), "nan"),
               _spectrum(wl, np.full_like(wl, 5.0), "flat"),
               _spectrum(blue, good, "blue")]
    result = preprocess_spectra(spectra)
    assert result.reasons[0] is None
    assert "NaN" in result.reasons[1]
    assert "constant" in result.reasons[2]
    assert "covers 0%" in result.reasons[3]
    assert np.isnan(result.rows[1:]).all() and np.isfinite(result.rows[0]).all()
    with pytest.raises(UnusableSpectrumError, match="blue: covers"):
        preprocess_spectrum(spectra[3])


def test_partial_nan_is_interpolated_not_propagated():
    wl = np.linspace(6400, 6800, 1000)
    flux = 1 + np.exp(-0.5 * ((wl - 6564.6) / 3) ** 2)
    holed = flux.copy()
    holed[100:110] = np.nan
    row = preprocess_spectrum(_spectrum(wl, holed))
    assert np.isfinite(row).all()
    np.testing.assert_allclose(row, preprocess_spectrum(_spectrum(wl, flux)), atol=1e-3)


def test_ccd700_is_blurred_lamost_is_not():
    wl = np.linspace(6300, 6750, 2000)
    narrow = 1 + 5 * np.exp(-0.5 * ((wl - 6564.6) / 0.3) ** 2)
    lamost = preprocess_spectrum(_spectrum(wl, narrow, instrument="lamost"))
    ccd = preprocess_spectrum(_spectrum(wl, narrow, instrument="ccd700"))
    # the blur spreads the line over more of the 140 points
    assert (ccd > -0.9).sum() > (lamost > -0.9).sum()


def test_coverage_threshold_is_a_setting():
    wl = np.linspace(6519, 6600, 500)            # 38 % of the window
    flux = 1 + np.exp(-0.5 * ((wl - 6564.6) / 3) ** 2)
    with pytest.raises(UnusableSpectrumError):
        preprocess_spectrum(_spectrum(wl, flux))
    row = preprocess_spectrum(_spectrum(wl, flux), PreprocessSettings(min_window_coverage=0.3))
    assert np.isfinite(row).all()


# ---------------------------------------------------------------- no spectrum changes another

WINDOW = (6519.0, 6732.0)


def lamost_record(wl, flux, ivar, andmask, name="lamost") -> Spectrum:
    """A LAMOST Spectrum with the mask the reader gives it (readers._lamost_spectrum)."""
    mask = ~np.isfinite(flux) | ~(ivar > 0) | (np.asarray(andmask) != 0)
    return Spectrum(wl, flux, ivar, mask, "lamost", SpectrumMeta(name=name))


def synthetic_lamost(seed: int, label: int = NON_TARGET, snr: float | None = None) -> Spectrum:
    wl, flux, ivar, andmask, _ = make_lamost_spectrum(label, np.random.default_rng(seed), snr=snr)
    return lamost_record(wl, flux.astype(np.float64), ivar.astype(np.float64), andmask,
                         f"synth-lamost-{seed}")


def synthetic_ccd700(seed: int, label: int = SINGLE_PEAK) -> Spectrum:
    wl_air, flux = make_ccd700_spectrum(label, np.random.default_rng(seed))
    flux = flux.astype(np.float64)
    return Spectrum(air_to_vacuum(wl_air), flux, None, ~np.isfinite(flux), "ccd700",
                    SpectrumMeta(name=f"synth-ccd700-{seed}"))


def real_spectra() -> list[Spectrum]:
    folder = real_data_dir()
    if folder is None:
        return []
    return [read_spectrum(p) for p in sorted(Path(folder).glob("lamost-dr*/*.fits"))
            + sorted(Path(folder).glob("ondrejov/*.fits"))]


def in_window(sp: Spectrum) -> np.ndarray:
    return (sp.wavelength >= WINDOW[0]) & (sp.wavelength <= WINDOW[1])


def _flag(sp: Spectrum, where: np.ndarray) -> None:
    """Pixels the survey flagged: the mask (and ivar = 0 where the spectrum has an ivar)."""
    if sp.ivar is not None:
        sp.ivar = sp.ivar.copy()
        sp.ivar[where] = 0.0
    sp.mask = (np.zeros(sp.flux.shape, bool) if sp.mask is None else sp.mask.copy()) | where


def _run(sp: Spectrum, rng, lo: float = WINDOW[0] - 60, hi: float = WINDOW[1] + 60,
         longest: int = 200) -> np.ndarray:
    """A run of 1..longest pixels starting somewhere between lo and hi Angstrom."""
    where = np.zeros(sp.flux.shape, bool)
    start = int(np.searchsorted(sp.wavelength, rng.uniform(lo, hi)))
    where[start:start + int(rng.integers(1, longest + 1))] = True
    return where


def mutate(sp: Spectrum, kind: str, rng) -> Spectrum:
    """A copy of a good spectrum with one of the defects that a survey file can have."""
    sp = copy.deepcopy(sp)
    sp.meta.name = f"{sp.meta.name}+{kind}"
    n = sp.flux.size
    if kind == "absurd-axis":          # a LAMOST header with COEFF1 = 0.01: up to ~1e42 A
        sp.wavelength = 10 ** (math.log10(sp.wavelength[0]) + 0.01 * np.arange(n))
    elif kind == "red-arm-only":       # starts somewhere in (or past) the window
        step = np.log10(sp.wavelength[1] / sp.wavelength[0])
        sp.wavelength = 10 ** (np.log10(rng.uniform(6400, 6800)) + step * np.arange(n))
    elif kind in ("nan-run", "inf-run"):
        where = _run(sp, rng)
        sp.flux[where] = np.nan if kind == "nan-run" else rng.choice([np.inf, -np.inf])
        sp.mask = (np.zeros(n, bool) if sp.mask is None else sp.mask) | where
    elif kind in ("window-nan", "window-inf"):
        where = in_window(sp)
        sp.flux[where] = np.nan if kind == "window-nan" else np.inf
        sp.mask = (np.zeros(n, bool) if sp.mask is None else sp.mask) | where
    elif kind == "constant":
        sp.flux[:] = rng.uniform(0, 2000)
    elif kind == "window-constant":
        sp.flux[in_window(sp)] = rng.uniform(0, 2000)
    elif kind == "flagged-run":        # dead columns: flux 0 (or kept) and flagged
        where = _run(sp, rng, longest=150)
        if rng.random() < 0.5:
            sp.flux[where] = 0.0
        _flag(sp, where)
    elif kind == "ivar-nan":
        if sp.ivar is not None:
            sp.ivar = np.where(_run(sp, rng), np.nan, sp.ivar)
            sp.mask = sp.mask | ~(sp.ivar > 0)
    elif kind == "all-flagged":
        _flag(sp, np.ones(n, bool))
    elif kind == "window-flagged":
        _flag(sp, in_window(sp))
    elif kind == "flagged-spike":      # a cosmic ray the pipeline flagged
        k = int(np.flatnonzero(in_window(sp))[rng.integers(0, in_window(sp).sum())])
        sp.flux[k] = 1e6
        _flag(sp, np.arange(n) == k)
    elif kind == "huge":               # flux in odd units, near the float64 range
        with np.errstate(over="ignore"):
            sp.flux = sp.flux * 10.0 ** rng.uniform(290, 306)
    elif kind == "tiny":
        sp.flux = sp.flux * 10.0 ** -rng.uniform(290, 320)
    elif kind == "non-increasing":
        k = int(rng.integers(0, n - 1))
        sp.wavelength[[k, k + 1]] = sp.wavelength[[k + 1, k]]
    elif kind == "nan-axis":
        sp.wavelength[int(rng.integers(0, n))] = np.nan
    elif kind == "inf-axis-end":
        sp.wavelength[-1] = np.inf
    elif kind != "good":
        raise ValueError(kind)
    return sp


DEFECTS = ("good", "good", "good", "absurd-axis", "red-arm-only", "nan-run", "inf-run",
           "window-nan", "window-inf", "constant", "window-constant", "flagged-run", "ivar-nan",
           "all-flagged", "window-flagged", "flagged-spike", "huge", "tiny", "non-increasing",
           "nan-axis", "inf-axis-end")
SETTINGS_VARIANTS = (PreprocessSettings(),
                     PreprocessSettings(mask_flagged_pixels=True),
                     PreprocessSettings(min_usable_fraction=0.2, mask_flagged_pixels=True),
                     PreprocessSettings(min_usable_fraction=0.2, min_window_coverage=0.3),
                     PreprocessSettings(window_min=6540.0, window_max=6600.0, n_points=48))


@pytest.fixture(scope="module")
def good_bank() -> list[Spectrum]:
    """Good spectra of both instruments (real ones where the shared folder is present)."""
    labels = (NON_TARGET, SINGLE_PEAK, DOUBLE_PEAK)
    return ([synthetic_lamost(seed, labels[seed % 3]) for seed in range(12)]
            + [synthetic_ccd700(seed, labels[seed % 3]) for seed in range(6)]
            + real_spectra())


def bits(rows: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rows, dtype=np.float32).view(np.uint32)


def test_batch_result_is_the_per_spectrum_result_for_any_mix(good_bank):
    """Seeded property test: whatever else is in a batch, each row and each rejection reason is
    exactly what the spectrum gives alone."""
    for seed in range(16):
        rng = np.random.default_rng(seed)
        settings = SETTINGS_VARIANTS[seed % len(SETTINGS_VARIANTS)]
        mix = [mutate(good_bank[int(rng.integers(0, len(good_bank)))],
                      DEFECTS[int(rng.integers(0, len(DEFECTS)))], rng) for _ in range(28)]
        batch = preprocess_spectra(mix, settings)
        for i, sp in enumerate(mix):
            alone = preprocess_spectra([sp], settings)
            assert batch.reasons[i] == alone.reasons[0], (seed, sp.meta.name)
            assert np.array_equal(bits(batch.rows[i]), bits(alone.rows[0])), (seed, sp.meta.name)
            if alone.reasons[0] is None:
                row = alone.rows[0]
                assert np.isfinite(row).all() and row.min() == -1 and row.max() == 1, sp.meta.name
            else:
                assert isinstance(alone.reasons[0], str) and np.isnan(alone.rows[0]).all()


def test_an_absurd_axis_does_not_reject_real_neighbours(real_data):
    """A LAMOST header with COEFF1 = 0.01 (axis up to ~4e42 A) in a batch of good real spectra
    of the same length: the others keep exactly the rows they have alone."""
    spectra = [read_spectrum(p) for p in sorted(real_data.glob("lamost-dr2/*.fits"))]
    broken = mutate(spectra[0], "absurd-axis", np.random.default_rng(0))
    assert broken.wavelength[-1] > 1e42
    batch = preprocess_spectra(spectra + [broken])
    alone = [preprocess_spectra([sp]) for sp in spectra]
    assert batch.reasons[:-1] == [None] * len(spectra)
    np.testing.assert_array_equal(batch.rows[:-1], np.vstack([a.rows[0] for a in alone]))
    assert batch.reasons[-1] is not None and "pixel" in batch.reasons[-1]


# ---------------------------------------------------------------- what is not data is rejected

def method_row(wl, flux, sigma, s: PreprocessSettings = PreprocessSettings()) -> np.ndarray:
    """Sect. 3.2 per spectrum, in the arithmetic vo-al has always used (numpy.interp's linear
    interpolation with the edge value held; min-max to [-1, 1]; float32)."""
    if sigma:
        flux = gaussian_filter1d(flux, sigma, mode="nearest")
    grid = np.linspace(s.window_min, s.window_max, s.n_points)
    idx = np.clip(np.searchsorted(wl, grid, side="right"), 1, len(wl) - 1)
    w0, w1, f0, f1 = wl[idx - 1], wl[idx], flux[idx - 1], flux[idx]
    x = f0 + np.clip((grid - w0) / (w1 - w0), 0.0, 1.0) * (f1 - f0)
    return (2.0 * (x - x.min()) / (x.max() - x.min()) - 1.0).astype(np.float32)


def test_default_rows_of_real_and_synthetic_files_are_the_methods_bit_for_bit(good_bank):
    """The new rejections and the masking setting change no row of a good spectrum: with the
    default settings every row is Sect. 3.2's, bit for bit, alone and in a batch."""
    batch = preprocess_spectra(good_bank)
    assert batch.good.all(), [r for r in batch.reasons if r]
    for i, sp in enumerate(good_bank):
        expected = method_row(sp.wavelength, sp.flux, 7.0 if sp.instrument == "ccd700" else 0.0)
        assert np.array_equal(bits(batch.rows[i]), bits(expected)), sp.meta.name
        assert np.array_equal(bits(preprocess_spectrum(sp)), bits(expected)), sp.meta.name


def test_real_good_spectra_pass_the_usable_fraction_easily(real_data):
    for sp in real_spectra():
        w = in_window(sp)
        usable = ~sp.mask[w] & np.isfinite(sp.flux[w])
        if sp.ivar is not None:
            usable &= sp.ivar[w] > 0
        assert usable.mean() >= PreprocessSettings().min_usable_fraction + 0.1, sp.meta.name
        preprocess_spectrum(sp)


def _hole(sp: Spectrum, lo: float, hi: float) -> Spectrum:
    """flux = 0 with ivar = 0 (and the andmask set) between lo and hi Angstrom."""
    sp = copy.deepcopy(sp)
    where = (sp.wavelength >= lo) & (sp.wavelength <= hi)
    sp.flux[where] = 0.0
    _flag(sp, where)
    return sp


def _unusable_cases():
    base = synthetic_lamost(3, SINGLE_PEAK, snr=80.0)
    n, w = base.flux.size, in_window(base)
    every = copy.deepcopy(base)
    every.ivar = np.zeros(n)
    every.mask = np.ones(n, bool)
    nan_ivar = copy.deepcopy(base)
    nan_ivar.ivar = np.full(n, np.nan)
    nan_ivar.mask = np.ones(n, bool)
    andmask_all = copy.deepcopy(base)
    andmask_all.mask = np.ones(n, bool)              # ANDMASK != 0 everywhere, ivar kept
    andmask_window = copy.deepcopy(base)
    andmask_window.mask = base.mask | w
    cases = {"ivar all 0": every, "ivar all NaN": nan_ivar, "ANDMASK everywhere": andmask_all,
             "ANDMASK over the window": andmask_window,
             "flux 0, ivar 0 over 6540-6600 A": _hole(base, 6540.0, 6600.0)}
    for kind in ("window-nan", "window-inf"):
        cases[kind] = mutate(base, kind, np.random.default_rng(0))
    return base, cases


@pytest.mark.parametrize("case", ["ivar all 0", "ivar all NaN", "ANDMASK everywhere",
                                  "ANDMASK over the window", "flux 0, ivar 0 over 6540-6600 A",
                                  "window-nan", "window-inf"])
def test_a_window_without_enough_usable_pixels_is_rejected_with_the_fraction(case):
    base, cases = _unusable_cases()
    assert preprocess_spectra([base]).good.all()
    sp = cases[case]
    with pytest.raises(UnusableSpectrumError, match=r"usable") as info:
        preprocess_spectrum(sp)
    w = in_window(sp)
    usable = ~sp.mask[w] & np.isfinite(sp.flux[w]) & (sp.ivar[w] > 0)
    shown = re.search(r"(\d+(?:\.\d)?)% of the (\d+) pixels", info.value.reason)
    assert shown, info.value.reason
    assert float(shown.group(1)) == pytest.approx(100 * usable.mean(), abs=0.1)
    assert int(shown.group(2)) == w.sum()
    assert f"{PreprocessSettings().min_usable_fraction:.0%}" in info.value.reason
    # the threshold is a setting: a trough of flagged pixels passes a lower one
    if case.startswith("flux 0"):
        preprocess_spectrum(sp, PreprocessSettings(min_usable_fraction=0.5))


@pytest.mark.parametrize("kind", ["window-constant", "constant"])
def test_flux_constant_over_the_window_is_rejected_even_if_the_margins_vary(kind):
    """The margin pixels alone must not turn a flat window into a ramp or a spike."""
    for sp in (synthetic_lamost(5), synthetic_ccd700(5)):
        flat = mutate(sp, kind, np.random.default_rng(1))
        with pytest.raises(UnusableSpectrumError, match="constant"):
            preprocess_spectrum(flat)


def test_too_few_pixels_in_the_window_is_rejected():
    sp = mutate(synthetic_lamost(2), "absurd-axis", np.random.default_rng(0))
    with pytest.raises(UnusableSpectrumError, match=r"only \d+ pixels? lie in the"):
        preprocess_spectrum(sp)
    # a narrow window is still sampled well enough by LAMOST's ~1.5 A pixels
    narrow = PreprocessSettings(window_min=6550.0, window_max=6570.0, n_points=16)
    assert np.isfinite(preprocess_spectrum(synthetic_lamost(2), narrow)).all()


def test_flux_too_large_to_scale_is_rejected_not_nan():
    """A corrupt file with values near the float64 limit: the min-max scaling overflows."""
    sp = synthetic_lamost(4)
    sp.flux = np.where(np.arange(sp.flux.size) % 2, 1.5e308, -1.5e308)
    with pytest.raises(UnusableSpectrumError, match="too large to resample and scale"):
        preprocess_spectrum(sp)


def test_masking_flagged_pixels_is_off_by_default_and_repairs_a_flagged_spike_when_on():
    clean = synthetic_lamost(7, SINGLE_PEAK, snr=200.0)
    spiked = mutate(clean, "flagged-spike", np.random.default_rng(3))
    default = preprocess_spectrum(spiked)
    # off (the method): the flagged 1e6 is data; the row is flattened to -1 around one spike
    assert not PreprocessSettings().mask_flagged_pixels
    assert np.array_equal(bits(default), bits(method_row(spiked.wavelength, spiked.flux, 0.0)))
    assert np.median(default) < -0.99
    # on: the flagged pixel is interpolated from its good neighbours before resampling
    masked = preprocess_spectrum(spiked, PreprocessSettings(mask_flagged_pixels=True))
    reference = preprocess_spectrum(clean)
    assert np.abs(masked - reference).max() < 0.05
    # and a clean spectrum is the same with and without masking
    assert np.array_equal(bits(preprocess_spectrum(clean, PreprocessSettings(
        mask_flagged_pixels=True))), bits(reference))


def test_masking_interpolates_a_flagged_trough_when_the_threshold_allows_it():
    clean = synthetic_lamost(8, NON_TARGET, snr=150.0)
    holed = _hole(clean, 6600.0, 6620.0)             # 20 A of dead columns beside H-alpha
    on = PreprocessSettings(mask_flagged_pixels=True)
    filled = preprocess_spectrum(holed, on)
    grid = window_grid()
    inside = (grid > 6600) & (grid < 6620)
    # with masking on the trough is gone: no point of it falls below the clean row's minimum
    assert filled[inside].min() > preprocess_spectrum(clean)[inside].min() - 0.1
    assert preprocess_spectrum(holed)[inside].min() == -1.0          # off: the zero is data


@pytest.mark.parametrize("name, value", [("min_usable_fraction", 0.0),
                                         ("min_usable_fraction", 1.5),
                                         ("min_usable_fraction", "0.8"),
                                         ("mask_flagged_pixels", "yes"),
                                         ("mask_flagged_pixels", 1)])
def test_new_settings_are_validated(name, value):
    with pytest.raises(ParameterError, match=name):
        PreprocessSettings(**{name: value}).validate()


def test_spectrum_with_ivar_or_mask_of_another_length_is_rejected_not_raised():
    sp = synthetic_lamost(1)
    sp.ivar = sp.ivar[:-5]
    result = preprocess_spectra([synthetic_lamost(2), sp])
    assert result.reasons[0] is None
    assert "ivar" in result.reasons[1] and str(sp.flux.size) in result.reasons[1]
