"""The report's pieces without a pipeline run: escaping, histogram re-binning, per-class
metrics from a confusion matrix, thresholds without a baseline."""

import numpy as np

from pipeline.report import ReportData, rebin, render, threshold_row, top1_per_class
from pipeline.summary import RunArtifacts, RunSummary

HOSTILE = '<script>alert("x")</script>&'


def test_every_text_from_the_run_is_escaped():
    run = RunArtifacts(run_id=HOSTILE, states={HOSTILE: "failed"}, times={HOSTILE: (1.0, 2.0)})
    summary = RunSummary(
        run_id=HOSTILE,
        steps=[(HOSTILE, "failed")],
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
    page = render(ReportData(HOSTILE, run, summary, [HOSTILE, "b"], error=HOSTILE))
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


def test_a_change_threshold_without_a_baseline_is_not_applied():
    row = threshold_row("accuracy", "change", "change >= -0.01", {"accuracy": 0.9}, {}, set())
    assert row["result"] == "not applied: no baseline yet"
    row = threshold_row(
        "accuracy", "change", "", {"accuracy": 0.5}, {"accuracy": 0.9}, {("accuracy", True)}
    )
    assert row["result"] == "fail" and abs(row["value"] + 0.4) < 1e-9
