"""What create_pipeline needs to know before it wires the steps, worked out and checked here:
the raw examples' feature names, the schema (it exists and names those features), the class
names, the paths as the steps will see them, and the baseline a run compares with. Every
problem is a ConfigError that says what to change, raised before any step runs."""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass

import tensorflow as tf
import tensorflow_data_validation as tfdv
from ml_metadata.metadata_store import metadata_store
from tfx.orchestration import metadata

from components import contract, tfrecord_import
from components.baseline import check_latest_baseline
from components.model_files import served_versions
from components.schema import class_names_from_schema
from pipeline.config import ConfigError, PipelineConfig

TARGETS = ("local", "kubeflow")  # who runs it: this machine (LocalDagRunner, Airflow), or KFP


@dataclass(frozen=True)
class PipelineInputs:
    """The plain values create_pipeline wires the steps with."""

    image_key: str  # the raw examples' encoded-image feature
    label_key: str  # and their label feature
    class_names: list[str]  # in label order
    serving_dir: str  # where blessed models go, as the steps see it
    baseline_model_id: int  # the served version's model chosen as baseline (0: latest or none)


def resolve_inputs(
    config: PipelineConfig, target: str = "local", *, judging: bool = True
) -> PipelineInputs:
    """judging: the pipeline goes as far as the Judge, so the baseline is looked up and checked
    (a run that stops after the data or the training never reads it)."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}")
    image_key, label_key = feature_keys(config)
    check_schema(config, image_key, label_key)
    local_baseline = judging and target == "local" and config.evaluation.baseline != "none"
    inputs = PipelineInputs(
        image_key=image_key,
        label_key=label_key,
        class_names=class_names(config),
        serving_dir=serving_dir(config, target),
        baseline_model_id=baseline_model_id(config) if local_baseline else 0,
    )
    if local_baseline:
        check_local_baseline(config, inputs)
    return inputs


def runner_path(config: PipelineConfig, path: str, target: str = "local") -> str:
    """A path as the pipeline's steps will see it. URLs (gs://...) pass unchanged; a relative
    local path is made absolute on this machine, or for Kubeflow inside the image, where the
    Dockerfile puts the project (kubeflow.project_dir)."""
    if "://" in path or os.path.isabs(path):
        return path
    if target == "kubeflow":
        return posixpath.join(config.kubeflow.project_dir, path)
    return os.path.abspath(path)


def serving_dir(config: PipelineConfig, target: str) -> str:
    if target == "kubeflow" and not config.runtime.serving_dir:
        return posixpath.join(config.kubeflow.pipeline_root, "serving")
    return runner_path(config, config.serving_dir, target)


def feature_keys(config: PipelineConfig) -> tuple[str, str]:
    """(image, label) feature names of the raw examples."""
    if config.data.tfrecords:
        return config.data.image_feature, config.data.label_feature
    return contract.RAW_IMAGE_KEY, contract.RAW_LABEL_KEY


def class_names(config: PipelineConfig) -> list[str]:
    """The run's class names in label order (components.contract.class_names decides)."""
    schema_names = class_names_from_schema(tfdv.load_schema_text(config.data.schema))
    try:
        return contract.class_names(
            schema_names,
            config.data.class_names,
            config.data.schema,
            imported=bool(config.data.tfrecords),
        )
    except contract.ClassNamesError as error:
        raise ConfigError(str(error)) from None


def check_schema(config: PipelineConfig, image_key: str, label_key: str) -> None:
    """The schema file exists and, for imported TFRecords, names their features."""
    if not tf.io.gfile.exists(config.data.schema):
        raise ConfigError(
            f"Schema file {config.data.schema} not found. Write one for this data with "
            "`python -m pipeline infer-schema`, review it, and set data.schema to its path."
        )
    if config.data.tfrecords:
        check_schema_features(config, image_key, label_key)


def check_schema_features(config: PipelineConfig, image_key: str, label_key: str) -> None:
    """Imported examples name their own features: a schema without the configured ones (the
    bundled sample schema, say) would fail deep in the run, so say now which command writes one."""
    names = {f.name for f in tfdv.load_schema_text(config.data.schema).feature}
    missing = [key for key in (image_key, label_key) if key not in names]
    if not missing:
        return
    try:
        path, features = tfrecord_import.first_example_features(config.data.tfrecords)
        found = f"The examples' features (first record of {path}): {', '.join(features)}. "
    except (tf.errors.OpError, OSError, ValueError) as error:
        found = f"(The examples could not be read from here: {error}) "
    raise ConfigError(
        f"The schema {config.data.schema} has no feature {' or '.join(map(repr, missing))} "
        f"(data.image_feature={image_key!r}, data.label_feature={label_key!r}); its features: "
        f"{', '.join(sorted(names))}. {found}Write a schema for these examples with\n"
        f"  python -m pipeline infer-schema --tfrecords {config.data.tfrecords} "
        f"--set data.image_feature={image_key} --set data.label_feature={label_key} "
        f"--set data.class_names={','.join(config.data.class_names) or 'NAME0,NAME1,...'} "
        "--out SCHEMA.pbtxt\nreview it, and run with --set data.schema=SCHEMA.pbtxt."
    )


def baseline_model_id(config: PipelineConfig) -> int:
    """The model artifact served as version evaluation.baseline (0 for latest or none)."""
    version = config.evaluation.baseline
    if not version.isdigit():
        return 0
    served = dict(served_versions(serving_dir(config, "local")))
    record = served.get(version)
    if not record or "model_artifact_id" not in record:
        known = ", ".join(v for v, r in served.items() if r) or "none"
        raise ConfigError(
            f"--baseline {version}: {config.serving_dir} holds no version {version} pushed by "
            f"this pipeline (versions with a push record: {known}). Use one of those, latest "
            "or none."
        )
    return int(record["model_artifact_id"])


def check_local_baseline(config: PipelineConfig, inputs: PipelineInputs) -> None:
    """A damaged baseline is named now, before the steps run (components.baseline)."""
    if os.path.exists(config.metadata_path):
        store = metadata_store.MetadataStore(
            metadata.sqlite_metadata_connection_config(os.path.abspath(config.metadata_path))
        )
        check_latest_baseline(store, inputs.baseline_model_id, inputs.serving_dir)
