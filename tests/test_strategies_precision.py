import numpy as np
import pytest
from scipy.stats import binomtest

from vo_al.core.learning.balance import smote_balance
from vo_al.core.base.errors import ParameterError
from vo_al.core.learning.precision import draw_precision_sample, estimate_precision
from vo_al.core.learning.strategies import (STRATEGIES, entropy_score, least_confidence_score,
                                   margin_score, query, select)


def test_entropy_is_natural_log_and_maximal_for_uniform():
    p = np.array([[1 / 3] * 3, [1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    np.testing.assert_allclose(entropy_score(p), [np.log(3), 0.0, np.log(2)])


def test_margin_and_least_confidence_order():
    p = np.array([[0.9, 0.05, 0.05], [0.4, 0.35, 0.25], [0.6, 0.3, 0.1]])
    assert list(np.argsort(-margin_score(p))) == [1, 2, 0]
    assert list(np.argsort(-least_confidence_score(p))) == [1, 2, 0]


def test_select_takes_top_n_among_available_only():
    scores = np.array([0.9, 0.1, 0.8, 0.7, 0.95])
    available = np.array([True, True, True, True, False])
    assert list(select(scores, available, 2)) == [0, 2]
    assert list(select(scores, available, 10)) == [0, 2, 3, 1]
    assert select(scores, np.zeros(5, bool), 3).size == 0


def test_query_matches_brute_force_on_a_large_pool():
    rng = np.random.default_rng(0)
    p = rng.dirichlet([0.3, 0.3, 0.3], size=200_000)
    available = rng.random(200_000) > 0.1
    batch = query("entropy", p, available, 100)
    h = entropy_score(p)
    h[~available] = -np.inf
    expected = np.argsort(-h, kind="stable")[:100]
    assert set(batch) == set(expected)
    assert list(STRATEGIES) == ["entropy", "margin", "least-confidence", "random"]


def test_unknown_strategy_is_a_named_error():
    with pytest.raises(ParameterError, match="strategy='bald'"):
        query("bald", np.ones((3, 3)) / 3, np.ones(3, bool), 1)


def test_precision_and_lower_bound_match_scipy():
    est = estimate_precision(25, 30, 0.95)
    assert est.precision == pytest.approx(25 / 30)
    ci = binomtest(25, 30).proportion_ci(confidence_level=0.90, method="exact")
    assert est.lower_bound == pytest.approx(ci.low, rel=1e-6)  # one-sided 95 % = two-sided 90 %
    assert estimate_precision(0, 30).lower_bound == 0.0


def test_precision_sample_is_random_predicted_targets_only():
    rng = np.random.default_rng(1)
    predicted = np.zeros(1000, bool)
    predicted[::10] = True
    available = np.ones(1000, bool)
    available[:100] = False
    sample = draw_precision_sample(predicted, available, 30, rng)
    assert len(sample) == 30 and len(set(sample)) == 30
    assert predicted[sample].all() and available[sample].all()


def test_smote_balances_every_class_to_the_majority():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(130, 140)).astype(np.float32)
    y = np.array([0] * 100 + [1] * 27 + [2] * 3)
    xb, yb = smote_balance(x, y)
    assert np.bincount(yb).tolist() == [100, 100, 100]
    # originals are kept, new rows are interpolations (inside the class's bounding box)
    assert np.isin(x[:, 0], xb[:, 0]).all()
    new2 = xb[len(x):][yb[len(x):] == 2]
    lo, hi = x[y == 2].min(axis=0), x[y == 2].max(axis=0)
    assert ((new2 >= lo - 1e-5) & (new2 <= hi + 1e-5)).all()


def test_simulation_report_survives_an_empty_precision_sample():
    """When the oracle has taken every predicted target, the sample is empty (precision NaN)."""
    from vo_al.core.demo.simulate import SimulationReport, report_markdown

    nan = float("nan")
    row = dict(iteration=0, n_train=10, estimated_precision=nan, lower_bound=0.0, sample_size=0,
               true_precision=nan, true_recall=nan, predicted_targets=0, oracle_targets=3,
               epochs=1, seconds=1.0)
    text = report_markdown(SimulationReport(config={}, iterations=[row]))
    assert "no predicted target left to sample" in text
