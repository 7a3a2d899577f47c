"""Checks of this machine before a run starts: folders writable, inputs readable, disk room.

Nothing here imports TensorFlow, so a wrong path is answered in a fraction of a second instead
of after the imports and the first components. Remote URLs (gs://...) are left to the steps.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

from components.contract import no_class_names_message
from pipeline.config import ConfigError, PipelineConfig

_VGG16_NOTOP_BYTES = 59_000_000


class PreflightError(ConfigError):
    """The machine cannot run this configuration; each line says what to fix."""


def _remote(path: str) -> bool:
    return "://" in path


def _nearest_existing(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def _why(error: OSError) -> str:
    return error.strerror or type(error).__name__


def writable_folder_problem(path: str, option: str, create: bool) -> str | None:
    """Whether `path` is (or can become) a folder this process can write in. With create, the
    folder is made (the run needs it anyway); without, only a scratch folder is made in its
    nearest existing parent and removed, so nothing is left behind."""
    if _remote(path):
        return None
    fix = f"set {option} to a folder you can write to"
    existing = _nearest_existing(path)
    if not os.path.isdir(existing):
        return f"{option}={path}: {existing} is a file, not a folder; {fix}"
    try:
        if create:
            os.makedirs(path, exist_ok=True)
            existing = path
        os.rmdir(tempfile.mkdtemp(prefix=".write-check-", dir=existing))
    except OSError as error:
        return f"{option}={path}: cannot write in {existing} ({_why(error)}); {fix}"
    return None


def readable_folder_problem(path: str, option: str) -> str | None:
    if _remote(path):
        return None
    if not os.path.isdir(path):
        return f"{option}={path}: no such folder; give the folder that holds the data"
    try:
        os.listdir(path)
    except OSError as error:
        return f"{option}={path}: cannot list it ({_why(error)}); make it readable"
    return None


def readable_file_problem(path: str, option: str, fix: str) -> str | None:
    if _remote(path):
        return None
    if not os.path.isfile(path):
        return f"{option}={path}: no such file; {fix}"
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as error:
        return f"{option}={path}: cannot read it ({_why(error)}); make it readable"
    return None


def schema_has_class_names(path: str) -> bool:
    """Whether a curated schema names the classes (infer-schema writes them)."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    from components.schema import class_names_from_schema

    with open(path) as f:
        schema = text_format.Parse(f.read(), schema_pb2.Schema())
    return bool(class_names_from_schema(schema))


def data_problems(config: PipelineConfig, needs_schema: bool = True) -> list[str]:
    """The data folder, and (for a run) the schema, readable from here."""
    data = config.data
    folder, option = (
        (data.tfrecords, "data.tfrecords") if data.tfrecords else (data.images, "data.images")
    )
    problems = [readable_folder_problem(folder, option)]
    if needs_schema:
        schema_problem = readable_file_problem(
            data.schema,
            "data.schema",
            "write one for this data with `python -m pipeline infer-schema --out FILE`, review "
            "it, and set data.schema to it",
        )
        problems.append(schema_problem)
        unnamed = data.tfrecords and not data.class_names and not schema_problem
        if unnamed and not _remote(data.schema) and not schema_has_class_names(data.schema):
            problems.append(no_class_names_message(data.schema, imported=True))
    elif data.tfrecords and not data.class_names:
        problems.append(
            "data.class_names is empty: imported TFRecords don't name their classes; set it "
            "in label order (e.g. --set data.class_names=cat,dog)"
        )
    return [p for p in problems if p]


def weights_problem(config: PipelineConfig) -> str | None:
    weights = config.training.weights
    if weights in ("imagenet", "none"):
        return None  # ImageNet's are found or provisioned by components.base_weights
    return readable_file_problem(
        weights,
        "training.weights",
        "give the path of a VGG16 no-top weights file (.h5), or use imagenet or none",
    )


def run_problems(config: PipelineConfig) -> list[str]:
    """Everything `run` needs from this machine before it starts."""
    problems = [
        writable_folder_problem(config.runtime.root, "runtime.root", create=True),
        writable_folder_problem(config.serving_dir, "runtime.serving_dir", create=False),
    ]
    if config.runtime.metadata_path:
        parent = os.path.dirname(os.path.abspath(config.runtime.metadata_path))
        problems.append(writable_folder_problem(parent, "runtime.metadata_path", create=False))
    problems += data_problems(config)
    problems.append(weights_problem(config))
    return [p for p in problems if p]


def check_run(config: PipelineConfig) -> None:
    problems = run_problems(config)
    if problems:
        raise PreflightError(*problems)


def _folder_bytes(folder: str, limit: int = 200_000) -> int:
    total = 0
    for count, (root, _, files) in enumerate(os.walk(folder)):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(root, name))
        if count > limit:
            break
    return total


# The size of each TensorFlow Lite variant as a share of the float32 model.
_TFLITE_SHARE = {"float32": 1.0, "float16": 0.5, "dynamic_int8": 0.25, "int8": 0.25}


def estimated_run_bytes(config: PipelineConfig) -> int:
    """A rough size of what a run writes: the examples (about the data's size, plus statistics),
    three copies of the model (the Trainer's, the pushed one, a checkpoint) and two of each
    TensorFlow Lite variant (the LiteExporter's and the pushed one)."""
    data = config.data.tfrecords or config.data.images
    data_bytes = 0 if _remote(data) else _folder_bytes(data)
    side = config.transform.image_size // 32
    head_bytes = 4 * side * side * 512 * config.training.head_units
    model_bytes = _VGG16_NOTOP_BYTES + head_bytes
    lite = sum(_TFLITE_SHARE[v] for v in config.export.tflite_variants)
    return int(2 * data_bytes + (3 + 2 * lite) * model_bytes)


def disk_warning(config: PipelineConfig) -> str | None:
    """A warning when the root's disk has less room than the rough estimate of the run."""
    if _remote(config.runtime.root):
        return None
    free = shutil.disk_usage(_nearest_existing(config.runtime.root)).free
    needed = estimated_run_bytes(config)
    if free >= needed:
        return None
    return (
        f"warning: {config.runtime.root} has {free / 1e9:.2f} GB free; this run may write "
        f"about {needed / 1e9:.2f} GB. Free some room or set --root to a larger disk."
    )
