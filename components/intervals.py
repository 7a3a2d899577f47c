"""The uncertainty of what the judged split measured, computed from each example's prediction
(the Scorer's): Wilson intervals for proportions (accuracy, per-class recall and precision), a
bootstrap for macro AUC, a paired bootstrap for the difference of two models. Seeded, so the
same predictions always give the same intervals. Plain functions of arrays: no TensorFlow."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
PAIRED_RESAMPLES = 10_000
AUC_RESAMPLES = 1_000
SEED = 0  # a fixed seed: the same predictions always get the same decision


@dataclass
class Estimate:
    """A metric with its 95% confidence interval over n examples."""

    value: float
    lower: float
    upper: float
    n: int

    def text(self) -> str:
        return f"{self.value:.3f} (95% CI {self.lower:.2f} to {self.upper:.2f}, n = {self.n})"


@dataclass
class Paired:
    """Candidate and baseline on the same examples: per-example correctness counts, and the
    accuracy difference (candidate minus baseline) with a paired-bootstrap 95% interval."""

    fixed: int  # baseline wrong, candidate right
    broken: int  # baseline right, candidate wrong
    both_right: int
    both_wrong: int
    difference: float
    lower: float
    upper: float

    @property
    def n(self) -> int:
        return self.fixed + self.broken + self.both_right + self.both_wrong


def wilson_interval(successes: int, n: int) -> tuple[float, float]:
    """The Wilson score interval of a proportion (scipy's): sound at small n and at 0 or 1,
    where a resampling interval (TFMA's jackknife, a bootstrap) collapses to a point."""
    if n <= 0:
        return 0.0, 1.0
    interval = stats.binomtest(int(successes), int(n)).proportion_ci(
        confidence_level=CONFIDENCE, method="wilson"
    )
    return max(0.0, float(interval.low)), min(1.0, float(interval.high))


def proportion(successes: int, n: int) -> Estimate:
    """successes / n with its Wilson interval; 0 with the interval [0, 1] when n is 0."""
    low, high = wilson_interval(successes, n)
    return Estimate(value=successes / n if n else 0.0, lower=low, upper=high, n=int(n))


def accuracy(labels: np.ndarray, predicted: np.ndarray) -> Estimate:
    return proportion(int((predicted == labels).sum()), len(labels))


def per_class(
    labels: np.ndarray, predicted: np.ndarray, num_classes: int
) -> tuple[list[Estimate], list[Estimate]]:
    """(recall, precision) of each class, a class counting as predicted when it is the top-1
    class, as for accuracy. Recall's n is the class's examples, precision's the examples
    predicted as the class (0 when it never was: the interval is then [0, 1])."""
    recall, precision = [], []
    for k in range(num_classes):
        hits = int(((labels == k) & (predicted == k)).sum())
        recall.append(proportion(hits, int((labels == k).sum())))
        precision.append(proportion(hits, int((predicted == k).sum())))
    return recall, precision


def macro_auc(labels: np.ndarray, probabilities: np.ndarray, seed: int = SEED) -> Estimate | None:
    """The mean over classes of one-vs-rest ROC AUC (each class's probability ranked against
    the others' examples), with a percentile bootstrap interval over examples (AUC_RESAMPLES).
    Classes absent from the split (or from a resample) are left out of that mean; None when
    fewer than two classes are present."""
    labels = np.asarray(labels)
    if len(np.unique(labels)) < 2:
        return None
    classes = np.unique(labels)

    def statistic(rows: np.ndarray, axis: int = -1) -> np.ndarray:
        rows = np.atleast_2d(rows)  # (resamples, n) example positions
        return _mean_auc(labels[rows], probabilities[:, classes][rows], classes)

    value = float(statistic(np.arange(len(labels)))[0])
    result = stats.bootstrap(
        (np.arange(len(labels)),),
        statistic,
        n_resamples=AUC_RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",
        vectorized=True,
        batch=100,
        random_state=np.random.default_rng(seed),
    )
    # A resample that holds one class only has no AUC (NaN): the interval is taken over the
    # resamples that have one (scipy's own percentile would be NaN on a small split).
    defined = result.bootstrap_distribution[~np.isnan(result.bootstrap_distribution)]
    if not defined.size:
        return Estimate(value=value, lower=0.0, upper=1.0, n=len(labels))
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(defined, [tail, 100 - tail])
    return Estimate(value=value, lower=float(low), upper=float(high), n=len(labels))


def _mean_auc(labels: np.ndarray, scores: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Per row (a resample), the mean one-vs-rest AUC by the rank-sum (Mann-Whitney U) formula,
    ties counting a half. labels: (rows, n); scores: (rows, n, classes)."""
    aucs = []
    for j, k in enumerate(classes):
        positive = labels == k
        ranks = stats.rankdata(scores[..., j], axis=-1)
        n_positive = positive.sum(axis=-1)
        n_negative = labels.shape[-1] - n_positive
        rank_sum = (ranks * positive).sum(axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):  # NaN: no positive or negative
            aucs.append((rank_sum - n_positive * (n_positive + 1) / 2) / (n_positive * n_negative))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a row where every class is NaN
        return np.nanmean(np.stack(aucs), axis=0)


def paired_comparison(
    candidate_correct: np.ndarray, baseline_correct: np.ndarray, seed: int = SEED
) -> Paired:
    """Counts the four outcomes per example and bootstraps the accuracy difference over
    examples, keeping each example's pair together."""
    candidate = np.asarray(candidate_correct, dtype=bool)
    baseline = np.asarray(baseline_correct, dtype=bool)
    if candidate.shape != baseline.shape or candidate.ndim != 1:
        raise ValueError("candidate and baseline must be judged on the same examples")
    n = len(candidate)
    delta = candidate.astype(np.int8) - baseline.astype(np.int8)  # +1 fixed, -1 broken
    difference = float(delta.mean()) if n else 0.0
    if n:
        rng = np.random.default_rng(seed)
        samples = rng.integers(0, n, size=(PAIRED_RESAMPLES, n))
        means = delta[samples].mean(axis=1)
        lower, upper = (float(q) for q in np.quantile(means, [0.025, 0.975]))
    else:
        lower, upper = -1.0, 1.0
    return Paired(
        fixed=int((candidate & ~baseline).sum()),
        broken=int((~candidate & baseline).sum()),
        both_right=int((candidate & baseline).sum()),
        both_wrong=int((~candidate & ~baseline).sum()),
        difference=difference,
        lower=lower,
        upper=upper,
    )
