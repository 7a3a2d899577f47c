"""Builds a run's record from the metadata store and the run's artifact files (TensorFlow's
file system and TFMA read them): the one place that interprets a run's artifacts."""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf
import tensorflow_model_analysis as tfma

from components.data_gate import RESULT_FILE as GATE_RESULT_FILE
from components.image_example_gen import read_failed_run_report, read_report
from components.judge import JUDGEMENT_FILE
from components.trainer import HISTORY_FILE
from pipeline.config import PipelineConfig
from pipeline.history.record import RunRecord, phase_summaries, saved_record, store_fields
from pipeline.history.store import (
    RunArtifacts,
    RunLookupError,
    find_run_id,
    load_run,
    open_existing_store,
)


def _read_json(uri: str | None, name: str) -> dict[str, Any] | None:
    if not uri or not tf.io.gfile.exists(os.path.join(uri, name)):
        return None
    with tf.io.gfile.GFile(os.path.join(uri, name)) as f:
        return json.load(f)


def overall_metrics(evaluation_uri: str) -> dict[str, dict[str, float]]:
    """{'candidate'|'baseline': {metric name (with class for binarized ones): value}} for the
    whole split (the unsliced slice)."""
    result: dict[str, dict[str, float]] = {}
    for slice_metrics in tfma.load_metrics(evaluation_uri):
        if slice_metrics.slice_key.single_slice_keys:
            continue
        for kv in slice_metrics.metric_keys_and_values:
            if kv.key.is_diff or not kv.value.HasField("double_value"):
                continue
            name = kv.key.name
            if kv.key.sub_key.HasField("class_id"):
                name = f"{name}/class_{kv.key.sub_key.class_id.value}"
            elif kv.key.aggregation_type.macro_average:
                name = f"macro_{name}"
            model = kv.key.model_name or "candidate"
            result.setdefault(model, {})[name] = kv.value.double_value.value
    return result


def read_judgement(run: RunArtifacts) -> dict[str, Any] | None:
    """The Judge's judgement.json, thumbnails included."""
    return _read_json(run.uri("Judge", "model_blessing"), JUDGEMENT_FILE)


def summarize(run: RunArtifacts, pipeline_root: str = "") -> RunRecord:
    """What the store and the run's artifacts say: data, anomalies, training, metrics,
    decision, push."""
    record = store_fields(run)
    report_uri = run.uri("ImageExampleGen", "report")
    if report_uri:
        record.ingestion = read_report(report_uri)
    elif pipeline_root:  # a failed ingestion leaves its report outside the artifacts
        record.ingestion = read_failed_run_report(pipeline_root, run.run_id)
    gate = _read_json(run.uri("DataGate", "result"), GATE_RESULT_FILE)
    if gate is not None:
        record.anomalies = gate["anomalies"]
        if record.ingestion is None:
            record.imported = gate.get("data")
    record.training = _read_json(run.uri("Trainer", "model_run"), HISTORY_FILE)
    if record.training:
        record.phases = phase_summaries(record.training["history"])
        record.tuned_hyperparameters = record.training.get("tuned_hyperparameters") or None
    evaluation_uri = run.uri("Evaluator", "evaluation")
    if evaluation_uri:
        record.metrics = overall_metrics(evaluation_uri)
        splits = run.properties.get("Evaluator", {}).get("example_splits") or "[]"
        record.eval_split = ", ".join(json.loads(splits))
    if record.blessed is not None:
        record.judgement = read_judgement(run)
        if record.judgement is not None:
            record.judgement.pop("gallery", None)  # thumbnails: the page reads them itself
            record.failures = record.judgement["judgement"]["reasons"]
    return record


def find_run(config: PipelineConfig, query: str | None) -> RunArtifacts:
    """The run from the metadata store; a run that failed before any step was recorded (no
    weights, a bad data folder) is known by its saved record alone."""
    try:
        store = open_existing_store(config)
        name = config.runtime.name
        return load_run(store, find_run_id(store, name, query), name)
    except RunLookupError:
        saved = saved_record(config, query) if query else None
        if saved is None or saved.failure is None:
            raise
        return RunArtifacts(saved.run_id, started=saved.started)


def record_for(config: PipelineConfig, run: RunArtifacts) -> RunRecord:
    """The run's record, with the failure saved for it when it failed."""
    record = summarize(run, config.pipeline_root)
    saved = saved_record(config, run.run_id)
    if saved is not None and saved.failure is not None:
        record.failure = saved.failure
        record.started = record.started or saved.started
    return record


def build_record(config: PipelineConfig, query: str | None = None) -> RunRecord:
    """The record of the run whose id is (or starts with) query; default the latest."""
    return record_for(config, find_run(config, query))
