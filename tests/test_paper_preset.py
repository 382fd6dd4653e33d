"""The paper preset of `vo-al simulate`: its size and method, its pool written as rows (the mix of
kinds, LAMOST-like S/N and velocities, rows exactly as ingest makes them of the files), its new
confusers, and the comparison of query strategies on the same data."""

from __future__ import annotations

import copy
import csv
import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from vo_al.core.base.errors import ParameterError, ProjectError
from vo_al.core.base.progress import run_job
from vo_al.core.demo.datasets import training_labels
from vo_al.core.demo.files import write_ccd700_fits, write_lamost_fits
from vo_al.core.demo.instruments import CCD700_DEGRADED_RESOLUTION, LAMOST_RESOLUTION
from vo_al.core.demo.kinds import KIND_LABEL, PAPER_MIX, PoolMix
from vo_al.core.demo.lines import C_KMS, OH_VAC, instrument_sigma
from vo_al.core.demo.artefacts import add_sky_residuals
from vo_al.core.demo.rows import (ccd700_spectrum, pool_layout, pool_spectrum, write_pool_rows,
                                  write_training_rows)
from vo_al.core.demo.simulate import (PRESETS, SimulationConfig, check_strategies,
                                      comparison_markdown, paper_config, prepare, run_comparison)
from vo_al.core.demo.stars import _halpha_centre, active_star
from vo_al.core.demo.survey import PAPER_SURVEY
from vo_al.core.learning.classes import DOUBLE_PEAK, NON_TARGET, SINGLE_PEAK
from vo_al.core.pool.ingest import ingest_files
from vo_al.core.pool.store import PoolStore
from vo_al.core.session.project import Project
from vo_al.core.session.settings import ProjectSettings, update_settings
from vo_al.core.spectra.readers import read_spectrum
from vo_al.core.spectra.settings import PreprocessSettings

N_POOL, POOL_SEED = 3000, 1
SETTINGS = PreprocessSettings()


@pytest.fixture(scope="module")
def paper_pool(tmp_path_factory):
    """A paper-preset pool scaled down to 3 000 spectra, and its truth."""
    folder = tmp_path_factory.mktemp("paper")
    pool = PoolStore.create(folder / "pool", SETTINGS)
    report = run_job(write_pool_rows(pool, folder / "truth.csv", N_POOL, PAPER_SURVEY,
                                     POOL_SEED, 0.01, SETTINGS))
    with open(folder / "truth.csv", newline="") as fh:
        truth = {row["name"]: row for row in csv.DictReader(fh)}
    return pool, truth, report


def test_the_preset_is_the_papers_size_and_method():
    make_config, make_settings = PRESETS["paper"]
    config, settings = make_config(), make_settings()
    config.validate()
    assert config.n_pool >= 200_000 and config.n_train == 13_000
    assert config.target_fraction == 0.01 and config.survey == "paper"
    m, p = settings.method, settings.preprocess
    assert (m.batch_size, m.strategy, m.precision_sample) == (100, "entropy", 30)
    assert (m.precision_threshold, m.threshold_hits, m.patience, m.long_patience) == \
        (0.8, 3, 10, 100)
    assert (p.window_min, p.window_max, p.n_points, p.ccd700_sigma_px) == (6519, 6732, 140, 7)
    assert paper_config(n_pool=5000).n_pool == 5000
    with pytest.raises(ParameterError, match="survey"):
        SimulationConfig(survey="sdss").validate()


def test_paper_pool_holds_every_kind_in_its_mix(paper_pool):
    pool, truth, report = paper_pool
    kinds = Counter(row["kind"] for row in truth.values())
    assert kinds["single"] == 26 and kinds["double"] == 4            # 1 %, single : double 6 : 1
    for kind, fraction in PAPER_MIX.fractions().items():
        assert abs(kinds[kind] - 0.99 * N_POOL * fraction) <= 1, kind
    assert {"active", "sky", "nebular", "cool", "spike", "join", "gap", "noise"} <= set(kinds)
    for row in truth.values():
        assert int(row["label"]) == KIND_LABEL[row["kind"]]
    # every spectrum is a row or a rejection ingest would make (dead columns over Hα)
    assert report["rows"] + report["rejected"] == N_POOL == len(pool) + len(pool.rejected())
    assert {truth[name]["kind"] for name, _ in pool.rejected()} == {"gap"}
    rows = pool.rows(np.arange(len(pool)))
    assert rows.shape == (len(pool), 140) and np.isfinite(rows).all()
    np.testing.assert_allclose(rows.min(axis=1), -1, atol=1e-6)
    np.testing.assert_allclose(rows.max(axis=1), 1, atol=1e-6)


def test_paper_pool_snr_is_lamosts_log_normal(paper_pool):
    pool, truth, _ = paper_pool
    meta = pool.metadata(columns=["name", "snr"])
    snr = np.array([s for n, s in zip(meta["name"], meta["snr"])
                    if truth[n]["kind"] != "noise"])
    assert 20 < np.median(snr) < 34                      # SurveyModel: median 26
    assert 0.9 < np.std(np.log(snr)) < 1.1               # σ(ln S/N) 1.0
    assert 0.04 < np.mean(snr > 100) < 0.14 and 0.02 < np.mean(snr < 5) < 0.09   # both tails
    noise = [s for n, s in zip(meta["name"], meta["snr"]) if truth[n]["kind"] == "noise"]
    assert noise and max(noise) <= 2.0


def test_paper_pool_stars_have_radial_velocities(paper_pool):
    pool, _, _ = paper_pool
    velocity = pool.metadata(columns=["z"])["z"] * C_KMS
    assert np.isfinite(velocity).all()
    assert 45 < np.std(velocity) < 65 and abs(np.mean(velocity)) < 5    # σ 40, 10 % at σ 120
    assert np.mean(np.abs(velocity) > 150) > 0.005                      # the hot population


def test_paper_survey_snr_follows_the_real_lamost_spectra(real_data):
    snr = [read_spectrum(path).meta.snr for path in sorted(real_data.glob("lamost-dr*/*.fits"))]
    assert len(snr) >= 10
    median, spread = math.exp(np.mean(np.log(snr))), np.std(np.log(snr), ddof=1)
    assert median == pytest.approx(PAPER_SURVEY.snr_median, rel=0.1)
    assert spread == pytest.approx(PAPER_SURVEY.snr_sigma, abs=0.1)


def test_pool_rows_are_what_ingest_makes_of_the_files(paper_pool, tmp_path):
    pool, truth, _ = paper_pool
    layout = pool_layout(N_POOL, PAPER_SURVEY, POOL_SEED, 0.01)
    kinds = np.array(layout.kinds)
    picked = [int(np.flatnonzero(kinds == kind)[j]) for kind in ("absorption", "single",
                                                                  "double", "active", "sky",
                                                                  "gap", "noise", "nebular")
              for j in range(2)]
    paths = []
    for i in picked:          # DR2's layout (a table layout's float32 wavelengths differ a little)
        spectrum, header = pool_spectrum(layout, i, PAPER_SURVEY)
        paths.append(write_lamost_fits(tmp_path / "files" / header.filename, *spectrum.arrays(),
                                       meta=header, layout="image"))
    from_files = PoolStore.create(tmp_path / "ingested", SETTINGS)
    run_job(ingest_files(from_files, paths, settings=SETTINGS, workers=0))
    names = list(from_files.metadata(columns=["name"])["name"])
    ours = pool.index_of(names)
    np.testing.assert_allclose(pool.rows(ours), from_files.rows(np.arange(len(names))),
                               atol=2e-6)
    columns = ["name", "designation", "obsid", "cls", "subclass", "ra", "dec", "z", "snr",
               "instrument"]
    a, b = pool.metadata(ours, columns), from_files.metadata(None, columns)
    for column in columns:
        if a[column].dtype.kind == "f":
            np.testing.assert_allclose(a[column], b[column], rtol=1e-9)
        else:
            assert list(a[column]) == list(b[column]), column
    assert {Path(f).name: r for f, r in from_files.rejected()} == \
        {f: r for f, r in pool.rejected() if f in {p.name for p in paths}}


def test_training_rows_are_what_ingest_makes_of_the_files(tmp_path):
    n, seed = 60, 0
    training = PoolStore.create(tmp_path / "training", SETTINGS)
    labels = run_job(write_training_rows(training, n, PAPER_SURVEY, seed, SETTINGS))
    assert Counter(labels.values()) == {NON_TARGET: 28, SINGLE_PEAK: 25, DOUBLE_PEAK: 7}
    paths = []
    for i, label in enumerate(training_labels(n, np.random.default_rng(seed))):
        wl_air, flux, meta = ccd700_spectrum(i, int(label), seed, PAPER_SURVEY)
        paths.append(write_ccd700_fits(tmp_path / "files" / meta.name, wl_air, flux,
                                       meta.designation, meta.ra, meta.dec))
    from_files = PoolStore.create(tmp_path / "ingested", SETTINGS)
    run_job(ingest_files(from_files, paths, settings=SETTINGS, workers=0))
    names = list(from_files.metadata(columns=["name"])["name"])
    assert sorted(names) == sorted(labels)
    np.testing.assert_allclose(training.rows(training.index_of(names)),
                               from_files.rows(np.arange(len(names))), atol=2e-6)


# ---------------------------------------------------------------- the new confusers

def test_active_stars_keep_halpha_in_absorption_with_a_filled_core():
    for seed in range(20):
        star = active_star(np.random.default_rng(seed), LAMOST_RESOLUTION, min_depth=0.03)
        assert star.spectral_type in "KM" and len(star.emission) == 1
        assert _halpha_centre(star, LAMOST_RESOLUTION) <= 0.97       # below the continuum
        bare = copy.deepcopy(star)
        bare.emission = []
        # the core fills part of the trough, at the pool's and at the training set's resolution
        for resolution in (LAMOST_RESOLUTION, CCD700_DEGRADED_RESOLUTION):
            assert _halpha_centre(star, resolution) > _halpha_centre(bare, resolution)


def test_sky_residuals_sit_on_the_oh_lines_and_grow_as_the_star_fades():
    wl = np.linspace(6450, 6800, 4000)
    sigma = instrument_sigma(6570, LAMOST_RESOLUTION)
    # within 4 σ of a line, beyond the ±30 km/s heliocentric shift and the lobes' offset
    near_oh = np.min(np.abs(wl[:, None] - np.array(OH_VAC)[None, :]), axis=1) < 4 * sigma + 1.5
    sizes = {}
    for snr in (50.0, 5.0):
        total = []
        for seed in range(30):
            flux = np.ones_like(wl)
            add_sky_residuals(flux, wl, np.ones_like(wl), np.random.default_rng(seed), snr)
            residual = np.abs(flux - 1)
            assert residual[~near_oh].max() < 1e-2 * residual.max()
            total.append(residual.sum())
        sizes[snr] = np.median(total)
    assert sizes[5.0] > 3 * sizes[50.0]


def test_demo_mix_is_unchanged_by_the_papers_kinds():
    assert PoolMix().active == PoolMix().sky == 0.0
    assert PAPER_MIX.active > 0 and PAPER_MIX.sky > 0


# ---------------------------------------------------------------- strategies

def test_strategy_names_are_checked():
    assert check_strategies(["entropy", " margin"]) == ["entropy", "margin"]
    for bad in (["entropy", "bogus"], [], ["random", "random"]):
        with pytest.raises(ParameterError):
            check_strategies(bad)
    result = subprocess.run([sys.executable, "-m", "vo_al.cli", "simulate", "--strategies",
                             "entropy,least_confident"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and "least_confident" in result.stderr
    assert "least-confidence" in result.stderr


def test_a_folder_resumes_only_with_its_own_survey(tmp_path):
    (tmp_path / "simulation-config.json").write_text(json.dumps(
        {"n_train": 10, "n_pool": 20, "target_fraction": 0.01, "seed": 0}))   # before 'survey'
    with pytest.raises(ProjectError, match="made with"):
        run_job(prepare(tmp_path, paper_config(n_train=10, n_pool=20)))


@pytest.mark.slow
def test_strategies_compared_on_the_same_data(tmp_path):
    settings = ProjectSettings.default()
    update_settings(settings.method, batch_size=20, precision_sample=10, max_epochs=1,
                    long_max_epochs=1, long_patience=1)
    config = paper_config(n_train=90, n_pool=300, max_iterations=2, finish=False)
    report = run_job(run_comparison(tmp_path, config, ["entropy", "random"], settings))
    assert report.strategies == ["entropy", "random"] and report.baseline is not None
    training = []
    for name in report.strategies:
        run = report.runs[name]
        assert [r["iteration"] for r in run.iterations] == [0, 1]
        assert run.config["strategy"] == name
        project = Project.open(tmp_path / name)
        assert project.settings.method.strategy == name
        assert project.pool_folder.resolve() == (tmp_path / "pool").resolve()   # one pool
        training.append(project.training_arrays())
        project.close()
    np.testing.assert_array_equal(training[0][0], training[1][0])           # one labelled set
    np.testing.assert_array_equal(training[0][1], training[1][1])
    saved = json.loads((tmp_path / "comparison.json").read_text())
    assert set(saved["runs"]) == {"entropy", "random"}
    assert (tmp_path / "comparison.png").stat().st_size > 0
    text = comparison_markdown(report)
    assert "| entropy |" in text and "| random |" in text and "Non-active baseline" in text
    assert text.count("\n| 0 |") == 1 and text.count("\n| 1 |") == 1
