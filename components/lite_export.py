"""LiteExporter: TensorFlow Lite variants of the blessed model, each checked against the
SavedModel on the judged split before the Pusher may publish it.

Exported models that disagree with the model they came from are the common failure of export
paths (INT8 TFLite files that change predictions, ONNX exports that agree on half the images).
Here every variant (export.tflite_variants) is converted from the SavedModel's `serving_pixels`
signature, run on the judged split's first images (export.tflite_check_images) as the
Transform graph decoded them, and compared with the SavedModel's own probabilities (the
Scorer's): top-1 agreement, largest probability difference, file size and single-image CPU
latency. A variant below export.tflite_min_agreement is not published, and the report says so.

The decode ops are not TensorFlow Lite ops: a variant takes pixels, decoded and resized by the
caller as `preprocessing` in tflite_report.json says (transform.resize and transform.background
as the model was trained with). The temperature the Trainer folded into the model's last layer
is in every variant: their probabilities are the calibrated ones.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np
import tensorflow as tf
from tfx import types
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts

from components.contract import TFLITE_REPORT_FILE
from components.export import PIXELS_SIGNATURE, TRANSFORM_SIGNATURE, read_model_metadata
from components.options import checked_section
from components.preprocessing import PIXELS_KEY, decode_pixels
from components.scorer import model_dir, read_predictions, split_batches, write_json
from components.settings import ExportConfig

LATENCY_RUNS = 10  # single-image invocations timed per variant (median), after one warm-up


class TFLiteModels(types.Artifact):
    """The TensorFlow Lite variants that passed their check (<variant>.tflite) and the report of
    every variant's check (tflite_report.json)."""

    # `package.Class`: KFP v2 accepts only such names and imports the class by it at run time.
    TYPE_NAME = "components.TFLiteModels"


def convert(saved_model: str, variant: str, representative: np.ndarray | None = None) -> bytes:
    """The SavedModel's pixel signature as a TensorFlow Lite flat buffer. `int8` quantizes the
    activations too, calibrated on `representative` (float pixels), with a uint8 input."""
    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model, signature_keys=[PIXELS_SIGNATURE]
    )
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic_int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant == "int8":
        if representative is None or not len(representative):
            raise ValueError("The int8 variant needs representative images to calibrate on.")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image[None]] for image in representative)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
    elif variant != "float32":
        raise ValueError(f"Unknown TensorFlow Lite variant {variant!r}.")
    return converter.convert()


class LiteModel:
    """A variant in TensorFlow Lite's interpreter, one image at a time: pixels (float, 0-255)
    in, probabilities out, quantizing the input and dequantizing the output as it declares."""

    def __init__(self, content: bytes):
        self.interpreter = tf.lite.Interpreter(model_content=content, num_threads=os.cpu_count())
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    def _set(self, image: np.ndarray) -> None:
        scale, zero = self.input["quantization"]
        if self.input["dtype"] != np.float32:
            image = np.round(image / (scale or 1.0) + zero)
            info = np.iinfo(self.input["dtype"])
            image = np.clip(image, info.min, info.max)
        self.interpreter.set_tensor(self.input["index"], image[None].astype(self.input["dtype"]))

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        found = []
        for image in pixels:
            self._set(image)
            self.interpreter.invoke()
            out = self.interpreter.get_tensor(self.output["index"])[0]
            scale, zero = self.output["quantization"]
            if self.output["dtype"] != np.float32:
                out = (out.astype(np.float32) - zero) * scale
            found.append(out)
        return np.array(found)

    def latency_ms(self, image: np.ndarray) -> float:
        """Median single-image CPU time of LATENCY_RUNS invocations, after one warm-up."""
        self._set(image)
        self.interpreter.invoke()
        times = []
        for _ in range(LATENCY_RUNS):
            start = time.perf_counter()
            self.interpreter.invoke()
            times.append(time.perf_counter() - start)
        return 1000 * statistics.median(times)


def check(found: np.ndarray, reference: np.ndarray, min_agreement: float) -> dict[str, Any]:
    """A variant's probabilities against the SavedModel's on the same images."""
    agreement = float((found.argmax(1) == reference.argmax(1)).mean())
    result = {
        "agreement": round(agreement, 4),
        "max_probability_difference": round(float(np.abs(found - reference).max()), 4),
        "published": agreement >= min_agreement,
    }
    if not result["published"]:
        result["reason"] = (
            f"top-1 agreement {agreement:.1%} with the SavedModel, below "
            f"export.tflite_min_agreement={min_agreement:g}"
        )
    return result


def split_pixels(loaded, size: int, examples, split: str, limit: int) -> np.ndarray:
    """The first `limit` images of a split as the model's Transform graph decodes them (float
    pixels, 0-255), in the split's file order (the Scorer's)."""
    found = []
    for records in split_batches(examples, split):
        transformed = loaded.signatures[TRANSFORM_SIGNATURE](examples=tf.constant(records))
        found.append(decode_pixels(transformed[PIXELS_KEY], size).numpy().astype(np.float32))
        if sum(len(f) for f in found) >= limit:
            break
    return np.concatenate(found)[:limit]


def export_variants(
    saved_model: str,
    variants: list[str],
    *,
    judged: np.ndarray,
    reference: np.ndarray,
    representative: np.ndarray | None,
    min_agreement: float,
    out_dir: str,
) -> dict[str, dict[str, Any]]:
    """Converts and checks each variant; writes those that pass to out_dir/<variant>.tflite."""
    results = {}
    for variant in variants:
        start = time.perf_counter()
        content = convert(saved_model, variant, representative)
        converted = time.perf_counter() - start
        lite = LiteModel(content)
        result = check(lite.predict(judged), reference, min_agreement)
        result.update(
            bytes=len(content),
            latency_ms=round(lite.latency_ms(judged[0]), 2),
            convert_seconds=round(converted, 2),
            input={
                "dtype": np.dtype(lite.input["dtype"]).name,
                "shape": [int(n) for n in lite.input["shape"]],
                "quantization": [float(q) for q in lite.input["quantization"]],
            },
        )
        if result["published"]:
            with tf.io.gfile.GFile(os.path.join(out_dir, f"{variant}.tflite"), "wb") as f:
                f.write(content)
        results[variant] = result
    return results


def export_in_child(
    saved_model: str,
    variants: list[str],
    *,
    judged: np.ndarray,
    reference: np.ndarray,
    representative: np.ndarray | None,
    min_agreement: float,
    out_dir: str,
) -> dict[str, dict[str, Any]]:
    """export_variants, each variant in a fresh Python process of its own: the converter's
    copies of the graph (3.2 GiB for float32 and 3.8 GiB for int8 with VGG16's flatten head at
    224 px, 4.4 GiB for the four in one process) are freed when it exits, instead of adding to
    the peak of the process that runs the whole pipeline."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="tflite-") as work:
        np.savez(
            os.path.join(work, "inputs.npz"),
            judged=judged,
            reference=reference,
            representative=representative if representative is not None else np.zeros(0),
        )
        for variant in variants:
            spec = {
                "saved_model": saved_model,
                "variants": [variant],
                "min_agreement": min_agreement,
                "out_dir": out_dir,
                "work": work,
            }
            with open(os.path.join(work, "spec.json"), "w") as f:
                json.dump(spec, f)
            done = subprocess.run(
                [sys.executable, "-m", "components.lite_export", os.path.join(work, "spec.json")],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise RuntimeError(
                    f"Converting to TensorFlow Lite ({variant}) failed in its process (exit "
                    f"status {done.returncode}):\n{done.stderr[-3000:]}"
                )
            with open(os.path.join(work, "results.json")) as f:
                results.update(json.load(f))
    return results


def _child(spec_path: str) -> None:
    with open(spec_path) as f:
        spec = json.load(f)
    inputs = np.load(os.path.join(spec["work"], "inputs.npz"))
    results = export_variants(
        spec["saved_model"],
        spec["variants"],
        judged=inputs["judged"],
        reference=inputs["reference"],
        representative=inputs["representative"] if inputs["representative"].size else None,
        min_agreement=spec["min_agreement"],
        out_dir=spec["out_dir"],
    )
    with open(os.path.join(spec["work"], "results.json"), "w") as f:
        json.dump(results, f)


@component
def LiteExporter(
    examples: InputArtifact[standard_artifacts.Examples],
    model: InputArtifact[standard_artifacts.Model],
    predictions: InputArtifact[standard_artifacts.Examples],
    model_blessing: InputArtifact[standard_artifacts.ModelBlessing],
    lite_models: OutputArtifact[TFLiteModels],
    split: Parameter[str],
    label_key: Parameter[str],
    export: Parameter[str],  # the export section, JSON
    transform: Parameter[str],  # the transform section, JSON: what a caller must do first
) -> None:
    """Converts the blessed model to the configured TensorFlow Lite variants and publishes
    (into its output) those that agree with the SavedModel on the judged split."""
    settings = checked_section(ExportConfig, "export", json.loads(export))
    report: dict[str, Any] = {"min_agreement": settings.tflite_min_agreement, "variants": {}}
    blessed = model_blessing.get_int_custom_property("blessed")
    served = model_blessing.get_string_custom_property("already_served_version")
    if not settings.tflite_variants:
        report["skipped"] = "export.tflite_variants is empty"
    elif not blessed:
        report["skipped"] = "the model was not blessed: nothing is published"
    elif served:
        report["skipped"] = f"the model is already served as version {served}"
    else:
        saved_model = model_dir(model)
        metadata = read_model_metadata(saved_model)
        size = metadata["image_size"]
        loaded = tf.saved_model.load(saved_model)
        _, reference, _ = read_predictions(predictions, split, label_key)
        judged = split_pixels(loaded, size, examples, split, settings.tflite_check_images)
        representative = None
        if "int8" in settings.tflite_variants:
            representative = split_pixels(
                loaded, size, examples, "train", settings.tflite_representative_images
            )
        steps = json.loads(transform)
        report.update(
            checked_images=len(judged),
            judged_split=split,
            judged_images=len(reference),
            preprocessing={
                "image_size": size,
                "resize": steps["resize"],
                "background": steps["background"],
                "class_names": metadata["class_names"],
                "input": "RGB pixels 0-255, [1, size, size, 3]: float32, or uint8 for int8; "
                "decode the image, composite transparency over `background`, resize as "
                "`resize` says (crop: the short side to size, then the centre; pad: fit, then "
                "pad with background)",
            },
        )
        report["variants"] = export_in_child(
            saved_model,
            settings.tflite_variants,
            judged=judged,
            reference=reference[: len(judged)],
            representative=representative,
            min_agreement=settings.tflite_min_agreement,
            out_dir=lite_models.uri,
        )
    write_json(lite_models.uri, TFLITE_REPORT_FILE, report)


if __name__ == "__main__":
    _child(sys.argv[1])
