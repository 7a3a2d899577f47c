"""Judge: the step after the Evaluator that decides the blessing.

TFMA 0.47's own threshold validation compares the point estimate with the thresholds (its
validator calls float() on a metric, which drops the confidence interval), and compares a
candidate with its baseline by the difference of two accuracies, unpaired. This step reads
TFMA's metrics and their intervals, runs candidate and baseline on the same examples for a
paired comparison, checks the evidence and what the model was built from, and writes the
ModelBlessing (with TFX's `blessed` and `current_model_id` properties) that the Pusher and the
baseline resolver read. It also leaves the Pusher a sample of examples to smoke-test with.
"""

import base64
import json
import os
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import path_utils

from components import gate, model_files
from components.evaluation import ACCURACY
from components.export import (
    EXAMPLES_SIGNATURE,
    IMAGES_SIGNATURE,
    TRANSFORM_SIGNATURE,
    read_model_metadata,
)
from components.preprocessing import PIXELS_KEY, decode_pixels
from components.smoke_test import SAMPLE_FILE
from components.tfrecord_import import compression_of

JUDGEMENT_FILE = "judgement.json"
SMOKE_EXAMPLES = 4
MAX_MISTAKES = 24
CORRECT_PER_CLASS = 3
PREDICT_BATCH = 32


class JudgeError(RuntimeError):
    """The judge could not gather its evidence; the message says what and where."""


def split_batches(examples: standard_artifacts.Examples, split: str) -> Iterator[list[bytes]]:
    """The serialized tf.Examples of one split, in file order, PREDICT_BATCH at a time: the
    split is never held in memory whole."""
    uri = artifact_utils.get_split_uri([examples], split)
    files = sorted(tf.io.gfile.glob(os.path.join(uri, "*")))
    if not files:
        raise JudgeError(f"No examples in split {split!r} at {uri}.")
    dataset = tf.data.TFRecordDataset(files, compression_type=compression_of(files))
    for batch in dataset.batch(PREDICT_BATCH):
        yield list(batch.numpy())


def score_split(
    examples: standard_artifacts.Examples, split: str, label_key: str, models: list
) -> tuple[np.ndarray, list[np.ndarray]]:
    """(labels, each model's probabilities) over the split, in one pass: every model's
    serving_default signature, the one TFMA evaluates, on each batch."""
    signatures = [model.signatures[EXAMPLES_SIGNATURE] for model in models]
    labels, probabilities = [], [[] for _ in models]
    for records in split_batches(examples, split):
        labels += [_feature(r, label_key).int64_list.value[0] for r in records]
        for serve, found in zip(signatures, probabilities, strict=True):
            found.append(serve(examples=tf.constant(records))["probabilities"].numpy())
    return np.array(labels, dtype=np.int64), [
        np.concatenate(p) if p else np.zeros((0, 0)) for p in probabilities
    ]


def records_at(
    examples: standard_artifacts.Examples, split: str, indices: set[int]
) -> dict[int, bytes]:
    """The serialized examples at these positions of the split (a second pass that keeps only
    them: the thumbnails' and the smoke test's)."""
    found, position = {}, 0
    for records in split_batches(examples, split):
        for record in records:
            if position in indices:
                found[position] = record
            position += 1
        if len(found) == len(indices):
            break
    return found


def _feature(record: bytes, key: str):
    return tf.train.Example.FromString(record).features.feature[key]


def _interval(kv) -> tuple[float, float] | None:
    if not kv.HasField("confidence_interval"):
        return None
    ci = kv.confidence_interval
    return ci.lower_bound.double_value.value, ci.upper_bound.double_value.value


def tfma_evidence(evaluation_uri: str, label_key: str) -> dict[str, Any]:
    """The candidate's accuracy, per-class recall (with TFMA's intervals) and example counts."""
    found: dict[str, Any] = {"recall": {}, "counts": {}}
    for slice_metrics in tfma.load_metrics(evaluation_uri):
        keys = slice_metrics.slice_key.single_slice_keys
        for kv in slice_metrics.metric_keys_and_values:
            key = kv.key
            if key.is_diff or key.model_name not in ("", "candidate"):
                continue
            value = kv.value.double_value.value
            if keys and keys[0].column == label_key and key.name == "example_count":
                found["counts"][int(keys[0].int64_value)] = int(value)
            elif keys:
                continue
            elif key.name == "example_count":
                found["n"] = int(value)
            elif key.name == ACCURACY:
                found["accuracy"] = (value, _interval(kv))
            elif key.name == "recall" and key.sub_key.HasField("class_id"):
                found["recall"][key.sub_key.class_id.value] = (value, _interval(kv))
    if "accuracy" not in found or "n" not in found:
        raise JudgeError(f"The Evaluator's metrics at {evaluation_uri} hold no overall accuracy.")
    return found


def _recall_of(measured: dict[str, Any], k: int) -> tuple[float, int, tuple | None]:
    value, interval = measured["recall"].get(k, (0.0, None))
    return value, measured["counts"].get(k, 0), interval


def _model_dir(model) -> str:
    return path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))


def _thumbnail(model, record: bytes, image_size: int) -> str:
    """The image as the model saw it (after the Transform graph), as a base64 PNG."""
    transformed = model.signatures[TRANSFORM_SIGNATURE](examples=tf.constant([record]))
    pixels = decode_pixels(transformed[PIXELS_KEY], image_size)[0]
    return base64.b64encode(tf.io.encode_png(pixels).numpy()).decode()


def gallery_picks(
    labels: np.ndarray, probabilities: np.ndarray, num_classes: int
) -> dict[str, list[int]]:
    """Positions of the most confident mistakes, and per class of its most confident correct
    predictions."""
    predicted = probabilities.argmax(axis=1)
    order = np.argsort(-probabilities.max(axis=1), kind="stable")
    right = []
    for k in range(num_classes):
        right += [int(i) for i in order if predicted[i] == labels[i] == k][:CORRECT_PER_CLASS]
    return {
        "mistakes": [int(i) for i in order if predicted[i] != labels[i]][:MAX_MISTAKES],
        "correct": right,
    }


def gallery(
    model,
    picks: dict[str, list[int]],
    records: dict[int, bytes],
    *,
    labels: np.ndarray,
    probabilities: np.ndarray,
    class_names: list[str],
    image_size: int,
) -> dict[str, list[dict[str, Any]]]:
    """The picked examples as thumbnails of what the model saw, with truth and prediction."""

    def entry(i: int) -> dict[str, Any]:
        return {
            "true": class_names[labels[i]],
            "predicted": class_names[int(probabilities[i].argmax())],
            "probability": float(probabilities[i].max()),
            "png": _thumbnail(model, records[i], image_size),
        }

    return {kind: [entry(i) for i in positions] for kind, positions in picks.items()}


def _write_json(folder: str, name: str, value: Any) -> None:
    with tf.io.gfile.GFile(os.path.join(folder, name), "w") as f:
        json.dump(value, f, indent=2)


def _baseline_description(baseline, mode: str) -> str:
    if mode == "none":
        return "none (--baseline none): judged on the value thresholds alone"
    if baseline is None:
        return ""
    if mode == "latest":
        return f"the last blessed model (artifact {baseline.id})"
    return f"the model served as version {mode} (artifact {baseline.id})"


@component
def Judge(
    examples: InputArtifact[standard_artifacts.Examples],
    model: InputArtifact[standard_artifacts.Model],
    evaluation: InputArtifact[standard_artifacts.ModelEvaluation],
    # Not `blessing`: Airflow's launcher names output artifacts <key>:<run id>, and the
    # Evaluator's `blessing` of the same run would take the name first.
    model_blessing: OutputArtifact[standard_artifacts.ModelBlessing],
    baseline_model: InputArtifact[standard_artifacts.Model] = None,
    split: Parameter[str] = "test",
    label_key: Parameter[str] = "label",
    image_key: Parameter[str] = "image",
    serving_dir: Parameter[str] = "",
    baseline_mode: Parameter[str] = "latest",
    settings: Parameter[str] = "{}",
) -> None:
    """Decides whether the candidate may be deployed; every reason is written down."""
    rules = gate.GateSettings(**json.loads(settings))
    candidate_dir = _model_dir(model)
    metadata = read_model_metadata(candidate_dir)
    class_names = list(metadata["class_names"])
    measured = tfma_evidence(evaluation.uri, label_key)
    n = measured["n"]
    candidate = tf.saved_model.load(candidate_dir)
    models = [candidate]
    if baseline_model is not None:
        models.append(tf.saved_model.load(_model_dir(baseline_model)))
    labels, (probabilities, *baseline_probabilities) = score_split(
        examples, split, label_key, models
    )
    candidate_correct = probabilities.argmax(axis=1) == labels

    accuracy_value, accuracy_ci = measured["accuracy"]
    evidence = gate.Evidence(
        accuracy=gate.cautious_estimate(accuracy_value, n, accuracy_ci),
        class_names=class_names,
        examples_per_class=[measured["counts"].get(k, 0) for k in range(len(class_names))],
        recall=[gate.cautious_estimate(*_recall_of(measured, k)) for k in range(len(class_names))],
        base_weights=metadata.get("base_weights", ""),
        weights_warning=metadata.get("weights_warning", ""),
        baseline=_baseline_description(baseline_model, baseline_mode),
    )
    if baseline_probabilities:
        evidence.paired = gate.paired_comparison(
            candidate_correct, baseline_probabilities[0].argmax(axis=1) == labels
        )
    checksums = model_files.file_checksums(candidate_dir)
    model_fingerprint = model_files.fingerprint(checksums)
    if serving_dir:
        evidence.already_served = model_files.find_served(serving_dir, model.id, model_fingerprint)

    judgement = gate.judge(evidence, rules)
    picks = gallery_picks(labels, probabilities, len(class_names))
    sample = list(range(min(SMOKE_EXAMPLES, len(labels))))  # the smoke test's examples
    records = records_at(examples, split, {*sample, *picks["mistakes"], *picks["correct"]})
    if len(labels) != n or abs(candidate_correct.mean() - accuracy_value) > 1e-6:
        judgement.blessed = False
        judgement.reasons.append(
            f"the judge's own predictions ({int(candidate_correct.sum())} right of "
            f"{len(labels)}) disagree with the Evaluator's (accuracy {accuracy_value:.4f} on "
            f"{n}); the model does not answer its serving signature as TFMA measured it"
        )

    _write_json(
        model_blessing.uri,
        JUDGEMENT_FILE,
        {
            "judgement": judgement.to_dict(),
            "evidence": asdict(evidence),
            "settings": asdict(rules),
            "split": split,
            "fingerprint": model_fingerprint,
            "gallery": gallery(
                candidate,
                picks,
                records,
                labels=labels,
                probabilities=probabilities,
                class_names=class_names,
                image_size=metadata["image_size"],
            ),
        },
    )
    _write_json(
        model_blessing.uri,
        SAMPLE_FILE,
        {
            "class_names": class_names,
            "signatures": [EXAMPLES_SIGNATURE, IMAGES_SIGNATURE],
            "examples": [base64.b64encode(records[i]).decode() for i in sample],
            "images": [
                base64.b64encode(_feature(records[i], image_key).bytes_list.value[0]).decode()
                for i in sample
            ],
            "probabilities": probabilities[sample].tolist(),
            "files": checksums,
        },
    )
    blessed = judgement.blessed
    model_blessing.set_int_custom_property("blessed", int(blessed))
    model_blessing.set_int_custom_property("current_model_id", model.id)
    model_blessing.set_string_custom_property("current_model", model.uri)
    if baseline_model is not None:
        model_blessing.set_int_custom_property("baseline_model_id", baseline_model.id)
    if evidence.already_served:
        model_blessing.set_string_custom_property(
            "already_served_version", str(evidence.already_served["version"])
        )
    if judgement.random_weights:
        model_blessing.set_string_custom_property("random_weights", judgement.random_weights)
    with tf.io.gfile.GFile(
        os.path.join(model_blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"), "w"
    ) as f:
        f.write("")  # the marker file TFX's own Pusher checks
