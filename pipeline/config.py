"""The pipeline's one typed configuration: defaults here, a YAML file over them, flags over that."""

from __future__ import annotations

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


def _opt(default: Any, help: str, **kwargs: Any) -> Any:
    """A config field whose help text is shown by `python -m pipeline run --help`."""
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help}, **kwargs)


@dataclass
class DataConfig:
    images: str = _opt(
        "data/sample",
        "Folder of labelled images, one sub-folder per class; or with train/ and eval/ "
        "(and optionally test/) sub-folders that hold the class folders.",
    )
    tfrecords: str = _opt(
        "",
        "Folder of existing TFRecord files of tf.Examples (used instead of `images` when set); "
        "each split in a sub-folder named after it (train/, eval/, test/) or, without "
        "sub-folders, split by hash.",
    )
    image_feature: str = _opt("image", "Name of the encoded-image bytes feature in the examples.")
    label_feature: str = _opt("label", "Name of the integer label feature in the examples.")
    class_names: list[str] = _opt(
        [],
        "Class names in label order, for imported TFRecords (image folders name their classes).",
    )
    split_buckets: dict[str, int] = _opt(
        {"train": 8, "eval": 1, "test": 1},
        "Hash-bucket ratio of the splits made from a folder that is not split already.",
    )
    schema: str = _opt(
        "data/sample_schema.pbtxt",
        "Curated schema (schema.pbtxt) the examples are validated against; write one for new "
        "data with `python -m pipeline infer-schema`.",
    )
    splits: str = _opt(
        "auto",
        "How the splits are found: `auto` lists the data folder (train/ and eval/ sub-folders, "
        "else a hash split); `folders` takes the sub-folders named by the keys of "
        "data.split_buckets; `hash` splits by hash. `folders` and `hash` read nothing while the "
        "pipeline is built, so a Kubeflow compile needs no access to a gs:// data folder.",
    )


@dataclass
class IngestionConfig:
    min_side: int = _opt(32, "Images with a side shorter than this many pixels are quarantined.")
    max_pixels: int = _opt(
        40_000_000, "Images with more pixels than this are quarantined (decompression bombs)."
    )
    max_bad_fraction: float = _opt(
        0.05, "Fail ingestion when more than this share of the image files is quarantined."
    )


@dataclass
class ValidationConfig:
    label_drift_threshold: float = _opt(
        0.25,
        "Largest allowed L-infinity distance between the label distributions of the train "
        "split and each other split (TFDV's skew/drift comparator); 0 turns the check off.",
    )


@dataclass
class TransformConfig:
    image_size: int = _opt(224, "Side of the square images fed to VGG16 (32 or more).")
    resize: str = _opt(
        "crop",
        "Aspect-ratio policy: `crop` resizes the short side then centre-crops; `pad` fits the "
        "whole image and pads with black.",
    )


@dataclass
class TrainingConfig:
    weights: str = _opt(
        "imagenet", "VGG16 base weights: `imagenet`, `none` (random), or a path to a .h5 file."
    )
    allow_random_weights_fallback: bool = _opt(
        False,
        "When ImageNet weights cannot be downloaded, train from random weights (with a loud "
        "warning) instead of failing. Meant for demos only.",
    )
    head: str = _opt(
        "flatten",
        "Classifier head: `flatten` (Flatten, Dense(units, relu), Dense(N, softmax)) or `gap` "
        "(GlobalAveragePooling, Dropout, Dense(N, softmax)).",
    )
    head_units: int = _opt(1024, "Units of the hidden Dense layer of the `flatten` head.")
    dropout: float = _opt(0.5, "Dropout rate of the `gap` head.")
    batch_size: int = _opt(32, "Training and evaluation batch size.")
    epochs: int = _opt(5, "Phase 1 epochs: the head trained on the frozen base.")
    learning_rate: float = _opt(1e-3, "Phase 1 (Adam) learning rate.")
    fine_tune: bool = _opt(True, "Run phase 2: unfreeze the top blocks and train again.")
    fine_tune_blocks: int = _opt(1, "Convolution blocks unfrozen in phase 2, from the top (1-5).")
    fine_tune_epochs: int = _opt(3, "Phase 2 epochs.")
    fine_tune_learning_rate: float = _opt(1e-5, "Phase 2 (Adam) learning rate.")
    early_stopping_patience: int = _opt(
        3, "Stop a phase after this many epochs without a lower validation loss (0: never)."
    )
    augment: bool = _opt(False, "Random flip, zoom-crop and brightness on training images.")
    cache_features: bool = _opt(
        True,
        "In phase 1 without augmentation, compute the frozen base's outputs once and train the "
        "head on them.",
    )
    mixed_precision: str = _opt("auto", "`auto` (on when a GPU is visible), `on` or `off`.")
    distribution: str = _opt(
        "auto", "`auto` (MirroredStrategy over several GPUs), `mirrored`, `multiworker`, `none`."
    )
    seed: int = _opt(42, "Seed for weight initialization and shuffling.")


@dataclass
class EvaluationConfig:
    min_accuracy: float = _opt(0.5, "Value threshold: the candidate's accuracy must reach this.")
    max_accuracy_drop: float = _opt(
        0.01,
        "Change threshold: the candidate may be at most this much less accurate than the "
        "baseline (the last blessed model).",
    )


@dataclass
class RuntimeConfig:
    name: str = _opt("vgg16-image-classifier", "Pipeline name (metadata context).")
    root: str = _opt(
        "runs", "Folder for artifacts, the metadata store, logs and run reports of this pipeline."
    )
    serving_dir: str = _opt(
        "",
        "Where blessed models are pushed, in TF Serving's layout (local path or any tf.io.gfile "
        "URL). Default: <root>/serving.",
    )
    metadata_path: str = _opt("", "SQLite metadata store. Default: <root>/metadata.sqlite.")
    enable_cache: bool = _opt(True, "Reuse results of unchanged steps from earlier runs.")
    beam_args: list[str] = _opt(
        ["--direct_running_mode=in_memory", "--direct_num_workers=1"],
        "Apache Beam pipeline arguments of the data steps.",
    )
    fail_on_unblessed: bool = _opt(False, "Exit non-zero when the candidate model is not blessed.")


@dataclass
class KubeflowConfig:
    image: str = _opt(
        "",
        "Container image the steps run in (built from the Dockerfile), e.g. "
        "us-docker.pkg.dev/PROJECT/REPO/vgg16-tfx-pipeline:TAG. Required to compile.",
    )
    pipeline_root: str = _opt(
        "",
        "Where the steps write artifacts, a URL every step can reach, e.g. gs://BUCKET/root. "
        "Required to compile. Blessed models go to <pipeline_root>/serving unless "
        "runtime.serving_dir is set.",
    )
    project_dir: str = _opt(
        "/pipeline",
        "Where the Dockerfile puts the project in the image: relative paths of the "
        "configuration (data.images, data.schema, ...) are resolved against it.",
    )
    baseline: bool = _opt(
        True,
        "Compare the candidate with the last blessed model (evaluation.max_accuracy_drop). TFX "
        "compiles that look-up into resolver tasks, which Vertex AI Pipelines runs and the "
        "open-source Kubeflow Pipelines backend rejects: set false there, and the candidate is "
        "judged by evaluation.min_accuracy alone.",
    )
    trainer_cpu: float = _opt(0.0, "vCPUs for the Trainer's container (0: the platform default).")
    trainer_memory: str = _opt(
        "",
        "Memory for the Trainer's container, a Kubernetes quantity such as 32G or 30Gi "
        "(empty: the platform default).",
    )
    trainer_gpus: int = _opt(0, "GPUs for the Trainer's container.")
    trainer_gpu_type: str = _opt(
        "",
        "GPU type: on Vertex AI e.g. NVIDIA_TESLA_T4, NVIDIA_L4 or NVIDIA_TESLA_A100; on "
        "Kubeflow Pipelines the Kubernetes resource name, nvidia.com/gpu.",
    )


@dataclass
class AirflowConfig:
    schedule: str = _opt(
        "", "Airflow schedule: a cron expression or a preset like @daily; empty: only on trigger."
    )
    start_date: str = _opt("2024-01-01", "First logical date of the DAG (YYYY-MM-DD).")
    catchup: bool = _opt(False, "Run the intervals between start_date and now that were missed.")
    retries: int = _opt(0, "Retries of a failed step before the run fails.")
    retry_delay_minutes: int = _opt(5, "Minutes between retries.")


@dataclass
class PipelineConfig:
    data: DataConfig = field(default_factory=DataConfig)
    ingestion: IngestionConfig = field(default_factory=IngestionConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    transform: TransformConfig = field(default_factory=TransformConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    kubeflow: KubeflowConfig = field(default_factory=KubeflowConfig)
    airflow: AirflowConfig = field(default_factory=AirflowConfig)

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.runtime.root, "artifacts")

    @property
    def metadata_path(self) -> str:
        return self.runtime.metadata_path or os.path.join(self.runtime.root, "metadata.sqlite")

    @property
    def serving_dir(self) -> str:
        return self.runtime.serving_dir or os.path.join(self.runtime.root, "serving")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        """Rejects settings that cannot work, before anything runs."""
        errors = []
        if self.transform.image_size < 32:
            errors.append(f"transform.image_size is {self.transform.image_size}; VGG16 needs 32+")
        if self.transform.resize not in ("crop", "pad"):
            errors.append(f"transform.resize is {self.transform.resize!r}; use 'crop' or 'pad'")
        if self.training.head not in ("flatten", "gap"):
            errors.append(f"training.head is {self.training.head!r}; use 'flatten' or 'gap'")
        if not 1 <= self.training.fine_tune_blocks <= 5:
            errors.append("training.fine_tune_blocks must be between 1 and 5")
        if not 0 <= self.ingestion.max_bad_fraction <= 1:
            errors.append("ingestion.max_bad_fraction must be between 0 and 1")
        images = self.data.images
        if not self.data.tfrecords and "://" not in images and not Path(images).is_dir():
            errors.append(f"data.images: {images!r} is not a folder")
        if self.data.splits not in ("auto", "folders", "hash"):
            errors.append(f"data.splits is {self.data.splits!r}; use 'auto', 'folders' or 'hash'")
        if self.data.splits == "folders" and not {"train", "eval"} <= set(self.data.split_buckets):
            errors.append(
                "data.splits=folders reads the folders named by data.split_buckets' "
                "keys, which must include train and eval"
            )
        if errors:
            raise ConfigError("Invalid configuration:\n  - " + "\n  - ".join(errors))


class ConfigError(ValueError):
    """A configuration value that cannot work, with what to change."""


def _sections(config: PipelineConfig) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def iter_options(config: PipelineConfig | None = None):
    """Yields (dotted key, default, help) for every option, for --help and docs."""
    config = config or PipelineConfig()
    for section_name, section in _sections(config).items():
        for f in dataclasses.fields(section):
            yield f"{section_name}.{f.name}", getattr(section, f.name), f.metadata.get("help", "")


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Turns a YAML or command-line value into the field's type."""
    target = typing.get_origin(annotation) or annotation
    if isinstance(value, str) and target is not str:
        value = yaml.safe_load(value)
    if target is bool and not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if target is float and isinstance(value, int):
        value = float(value)
    if target is list and isinstance(value, str):
        value = [v for v in value.split(",") if v]
    if not isinstance(value, target):
        raise ConfigError(f"{key}: expected {target.__name__}, got {value!r}")
    return value


def set_option(config: PipelineConfig, key: str, value: Any) -> None:
    """Sets `section.name` to value (a string from the command line is parsed as YAML)."""
    section_name, _, name = key.partition(".")
    sections = _sections(config)
    if section_name not in sections or not name:
        raise ConfigError(f"Unknown option {key!r}; sections are: {', '.join(sections)}")
    section = sections[section_name]
    fields = {f.name: f for f in dataclasses.fields(section)}
    if name not in fields:
        raise ConfigError(
            f"Unknown option {key!r}; {section_name} has: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(type(section))
    setattr(section, name, _coerce(value, hints[name], key))


def load_config(path: str | None = None, overrides: list[str] | None = None) -> PipelineConfig:
    """Defaults, then the YAML file (if any), then `key=value` overrides, in that order."""
    config = PipelineConfig()
    if path:
        raw = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
        for section_name, values in raw.items():
            if not isinstance(values, dict):
                raise ConfigError(f"{path}: section {section_name!r} must be a mapping")
            for name, value in values.items():
                set_option(config, f"{section_name}.{name}", value)
    for override in overrides or []:
        key, sep, value = override.partition("=")
        if not sep:
            raise ConfigError(f"Override {override!r} must look like section.name=value")
        set_option(config, key.strip(), value)
    return config
