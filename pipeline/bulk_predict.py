"""`python -m pipeline predict --images DIR --out FILE`: score every image under a folder on Beam.

The images are checked as ingestion checks them (components/image_checks.py), wrapped in
tf.Examples and scored by Beam's RunInference on the model's `serving_default` signature, the
same signature the Evaluator judges. (tfx-bsl's model handler cannot: it splits every output per
example with numpy and fails on the signature's string output, `class_name`.) With
`runtime.beam_args` naming another runner (Dataflow), the same command scores a bucket there.
One line per file: the prediction, or why the file was not scored.
"""

from __future__ import annotations

import csv
import io
import json
import os
import posixpath
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import tensorflow as tf
from apache_beam.ml.inference import base as beam_inference
from apache_beam.options.pipeline_options import PipelineOptions

from components.export import EXAMPLES_SIGNATURE, read_model_metadata
from components.image_checks import check_image_bytes, read_file, relative_id, skip_reason
from components.settings import IngestionConfig
from pipeline.predict import PredictError, resolve_model_dir

FORMATS = (".jsonl", ".csv")
CSV_COLUMNS = ["path", "class", "probability", "top", "error"]


@dataclass
class BulkResult:
    model_dir: str
    out_path: str
    scored: int
    not_scored: int


def list_images(folder: str) -> tuple[list[str], list[dict[str, str]]]:
    """Every file under `folder` (recursively): candidate image paths, and the files that are
    not, with the reason ingestion gives (hidden, unsupported format, not an image name)."""
    if not tf.io.gfile.isdir(folder):
        raise PredictError(f"--images {folder}: not a folder.")
    candidates, skipped = [], []
    local = "://" not in folder
    # Locally, os.walk does not follow links to folders (a link loop would never end).
    walk = os.walk(folder, followlinks=False) if local else tf.io.gfile.walk(folder)
    for root, dirs, files in walk:
        for name in sorted(d for d in dirs if d.startswith(".") or _is_link(root, d, local)):
            reason = "hidden folder" if name.startswith(".") else "link to a folder: not followed"
            skipped.append(
                {"path": relative_id(posixpath.join(root, name), folder), "error": reason}
            )
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not _is_link(root, d, local))
        for name in sorted(files):
            path = posixpath.join(root, name)
            reason = skip_reason(name)
            if reason:
                skipped.append({"path": relative_id(path, folder), "error": reason})
            else:
                candidates.append(path)
    return candidates, skipped


def _is_link(root: str, name: str, local: bool) -> bool:
    return local and os.path.islink(os.path.join(root, name))


def output_format(out_path: str) -> str:
    suffix = os.path.splitext(out_path)[1].lower()
    if suffix not in FORMATS:
        raise PredictError(f"--out {out_path}: write .jsonl or .csv, not {suffix or 'no suffix'}.")
    return suffix


class _CheckAndWrap(beam.DoFn):
    """One file to (path, tf.Example) when it passes ingestion's checks, else an error row."""

    def __init__(self, folder: str, image_feature: str, max_pixels: int):
        self._folder, self._feature, self._max_pixels = folder, image_feature, max_pixels

    def process(self, path: str):
        rel = relative_id(path, self._folder)
        try:
            data = read_file(path)
        except (tf.errors.OpError, OSError) as error:
            reason = f"unreadable: {getattr(error, 'message', error)}"
            yield beam.pvalue.TaggedOutput("errors", {"path": rel, "error": reason})
            return
        check = check_image_bytes(data, min_side=1, max_pixels=self._max_pixels)
        if not check.ok:
            yield beam.pvalue.TaggedOutput("errors", {"path": rel, "error": check.reason})
            return
        feature = tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))
        yield rel, tf.train.Example(features=tf.train.Features(feature={self._feature: feature}))


class SignatureModelHandler(beam_inference.ModelHandler):
    """Runs a SavedModel's signature on batches of serialized tf.Examples; one probability
    vector per example. Beam shares the loaded model between the threads of a worker."""

    def __init__(self, model_dir: str, batch_size: int, signature: str = EXAMPLES_SIGNATURE):
        self._model_dir, self._batch_size, self._signature = model_dir, batch_size, signature

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": self._batch_size}

    def load_model(self):
        return tf.saved_model.load(self._model_dir)

    def run_inference(self, batch, model, inference_args=None):
        serialized = [example.SerializeToString() for example in batch]
        outputs = model.signatures[self._signature](examples=tf.constant(serialized))
        return list(outputs["probabilities"].numpy())


def prediction_row(path: str, probabilities, class_names: list[str], top_k: int) -> dict[str, Any]:
    """One image's probabilities to the row written for it."""
    order = probabilities.argsort()[::-1][:top_k]
    top = [{"class": class_names[i], "probability": float(probabilities[i])} for i in order]
    return {"path": path, **top[0], "top": top}


def format_row(row: dict[str, Any], fmt: str) -> str:
    if fmt == ".jsonl":
        return json.dumps(row)
    line = io.StringIO()
    top = " ".join(f"{t['class']}:{t['probability']:.6f}" for t in row.get("top", []))
    values = {**row, "top": top}
    csv.writer(line).writerow([values.get(c, "") for c in CSV_COLUMNS])
    return line.getvalue().rstrip("\r\n")


class _Progress:
    """Images scored so far in this process, reported every `seconds` while Beam runs. Only the
    in-process runner (the default) scores here; on other runners nothing is reported."""

    scored = 0
    lock = threading.Lock()

    @classmethod
    def count(cls, row: dict[str, Any]) -> dict[str, Any]:
        with cls.lock:
            cls.scored += 1
        return row

    @classmethod
    def report_while(cls, report: Callable[[int], None], seconds: float) -> Callable[[], None]:
        """Calls report(scored) every `seconds` when the count moved, and once more at the end;
        returns the function that ends it."""
        with cls.lock:
            cls.scored = 0
        done = threading.Event()

        def loop() -> None:
            last = 0
            while not done.wait(seconds) or cls.scored != last:
                if cls.scored != last:
                    last = cls.scored
                    report(last)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()

        def stop() -> None:
            done.set()
            thread.join()

        return stop


def score_folder(
    model_path: str,
    folder: str,
    out_path: str,
    top_k: int = 3,
    max_pixels: int = IngestionConfig.max_pixels,
    beam_args: list[str] | None = None,
    batch_size: int = 32,
    progress: Callable[[int, int], None] | None = None,
    progress_seconds: float = 10.0,
) -> BulkResult:
    """Scores every image under `folder` with the model and writes one row per file.
    `progress(scored, candidates)` is called every `progress_seconds` while it runs."""
    fmt = output_format(out_path)
    model_dir = resolve_model_dir(model_path)
    metadata = read_model_metadata(model_dir)
    class_names = list(metadata["class_names"])
    image_feature = metadata.get("image_feature", "image")
    candidates, skipped = list_images(folder)
    handler = beam_inference.KeyedModelHandler(SignatureModelHandler(model_dir, batch_size))
    header = ",".join(CSV_COLUMNS) if fmt == ".csv" else None
    report = progress or (lambda scored, total: None)
    stop_reporting = _Progress.report_while(lambda n: report(n, len(candidates)), progress_seconds)
    try:
        with beam.Pipeline(options=PipelineOptions(beam_args or [])) as pipeline:
            checked = (
                pipeline
                | "Files" >> beam.Create(candidates or [])
                | "Spread" >> beam.Reshuffle()
                | "CheckAndWrap"
                >> beam.ParDo(_CheckAndWrap(folder, image_feature, max_pixels)).with_outputs(
                    "errors", main="examples"
                )
            )
            predictions = (
                checked.examples
                | "RunInference" >> beam_inference.RunInference(handler)
                | "ToRows" >> beam.Map(lambda kv: prediction_row(*kv, class_names, top_k))
                | "Progress" >> beam.Map(_Progress.count)
            )
            _ = (
                (predictions, checked.errors, pipeline | "Skipped" >> beam.Create(skipped))
                | "AllRows" >> beam.Flatten()
                | "Format" >> beam.Map(format_row, fmt=fmt)
                | "Write"
                >> beam.io.WriteToText(
                    out_path, num_shards=1, shard_name_template="", header=header
                )
            )
    finally:
        stop_reporting()
    scored, not_scored = _count_rows(out_path, fmt)
    return BulkResult(model_dir=model_dir, out_path=out_path, scored=scored, not_scored=not_scored)


def read_rows(out_path: str) -> list[dict[str, Any]]:
    """The rows of a predictions file, either format (probabilities as floats)."""
    with tf.io.gfile.GFile(out_path) as f:
        if out_path.lower().endswith(".csv"):
            rows = list(csv.DictReader(f))
            for row in rows:
                row["probability"] = float(row["probability"]) if row["probability"] else None
            return rows
        return [json.loads(line) for line in f if line.strip()]


def _count_rows(out_path: str, fmt: str) -> tuple[int, int]:
    rows = read_rows(out_path)
    errors = sum(1 for row in rows if row.get("error"))
    return len(rows) - errors, errors
