"""Scorer: the judged split predicted once by the candidate and (when there is one) the
baseline, for every step that judges them.

Each model answers each judged example once per run, through its serving_default signature
(what clients call). The predictions are written as tf.Examples (label, each model's
probabilities, the example's position in the split) that TFMA's Evaluator reads as features
(model-agnostic evaluation: it loads no model) and from which the Judge computes its intervals
and the paired comparison. The Scorer also keeps what only it can make, because it holds the
models: the thumbnails of the report's gallery (the images as the candidate saw them) and the
examples the Pusher's smoke test replays in a fresh process.
"""

import base64
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow as tf
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import path_utils

from components.contract import GALLERY_FILE, PREDICTIONS_FILE, SAMPLE_FILE
from components.export import (
    EXAMPLES_SIGNATURE,
    GRADCAM_SIGNATURE,
    IMAGES_SIGNATURE,
    TRANSFORM_SIGNATURE,
    read_model_metadata,
)
from components.gradcam import overlay_png
from components.options import checked_section
from components.preprocessing import PIXELS_KEY, decode_pixels
from components.settings import FindingsConfig
from components.tfrecord_import import compression_of

# The features of a prediction example (the label keeps the data's label feature name).
CANDIDATE_KEY = "candidate_probabilities"
BASELINE_KEY = "baseline_probabilities"
POSITION_KEY = "position"  # the example's position in the judged split, in file order
SMOKE_EXAMPLES = 4
MAX_MISTAKES = 24
CORRECT_PER_CLASS = 3
PREDICT_BATCH = 32
GRADCAM_BATCH = 4  # images per gradcam call: the time limit is checked between calls


class ScorerError(RuntimeError):
    """The judged split could not be scored; the message says what and where."""


def split_batches(examples: standard_artifacts.Examples, split: str) -> Iterator[list[bytes]]:
    """The serialized tf.Examples of one split, in file order, PREDICT_BATCH at a time: the
    split is never held in memory whole."""
    uri = artifact_utils.get_split_uri([examples], split)
    files = sorted(tf.io.gfile.glob(os.path.join(uri, "*")))
    if not files:
        raise ScorerError(f"No examples in split {split!r} at {uri}.")
    dataset = tf.data.TFRecordDataset(files, compression_type=compression_of(files))
    for batch in dataset.batch(PREDICT_BATCH):
        yield list(batch.numpy())


def score_split(
    examples: standard_artifacts.Examples, split: str, label_key: str, models: list
) -> tuple[np.ndarray, list[np.ndarray]]:
    """(labels, each model's probabilities) over the split, in one pass: every model's
    serving_default signature on each batch."""
    signatures = [model.signatures[EXAMPLES_SIGNATURE] for model in models]
    labels, probabilities = [], [[] for _ in models]
    for records in split_batches(examples, split):
        labels += [_feature(r, label_key).int64_list.value[0] for r in records]
        for serve, found in zip(signatures, probabilities, strict=True):
            found.append(serve(examples=tf.constant(records))["probabilities"].numpy())
    if not labels:
        raise ScorerError(
            f"The judged split {split!r} holds no examples (its files are empty): nothing can "
            "be judged. Give the data a test (or eval) split with examples of every class."
        )
    return np.array(labels, dtype=np.int64), [np.concatenate(p) for p in probabilities]


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


def write_predictions(
    path: str, label_key: str, labels: np.ndarray, probabilities: list[np.ndarray]
) -> None:
    """One tf.Example per judged example: its label, the candidate's probabilities and, with a
    baseline, the baseline's."""
    keys = [CANDIDATE_KEY, BASELINE_KEY][: len(probabilities)]
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for i, label in enumerate(labels):
            feature = {
                label_key: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                POSITION_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[i])),
            }
            for key, found in zip(keys, probabilities, strict=True):
                feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=found[i]))
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
            )


def read_predictions(
    predictions: standard_artifacts.Examples, split: str, label_key: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(labels, the candidate's probabilities, the baseline's or None), in the split's order."""
    path = os.path.join(artifact_utils.get_split_uri([predictions], split), PREDICTIONS_FILE)
    spec = {
        label_key: tf.io.FixedLenFeature([], tf.int64),
        CANDIDATE_KEY: tf.io.VarLenFeature(tf.float32),
        BASELINE_KEY: tf.io.VarLenFeature(tf.float32),
    }
    labels, found = [], {CANDIDATE_KEY: [], BASELINE_KEY: []}
    for batch in tf.data.TFRecordDataset(path, compression_type="GZIP").batch(1024):
        parsed = tf.io.parse_example(batch, spec)
        labels.append(parsed[label_key].numpy())
        for key in found:
            found[key].append(tf.sparse.to_dense(parsed[key]).numpy())
    if not labels:
        raise ScorerError(f"No predictions at {path}.")
    candidate, baseline = (np.concatenate(found[k]) for k in (CANDIDATE_KEY, BASELINE_KEY))
    return np.concatenate(labels), candidate, baseline if baseline.size else None


def model_dir(model: standard_artifacts.Model) -> str:
    return path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))


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


def _thumbnail(model, record: bytes, image_size: int) -> str:
    """The image as the model saw it (after the Transform graph), as a base64 PNG."""
    transformed = model.signatures[TRANSFORM_SIGNATURE](examples=tf.constant([record]))
    pixels = decode_pixels(transformed[PIXELS_KEY], image_size)[0]
    return base64.b64encode(tf.io.encode_png(pixels).numpy()).decode()


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


def gradcam_overlays(
    model, records: dict[int, bytes], positions: list[int], *, limit: int, seconds: float
) -> tuple[dict[int, str], str]:
    """({position: base64 PNG of the image with its Grad-CAM over it}, what was left out and
    why) for the first `limit` positions, GRADCAM_BATCH at a time while `seconds` last: the
    model's gradcam signature, so the maps come from the graph clients call."""
    if GRADCAM_SIGNATURE not in model.signatures:
        return {}, "the model was exported without a gradcam signature (an older version)"
    wanted, done, start = positions[:limit], {}, time.perf_counter()
    for first in range(0, len(wanted), GRADCAM_BATCH):
        if time.perf_counter() - start > seconds:
            break
        batch = wanted[first : first + GRADCAM_BATCH]
        found = model.signatures[GRADCAM_SIGNATURE](
            examples=tf.constant([records[i] for i in batch])
        )
        for i, pixels, cam in zip(
            batch, found["pixels"].numpy(), found["gradcam"].numpy(), strict=True
        ):
            done[i] = base64.b64encode(overlay_png(pixels, cam)).decode()
    left = len(positions) - len(done)
    if not left:
        return done, ""
    why = (
        f"findings.gradcam_seconds={seconds:g} ran out"
        if len(done) < len(wanted)
        else f"findings.gradcam_images={limit}"
    )
    return done, f"{left} mistake(s) shown without Grad-CAM ({why})"


def smoke_sample(
    records: dict[int, bytes],
    sample: list[int],
    *,
    probabilities: np.ndarray,
    class_names: list[str],
    image_key: str,
) -> dict[str, Any]:
    """A few judged examples, as tf.Examples and as image bytes, with the probabilities the
    model was judged on: what the Pusher's smoke test checks a fresh process against."""
    return {
        "class_names": class_names,
        "signatures": [EXAMPLES_SIGNATURE, IMAGES_SIGNATURE],
        "examples": [base64.b64encode(records[i]).decode() for i in sample],
        "images": [
            base64.b64encode(_feature(records[i], image_key).bytes_list.value[0]).decode()
            for i in sample
        ],
        "probabilities": probabilities[sample].tolist(),
    }


def write_json(folder: str, name: str, value: Any) -> None:
    """value as indented JSON in folder/name (the folder made when missing)."""
    tf.io.gfile.makedirs(folder)
    with tf.io.gfile.GFile(os.path.join(folder, name), "w") as f:
        json.dump(value, f, indent=2)


def read_json(folder: str, name: str) -> Any:
    with tf.io.gfile.GFile(os.path.join(folder, name)) as f:
        return json.load(f)


@component
def Scorer(
    examples: InputArtifact[standard_artifacts.Examples],
    model: InputArtifact[standard_artifacts.Model],
    predictions: OutputArtifact[standard_artifacts.Examples],
    split: Parameter[str],
    label_key: Parameter[str],
    image_key: Parameter[str],
    findings: Parameter[str],
    baseline_model: InputArtifact[standard_artifacts.Model] = None,
) -> None:
    """Predicts the judged split with the candidate and the baseline, once each. `findings`:
    the findings section (JSON), for the Grad-CAM overlays of the gallery's mistakes."""
    settings = checked_section(FindingsConfig, "findings", json.loads(findings))
    candidate_dir = model_dir(model)
    metadata = read_model_metadata(candidate_dir)
    class_names = list(metadata["class_names"])
    candidate = tf.saved_model.load(candidate_dir)
    models = [candidate]
    if baseline_model is not None:
        models.append(tf.saved_model.load(model_dir(baseline_model)))
    labels, probabilities = score_split(examples, split, label_key, models)

    predictions.split_names = artifact_utils.encode_split_names([split])
    split_dir = artifact_utils.get_split_uri([predictions], split)
    tf.io.gfile.makedirs(split_dir)
    write_predictions(os.path.join(split_dir, PREDICTIONS_FILE), label_key, labels, probabilities)
    predictions.set_int_custom_property("model_id", model.id)
    if baseline_model is not None:
        predictions.set_int_custom_property("baseline_model_id", baseline_model.id)

    picks = gallery_picks(labels, probabilities[0], len(class_names))
    sample = list(range(min(SMOKE_EXAMPLES, len(labels))))
    records = records_at(examples, split, {*sample, *picks["mistakes"], *picks["correct"]})
    shown = gallery(
        candidate,
        picks,
        records,
        labels=labels,
        probabilities=probabilities[0],
        class_names=class_names,
        image_size=metadata["image_size"],
    )
    overlays, shown["gradcam_note"] = gradcam_overlays(
        candidate,
        records,
        picks["mistakes"],
        limit=settings.gradcam_images,
        seconds=settings.gradcam_seconds,
    )
    for entry, position in zip(shown["mistakes"], picks["mistakes"], strict=True):
        if position in overlays:
            entry["gradcam_png"] = overlays[position]
    write_json(predictions.uri, GALLERY_FILE, shown)
    write_json(
        predictions.uri,
        SAMPLE_FILE,
        smoke_sample(
            records,
            sample,
            probabilities=probabilities[0],
            class_names=class_names,
            image_key=image_key,
        ),
    )
