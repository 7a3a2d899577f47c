"""DataGate: stops the pipeline before any preprocessing or training when the data is off.
TFX's ExampleValidator records anomalies but lets the run go on. This small step reads its
anomalies, adds TFDV's label-drift check between the train split and every other split, and
fails with a message that names each anomaly, so nothing downstream ever sees bad data.
"""

import json
import os

import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx import types
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import io_utils

from components import schema as schema_lib
from components.contract import DATA_GATE_FILE
from components.options import checked_section
from components.settings import ValidationConfig

SCHEMA_DIFF_FILE = "SchemaDiff.pb"


class DataValidationError(RuntimeError):
    """The examples do not match the schema; the message lists every anomaly."""


class DataGateResult(types.Artifact):
    """JSON list of the anomalies found (empty when the data passed)."""

    # `package.Class`: KFP v2 accepts only such names and imports the class by it at run time.
    TYPE_NAME = "components.DataGateResult"


def describe_anomalies(split: str, anomalies: anomalies_pb2.Anomalies) -> list[str]:
    """One line per anomaly: split, feature, short and long description."""
    lines = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        detail = "; ".join(r.description for r in info.reason) or info.description
        lines.append(f"split '{split}', feature '{feature}': {info.short_description}. {detail}")
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        lines.append(f"split '{split}', data set: {info.short_description}. {info.description}")
    return lines


def _load_anomalies(anomalies_artifact: types.Artifact, split: str) -> anomalies_pb2.Anomalies:
    path = os.path.join(artifact_utils.get_split_uri([anomalies_artifact], split), SCHEMA_DIFF_FILE)
    anomalies = anomalies_pb2.Anomalies()
    anomalies.ParseFromString(io_utils.read_bytes_file(path))
    return anomalies


def label_drift_anomalies(
    statistics: types.Artifact, schema_uri: str, threshold: float, label_key: str
) -> list[str]:
    """TFDV's drift comparator between the train split's labels and each other split's."""
    splits = artifact_utils.decode_split_names(statistics.split_names)
    if threshold <= 0 or "train" not in splits:
        return []
    schema = tfdv.load_schema_text(os.path.join(schema_uri, "schema.pbtxt"))
    schema_lib.set_label_drift_threshold(schema, threshold, label_key)
    train = stats_artifact_utils.load_statistics(statistics, "train").proto()
    lines = []
    for split in (s for s in splits if s != "train"):
        current = stats_artifact_utils.load_statistics(statistics, split).proto()
        anomalies = tfdv.validate_statistics(current, schema, previous_statistics=train)
        drift = anomalies_pb2.Anomalies()
        for feature, info in anomalies.anomaly_info.items():
            if any(
                r.type == anomalies_pb2.AnomalyInfo.COMPARATOR_L_INFTY_HIGH for r in info.reason
            ):
                drift.anomaly_info[feature].CopyFrom(info)
        lines += [
            f"{line} (label distribution differs from train's; validation.label_drift_threshold"
            f"={threshold})"
            for line in describe_anomalies(split, drift)
        ]
    return lines


def label_range_anomalies(
    statistics: types.Artifact, label_key: str, class_names: list[str]
) -> list[str]:
    """Labels outside [0, N-1] of the class list, from StatisticsGen's min and max of the label
    in each split: the network has N outputs, and TensorFlow would fail mid-training on any
    other label (or, worse, a class list that is too long would name classes never seen)."""
    if not class_names:
        return []
    top = len(class_names) - 1
    lines = []
    for split in artifact_utils.decode_split_names(statistics.split_names):
        stats = stats_artifact_utils.load_statistics(statistics, split).proto()
        for dataset in stats.datasets:
            for feature in dataset.features:
                if list(feature.path.step) != [label_key]:
                    continue
                low, high = _label_range(feature) or (0, 0)
                if low < 0 or high > top:
                    lines.append(
                        f"split '{split}', feature '{label_key}': labels range from {low:g} to "
                        f"{high:g}, but the class list has {len(class_names)} names "
                        f"({', '.join(class_names)}), which allows labels 0 to {top}. Set "
                        "data.class_names to one name per label, in label order (and the "
                        "schema's label domain to match)."
                    )
    return lines


def _label_counts(feature) -> dict[int, int]:
    """Examples per label value of a categorical label (StatisticsGen's rank histogram)."""
    buckets = feature.string_stats.rank_histogram.buckets or feature.string_stats.top_values
    counts = {}
    for bucket in buckets:
        label = getattr(bucket, "label", None) or bucket.value
        if label.lstrip("-").isdigit():
            counts[int(label)] = int(getattr(bucket, "sample_count", 0) or bucket.frequency)
    return counts


def _label_range(feature) -> tuple[float, float] | None:
    """(min, max) of the label: numeric statistics, or the values of a categorical label."""
    if feature.HasField("num_stats"):
        return feature.num_stats.min, feature.num_stats.max
    labels = _label_counts(feature)
    return (min(labels), max(labels)) if labels else None


def data_counts(statistics: types.Artifact, label_key: str, class_names: list[str]) -> dict:
    """Examples per split, and per class where the label is categorical, from StatisticsGen:
    what the summary, `runs` and the report show for examples no ingestion report counted
    (imported TFRecords). The keys are the ingestion report's."""
    per_split, per_class = {}, {}
    for split in sorted(artifact_utils.decode_split_names(statistics.split_names)):
        stats = stats_artifact_utils.load_statistics(statistics, split).proto()
        dataset = stats.datasets[0]
        per_split[split] = int(dataset.num_examples)
        for feature in dataset.features:
            if list(feature.path.step) == [label_key]:
                per_class[split] = {
                    class_names[label] if 0 <= label < len(class_names) else f"label {label}": n
                    for label, n in sorted(_label_counts(feature).items())
                }
    return {
        "source": "StatisticsGen",
        "examples": sum(per_split.values()),
        "examples_per_split": per_split,
        "classes": list(class_names),
        "examples_per_split_and_class": per_class,
    }


@component
def DataGate(
    statistics: InputArtifact[standard_artifacts.ExampleStatistics],
    schema: InputArtifact[standard_artifacts.Schema],
    anomalies: InputArtifact[standard_artifacts.ExampleAnomalies],
    result: OutputArtifact[DataGateResult],
    validation: Parameter[str],
    label_key: Parameter[str],
    class_names: Parameter[str],
) -> None:
    """Fails the run when ExampleValidator found anomalies, a label is outside the class list
    (`class_names`: a JSON list) or the labels drift between splits (`validation`: the
    validation section, JSON)."""
    settings = checked_section(ValidationConfig, "validation", json.loads(validation))
    lines = []
    for split in artifact_utils.decode_split_names(anomalies.split_names):
        lines += describe_anomalies(split, _load_anomalies(anomalies, split))
    lines += label_range_anomalies(statistics, label_key, json.loads(class_names))
    lines += label_drift_anomalies(
        statistics,
        schema_uri=schema.uri,
        threshold=settings.label_drift_threshold,
        label_key=label_key,
    )
    with tf.io.gfile.GFile(os.path.join(result.uri, DATA_GATE_FILE), "w") as f:
        data = data_counts(statistics, label_key, json.loads(class_names))
        json.dump({"anomalies": lines, "data": data}, f, indent=2)
    if lines:
        raise DataValidationError(
            f"Data validation found {len(lines)} anomal{'y' if len(lines) == 1 else 'ies'}; "
            "nothing was trained:\n  - "
            + "\n  - ".join(lines)
            + "\nFix the data, or if the change is intended, update the schema "
            "(python -m pipeline infer-schema writes a fresh one for review)."
        )
