"""create_pipeline(config): the DAG from images to a pushed model, the same for every runner.

create_pipeline reads top to bottom, a comment per component, and only wires the steps: what it
needs to know first (feature names, class names, paths, the baseline) is worked out and checked
by pipeline/inputs.py.
"""

from __future__ import annotations

import dataclasses
import json
import os

from tfx.components import (
    Evaluator,
    ExampleValidator,
    StatisticsGen,
    Trainer,
    Transform,
    Tuner,
)
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.dsl.components.common.resolver import Resolver
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy,
)
from tfx.orchestration import metadata
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import pusher_pb2, trainer_pb2, transform_pb2
from tfx.types import Channel, standard_artifacts

from components import splits, tfrecord_import
from components.baseline import LatestBlessedOtherModelStrategy
from components.contract import IMAGE_ID_KEY, WARM_START_RESOLVER
from components.data_gate import DataGate
from components.evaluation import make_eval_config
from components.image_example_gen import ImageExampleGen
from components.judge import Judge
from components.lite_export import LiteExporter
from components.preprocessing import transform_custom_config
from components.pusher import AtomicPusher
from components.scorer import Scorer
from components.trainer_settings import TrainerSettings
from pipeline.config import ConfigError, PipelineConfig
from pipeline.inputs import PipelineInputs, resolve_inputs, runner_path

STAGES = ("data", "train", "all")  # how far a pipeline goes: validation, training, push


def create_pipeline(
    config: PipelineConfig, stop_after: str = "all", target: str = "local"
) -> tfx_pipeline.Pipeline:
    """Ingest, validate (stop on anomalies), transform, train, evaluate against the last blessed
    model, and push only a blessed model. `stop_after` ('data', 'train') builds a prefix.
    `target` 'kubeflow' builds it for KubeflowV2DagRunner: paths as the image sees them, the
    kubeflow.pipeline_root, no SQLite store (KFP keeps its own metadata)."""
    if stop_after not in STAGES:
        raise ValueError(f"stop_after must be one of {STAGES}")
    inputs = resolve_inputs(config, target, judging=stop_after == "all")
    image_key, label_key, names = inputs.image_key, inputs.label_key, inputs.class_names

    # Reads the images (or imports the TFRecords) into tf.Examples, split into train, eval and
    # test; bad image files are quarantined and listed in an ingestion report.
    example_gen, split_names = make_example_gen(config, target, class_names=names)
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
        validation=json.dumps(dataclasses.asdict(config.validation)),
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
        custom_config=transform_custom_config(config.transform, image_key, label_key),
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
    judged_split = "test" if "test" in split_names else "eval"  # what the gate judges
    trainer_settings = TrainerSettings(
        training=config.training,
        image_size=config.transform.image_size,
        class_names=names,
        raw_image_key=image_key,
        raw_label_key=label_key,
        tuning=config.tuning,
        findings=config.findings,
        judged_split=judged_split,
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
    # Optional (training.warm_start=baseline): the last blessed model, which training starts from.
    warm_start = None
    if config.training.warm_start == "baseline":
        warm_start = Resolver(
            strategy_class=LatestBlessedModelStrategy,
            model=Channel(type=standard_artifacts.Model),
            model_blessing=Channel(type=standard_artifacts.ModelBlessing),
        ).with_id(WARM_START_RESOLVER)
    # VGG16 transfer learning: trains a new head on the frozen base, fine-tunes the top blocks,
    # and exports a SavedModel that takes encoded images.
    trainer = Trainer(
        run_fn="components.trainer.run_fn",
        examples=example_gen.outputs["examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        hyperparameters=tuner.outputs["best_hyperparameters"] if tuner else None,
        base_model=warm_start.outputs["model"] if warm_start else None,
        train_args=trainer_pb2.TrainArgs(splits=["train"]),
        eval_args=trainer_pb2.EvalArgs(splits=["eval"]),
        custom_config=trainer_settings,
    )
    components += [
        transform,
        *([tuner] if tuner else []),
        *([warm_start] if warm_start else []),
        trainer,
    ]
    if stop_after == "train":
        return _pipeline(config, components, target)

    # The model to beat: the last blessed one (or evaluation.baseline's version); none with
    # evaluation.baseline=none.
    baseline_resolver = _baseline_resolver(config, inputs, trainer, target)
    baseline = baseline_resolver.outputs["model"] if baseline_resolver else None
    # Predicts the judged split once with the candidate and the baseline: every later step
    # reads these predictions, none runs a model again.
    scorer = Scorer(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline,
        split=judged_split,
        label_key=label_key,
        image_key=image_key,
        findings=json.dumps(dataclasses.asdict(config.findings)),
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
        serving_dir=inputs.serving_dir,
        baseline_mode=config.evaluation.baseline,
        settings=json.dumps(dataclasses.asdict(config.evaluation)),
        data_gate=data_gate.outputs["result"],
        model_run=trainer.outputs["model_run"],
        ingestion_report=example_gen.outputs.get("report"),
        data_source=runner_path(config, config.data.tfrecords or config.data.images, target),
        title=config.runtime.name,
    )
    judge.add_upstream_node(evaluator)  # a run whose evaluation failed decides nothing
    # TensorFlow Lite variants of a blessed model, each checked against the SavedModel on the
    # judged split; only those that agree are handed to the Pusher.
    lite_exporter = LiteExporter(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        predictions=scorer.outputs["predictions"],
        model_blessing=judge.outputs["model_blessing"],
        split=judged_split,
        label_key=label_key,
        export=json.dumps(dataclasses.asdict(config.export)),
        transform=json.dumps(dataclasses.asdict(config.transform)),
    )
    # Publishes a blessed model (with its model card and checked TensorFlow Lite variants) to
    # the serving folder, atomically, after a smoke test; an unblessed model, or one already
    # served, is not pushed.
    pusher = AtomicPusher(
        model=trainer.outputs["model"],
        model_blessing=judge.outputs["model_blessing"],
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=inputs.serving_dir)
        ),
        lite_models=lite_exporter.outputs["lite_models"],
    ).with_id("Pusher")
    components += [
        *([baseline_resolver] if baseline_resolver else []),
        scorer,
        evaluator,
        judge,
        lite_exporter,
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


# --- The pieces create_pipeline wires ---------------------------------------------------------


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


def _baseline_resolver(
    config: PipelineConfig, inputs: PipelineInputs, trainer: Trainer, target: str
) -> Resolver | None:
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
    return Resolver(
        strategy_class=LatestBlessedOtherModelStrategy,
        config={"model_id": inputs.baseline_model_id},
        model=Channel(type=standard_artifacts.Model),
        model_blessing=Channel(type=standard_artifacts.ModelBlessing),
        candidate=trainer.outputs["model"],
    ).with_id("latest_blessed_model_resolver")
