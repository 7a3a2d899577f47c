"""The intervals the gate and the report show, on simulated predictions: they cover the truth at
their nominal rate, and AUC is the textbook one."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from components import intervals

SIMULATED_SETS = 1_000


def simulated_coverage(n: int, accuracy: float, seed: int) -> float:
    """The share of SIMULATED_SETS judged splits of n examples, from a 3-class model whose true
    accuracy is `accuracy`, whose accuracy interval contains `accuracy`."""
    rng = np.random.default_rng(seed)
    covered = 0
    for _ in range(SIMULATED_SETS):
        labels = rng.integers(0, 3, n)
        right = rng.random(n) < accuracy
        predicted = np.where(right, labels, (labels + rng.integers(1, 3, n)) % 3)
        estimate = intervals.accuracy(labels, predicted)
        covered += estimate.lower <= accuracy <= estimate.upper
    return covered / SIMULATED_SETS


def test_accuracy_intervals_cover_the_true_accuracy_at_their_nominal_rate():
    """Wilson's coverage swings around 95% with n and p (its exact coverage at n = 20 to 1,000
    and p = 0.5 to 0.99 lies between 0.92 and 0.98); over the grid it averages 95%."""
    grid = [(n, p) for n in (20, 42, 200) for p in (0.6, 0.8, 0.95)]
    coverage = [simulated_coverage(n, p, seed) for seed, (n, p) in enumerate(grid)]
    assert min(coverage) >= 0.90, dict(zip(grid, coverage, strict=True))
    assert 0.935 <= float(np.mean(coverage)) <= 0.965, dict(zip(grid, coverage, strict=True))


def test_a_resampling_collapse_cannot_happen_at_the_edges():
    """All right (or all wrong): a jackknife or bootstrap says [1, 1]; the interval does not."""
    labels = np.zeros(21, dtype=int)
    estimate = intervals.accuracy(labels, labels)
    assert estimate.value == 1.0 and estimate.upper == 1.0 and 0.84 < estimate.lower < 0.85
    assert intervals.accuracy(labels, labels + 1).upper < 0.16


def test_per_class_recall_and_precision_count_the_top1_class():
    labels = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 0, 1, 1, 0, 0])
    recall, precision = intervals.per_class(labels, predicted, 3)
    assert [(r.value, r.n) for r in recall] == [(2 / 3, 3), (0.5, 2), (0.0, 1)]
    assert [(p.value, p.n) for p in precision] == [(0.5, 4), (0.5, 2), (0.0, 0)]
    never_predicted = precision[2]
    assert (never_predicted.lower, never_predicted.upper) == (0.0, 1.0)  # nothing seen


def test_macro_auc_is_sklearns_one_vs_rest_mean_with_a_reproducible_interval():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 120)
    scores = rng.random((120, 4))
    scores[np.arange(120), labels] += 0.4  # better than chance
    probabilities = scores / scores.sum(axis=1, keepdims=True)

    estimate = intervals.macro_auc(labels, probabilities)

    expected = roc_auc_score(labels, probabilities, multi_class="ovr", average="macro")
    assert estimate.value == pytest.approx(expected)
    assert estimate.lower < estimate.value < estimate.upper and estimate.n == 120
    assert intervals.macro_auc(labels, probabilities) == estimate  # seeded
    assert intervals.macro_auc(np.zeros(5, dtype=int), probabilities[:5]) is None  # one class


def test_macro_auc_counts_ties_as_a_half():
    labels = np.array([0, 1, 0, 1])
    constant = np.full((4, 2), 0.5)
    assert intervals.macro_auc(labels, constant).value == 0.5


def test_macro_auc_of_a_tiny_perfectly_separated_split_has_a_finite_interval():
    """Seven examples, as a small test split holds: many resamples miss a class, and the
    interval is taken over those that have an AUC (scipy's percentile of all is NaN)."""
    labels = np.array([0, 0, 1, 1, 2, 2, 2])
    probabilities = np.eye(3)[labels] * 0.9 + 0.05
    estimate = intervals.macro_auc(labels, probabilities)
    assert estimate.value == 1.0
    assert np.isfinite([estimate.lower, estimate.upper]).all()
    assert estimate.lower <= estimate.value <= estimate.upper
