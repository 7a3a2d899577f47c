"""The blessing rules: what evidence a model needs before it may be deployed, as plain
functions of numbers (the Judge step gathers the numbers, these decide). Each rule's threshold
is an option of the evaluation section (components.settings.EvaluationConfig)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from components.base_weights import FALLBACK_DESCRIPTION
from components.intervals import Estimate, Paired
from components.settings import EvaluationConfig


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
    baseline_auc: Estimate | None = None  # the baseline's, on the same examples
    base_weights: str = ""
    weights_warning: str = ""
    paired: Paired | None = None
    baseline: str = ""  # how the baseline was chosen or why there is none, for people
    already_served: dict[str, Any] | None = None  # {"version", "run_id"} of the same model
    # ECE and reliability bins on the judged split (judge.calibration_evidence): shown, not
    # judged.
    calibration: dict[str, Any] | None = None


@dataclass
class RuleResult:
    """One rule as it was applied: what it demands, the option that sets it, the value it saw,
    and whether it passed (None: not applied, such as the change rule without a baseline). The
    report's gate table shows these and the summary their reasons; nothing decides a rule
    again."""

    rule: str
    option: str
    value: str
    passed: bool | None
    reasons: list[str] = field(default_factory=list)  # why it failed, naming the option


@dataclass
class Judgement:
    blessed: bool
    reasons: list[str] = field(default_factory=list)  # why not blessed, one line each
    notes: list[str] = field(default_factory=list)  # what people should know either way
    comparison: str = ""  # "better", "not worse", "worse", "" (no baseline)
    random_weights: str = ""  # "fallback", "chosen" or ""
    rules: list[RuleResult] = field(default_factory=list)  # every rule, in the reasons' order

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


def judge(evidence: Evidence, settings: EvaluationConfig) -> Judgement:
    """Every rule is applied and every failure reported, so one run says all that is wrong."""
    kind = random_weights_kind(evidence.base_weights, evidence.weights_warning)
    comparison = ""
    if evidence.paired is not None:
        comparison = _comparison(evidence.paired, settings)
    rules = [
        _random_weights_rule(evidence, settings, kind),
        *_evidence_rules(evidence, settings),
        *_value_rules(evidence, settings),
        _change_rule(evidence, settings, comparison),
    ]
    notes = []
    if kind and (kind == "chosen" or settings.bless_random_weights):
        notes.append(
            "this model's VGG16 base was trained from random weights"
            + (" (training.weights=none)" if kind == "chosen" else " (ImageNet unavailable)")
        )
    reasons = [reason for rule in rules for reason in rule.reasons]
    return Judgement(
        blessed=not reasons,
        reasons=reasons,
        notes=notes,
        comparison=comparison,
        random_weights=kind,
        rules=rules,
    )


def _random_weights_rule(evidence: Evidence, settings: EvaluationConfig, kind: str) -> RuleResult:
    refused = kind == "fallback" and not settings.bless_random_weights
    return RuleResult(
        rule="VGG16 base not a random-weight fallback",
        option="evaluation.bless_random_weights",
        value=evidence.base_weights,
        passed=not refused,
        reasons=[
            "the VGG16 base fell back to RANDOM weights because ImageNet weights could not be "
            "loaded; such a model is not deployed by accident. Provide the weights (see "
            "training.weights), or set evaluation.bless_random_weights=true to judge it anyway"
        ]
        if refused
        else [],
    )


def _evidence_rules(evidence: Evidence, settings: EvaluationConfig) -> list[RuleResult]:
    n = evidence.accuracy.n
    rules = [
        RuleResult(
            rule=f"examples >= {settings.min_examples}",
            option="evaluation.min_examples",
            value=str(n),
            passed=n >= settings.min_examples,
            reasons=[
                f"too little evidence: the judged split has {n} examples, "
                f"{settings.min_examples - n} short of evaluation.min_examples="
                f"{settings.min_examples}. Add examples to the test (or eval) split, or lower "
                "evaluation.min_examples"
            ]
            if n < settings.min_examples
            else [],
        )
    ]
    counts = evidence.examples_per_class
    if not counts:
        return rules
    short = [
        f"{name} {count} (needs {settings.min_examples_per_class - count} more)"
        for name, count in zip(evidence.class_names, counts, strict=True)
        if count < settings.min_examples_per_class
    ]
    fewest = min(range(len(counts)), key=counts.__getitem__)
    rules.append(
        RuleResult(
            rule=f"examples of each class >= {settings.min_examples_per_class}",
            option="evaluation.min_examples_per_class",
            value=f"fewest: {evidence.class_names[fewest]} {counts[fewest]}",
            passed=not short,
            reasons=[
                f"too little evidence for {len(short)} class(es): {', '.join(short)}, below "
                f"evaluation.min_examples_per_class={settings.min_examples_per_class}. Add "
                "examples of these classes to the judged split, or lower that option"
            ]
            if short
            else [],
        )
    )
    return rules


def _value_rules(evidence: Evidence, settings: EvaluationConfig) -> list[RuleResult]:
    point = settings.judge_on == "point"
    what = "accuracy" if point else "the lower bound of accuracy's 95% interval"
    label = "value" if point else "95% lower bound"
    accuracy = evidence.accuracy
    judged = accuracy.value if point else accuracy.lower
    passed = judged >= settings.min_accuracy
    rules = [
        RuleResult(
            rule=f"accuracy ({label}) >= {settings.min_accuracy:g}",
            option="evaluation.min_accuracy, evaluation.judge_on",
            value=accuracy.text(),
            passed=passed,
            reasons=[]
            if passed
            else [
                f"{what} is {judged:.3f}, below evaluation.min_accuracy={settings.min_accuracy} "
                f"(accuracy {accuracy.text()}; evaluation.judge_on={settings.judge_on})"
            ],
        )
    ]
    majority = majority_class(evidence.class_names, evidence.examples_per_class)
    if settings.beat_majority_class and majority:
        name, share, count = majority
        passed = judged > share
        rules.append(
            RuleResult(
                rule=f"accuracy ({label}) > always answering the most common class",
                option="evaluation.beat_majority_class",
                value=f"{name}: {share:.3f} ({count} of {sum(evidence.examples_per_class)})",
                passed=passed,
                reasons=[]
                if passed
                else [
                    f"{what} is {judged:.3f}, not above {share:.3f}, what always answering "
                    f"{name!r} scores on the judged split ({count} of its {accuracy.n} "
                    f"examples): the model is not shown to beat that (accuracy "
                    f"{accuracy.text()}). Set evaluation.beat_majority_class=false to judge on "
                    "evaluation.min_accuracy alone"
                ],
            )
        )
    if settings.min_class_recall > 0 and evidence.recall:
        rules.append(_recall_rule(evidence, settings, point, label))
    return rules


def _recall_rule(
    evidence: Evidence, settings: EvaluationConfig, point: bool, label: str
) -> RuleResult:
    def judged(recall: Estimate) -> float:
        return recall.value if point else recall.lower

    worst = min(range(len(evidence.recall)), key=lambda k: judged(evidence.recall[k]))
    reasons = [
        f"recall of class {name} is {recall.text()}, below "
        f"evaluation.min_class_recall={settings.min_class_recall} "
        f"(evaluation.judge_on={settings.judge_on})"
        for name, recall in zip(evidence.class_names, evidence.recall, strict=True)
        if judged(recall) < settings.min_class_recall
    ]
    return RuleResult(
        rule=f"recall of every class ({label}) >= {settings.min_class_recall:g}",
        option="evaluation.min_class_recall",
        value=f"worst: {evidence.class_names[worst]} {evidence.recall[worst].text()}",
        passed=not reasons,
        reasons=reasons,
    )


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


def _comparison(paired: Paired, settings: EvaluationConfig) -> str:
    """'better' only when the whole interval of the difference is above 0; 'worse' only when
    it is wholly below -max_accuracy_drop."""
    if paired.upper < -settings.max_accuracy_drop:
        return "worse"
    return "better" if paired.lower > 0 else "not worse"


def _change_rule(evidence: Evidence, settings: EvaluationConfig, comparison: str) -> RuleResult:
    rule = (
        f"not significantly worse than the baseline by more than "
        f"{settings.max_accuracy_drop:g} (paired bootstrap)"
    )
    option = "evaluation.max_accuracy_drop"
    paired = evidence.paired
    if paired is None:
        return RuleResult(rule, option, value=baseline_words(evidence), passed=None)
    counts = (
        f"fixed {paired.fixed}, broken {paired.broken}, both right {paired.both_right}, "
        f"both wrong {paired.both_wrong}"
    )
    interval = (
        f"accuracy difference {paired.difference:+.3f} (95% CI {paired.lower:+.2f} to "
        f"{paired.upper:+.2f}, n = {paired.n}; {counts})"
    )
    worse = comparison == "worse"
    return RuleResult(
        rule,
        option,
        value=f"{paired.difference:+.3f} (95% CI {paired.lower:+.2f} to {paired.upper:+.2f}): "
        f"{comparison}",
        passed=not worse,
        reasons=[
            f"significantly worse than the baseline: {interval}; the whole interval is below "
            f"-evaluation.max_accuracy_drop=-{settings.max_accuracy_drop}"
        ]
        if worse
        else [],
    )


def baseline_words(evidence: Evidence) -> str:
    """What the candidate was compared with, in words, where no comparison was made."""
    parts = [evidence.baseline] if evidence.baseline else []
    served = evidence.already_served
    if served:
        parts.append(
            f"the candidate is the model blessed in run {served.get('run_id') or '?'} "
            f"(version {served['version']})"
        )
    return "; ".join(parts) or "no baseline: no model blessed before"
