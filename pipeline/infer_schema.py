"""`python -m pipeline infer-schema`: a curated schema for a new data set, written for review."""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile

import tensorflow_data_validation as tfdv
from tfx.components import SchemaGen, StatisticsGen
from tfx.orchestration import metadata
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.orchestration.local.local_dag_runner import LocalDagRunner

from components.ingestion_report import IngestionError
from components.schema import curate_schema
from pipeline.config import ConfigError, PipelineConfig
from pipeline.inputs import feature_keys
from pipeline.pipeline import make_example_gen


def infer_schema(config: PipelineConfig, out_path: str) -> str:
    """Ingests the configured data in a scratch pipeline, lets TFDV infer a schema from its
    statistics, curates it (components/schema.py) and writes it to out_path."""
    if config.data.tfrecords and not config.data.class_names:
        raise ConfigError(
            "Imported TFRecords don't name their classes: set data.class_names to the class "
            "names in label order (e.g. --set data.class_names=cat,dog)."
        )
    with tempfile.TemporaryDirectory(prefix="infer-schema-") as scratch:
        example_gen, _ = make_example_gen(config, class_names=None)
        statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"])
        schema_gen = SchemaGen(statistics=statistics_gen.outputs["statistics"])
        pipeline = tfx_pipeline.Pipeline(
            pipeline_name="infer-schema",
            pipeline_root=scratch,
            components=[example_gen, statistics_gen, schema_gen],
            metadata_connection_config=metadata.sqlite_metadata_connection_config(
                os.path.join(scratch, "metadata.sqlite")
            ),
            beam_pipeline_args=list(config.runtime.beam_args),
        )
        try:
            LocalDagRunner().run(pipeline)
        except Exception as error:
            ingestion = _ingestion_error(error)
            if ingestion is None:
                raise
            # The same checks and message as `run`; the report is kept beside --out, as the
            # scratch folder it was written to is deleted.
            raise IngestionError(_keep_report(str(ingestion), scratch, out_path)) from None
        inferred = tfdv.load_schema_text(_one(scratch, "SchemaGen/schema/*/schema.pbtxt"))
        class_names = config.data.class_names or _ingested_class_names(scratch)
    image_key, label_key = feature_keys(config)
    schema = curate_schema(inferred, class_names, image_key=image_key, label_key=label_key)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    tfdv.write_schema_text(schema, out_path)
    return out_path


def _ingestion_error(error: BaseException | None) -> IngestionError | None:
    """The IngestionError the runner's exception was raised from, if any."""
    while error is not None and not isinstance(error, IngestionError):
        error = error.__cause__ or error.__context__
    return error


def _keep_report(message: str, scratch: str, out_path: str) -> str:
    """Copies the failed ingestion's report from the scratch folder to <out>.ingestion_report.json
    and points the message at the copy."""
    reports = glob.glob(os.path.join(scratch, "ImageExampleGen", "ingestion_reports", "*.json"))
    if len(reports) != 1:
        return f"{message}\nNo schema was written."
    kept = os.path.splitext(os.path.abspath(out_path))[0] + ".ingestion_report.json"
    os.makedirs(os.path.dirname(kept), exist_ok=True)
    shutil.copyfile(reports[0], kept)
    return f"{message.replace(reports[0], kept)}\nNo schema was written."


def _one(root: str, pattern: str) -> str:
    (path,) = glob.glob(os.path.join(root, pattern))
    return path


def _ingested_class_names(scratch: str) -> list[str]:
    with open(_one(scratch, "ImageExampleGen/report/*/ingestion_report.json")) as f:
        return json.load(f)["classes"]
