"""`python -m pipeline predict`: classify image files with a pushed model's raw-image signature."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import tensorflow as tf

from components.export import IMAGES_SIGNATURE, read_model_metadata
from components.gate import random_weights_kind
from components.image_checks import check_image_bytes
from components.model_files import damaged_files
from components.settings import IngestionConfig


class PredictError(RuntimeError):
    """A model or image that cannot be used; the message says which and why."""


def resolve_model_dir(path: str) -> str:
    """A SavedModel folder, or a serving folder whose newest numeric version is taken."""
    if tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
        return path
    if not tf.io.gfile.isdir(path):
        raise PredictError(f"No model at {path}: not a folder. Run the pipeline first.")
    versions = sorted(
        (int(n.rstrip("/")) for n in tf.io.gfile.listdir(path) if n.rstrip("/").isdigit()),
    )
    if not versions:
        raise PredictError(
            f"{path} holds no model versions (numbered folders with a saved_model.pb). Has a "
            "blessed model been pushed there yet?"
        )
    return os.path.join(path, str(versions[-1]))


def load_model(model_dir: str):
    """The SavedModel, after its files are checked against the push record (when it has one);
    a damaged model is named, with the files that differ, instead of a loader's traceback."""
    problems = damaged_files(model_dir)
    if problems:
        raise PredictError(
            f"The model at {model_dir} is damaged: its files differ from those it was pushed "
            "with:\n  " + "\n  ".join(problems[:10]) + "\nPass --model with another version, or "
            "run the pipeline to push a good model again."
        )
    try:
        return tf.saved_model.load(model_dir)
    except Exception as error:  # whatever the loader trips on, the model is unusable
        first = str(error).strip().splitlines()[:1] or [""]
        raise PredictError(
            f"The model at {model_dir} cannot be loaded ({type(error).__name__}: {first[0]}). "
            "Its files may be damaged; pass --model with another version."
        ) from error


def weights_note(model_dir: str) -> str:
    """' (...)' when the model's VGG16 base was trained from random weights, else ''."""
    try:
        metadata = read_model_metadata(model_dir)
    except (OSError, ValueError, tf.errors.OpError):
        return ""
    kind = random_weights_kind(metadata.get("base_weights", ""), metadata.get("weights_warning"))
    if kind == "fallback":
        return " (WARNING: trained from RANDOM weights; ImageNet weights were unavailable)"
    if kind == "chosen":
        return " (trained from random weights: training.weights=none)"
    return ""


@dataclass
class Prediction:
    path: str
    top: list[tuple[str, float]]


def read_images(paths: list[str], max_pixels: int) -> list[bytes]:
    """Reads and checks every image before any is classified, naming each bad one."""
    images, problems = [], []
    for path in paths:
        if not tf.io.gfile.exists(path):
            problems.append(f"{path}: no such file")
            continue
        try:
            with tf.io.gfile.GFile(path, "rb") as f:
                data = f.read()
        except (tf.errors.OpError, OSError) as error:
            problems.append(f"{path}: unreadable ({error})")
            continue
        check = check_image_bytes(data, min_side=1, max_pixels=max_pixels)
        if not check.ok:
            problems.append(f"{path}: {check.reason}")
        images.append(data)
    if problems:
        raise PredictError("Cannot classify:\n  " + "\n  ".join(problems))
    return images


def predict(
    model_path: str,
    paths: list[str],
    top_k: int = 3,
    max_pixels: int = IngestionConfig.max_pixels,
) -> tuple[str, list[Prediction]]:
    """A SavedModel's top classes for each image (or, for a `.tflite` file, that variant's)."""
    if model_path.endswith(".tflite"):
        return model_path, _top(paths, *predict_tflite(model_path, paths, max_pixels), top_k)
    model_dir = resolve_model_dir(model_path)
    images = read_images(paths, max_pixels)
    model = load_model(model_dir)
    outputs = model.signatures[IMAGES_SIGNATURE](images=tf.constant(images))
    class_names = [name.decode() for name in model.class_names.numpy()]
    return model_dir, _top(paths, outputs["probabilities"].numpy(), class_names, top_k)


def _top(paths, probabilities, class_names: list[str], top_k: int) -> list[Prediction]:
    predictions = []
    for path, row in zip(paths, probabilities, strict=True):
        order = row.argsort()[::-1][:top_k]
        predictions.append(Prediction(path, [(class_names[i], float(row[i])) for i in order]))
    return predictions


def predict_tflite(variant: str, paths: list[str], max_pixels: int) -> tuple:
    """(probabilities, class names) of a TensorFlow Lite variant the pipeline published: the
    images decoded and resized as its tflite/report.json says (the Transform graph's own ops,
    as the SavedModel does inside), then the variant in TensorFlow Lite's interpreter."""
    from components.lite_export import LiteModel
    from components.options import background_rgb
    from components.preprocessing import images_to_pixels

    report_path = os.path.join(os.path.dirname(variant), "report.json")
    if not tf.io.gfile.exists(variant) or not tf.io.gfile.exists(report_path):
        raise PredictError(
            f"No TensorFlow Lite variant at {variant} with its report.json beside it: pass "
            "<version>/tflite/<variant>.tflite of a version the pipeline pushed."
        )
    version = os.path.dirname(os.path.dirname(variant))
    problems = damaged_files(version)  # None: not a pushed version; its files unchecked
    if problems:
        raise PredictError(
            f"The version at {version} is damaged: its files differ from those it was pushed "
            "with:\n  " + "\n  ".join(problems[:10])
        )
    with tf.io.gfile.GFile(report_path) as f:
        steps = json.load(f)["preprocessing"]
    images = read_images(paths, max_pixels)
    pixels = images_to_pixels(
        tf.constant(images),
        steps["image_size"],
        steps["resize"],
        background_rgb(steps["background"]),
    )
    with tf.io.gfile.GFile(variant, "rb") as f:
        lite = LiteModel(f.read())
    return lite.predict(pixels.numpy().astype("float32")), steps["class_names"]
