"""The report's pieces without a pipeline run: escaping, histogram re-binning, per-class
metrics from a confusion matrix, the gate's rules and the paired counts, and the page data saved
beside the record."""

import json
import os
from dataclasses import asdict

import numpy as np

from components.gate import Evidence, judge
from components.intervals import Estimate, paired_comparison, proportion
from components.settings import EvaluationConfig
from pipeline.config import load_config
from pipeline.history.charts import rebin
from pipeline.history.console import summary_text
from pipeline.history.html import render
from pipeline.history.html_evaluation import top1_per_class
from pipeline.history.page_data import (
    ReportData,
    SizeHistogram,
    gate_rows,
    page_data_path,
    save_page_data,
)
from pipeline.history.record import RunRecord, Step, save_record, saved_record
from pipeline.history.report import saved_report_data
from pipeline.history.store import RunArtifacts

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


def _judged(evidence: Evidence, settings: EvaluationConfig) -> RunRecord:
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
        accuracy=proportion(13, 21),
        class_names=["a", "b", "c"],
        examples_per_class=[7, 7, 7],
        recall=[proportion(4, 7)] * 3,
        base_weights="ImageNet",
        **extra,
    )


def test_the_gate_table_shows_each_rule_its_value_and_result():
    rows = {r["option"]: r for r in gate_rows(_judged(_evidence(), EvaluationConfig()))}
    accuracy = rows["evaluation.min_accuracy, evaluation.judge_on"]
    assert accuracy["rule"] == "accuracy (95% lower bound) >= 0.5"
    assert accuracy["value"] == "0.619 (95% CI 0.41 to 0.79, n = 21)"
    assert accuracy["result"] is False  # the lower bound 0.41 is below 0.5
    assert rows["evaluation.min_examples"]["result"] is True
    assert rows["evaluation.max_accuracy_drop"]["result"] is None  # no baseline: not applied
    assert "evaluation.min_class_recall" not in rows  # off by default
    majority = rows["evaluation.beat_majority_class"]
    assert majority["value"] == "a: 0.333 (7 of 21)"
    assert majority["result"] is True  # the lower bound 0.41 is above a third

    point = {
        r["option"]: r for r in gate_rows(_judged(_evidence(), EvaluationConfig(judge_on="point")))
    }
    assert point["evaluation.min_accuracy, evaluation.judge_on"]["result"] is True


def test_the_gate_table_shows_the_saved_rule_results_not_a_recomputation():
    """The Judge decides each rule once; the page shows what it saved, even where the saved
    evidence would now be judged otherwise (a rule changed since, say)."""
    summary = _judged(_evidence(), EvaluationConfig())  # 0.41 lower bound: min_accuracy fails
    rules = summary.judgement["judgement"]["rules"]
    (accuracy,) = [r for r in rules if r["option"].startswith("evaluation.min_accuracy")]
    accuracy.update(passed=True, value="as saved")  # disagrees with the evidence

    rows = {r["option"]: r for r in gate_rows(summary)}

    assert rows[accuracy["option"]]["result"] is True
    assert rows[accuracy["option"]]["value"] == "as saved"
    assert [r["rule"] for r in gate_rows(summary)] == [r["rule"] for r in rules]


def test_a_judgement_saved_before_rule_results_still_shows_its_verdict():
    summary = _judged(_evidence(), EvaluationConfig())
    del summary.judgement["judgement"]["rules"]
    (row,) = gate_rows(summary)
    assert row["result"] is False and "below evaluation.min_accuracy=0.5" in row["rule"]
    summary = _judged(_evidence(), EvaluationConfig(judge_on="point"))
    del summary.judgement["judgement"]["rules"]
    assert [r["rule"] for r in gate_rows(summary)] == ["every rule passed"]
    summary.metrics = {"candidate": {"sparse_categorical_accuracy": 13 / 21}}
    page = render(ReportData("p", summary, ["a", "b", "c"], gate=gate_rows(summary)))
    assert "every rule passed" in page


def test_the_report_shows_paired_counts_and_a_random_weight_banner():
    candidate = np.array([1] * 13 + [0] * 8, dtype=bool)
    baseline = np.array([1] * 10 + [0] * 3 + [1] * 2 + [0] * 6, dtype=bool)
    evidence = _evidence(paired=paired_comparison(candidate, baseline))
    evidence.base_weights = "random (ImageNet weights unavailable)"
    summary = _judged(evidence, EvaluationConfig(judge_on="point"))
    summary.run_id = "r1"
    summary.metrics = {"candidate": {"sparse_categorical_accuracy": 13 / 21, "example_count": 21}}
    page = render(ReportData("p", summary, ["a", "b", "c"]))
    assert 'fixed (baseline wrong, candidate right)</td><td class="num">3' in page
    assert 'broken (baseline right, candidate wrong)</td><td class="num">2' in page
    assert 'both right</td><td class="num">10' in page
    assert 'both wrong</td><td class="num">6' in page
    assert "NOT BLESSED" in page and "trained from RANDOM weights" in page


def _page_with_everything(pipeline_name: str) -> ReportData:
    """A page of a finished run with every part of the page data, its record as JSON keeps it."""
    evidence = _evidence()
    record = _judged(evidence, EvaluationConfig())
    record.run_id = "2026-01-02T03:04:05.678901"
    record.started = 1_767_323_045.0
    record.steps = [Step("ImageExampleGen", "done", 2.5), Step("Trainer", "done", 10.125)]
    record.metrics = {"candidate": {"sparse_categorical_accuracy": 13 / 21, "example_count": 21}}
    record.failure = {"error": "a <late> failure"}
    record = RunRecord.from_json(json.loads(json.dumps(record.to_json())))
    thumbnail = {"png": "iVBORw0KGgo=", "true": "a", "predicted": "b", "probability": 0.75}
    return ReportData(
        pipeline_name,
        record,
        ["a", "b", "c"],
        image_sizes={
            "height": {
                "train": SizeHistogram([(30.0, 40.0, 3.0), (40.0, 64.0, 4.0)], 30.0, 41.0, 64.0),
                "eval": SizeHistogram([(32.0, 32.0, 7.0)], 32.0, 32.0, 32.0),
            },
            "width": {"train": SizeHistogram([(32.0, 96.0, 7.0)], 32.0, 50.5, 96.0)},
        },
        validator_anomalies=["train: image_format: unexpected value 'jpeg'"],
        confusion=np.array([[5.0, 1.0, 1.0], [0.0, 7.0, 0.0], [2.0, 0.0, 5.0]]),
        gate=gate_rows(record),
        gallery={"mistakes": [thumbnail], "correct": [thumbnail]},
        error="a <late> failure",
    )


def _store_says(record: RunRecord) -> RunArtifacts:
    """What the metadata store says of the record's steps: the same states and seconds."""
    return RunArtifacts(
        record.run_id,
        states={s.name: s.state for s in record.steps},
        times={s.name: (100.0, 100.0 + s.seconds) for s in record.steps},
    )


def test_the_saved_page_data_renders_the_same_page(tmp_path):
    config = load_config(overrides=[f"runtime.root={tmp_path}"])
    data = _page_with_everything(config.runtime.name)
    save_record(config, data.record)
    save_page_data(config, data)
    again = saved_report_data(config, _store_says(data.record))
    assert again is not None and again.image_sizes == data.image_sizes
    assert render(again) == render(data)
    assert 'id="chart-image-sizes"' in render(data) and 'id="confusion-matrix"' in render(data)


def test_saved_page_data_is_not_used_when_the_store_says_otherwise(tmp_path):
    """Saved while a step was still running, or before the next run marked a killed step: the
    page is built again from the store and the artifacts."""
    config = load_config(overrides=[f"runtime.root={tmp_path}"])
    data = _page_with_everything(config.runtime.name)
    data.record.steps[-1].state = "running"
    save_record(config, data.record)
    save_page_data(config, data)
    run = _store_says(data.record)
    assert saved_report_data(config, run) is not None
    run.states["Trainer"] = "killed"
    assert saved_report_data(config, run) is None
    run = _store_says(data.record)
    run.states["Pusher"], run.times["Pusher"] = "done", (120.0, 121.0)  # a step since
    assert saved_report_data(config, run) is None
    run = _store_says(data.record)
    os.unlink(page_data_path(config, data.record.run_id))
    assert saved_report_data(config, run) is None  # no page data: built and saved then


def test_a_run_named_by_the_start_of_its_id_finds_its_record_not_its_page_data(tmp_path):
    config = load_config(overrides=[f"runtime.root={tmp_path}"])
    data = _page_with_everything(config.runtime.name)
    save_record(config, data.record)
    save_page_data(config, data)
    assert page_data_path(config, data.record.run_id).endswith(".page.json")
    assert saved_record(config, data.record.run_id[:10]) == data.record


def test_auc_is_the_judges_exact_one_for_both_models_wherever_it_is_shown():
    """TFMA buckets probabilities into 10,000 thresholds; a saturated model's tie in its lowest
    bucket, so its macro AUC (0.863 on the sample's make run) understates the exact one (0.903).
    The summary and the page show the Judge's, with its interval, for candidate and baseline."""
    evidence = _evidence(
        auc=Estimate(0.903, 0.82, 0.96, 21), baseline_auc=Estimate(0.850, 0.75, 0.93, 21)
    )
    summary = _judged(evidence, EvaluationConfig())
    summary.metrics = {
        "candidate": {"macro_auc": 0.863, "sparse_categorical_accuracy": 13 / 21},
        "baseline": {"macro_auc": 0.801, "sparse_categorical_accuracy": 12 / 21},
    }
    assert summary.overall_metrics("candidate")["macro_auc"] == 0.903
    assert summary.overall_metrics("baseline")["macro_auc"] == 0.850
    line = next(x for x in summary_text(summary).splitlines() if "macro_auc" in x)
    assert "0.903 (95% CI 0.82 to 0.96, n = 21)" in line and "0.8500" in line
    page = render(ReportData("p", summary, ["a", "b", "c"], gate=gate_rows(summary)))
    assert "0.82 to 0.96" in page and "0.863" not in page


def test_the_summary_counts_each_class_in_each_split_and_names_the_imbalance():
    record = RunRecord(
        ingestion={
            "classes": ["a", "b", "c"],
            "examples": 90,
            "examples_per_split": {"train": 81, "test": 9},
            "examples_per_split_and_class": {
                "train": {"a": 51, "b": 10, "c": 20},
                "test": {"a": 7, "c": 2},  # no b: counted as 0
            },
            "quarantined": [],
            "skipped": {},
        }
    )
    lines = summary_text(record).splitlines()
    train = lines.index("  Classes:    train: a 51, b 10, c 20 (largest 5.1x the smallest)")
    assert lines[train + 1] == "              test: a 7, b 0, c 2 (a class has none)"
