"""The blessing rules: what evidence a model needs before it may be deployed, as plain
functions of numbers (the Judge step gathers the numbers, these decide)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from components.base_weights import FALLBACK_DESCRIPTION

JUDGE_ON = ("lower_bound", "point")
Z_95 = 1.959963984540054
PAIRED_RESAMPLES = 10_000
PAIRED_SEED = 0  # a fixed seed: the same predictions always get the same decision


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
class GateSettings:
    min_accuracy: float = 0.5
    max_accuracy_drop: float = 0.01
    judge_on: str = "lower_bound"
    min_examples: int = 20
    min_examples_per_class: int = 3
    min_class_recall: float = 0.0
    beat_majority_class: bool = True
    bless_random_weights: bool = False


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


@dataclass
class Evidence:
    """What the judge knows about a candidate."""

    accuracy: Estimate
    class_names: list[str]
    examples_per_class: list[int]
    recall: list[Estimate]
    base_weights: str = ""
    weights_warning: str = ""
    paired: Paired | None = None
    baseline: str = ""  # how the baseline was chosen or why there is none, for people
    already_served: dict[str, Any] | None = None  # {"version", "run_id"} of the same model


@dataclass
class Judgement:
    blessed: bool
    reasons: list[str] = field(default_factory=list)  # why not blessed, one line each
    notes: list[str] = field(default_factory=list)  # what people should know either way
    comparison: str = ""  # "better", "not worse", "worse", "" (no baseline)
    random_weights: str = ""  # "fallback", "chosen" or ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion: sound at small n and at 0 or 1, where a
    resampling interval (TFMA's jackknife or bootstrap) collapses to a point."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def cautious_estimate(value: float, n: int, tfma_interval: tuple[float, float] | None) -> Estimate:
    """A proportion's estimate whose interval is the wider of TFMA's (jackknife) and Wilson's,
    clipped to [0, 1]: TFMA's alone says [1.00, 1.00] for 21 right out of 21."""
    low, high = wilson_interval(round(value * n), n)
    if tfma_interval is not None:
        low, high = min(low, tfma_interval[0]), max(high, tfma_interval[1])
    return Estimate(value=value, lower=max(0.0, low), upper=min(1.0, high), n=n)


def paired_comparison(
    candidate_correct: np.ndarray, baseline_correct: np.ndarray, seed: int = PAIRED_SEED
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


def random_weights_kind(base_weights: str, weights_warning: str) -> str:
    """'fallback' when ImageNet weights were wanted and not had, 'chosen' for
    training.weights=none, else ''."""
    if weights_warning or base_weights == FALLBACK_DESCRIPTION:
        return "fallback"
    if base_weights.startswith("random"):
        return "chosen"
    return ""


def judge(evidence: Evidence, settings: GateSettings) -> Judgement:
    """Every rule is applied and every failure reported, so one run says all that is wrong."""
    reasons: list[str] = []
    notes: list[str] = []
    kind = random_weights_kind(evidence.base_weights, evidence.weights_warning)
    if kind == "fallback" and not settings.bless_random_weights:
        reasons.append(
            "the VGG16 base fell back to RANDOM weights because ImageNet weights could not be "
            "loaded; such a model is not deployed by accident. Provide the weights (see "
            "training.weights), or set evaluation.bless_random_weights=true to judge it anyway"
        )
    elif kind:
        notes.append(
            "this model's VGG16 base was trained from random weights"
            + (" (training.weights=none)" if kind == "chosen" else " (ImageNet unavailable)")
        )
    reasons += _evidence_reasons(evidence, settings)
    reasons += _value_reasons(evidence, settings)
    comparison = ""
    if evidence.paired is not None:
        comparison, reason = _change_verdict(evidence.paired, settings)
        if reason:
            reasons.append(reason)
    return Judgement(
        blessed=not reasons,
        reasons=reasons,
        notes=notes,
        comparison=comparison,
        random_weights=kind,
    )


def _evidence_reasons(evidence: Evidence, settings: GateSettings) -> list[str]:
    reasons = []
    n = evidence.accuracy.n
    if n < settings.min_examples:
        reasons.append(
            f"too little evidence: the judged split has {n} examples, {settings.min_examples - n}"
            f" short of evaluation.min_examples={settings.min_examples}. Add examples to the "
            "test (or eval) split, or lower evaluation.min_examples"
        )
    short = [
        f"{name} {count} (needs {settings.min_examples_per_class - count} more)"
        for name, count in zip(evidence.class_names, evidence.examples_per_class, strict=True)
        if count < settings.min_examples_per_class
    ]
    if short:
        reasons.append(
            f"too little evidence for {len(short)} class(es): {', '.join(short)}, below "
            f"evaluation.min_examples_per_class={settings.min_examples_per_class}. Add "
            "examples of these classes to the judged split, or lower that option"
        )
    return reasons


def _value_reasons(evidence: Evidence, settings: GateSettings) -> list[str]:
    reasons = []
    point = settings.judge_on == "point"
    accuracy = evidence.accuracy
    judged = accuracy.value if point else accuracy.lower
    if judged < settings.min_accuracy:
        what = "accuracy" if point else "the lower bound of accuracy's 95% interval"
        reasons.append(
            f"{what} is {judged:.3f}, below evaluation.min_accuracy={settings.min_accuracy} "
            f"(accuracy {accuracy.text()}; evaluation.judge_on={settings.judge_on})"
        )
    majority = majority_class(evidence.class_names, evidence.examples_per_class)
    if settings.beat_majority_class and majority and judged <= majority[1]:
        what = "accuracy" if point else "the lower bound of accuracy's 95% interval"
        name, share, count = majority
        reasons.append(
            f"{what} is {judged:.3f}, not above {share:.3f}, what always answering {name!r} "
            f"scores on the judged split ({count} of its {accuracy.n} examples): the model is "
            f"not shown to beat that (accuracy {accuracy.text()}). Set "
            "evaluation.beat_majority_class=false to judge on evaluation.min_accuracy alone"
        )
    if settings.min_class_recall > 0:
        for name, recall in zip(evidence.class_names, evidence.recall, strict=True):
            value = recall.value if point else recall.lower
            if value < settings.min_class_recall:
                reasons.append(
                    f"recall of class {name} is {recall.text()}, below "
                    f"evaluation.min_class_recall={settings.min_class_recall} "
                    f"(evaluation.judge_on={settings.judge_on})"
                )
    return reasons


def majority_class(
    class_names: list[str], examples_per_class: list[int]
) -> tuple[str, float, int] | None:
    """(name, share, count) of the judged split's most common class: the accuracy of a model
    that always answers it, which an absolute min_accuracy does not see (0.5 is below it on a
    split that is 68% one class). None for a split without examples."""
    total = sum(examples_per_class)
    if not examples_per_class or total <= 0:
        return None
    most = max(range(len(examples_per_class)), key=examples_per_class.__getitem__)
    return class_names[most], examples_per_class[most] / total, examples_per_class[most]


def _change_verdict(paired: Paired, settings: GateSettings) -> tuple[str, str]:
    """'better' only when the whole interval of the difference is above 0; 'worse' (and a
    reason) only when it is wholly below -max_accuracy_drop."""
    counts = (
        f"fixed {paired.fixed}, broken {paired.broken}, both right {paired.both_right}, "
        f"both wrong {paired.both_wrong}"
    )
    interval = (
        f"accuracy difference {paired.difference:+.3f} (95% CI {paired.lower:+.2f} to "
        f"{paired.upper:+.2f}, n = {paired.n}; {counts})"
    )
    if paired.upper < -settings.max_accuracy_drop:
        return "worse", (
            f"significantly worse than the baseline: {interval}; the whole interval is below "
            f"-evaluation.max_accuracy_drop=-{settings.max_accuracy_drop}"
        )
    if paired.lower > 0:
        return "better", ""
    return "not worse", ""
