"""The report's pieces without a pipeline run: escaping, histogram re-binning, per-class
metrics from a confusion matrix, the gate's rules and the paired counts."""

from dataclasses import asdict

import numpy as np

from components.gate import Evidence, GateSettings, cautious_estimate, judge, paired_comparison
from pipeline.history.charts import rebin
from pipeline.history.html import render
from pipeline.history.html_evaluation import top1_per_class
from pipeline.history.page_data import ReportData, gate_rows
from pipeline.history.record import RunRecord, Step

HOSTILE = '<script>alert("x")</script>&'


def test_every_text_from_the_run_is_escaped():
    record = RunRecord(
        run_id=HOSTILE,
        steps=[Step(HOSTILE, "failed", 1.0)],
        ingestion={
            "classes": [HOSTILE, "b"],
            "examples": 2,
            "examples_per_split": {"train": 2},
            "examples_per_split_and_class": {"train": {HOSTILE: 1, "b": 1}},
            "image_files": 3,
            "quarantined": [{"path": HOSTILE, "reason": HOSTILE}],
            "skipped": {HOSTILE: 1},
        },
        anomalies=[HOSTILE],
    )
    page = render(ReportData(HOSTILE, record, [HOSTILE, "b"], error=HOSTILE))
    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in page
    assert 'id="decision-text"' in page and "failed at &lt;script&gt;" in page


def test_rebin_keeps_every_example():
    edges = np.linspace(30, 130, 11)
    buckets = [(32.0, 64.0, 10.0), (64.0, 128.0, 30.0), (40.0, 40.0, 5.0)]  # the last: one size
    counts = rebin(buckets, edges)
    assert counts.sum() == 45.0
    assert counts[0] == 10.0 * 8 / 32  # 30..40 holds 8 of the 32 pixels of 32..64
    assert counts[1] == 5.0 + 10.0 * 10 / 32  # 40..50: the single size and 10 of 32..64


def test_top1_precision_and_recall_come_from_the_confusion_matrix():
    matrix = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 0.0], [0.0, 4.0, 0.0]])  # rows: actual
    precision, recall = top1_per_class(matrix)
    assert precision[:2].tolist() == [1.0, 3 / 8] and np.isnan(precision[2])  # never predicted
    assert recall.tolist() == [2 / 3, 1.0, 0.0]


def _judged(evidence: Evidence, settings: GateSettings) -> RunRecord:
    judgement = judge(evidence, settings)
    return RunRecord(
        blessed=judgement.blessed,
        failures=judgement.reasons,
        judgement={
            "judgement": judgement.to_dict(),
            "evidence": asdict(evidence),
            "settings": asdict(settings),
        },
    )


def _evidence(**extra) -> Evidence:
    return Evidence(
        accuracy=cautious_estimate(13 / 21, 21, None),
        class_names=["a", "b", "c"],
        examples_per_class=[7, 7, 7],
        recall=[cautious_estimate(0.6, 7, None)] * 3,
        base_weights="ImageNet",
        **extra,
    )


def test_the_gate_table_shows_each_rule_its_value_and_result():
    rows = {r["option"]: r for r in gate_rows(_judged(_evidence(), GateSettings()))}
    accuracy = rows["evaluation.min_accuracy, evaluation.judge_on"]
    assert accuracy["rule"] == "accuracy (95% lower bound) >= 0.5"
    assert accuracy["value"] == "0.619 (95% CI 0.41 to 0.79, n = 21)"
    assert accuracy["result"] is False  # the lower bound 0.41 is below 0.5
    assert rows["evaluation.min_examples"]["result"] is True
    assert rows["evaluation.max_accuracy_drop"]["result"] is None  # no baseline: not applied
    assert "evaluation.min_class_recall" not in rows  # off by default

    point = {
        r["option"]: r for r in gate_rows(_judged(_evidence(), GateSettings(judge_on="point")))
    }
    assert point["evaluation.min_accuracy, evaluation.judge_on"]["result"] is True


def test_the_report_shows_paired_counts_and_a_random_weight_banner():
    candidate = np.array([1] * 13 + [0] * 8, dtype=bool)
    baseline = np.array([1] * 10 + [0] * 3 + [1] * 2 + [0] * 6, dtype=bool)
    evidence = _evidence(paired=paired_comparison(candidate, baseline))
    evidence.base_weights = "random (ImageNet weights unavailable)"
    summary = _judged(evidence, GateSettings(judge_on="point"))
    summary.run_id = "r1"
    summary.metrics = {"candidate": {"sparse_categorical_accuracy": 13 / 21, "example_count": 21}}
    page = render(ReportData("p", summary, ["a", "b", "c"]))
    assert 'fixed (baseline wrong, candidate right)</td><td class="num">3' in page
    assert 'broken (baseline right, candidate wrong)</td><td class="num">2' in page
    assert 'both right</td><td class="num">10' in page
    assert 'both wrong</td><td class="num">6' in page
    assert "NOT BLESSED" in page and "trained from RANDOM weights" in page
