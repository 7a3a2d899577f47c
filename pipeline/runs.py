"""Run history from the metadata store: `python -m pipeline runs` and `python -m pipeline show`."""

from __future__ import annotations

import os
import time
from typing import Any

import tensorflow as tf
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components.evaluation import ACCURACY
from components.model_files import damaged_files
from pipeline.config import PipelineConfig
from pipeline.report import report_path
from pipeline.summary import (
    RunArtifacts,
    RunSummary,
    find_run_id,
    list_run_ids,
    load_run,
    open_existing_store,
    summarize,
)

COLUMNS = [
    ("run_id", "RUN"),
    ("started", "STARTED"),
    ("status", "STATUS"),
    ("examples", "EXAMPLES"),
    ("candidate_accuracy", "CANDIDATE ACC"),
    ("baseline_accuracy", "BASELINE ACC"),
    ("blessed", "BLESSED"),
    ("pushed_version", "PUSHED"),
]


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(seconds)) if seconds else ""


def duration(run: RunArtifacts) -> float:
    """Seconds from the run's start to its last execution's last update."""
    return max((end for _, end in run.times.values()), default=run.started) - run.started


def run_row(run: RunArtifacts, summary: RunSummary) -> dict[str, Any]:
    """One run as plain values (the `runs --json` record)."""
    metrics = summary.metrics
    return {
        "run_id": run.run_id,
        "started": _iso(run.started),
        "seconds": round(duration(run), 1),
        "status": summary.status,
        "stopped_in": summary.stopped_in or None,  # an incomplete run's step
        "examples": (summary.ingestion or summary.imported or {}).get("examples"),
        "candidate_accuracy": metrics.get("candidate", {}).get(ACCURACY),
        "baseline_accuracy": metrics.get("baseline", {}).get(ACCURACY),
        "blessed": summary.blessed,
        "accuracy_interval": _accuracy_interval(summary),  # [lower, upper], 95%
        "random_weights": summary.random_weights or None,  # 'fallback' or 'chosen'
        "already_served": summary.already_served or None,  # the candidate's existing version
        "pushed_version": summary.pushed_version or None,
        "push_cached": summary.push_cached,  # the version was pushed by an earlier run
    }


def _accuracy_interval(summary: RunSummary) -> list[float] | None:
    if summary.judgement is None:
        return None
    accuracy = summary.judgement["evidence"]["accuracy"]
    return [accuracy["lower"], accuracy["upper"]]


def run_rows(config: PipelineConfig) -> list[dict[str, Any]]:
    """Every run of the pipeline, oldest first."""
    store = open_existing_store(config)
    return [
        run_row(run, summarize(run))
        for run in (load_run(store, r) for r in list_run_ids(store, config.runtime.name))
    ]


def _cell(key: str, row: dict[str, Any]) -> str:
    value = row[key]
    if key == "pushed_version" and row.get("already_served"):
        return f"{row['already_served']} (already served)"
    if value is None:
        return "-"
    if key == "status" and row.get("stopped_in"):
        return f"{value} ({row['stopped_in']})"
    if key == "blessed":
        random = {"fallback": " (RANDOM weights)", "chosen": " (random weights)"}
        return ("yes" if value else "no") + random.get(row.get("random_weights") or "", "")
    if key.endswith("accuracy"):
        return f"{value:.4f}"
    if key == "started":
        return value.replace("T", " ")
    if key == "pushed_version" and row["push_cached"]:
        return f"{value} (earlier)"
    return str(value)


def format_rows(rows: list[dict[str, Any]]) -> str:
    """An aligned table, one run a line, numbers right-aligned."""
    table = [[title for _, title in COLUMNS]]
    table += [[_cell(key, row) for key, _ in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    numeric = {"examples", "candidate_accuracy", "baseline_accuracy"}
    lines = []
    for line in table:
        cells = [
            cell.rjust(width) if key in numeric else cell.ljust(width)
            for (key, _), cell, width in zip(COLUMNS, line, widths, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def producing_run(store: metadata_store.MetadataStore, artifact_id: int) -> str | None:
    """The run whose execution first wrote the artifact (cached executions re-use it later)."""
    events = store.get_events_by_artifact_ids([artifact_id])
    writers = [e.execution_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT]
    if not writers:
        return None
    run_type = store.get_context_type("pipeline_run")
    for context in store.get_contexts_by_execution(min(writers)):
        if context.type_id == run_type.id:
            return context.name
    return None


def _artifact(artifact) -> str:
    return f"artifact {artifact.id} at {artifact.uri}"


def _made_by(store, artifact, run_id: str) -> str:
    made_in = producing_run(store, artifact.id)
    if made_in is None or made_in == run_id:
        return ""
    return f" (made by run {made_in}; cached here)"


def lineage_lines(
    store: metadata_store.MetadataStore, run: RunArtifacts, summary: RunSummary
) -> list[str]:
    """Which data and schema produced the model, what it was compared with, where it went."""
    lines = ["", "Lineage"]
    gen = next((n for n in run.properties if n.endswith("ExampleGen")), None)
    if gen:
        properties = run.properties[gen]
        lines.append(f"  Data:        {properties.get('input_base', '?')} ({gen} input_base)")
        examples = run.artifact(gen, "examples")
        # A cached execution records no fingerprint of its own; the examples keep theirs.
        fingerprint = properties.get("input_fingerprint") or (
            examples is not None and examples.custom_properties["input_fingerprint"].string_value
        )
        fingerprint = (fingerprint or "?").replace("\n", "; ")  # one line per split
        lines.append(f"  Fingerprint: {fingerprint}")
        if examples is not None:
            lines.append(
                f"  Examples:    {_artifact(examples)}{_made_by(store, examples, run.run_id)}"
            )
    schema = run.artifact("ImportSchemaGen", "schema")
    if schema is not None:
        source = run.properties.get("ImportSchemaGen", {}).get("schema_file", "?")
        lines.append(f"  Schema:      {source}, imported as {_artifact(schema)}")
    model = run.artifact("Trainer", "model")
    if model is not None:
        lines.append(f"  Model:       {_artifact(model)}{_made_by(store, model, run.run_id)}")
        inputs = run.inputs.get("Trainer", {})
        used = ", ".join(f"{key} {a.id}" for key, a in sorted(inputs.items()))
        lines.append(f"               trained on artifacts: {used}")
    lines.append(_baseline_line(store, run, summary))
    pushed = run.artifact("Pusher", "pushed_model")
    if pushed is not None and pushed.custom_properties["pushed"].int_value:
        version = pushed.custom_properties["pushed_version"].string_value
        where = pushed.custom_properties["pushed_destination"].string_value
        earlier = ""
        if run.states.get("Pusher") == "cached":
            earlier = " (by an earlier run; this run pushed nothing new)"
        lines.append(f"  Pushed:      version {version} to {where}{earlier}")
        lines += served_copy_lines(where)
    elif pushed is not None and summary.already_served:
        version = summary.already_served
        lines.append(
            f"  Pushed:      nothing new: the candidate is already served as version {version}"
        )
    elif pushed is not None:
        lines.append("  Pushed:      nothing (not blessed); serving unchanged")
    return [line for line in lines if line is not None]


def served_copy_lines(version_dir: str) -> list[str]:
    """Whether a pushed version's files are still those it was pushed with."""
    if not tf.io.gfile.exists(version_dir):
        return [f"               !!! {version_dir} no longer exists"]
    problems = damaged_files(version_dir)
    if problems is None:
        return ["               (no push record: its files cannot be checked)"]
    if problems:
        return [f"               !!! DAMAGED: {len(problems)} file(s) differ from the push:"] + [
            f"                   {p}" for p in problems[:10]
        ]
    return ["               files intact (checked against its push record)"]


def _baseline_line(store, run: RunArtifacts, summary: RunSummary) -> str | None:
    if "Evaluator" not in run.states and "latest_blessed_model_resolver" not in run.states:
        return None
    # What the Evaluator was given; the resolver's output where the Evaluator never ran.
    baseline = run.input("Evaluator", "baseline_model") or run.artifact(
        "latest_blessed_model_resolver", "model"
    )
    if baseline is None:
        text = summary.baseline_text() or "no baseline: no model blessed before"
        if text.startswith("no baseline"):
            return f"  Baseline:    none ({text}; judged on the value thresholds alone)"
        return f"  Baseline:    none: {text}"
    made_in = producing_run(store, baseline.id)
    trained = f", trained in run {made_in}" if made_in else ""
    return f"  Baseline:    model {_artifact(baseline)}{trained}"


def show_text(config: PipelineConfig, query: str | None = None) -> str:
    """One run's summary, timing and lineage (default: the latest run)."""
    store = open_existing_store(config)
    run = load_run(store, find_run_id(store, config.runtime.name, query))
    summary = summarize(run)
    took = (
        "did not finish (killed, or still running)"
        if summary.status == "incomplete"
        else f"took {duration(run):.0f} s"
    )
    lines = [
        summary.text(),
        f"  Started:    {_iso(run.started).replace('T', ' ')}, {took}, status {summary.status}",
        "  Steps:",
    ]
    for node, (start, end) in run.times.items():
        lines.append(f"      {node:<34} {run.states[node]:<8} {end - start:6.1f} s")
    lines += lineage_lines(store, run, summary)
    report = report_path(config, run.run_id)
    if os.path.exists(report):
        lines.append(f"  Report:      {report}")
    return "\n".join(lines)
