"""The blessing rules: what evidence a model needs before it may be deployed, as plain
functions of numbers (the Judge step gathers the numbers, these decide)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from components.base_weights import FALLBACK_DESCRIPTION
from components.intervals import Estimate, Paired

JUDGE_ON = ("lower_bound", "point")


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
class Evidence:
    """What the judge knows about a candidate, every interval from its predictions on the
    judged split (components/intervals.py)."""

    accuracy: Estimate
    class_names: list[str]
    examples_per_class: list[int]
    recall: list[Estimate]
    precision: list[Estimate] = field(default_factory=list)  # shown, not judged
    auc: Estimate | None = None  # macro one-vs-rest AUC: shown, not judged
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
