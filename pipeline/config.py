"""The pipeline's one typed configuration: defaults, a YAML file over them, flags over that.

Each step's section is declared in components/settings.py, below the steps that use it; this
module gathers them with the pipeline's own sections (runtime, Kubeflow, Airflow) and loads
and checks the whole."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.options import not_empty, option, section_problems
from components.settings import (
    DataConfig,
    EvaluationConfig,
    ExportConfig,
    FindingsConfig,
    IngestionConfig,
    TrainingConfig,
    TransformConfig,
    TuningConfig,
    ValidationConfig,
)


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


def _iso_date(text: str) -> str | None:
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return "use a date written YYYY-MM-DD"
    return None


@dataclass
class RuntimeConfig:
    name: str = option(
        "vgg16-image-classifier",
        "Pipeline name (metadata context): letters, digits, `.`, `_` and `-`.",
        check=_pipeline_name,
    )
    root: str = option(
        "runs",
        "Folder for artifacts, the metadata store, logs and run reports of this pipeline.",
        check=not_empty,
    )
    serving_dir: str = option(
        "",
        "Where blessed models are pushed, in TF Serving's layout (local path or any tf.io.gfile "
        "URL). Default: <root>/serving.",
    )
    metadata_path: str = option("", "SQLite metadata store. Default: <root>/metadata.sqlite.")
    enable_cache: bool = option(True, "Reuse results of unchanged steps from earlier runs.")
    beam_args: list[str] = option(
        ["--direct_running_mode=in_memory", "--direct_num_workers=1"],
        "Apache Beam pipeline arguments of the data steps.",
        check=_beam_args,
    )
    fail_on_unblessed: bool = option(
        False, "Exit non-zero when the candidate model is not blessed."
    )


@dataclass
class KubeflowConfig:
    image: str = option(
        "",
        "Container image the steps run in (built from the Dockerfile), e.g. "
        "us-docker.pkg.dev/PROJECT/REPO/vgg16-tfx-pipeline:TAG. Required to compile.",
    )
    pipeline_root: str = option(
        "",
        "Where the steps write artifacts, a URL every step can reach, e.g. gs://BUCKET/root. "
        "Required to compile. Blessed models go to <pipeline_root>/serving unless "
        "runtime.serving_dir is set.",
    )
    project_dir: str = option(
        "/pipeline",
        "Where the Dockerfile puts the project in the image: relative paths of the "
        "configuration (data.images, data.schema, ...) are resolved against it.",
        check=_absolute_posix_path,
    )
    baseline: bool = option(
        True,
        "Compare the candidate with the last blessed model (evaluation.max_accuracy_drop). TFX "
        "compiles that look-up into resolver tasks, which Vertex AI Pipelines runs and the "
        "open-source Kubeflow Pipelines backend rejects: set false there, and the candidate is "
        "judged by evaluation.min_accuracy alone.",
    )
    trainer_cpu: float = option(
        0.0, "vCPUs for the Trainer's container (0: the platform default).", minimum=0
    )
    trainer_memory: str = option(
        "",
        "Memory for the Trainer's container, a Kubernetes quantity such as 32G or 30Gi "
        "(empty: the platform default).",
        check=_kubernetes_quantity,
    )
    trainer_gpus: int = option(0, "GPUs for the Trainer's container.", minimum=0)
    trainer_gpu_type: str = option(
        "",
        "GPU type: on Vertex AI e.g. NVIDIA_TESLA_T4, NVIDIA_L4 or NVIDIA_TESLA_A100; on "
        "Kubeflow Pipelines the Kubernetes resource name, nvidia.com/gpu.",
    )


@dataclass
class AirflowConfig:
    schedule: str = option(
        "", "Airflow schedule: a cron expression or a preset like @daily; empty: only on trigger."
    )
    start_date: str = option(
        "2024-01-01", "First logical date of the DAG (YYYY-MM-DD).", check=_iso_date
    )
    catchup: bool = option(False, "Run the intervals between start_date and now that were missed.")
    retries: int = option(0, "Retries of a failed step before the run fails.", minimum=0)
    retry_delay_minutes: int = option(5, "Minutes between retries.", minimum=0)


@dataclass
class PipelineConfig:
    data: DataConfig = field(default_factory=DataConfig)
    ingestion: IngestionConfig = field(default_factory=IngestionConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    transform: TransformConfig = field(default_factory=TransformConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)
    findings: FindingsConfig = field(default_factory=FindingsConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
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
