"""The blessing rules on hand-made evidence: intervals, evidence, random weights, pairing."""

import numpy as np
import pytest

from components.gate import Evidence, judge
from components.intervals import Estimate, paired_comparison, proportion, wilson_interval
from components.settings import EvaluationConfig

CLASSES = ["a", "b", "c"]


def evidence(
    right: int = 13, n: int = 21, per_class=(7, 7, 7), recall=(0.9, 0.9, 0.9), **extra
) -> Evidence:
    return Evidence(
        accuracy=proportion(right, n),
        class_names=CLASSES,
        examples_per_class=list(per_class),
        recall=[proportion(round(r * c), c) for r, c in zip(recall, per_class, strict=True)],
        **extra,
    )


def test_wilson_interval_matches_the_textbook_and_does_not_collapse_at_the_edges():
    low, high = wilson_interval(13, 21)  # 0.619
    assert (round(low, 3), round(high, 3)) == (0.409, 0.792)
    low, high = wilson_interval(21, 21)
    assert high == 1.0 and 0.84 < low < 0.85  # a resampling interval would say [1, 1]


def test_a_proportion_carries_its_wilson_interval_and_says_so():
    estimate = proportion(13, 21)
    assert (estimate.value, estimate.n) == (13 / 21, 21)
    assert (estimate.lower, estimate.upper) == wilson_interval(13, 21)
    assert estimate.text() == "0.619 (95% CI 0.41 to 0.79, n = 21)"
    assert proportion(0, 0) == Estimate(0.0, 0.0, 1.0, 0)  # nothing seen: anything possible


def test_lower_bound_and_point_estimate_disagree_on_the_same_split():
    """0.619 on 21 examples clears 0.5 as a point but not as a 95% lower bound (0.41)."""
    by_lower_bound = judge(evidence(), EvaluationConfig(min_accuracy=0.5))
    by_point = judge(evidence(), EvaluationConfig(min_accuracy=0.5, judge_on="point"))
    assert by_point.blessed and by_point.reasons == []
    assert not by_lower_bound.blessed
    (reason,) = by_lower_bound.reasons
    assert "lower bound" in reason and "0.409" in reason
    assert "0.619 (95% CI 0.41 to 0.79, n = 21)" in reason
    assert "evaluation.judge_on=lower_bound" in reason


def test_a_model_no_better_than_always_answering_the_most_common_class_is_refused():
    """68% of the judged split is class a: 0.75 clears min_accuracy=0.5 by its lower bound
    (0.65) but not what always answering a scores."""
    skewed = evidence(right=75, n=100, per_class=(68, 22, 10))
    result = judge(skewed, EvaluationConfig(min_accuracy=0.5))
    (reason,) = result.reasons
    assert "the lower bound of accuracy's 95% interval is 0.657, not above 0.680" in reason
    assert "always answering 'a'" in reason and "(68 of its 100 examples)" in reason
    assert "evaluation.beat_majority_class=false" in reason
    assert judge(skewed, EvaluationConfig(min_accuracy=0.5, beat_majority_class=False)).blessed
    assert judge(evidence(right=85, n=100, per_class=(68, 22, 10)), EvaluationConfig()).blessed
    # judged like min_accuracy: the point estimate under judge_on=point
    assert judge(skewed, EvaluationConfig(judge_on="point")).blessed


def test_too_few_examples_say_how_many_are_missing_and_which_option():
    result = judge(
        evidence(right=12, n=12, per_class=(5, 5, 2)),
        EvaluationConfig(min_accuracy=0.1, min_examples=20, min_examples_per_class=5),
    )
    assert not result.blessed
    total, per_class = result.reasons
    assert "12 examples, 8 short of evaluation.min_examples=20" in total
    assert "c 2 (needs 3 more)" in per_class
    assert "evaluation.min_examples_per_class=5" in per_class


def test_worst_class_recall_gates_only_when_asked():
    weak_class = evidence(right=20, n=21, recall=(1.0, 1.0, 0.2))
    assert judge(weak_class, EvaluationConfig()).blessed  # min_class_recall is off by default
    result = judge(weak_class, EvaluationConfig(min_class_recall=0.5, judge_on="point"))
    assert not result.blessed
    (reason,) = result.reasons
    assert reason.startswith("recall of class c is 0.143")  # 1 of 7
    assert "evaluation.min_class_recall=0.5" in reason


def test_a_random_weight_fallback_is_not_blessed_unless_allowed():
    fallback = evidence(
        right=21,
        base_weights="random (ImageNet weights unavailable)",
        weights_warning="WARNING: ImageNet weights could not be loaded",
    )
    refused = judge(fallback, EvaluationConfig())
    assert not refused.blessed and refused.random_weights == "fallback"
    assert "evaluation.bless_random_weights=true" in refused.reasons[0]
    allowed = judge(fallback, EvaluationConfig(bless_random_weights=True))
    assert allowed.blessed and "random weights" in allowed.notes[0]

    chosen = judge(
        evidence(right=21, base_weights="random initialization (training.weights=none)"),
        EvaluationConfig(),
    )
    assert chosen.blessed and chosen.random_weights == "chosen"
    assert "training.weights=none" in chosen.notes[0]


def test_paired_counts_of_two_hand_made_prediction_sets():
    candidate = np.array([1, 1, 1, 1, 0, 0, 1, 0], dtype=bool)
    baseline = np.array([1, 1, 0, 0, 1, 0, 0, 0], dtype=bool)
    paired = paired_comparison(candidate, baseline)
    assert (paired.both_right, paired.fixed, paired.broken, paired.both_wrong) == (2, 3, 1, 2)
    assert paired.n == 8 and paired.difference == pytest.approx(2 / 8)
    assert paired.lower <= paired.difference <= paired.upper
    assert paired_comparison(candidate, baseline) == paired  # the same data, the same interval
    with pytest.raises(ValueError, match="same examples"):
        paired_comparison(candidate, baseline[:5])


def test_better_is_claimed_only_when_significant():
    n = 22
    baseline = np.zeros(n, dtype=bool)
    baseline[:13] = True  # 0.591
    small_gain = baseline.copy()
    small_gain[13:15] = True  # 0.682: two fixed, nothing broken
    result = judge(evidence(right=n, n=n), EvaluationConfig(min_accuracy=0))
    assert result.comparison == ""  # no baseline, no comparison
    paired = paired_comparison(small_gain, baseline)
    assert paired.lower <= 0  # 2 of 22 cannot establish a gain
    result = judge(evidence(right=15, n=n, paired=paired), EvaluationConfig(min_accuracy=0))
    assert result.blessed and result.comparison == "not worse"

    large_gain = baseline.copy()
    large_gain[13:21] = True  # eight fixed
    paired = paired_comparison(large_gain, baseline)
    result = judge(evidence(right=21, n=n, paired=paired), EvaluationConfig(min_accuracy=0))
    assert paired.lower > 0 and result.comparison == "better"


def test_only_a_significant_drop_beyond_the_margin_fails_the_change_threshold():
    n = 40
    baseline = np.ones(n, dtype=bool)
    one_broken = baseline.copy()
    one_broken[0] = False  # 0.975 vs 1.0: worse by 0.025, not significantly beyond 0.01
    result = judge(
        evidence(right=39, n=n, paired=paired_comparison(one_broken, baseline)),
        EvaluationConfig(min_accuracy=0, max_accuracy_drop=0.01),
    )
    assert result.blessed and result.comparison == "not worse"

    many_broken = baseline.copy()
    many_broken[:12] = False
    result = judge(
        evidence(right=28, n=n, paired=paired_comparison(many_broken, baseline)),
        EvaluationConfig(min_accuracy=0, max_accuracy_drop=0.01),
    )
    assert not result.blessed and result.comparison == "worse"
    (reason,) = result.reasons
    assert "fixed 0, broken 12, both right 28, both wrong 0" in reason
    assert "evaluation.max_accuracy_drop" in reason


def test_every_failed_rule_is_reported_at_once():
    result = judge(
        Evidence(
            accuracy=Estimate(0.2, 0.05, 0.5, 10),
            class_names=CLASSES,
            examples_per_class=[7, 2, 1],
            recall=[Estimate(0.2, 0.0, 0.6, 4)] * 3,
            base_weights="random (ImageNet weights unavailable)",
        ),
        EvaluationConfig(),
    )
    assert len(result.reasons) == 5  # weights, total, per class, accuracy, majority class
