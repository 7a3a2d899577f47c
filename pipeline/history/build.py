"""Builds a run's record and its page data from the metadata store and the run's artifact files
(TensorFlow's file system, TFMA and TFX read them): the one place that interprets a run's
artifacts."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.types import artifact_utils, standard_artifacts

from components.contract import (
    DATA_GATE_FILE,
    FINDINGS_GALLERY_FILE,
    HISTORY_FILE,
    JUDGEMENT_FILE,
    LABEL_ISSUES_FILE,
    NEAR_DUPLICATES_FILE,
    TFLITE_REPORT_FILE,
)
from components.data_gate import SCHEMA_DIFF_FILE, describe_anomalies
from components.ingestion_report import read_failed_run_report, read_report
from pipeline.config import PipelineConfig
from pipeline.history.page_data import SIZE_FEATURES, ReportData, SizeHistogram, gate_rows
from pipeline.history.record import RunRecord, find_run, phase_summaries, saved_record, store_fields
from pipeline.history.store import RunArtifacts


def _read_json(uri: str | None, name: str) -> dict[str, Any] | None:
    if not uri or not tf.io.gfile.exists(os.path.join(uri, name)):
        return None
    with tf.io.gfile.GFile(os.path.join(uri, name)) as f:
        return json.load(f)


def overall_metrics(evaluation_uri: str) -> dict[str, dict[str, float]]:
    """{'candidate'|'baseline': {metric name (with class for binarized ones): value}} for the
    whole split (the unsliced slice)."""
    result: dict[str, dict[str, float]] = {}
    for slice_metrics in tfma.load_metrics(evaluation_uri):
        if slice_metrics.slice_key.single_slice_keys:
            continue
        for kv in slice_metrics.metric_keys_and_values:
            if kv.key.is_diff or not kv.value.HasField("double_value"):
                continue
            name = kv.key.name
            if kv.key.sub_key.HasField("class_id"):
                name = f"{name}/class_{kv.key.sub_key.class_id.value}"
            elif kv.key.aggregation_type.macro_average:
                name = f"macro_{name}"
            model = kv.key.model_name or "candidate"
            result.setdefault(model, {})[name] = kv.value.double_value.value
    return result


def read_judgement(run: RunArtifacts) -> dict[str, Any] | None:
    """The Judge's judgement.json, thumbnails included."""
    return _read_json(run.uri("Judge", "model_blessing"), JUDGEMENT_FILE)


def summarize(run: RunArtifacts, pipeline_root: str = "") -> RunRecord:
    """What the store and the run's artifacts say: data, anomalies, training, metrics,
    decision, push."""
    record = store_fields(run)
    report_uri = run.uri("ImageExampleGen", "report")
    if report_uri:
        record.ingestion = read_report(report_uri)
    elif pipeline_root:  # a failed ingestion leaves its report outside the artifacts
        record.ingestion = read_failed_run_report(pipeline_root, run.run_id)
    gate = _read_json(run.uri("DataGate", "result"), DATA_GATE_FILE)
    if gate is not None:
        record.anomalies = gate["anomalies"]
        if record.ingestion is None:
            record.imported = gate.get("data")
    record.training = _read_json(run.uri("Trainer", "model_run"), HISTORY_FILE)
    if record.training:
        record.phases = phase_summaries(record.training["history"])
        record.tuned_hyperparameters = record.training.get("tuned_hyperparameters") or None
    evaluation_uri = run.uri("Evaluator", "evaluation")
    if evaluation_uri:
        record.metrics = overall_metrics(evaluation_uri)
        splits = run.properties.get("Evaluator", {}).get("example_splits") or "[]"
        record.eval_split = ", ".join(json.loads(splits))
    record.tflite = _read_json(run.uri("LiteExporter", "lite_models"), TFLITE_REPORT_FILE)
    if record.blessed is not None:
        record.judgement = read_judgement(run)
        if record.judgement is not None:
            record.judgement.pop("gallery", None)  # thumbnails: the page reads them itself
            record.failures = record.judgement["judgement"]["reasons"]
    return record


def record_for(config: PipelineConfig, run: RunArtifacts) -> RunRecord:
    """The run's record, with the failure saved for it when it failed."""
    record = summarize(run, config.pipeline_root)
    saved = saved_record(config, run.run_id)
    if saved is not None and saved.failure is not None:
        record.failure = saved.failure
        record.started = record.started or saved.started
    return record


def build_record(config: PipelineConfig, query: str | None = None) -> RunRecord:
    """The record of the run whose id is (or starts with) query; default the latest."""
    return record_for(config, find_run(config, query))


# --- The page data ------------------------------------------------------------------------------


def image_size_histograms(statistics) -> dict[str, dict[str, SizeHistogram]]:
    """{'height'|'width': {split: histogram}}: StatisticsGen's numeric statistics of the image
    sizes ImageExampleGen records (imported TFRecords may have no such features)."""
    artifact = standard_artifacts.ExampleStatistics()
    artifact.set_mlmd_artifact(statistics)
    sizes: dict[str, dict[str, SizeHistogram]] = {}
    for split in artifact_utils.decode_split_names(artifact.split_names):
        stats = stats_artifact_utils.load_statistics(artifact, split).proto()
        for feature in stats.datasets[0].features:
            name = feature.path.step[0] if feature.path.step else feature.name
            num = feature.num_stats
            standard = [h for h in num.histograms if h.type == h.HistogramType.STANDARD]
            if name in SIZE_FEATURES and standard:
                buckets = [(b.low_value, b.high_value, b.sample_count) for b in standard[0].buckets]
                sizes.setdefault(name, {})[split] = SizeHistogram(
                    buckets, num.min, num.median, num.max
                )
    return sizes


def validator_anomalies(anomalies) -> list[str]:
    """ExampleValidator's anomalies, for a run whose DataGate failed: a failed step's result
    is not recorded, but what it read is."""
    artifact = standard_artifacts.ExampleAnomalies()
    artifact.set_mlmd_artifact(anomalies)
    lines = []
    for split in artifact_utils.decode_split_names(artifact.split_names):
        path = os.path.join(artifact_utils.get_split_uri([artifact], split), SCHEMA_DIFF_FILE)
        proto = anomalies_pb2.Anomalies()
        with tf.io.gfile.GFile(path, "rb") as f:
            proto.ParseFromString(f.read())
        lines += describe_anomalies(split, proto)
    return lines


def confusion_matrix(evaluation_uri: str, num_classes: int) -> np.ndarray | None:
    """The candidate's confusion matrix on the whole judged split (rows: actual class),
    from TFMA's MultiClassConfusionMatrixPlot."""
    for plots in tfma.load_plots(evaluation_uri):
        if plots.slice_key.single_slice_keys:
            continue
        for kv in plots.plot_keys_and_values:
            if kv.key.model_name not in ("", "candidate") or not kv.value.HasField(
                "multi_class_confusion_matrix_at_thresholds"
            ):
                continue
            matrices = kv.value.multi_class_confusion_matrix_at_thresholds.matrices
            entries = matrices[0].entries if matrices else []
            size = max([num_classes] + [e.actual_class_id + 1 for e in entries])
            matrix = np.zeros((size, size))
            for e in entries:
                if 0 <= e.predicted_class_id < size:  # -1: no class reached the threshold
                    matrix[e.actual_class_id, e.predicted_class_id] += e.num_weighted_examples
            return matrix
    return None


def read_findings(model_run: str | None, shown: int = 24) -> dict[str, Any]:
    """The Trainer's findings for the page: the first `shown` suspects and pairs (the files
    hold them all) and their thumbnails; {} without a Trainer output."""
    if not model_run:
        return {}
    found: dict[str, Any] = {"thumbnails": _read_json(model_run, FINDINGS_GALLERY_FILE) or {}}
    issues = _read_json(model_run, LABEL_ISSUES_FILE)
    if issues is not None and "suspects" in issues:
        issues["suspect_count"] = len(issues["suspects"])
        issues["suspects"] = issues["suspects"][:shown]
    copies = _read_json(model_run, NEAR_DUPLICATES_FILE)
    if copies is not None and "pairs" in copies:
        copies["pairs"] = copies["pairs"][: shown // 2]
    return found | {"label_issues": issues, "near_duplicates": copies}


def read_report_data(
    pipeline_name: str, run: RunArtifacts, record: RunRecord, error: str = ""
) -> ReportData:
    """The record, and what only the page shows: size histograms, the validator's anomalies
    of a run the DataGate stopped, the confusion matrix, the thumbnails."""
    data = ReportData(pipeline_name, record, record.class_names, error=error)
    statistics = run.artifact("StatisticsGen", "statistics")
    if statistics is not None:
        data.image_sizes = image_size_histograms(statistics)
    anomalies = run.artifact("ExampleValidator", "anomalies")
    if record.anomalies is None and anomalies is not None:
        data.validator_anomalies = validator_anomalies(anomalies)
    evaluation_uri = run.uri("Evaluator", "evaluation")
    if evaluation_uri:
        data.confusion = confusion_matrix(evaluation_uri, len(data.class_names))
    data.findings = read_findings(run.uri("Trainer", "model_run"))
    data.gate = gate_rows(record)
    if record.judgement is not None:
        data.gallery = (read_judgement(run) or {}).get("gallery", {})
    return data
