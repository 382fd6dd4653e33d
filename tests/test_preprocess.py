import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from vo_al.core.base.errors import UnusableSpectrumError
from vo_al.core.spectra.preprocess import (HALPHA_VAC, air_to_vacuum, preprocess_batch,
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
