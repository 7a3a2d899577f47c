"""What the HTML page shows beyond the run record, read from the artifacts once: the image
size histograms, the validator's anomalies of a run the DataGate stopped, the confusion matrix,
the Judge's rules as rows and its thumbnails."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.types import artifact_utils, standard_artifacts

from components.data_gate import SCHEMA_DIFF_FILE, describe_anomalies
from pipeline.history.build import read_judgement
from pipeline.history.console import estimate_text
from pipeline.history.record import RunRecord
from pipeline.history.store import RunArtifacts

SIZE_FEATURES = ("height", "width")  # written by ImageExampleGen for every example


@dataclass
class SizeHistogram:
    """One split's StatisticsGen histogram of one image-size feature, in pixels."""

    buckets: list[tuple[float, float, float]]  # (low, high, count)
    min: float
    median: float
    max: float


@dataclass
class ReportData:
    """What the page shows of one run, read once."""

    pipeline_name: str
    record: RunRecord
    class_names: list[str] = field(default_factory=list)
    image_sizes: dict[str, dict[str, SizeHistogram]] = field(default_factory=dict)
    validator_anomalies: list[str] | None = None  # when DataGate failed
    confusion: np.ndarray | None = None
    gate: list[dict[str, Any]] = field(default_factory=list)  # the Judge's rules and results
    gallery: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # thumbnails
    error: str = ""


# --- Reading ------------------------------------------------------------------------------------


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
    """The candidate's confusion matrix on the whole evaluation split (rows: actual class),
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


def gate_rows(summary: RunRecord) -> list[dict[str, str]]:
    """Each rule of the Judge (components/gate.py) with what it saw and its result."""
    if summary.judgement is None:
        return []
    evidence, rules = summary.judgement["evidence"], summary.judgement["settings"]
    verdict = summary.judgement["judgement"]
    lower = rules["judge_on"] == "lower_bound"

    def judged(estimate: dict[str, Any]) -> float:
        return estimate["lower"] if lower else estimate["value"]

    accuracy = evidence["accuracy"]
    what = "95% lower bound" if lower else "value"
    rows = [
        {
            "rule": f"accuracy ({what}) >= {rules['min_accuracy']:g}",
            "option": "evaluation.min_accuracy, evaluation.judge_on",
            "value": estimate_text(accuracy),
            "result": judged(accuracy) >= rules["min_accuracy"],
        },
        {
            "rule": f"examples >= {rules['min_examples']}",
            "option": "evaluation.min_examples",
            "value": str(accuracy["n"]),
            "result": accuracy["n"] >= rules["min_examples"],
        },
    ]
    counts = evidence["examples_per_class"]
    if counts:
        fewest = min(range(len(counts)), key=counts.__getitem__)
        rows.append(
            {
                "rule": f"examples of each class >= {rules['min_examples_per_class']}",
                "option": "evaluation.min_examples_per_class",
                "value": f"fewest: {evidence['class_names'][fewest]} {counts[fewest]}",
                "result": counts[fewest] >= rules["min_examples_per_class"],
            }
        )
    if rules["min_class_recall"] > 0 and evidence["recall"]:
        worst = min(range(len(evidence["recall"])), key=lambda k: judged(evidence["recall"][k]))
        rows.append(
            {
                "rule": f"recall of every class ({what}) >= {rules['min_class_recall']:g}",
                "option": "evaluation.min_class_recall",
                "value": f"worst: {evidence['class_names'][worst]} "
                + estimate_text(evidence["recall"][worst]),
                "result": judged(evidence["recall"][worst]) >= rules["min_class_recall"],
            }
        )
    paired = evidence.get("paired")
    rows.append(
        {
            "rule": f"not significantly worse than the baseline by more than "
            f"{rules['max_accuracy_drop']:g} (paired bootstrap)",
            "option": "evaluation.max_accuracy_drop",
            "value": (
                f"{paired['difference']:+.3f} (95% CI {paired['lower']:+.2f} to "
                f"{paired['upper']:+.2f}): {verdict['comparison']}"
            )
            if paired
            else summary.baseline_text(),
            "result": verdict["comparison"] != "worse" if paired else None,
        }
    )
    random = verdict.get("random_weights")
    rows.append(
        {
            "rule": "VGG16 base not a random-weight fallback",
            "option": "evaluation.bless_random_weights",
            "value": evidence.get("base_weights", ""),
            "result": random != "fallback" or rules["bless_random_weights"],
        }
    )
    return rows


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
    data.gate = gate_rows(record)
    if record.judgement is not None:
        data.gallery = (read_judgement(run) or {}).get("gallery", {})
    return data
