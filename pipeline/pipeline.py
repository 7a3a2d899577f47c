"""create_pipeline(config): the DAG from images to a pushed model, the same for every runner.

create_pipeline comes first and reads top to bottom, a comment per component; the helpers it
calls (paths, class names, the schema checks, the baseline) follow it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import posixpath

import tensorflow as tf
import tensorflow_data_validation as tfdv
from ml_metadata.metadata_store import metadata_store
from tfx.components import (
    Evaluator,
    ExampleValidator,
    Pusher,
    StatisticsGen,
    Trainer,
    Transform,
    Tuner,
)
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.dsl.components.base import executor_spec
from tfx.dsl.components.common.resolver import Resolver
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy,
)
from tfx.orchestration import metadata
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import pusher_pb2, trainer_pb2, transform_pb2
from tfx.types import Channel, standard_artifacts

from components import pusher as atomic_pusher
from components import splits, tfrecord_import
from components.baseline import LatestBlessedOtherModelStrategy, check_latest_baseline
from components.data_gate import DataGate
from components.evaluation import make_eval_config
from components.gate import GateSettings
from components.image_example_gen import (
    IMAGE_ID_KEY,
    RAW_IMAGE_KEY,
    RAW_LABEL_KEY,
    ImageExampleGen,
)
from components.judge import Judge
from components.model_files import served_versions
from components.options import background_rgb
from components.schema import class_names_from_schema
from components.scorer import Scorer
from components.trainer_settings import TrainerSettings
from pipeline.config import ConfigError, PipelineConfig

STAGES = ("data", "train", "all")  # how far a pipeline goes: validation, training, push
TARGETS = ("local", "kubeflow")  # who runs it: this machine (LocalDagRunner, Airflow), or KFP


def create_pipeline(
    config: PipelineConfig, stop_after: str = "all", target: str = "local"
) -> tfx_pipeline.Pipeline:
    """Ingest, validate (stop on anomalies), transform, train, evaluate against the last blessed
    model, and push only a blessed model. `stop_after` ('data', 'train') builds a prefix.
    `target` 'kubeflow' builds it for KubeflowV2DagRunner: paths as the image sees them, the
    kubeflow.pipeline_root, no SQLite store (KFP keeps its own metadata)."""
    if stop_after not in STAGES:
        raise ValueError(f"stop_after must be one of {STAGES}")
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}")
    image_key, label_key = feature_keys(config)
    check_schema(config, image_key, label_key)
    names = class_names(config)

    # Reads the images (or imports the TFRecords) into tf.Examples, split into train, eval and
    # test; bad image files are quarantined and listed in an ingestion report.
    example_gen, split_names = make_example_gen(
        config, target, class_names=None if config.data.tfrecords else schema_class_names(config)
    )
    # The curated schema (data.schema): what every split must look like.
    schema_gen = ImportSchemaGen(schema_file=runner_path(config, config.data.schema, target))
    # Statistics of every split, computed with TFDV.
    statistics_gen = StatisticsGen(
        examples=example_gen.outputs["examples"], schema=schema_gen.outputs["schema"]
    )
    # Anomalies: each split's statistics checked against the schema.
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    # Stops the run on anomalies, labels outside the class list, or drifted label shares.
    data_gate = DataGate(
        statistics=statistics_gen.outputs["statistics"],
        schema=schema_gen.outputs["schema"],
        anomalies=example_validator.outputs["anomalies"],
        label_drift_threshold=config.validation.label_drift_threshold,
        label_key=label_key,
        class_names=json.dumps(names),
    )
    components = [example_gen, schema_gen, statistics_gen, example_validator, data_gate]
    if stop_after == "data":
        return _pipeline(config, components, target)

    if "train" not in split_names or "eval" not in split_names:
        raise ConfigError(f"The data needs train and eval splits; it has {split_names}.")
    # The preprocessing graph (decode, composite transparency, resize), which the Trainer runs
    # on ExampleGen's examples and builds into the exported model, so serving runs it too.
    transform = Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn="components.preprocessing.preprocessing_fn",
        custom_config={
            "raw_image_key": image_key,
            "raw_label_key": label_key,
            "image_size": config.transform.image_size,
            "resize": config.transform.resize,
            "background": list(background_rgb(config.transform.background)),
        },
        splits_config=transform_pb2.SplitsConfig(analyze=["train"]),
        # Statistics over raw image bytes cost time and say nothing StatisticsGen didn't.
        disable_statistics=True,
        # The Trainer runs the graph on ExampleGen's records instead. Written out, each 224 px
        # image is a ~147 KB pixel record, GZIP-compressed: Transform took 65 s on 12,000 images
        # against ImageExampleGen's 9 s (benchmarks/RESULTS.md). With no analyzers and no
        # statistics, TFX's "in-place" Transform only writes the graph and reads no data.
        materialize=False,
    )
    transform.add_upstream_node(data_gate)  # no preprocessing before the data passed
    trainer_settings = TrainerSettings(
        training=config.training,
        image_size=config.transform.image_size,
        class_names=names,
        raw_image_key=image_key,
        raw_label_key=label_key,
        tuning=config.tuning,
    ).to_custom_config()
    # Optional (tuning.enabled): searches the head's hyperparameters on the frozen base's
    # features, computed once; the Trainer uses the best.
    tuner = None
    if config.tuning.enabled:
        tuner = Tuner(
            tuner_fn="components.tuner.tuner_fn",
            examples=example_gen.outputs["examples"],
            transform_graph=transform.outputs["transform_graph"],
            schema=schema_gen.outputs["schema"],
            train_args=trainer_pb2.TrainArgs(splits=["train"]),
            eval_args=trainer_pb2.EvalArgs(splits=["eval"]),
            custom_config=trainer_settings,
        )
    # VGG16 transfer learning: trains a new head on the frozen base, fine-tunes the top blocks,
    # and exports a SavedModel that takes encoded images.
    trainer = Trainer(
        run_fn="components.trainer.run_fn",
        examples=example_gen.outputs["examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        hyperparameters=tuner.outputs["best_hyperparameters"] if tuner else None,
        train_args=trainer_pb2.TrainArgs(splits=["train"]),
        eval_args=trainer_pb2.EvalArgs(splits=["eval"]),
        custom_config=trainer_settings,
    )
    components += [transform, *([tuner] if tuner else []), trainer]
    if stop_after == "train":
        return _pipeline(config, components, target)

    # The model to beat: the last blessed one (or evaluation.baseline's version); none with
    # evaluation.baseline=none.
    baseline_resolver = _baseline_resolver(config, trainer, target)
    baseline = baseline_resolver.outputs["model"] if baseline_resolver else None
    judged_split = "test" if "test" in split_names else "eval"
    # Predicts the judged split once with the candidate and the baseline: every later step
    # reads these predictions, none runs a model again.
    scorer = Scorer(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline,
        split=judged_split,
        label_key=label_key,
        image_key=image_key,
    )
    # TFMA's metrics of both models from those predictions (model-agnostic), overall and per
    # class, for the report ...
    evaluator = Evaluator(
        examples=scorer.outputs["predictions"],
        baseline_model=baseline,  # tells TFX there is a baseline; TFMA does not load it
        eval_config=make_eval_config(
            len(names), label_key, config.evaluation.tfma_confidence_intervals
        ),
        example_splits=[judged_split],
    )
    # ... and the Judge decides the blessing from them, with the intervals and the paired
    # comparison (components/judge.py says why not TFMA's own validation).
    judge = Judge(
        predictions=scorer.outputs["predictions"],
        model=trainer.outputs["model"],
        baseline_model=baseline,
        split=judged_split,
        label_key=label_key,
        serving_dir=_serving_dir(config, target),
        baseline_mode=config.evaluation.baseline,
        settings=json.dumps(gate_settings(config)),
    )
    judge.add_upstream_node(evaluator)  # a run whose evaluation failed decides nothing
    # Publishes a blessed model to the serving folder, atomically, after a smoke test; an
    # unblessed model, or one already served, is not pushed.
    pusher = Pusher(
        model=trainer.outputs["model"],
        model_blessing=judge.outputs["model_blessing"],
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(
                base_directory=_serving_dir(config, target)
            )
        ),
        custom_executor_spec=executor_spec.ExecutorClassSpec(atomic_pusher.Executor),
    )
    components += [
        *([baseline_resolver] if baseline_resolver else []),
        scorer,
        evaluator,
        judge,
        pusher,
    ]
    return _pipeline(config, components, target)


def _pipeline(config: PipelineConfig, components: list, target: str) -> tfx_pipeline.Pipeline:
    kubeflow = target == "kubeflow"
    return tfx_pipeline.Pipeline(
        pipeline_name=config.runtime.name,
        pipeline_root=config.kubeflow.pipeline_root
        if kubeflow
        else runner_path(config, config.pipeline_root),
        components=components,
        enable_cache=config.runtime.enable_cache,
        metadata_connection_config=None
        if kubeflow
        else metadata.sqlite_metadata_connection_config(os.path.abspath(config.metadata_path)),
        beam_pipeline_args=list(config.runtime.beam_args),
    )


# --- What create_pipeline builds on -------------------------------------------------------------


def runner_path(config: PipelineConfig, path: str, target: str = "local") -> str:
    """A path as the pipeline's steps will see it. URLs (gs://...) pass unchanged; a relative
    local path is made absolute on this machine, or for Kubeflow inside the image, where the
    Dockerfile puts the project (kubeflow.project_dir)."""
    if "://" in path or os.path.isabs(path):
        return path
    if target == "kubeflow":
        return posixpath.join(config.kubeflow.project_dir, path)
    return os.path.abspath(path)


def make_example_gen(
    config: PipelineConfig, target: str = "local", *, class_names: list[str] | None
) -> tuple[ImageExampleGen | tfrecord_import.TFRecordExampleGen, list[str]]:
    """ImageExampleGen for an image folder, ImportExampleGen for existing TFRecords, and the
    names of the splits it writes (components/splits.py finds them). class_names: the schema's
    class list, which an image's label is the position in (None: the sorted class folders, for
    infer-schema, which has no schema yet)."""
    data = config.data
    try:
        if data.tfrecords:
            input_config, output_config = splits.tfrecord_split_configs(
                data.tfrecords, data.split_buckets, data.splits
            )
            # ImportExampleGen, reading each split with the compression its files' first bytes
            # show, not their names.
            example_gen = tfrecord_import.TFRecordExampleGen(
                input_base=runner_path(config, data.tfrecords, target),
                input_config=input_config,
                output_config=output_config,
            )
        else:
            input_config, output_config = splits.image_split_configs(
                data.images, data.split_buckets, data.splits, partition_feature=IMAGE_ID_KEY
            )
            example_gen = ImageExampleGen(
                input_base=runner_path(config, data.images, target),
                split_buckets=data.split_buckets,
                ingestion=config.ingestion,
                duplicates=config.validation.duplicates,
                background=config.transform.background,
                class_names=class_names,
                # Found above from the folder as this machine sees it; the steps may see it
                # elsewhere.
                input_config=input_config,
                output_config=output_config,
            )
    except splits.SplitLayoutError as error:
        raise ConfigError(str(error)) from None
    return example_gen, splits.split_names(input_config, output_config)


def feature_keys(config: PipelineConfig) -> tuple[str, str]:
    """(image, label) feature names of the raw examples."""
    if config.data.tfrecords:
        return config.data.image_feature, config.data.label_feature
    return RAW_IMAGE_KEY, RAW_LABEL_KEY


def schema_class_names(config: PipelineConfig) -> list[str]:
    """The class list of the schema (its class_name domain): the labels of an image folder."""
    names = class_names_from_schema(tfdv.load_schema_text(config.data.schema))
    if not names:
        raise ConfigError(
            f"The schema {config.data.schema} has no class_name domain, so the labels of the "
            "image folder are undefined. Write a schema for this data with `python -m pipeline "
            "infer-schema`, review its class list (labels are positions in it) and use it."
        )
    return names


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


def class_names(config: PipelineConfig) -> list[str]:
    """data.class_names, or the schema's class list; both set, they must be the same list."""
    schema_names = class_names_from_schema(tfdv.load_schema_text(config.data.schema))
    if config.data.class_names:
        if schema_names and list(config.data.class_names) != schema_names:
            raise ConfigError(
                f"data.class_names is {list(config.data.class_names)} but the schema "
                f"{config.data.schema} lists the classes {schema_names}: a label is a position "
                "in this list, so they must be the same, in the same order. Fix "
                "data.class_names, or write a schema for this data with `python -m pipeline "
                "infer-schema`."
            )
        return list(config.data.class_names)
    names = schema_names
    if not names:
        raise ConfigError(
            f"No class names: the schema {config.data.schema} has no class_name domain. Set "
            "data.class_names (in label order) for imported TFRecords."
        )
    return names


def check_schema(config: PipelineConfig, image_key: str, label_key: str) -> None:
    """The schema file exists and, for imported TFRecords, names their features."""
    if not tf.io.gfile.exists(config.data.schema):
        raise ConfigError(
            f"Schema file {config.data.schema} not found. Write one for this data with "
            "`python -m pipeline infer-schema`, review it, and set data.schema to its path."
        )
    if config.data.tfrecords:
        check_schema_features(config, image_key, label_key)


def gate_settings(config: PipelineConfig) -> dict:
    """The evaluation options the Judge applies: each field of components.gate.GateSettings,
    from the evaluation option of the same name."""
    return {f.name: getattr(config.evaluation, f.name) for f in dataclasses.fields(GateSettings)}


def baseline_model_id(config: PipelineConfig) -> int:
    """The model artifact served as version evaluation.baseline (0 for latest or none)."""
    version = config.evaluation.baseline
    if not version.isdigit():
        return 0
    served = dict(served_versions(_serving_dir(config, "local")))
    record = served.get(version)
    if not record or "model_artifact_id" not in record:
        known = ", ".join(v for v, r in served.items() if r) or "none"
        raise ConfigError(
            f"--baseline {version}: {config.serving_dir} holds no version {version} pushed by "
            f"this pipeline (versions with a push record: {known}). Use one of those, latest "
            "or none."
        )
    return int(record["model_artifact_id"])


def _baseline_resolver(config: PipelineConfig, trainer: Trainer, target: str) -> Resolver | None:
    """The last blessed model (or the one served as evaluation.baseline's version), which the
    Evaluator and the Judge compare the candidate with; none with evaluation.baseline=none."""
    if config.evaluation.baseline == "none":
        return None
    if target == "kubeflow" and not config.kubeflow.baseline:
        return None  # see kubeflow.baseline: KFP's own backend runs no resolver tasks
    if target == "kubeflow":
        # KFP v2 compiles only TFX's own two resolver strategies (into metadata queries), so
        # Kubeflow gets TFX's LatestBlessedModelStrategy, which may return the candidate itself
        # when the Trainer's result was cached.
        return Resolver(
            strategy_class=LatestBlessedModelStrategy,
            model=Channel(type=standard_artifacts.Model),
            model_blessing=Channel(type=standard_artifacts.ModelBlessing),
        ).with_id("latest_blessed_model_resolver")
    model_id = baseline_model_id(config)
    if os.path.exists(config.metadata_path):
        store = metadata_store.MetadataStore(
            metadata.sqlite_metadata_connection_config(os.path.abspath(config.metadata_path))
        )
        check_latest_baseline(store, model_id, _serving_dir(config, target))
    return Resolver(
        strategy_class=LatestBlessedOtherModelStrategy,
        config={"model_id": model_id},
        model=Channel(type=standard_artifacts.Model),
        model_blessing=Channel(type=standard_artifacts.ModelBlessing),
        candidate=trainer.outputs["model"],
    ).with_id("latest_blessed_model_resolver")


def _serving_dir(config: PipelineConfig, target: str) -> str:
    if target == "kubeflow" and not config.runtime.serving_dir:
        return posixpath.join(config.kubeflow.pipeline_root, "serving")
    return runner_path(config, config.serving_dir, target)
