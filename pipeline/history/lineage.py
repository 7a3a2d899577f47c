"""Lineage from the metadata store, for `show`: which data and schema produced the model, what
it was compared with, where it went, and whether a served copy is still intact."""

from __future__ import annotations

import os

from ml_metadata.metadata_store import metadata_store

from components.model_files import damaged_files
from pipeline.history.record import RunRecord
from pipeline.history.store import RunArtifacts, producing_run


def _artifact(artifact) -> str:
    return f"artifact {artifact.id} at {artifact.uri}"


def _made_by(store, artifact, run_id: str) -> str:
    made_in = producing_run(store, artifact.id)
    if made_in is None or made_in == run_id:
        return ""
    return f" (made by run {made_in}; cached here)"


def lineage_lines(
    store: metadata_store.MetadataStore, run: RunArtifacts, record: RunRecord
) -> list[str]:
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
    lines.append(_baseline_line(store, run, record))
    pushed = run.artifact("Pusher", "pushed_model")
    if pushed is not None and record.pushed_version:
        earlier = ""
        if record.push_cached:
            earlier = " (by an earlier run; this run pushed nothing new)"
        lines.append(
            f"  Pushed:      version {record.pushed_version} to {record.pushed_path}{earlier}"
        )
        lines += served_copy_lines(record.pushed_path)
    elif pushed is not None and record.already_served:
        lines.append(
            "  Pushed:      nothing new: the candidate is already served as version "
            f"{record.already_served}"
        )
    elif pushed is not None:
        lines.append("  Pushed:      nothing (not blessed); serving unchanged")
    return [line for line in lines if line is not None]


def served_copy_lines(version_dir: str) -> list[str]:
    """Whether a pushed version's files are still those it was pushed with."""
    if "://" not in version_dir and not os.path.exists(version_dir):
        return [f"               !!! {version_dir} no longer exists"]
    problems = damaged_files(version_dir)
    if problems is None:
        return ["               (no push record: its files cannot be checked)"]
    if problems:
        return [f"               !!! DAMAGED: {len(problems)} file(s) differ from the push:"] + [
            f"                   {p}" for p in problems[:10]
        ]
    return ["               files intact (checked against its push record)"]


def _baseline_line(store, run: RunArtifacts, record: RunRecord) -> str | None:
    if "Evaluator" not in run.states and "latest_blessed_model_resolver" not in run.states:
        return None
    # What the Evaluator was given; the resolver's output where the Evaluator never ran.
    baseline = run.input("Evaluator", "baseline_model") or run.artifact(
        "latest_blessed_model_resolver", "model"
    )
    if baseline is None:
        text = record.baseline_text() or "no baseline: no model blessed before"
        if text.startswith("no baseline"):
            return f"  Baseline:    none ({text}; judged on the value thresholds alone)"
        return f"  Baseline:    none: {text}"
    made_in = producing_run(store, baseline.id)
    trained = f", trained in run {made_in}" if made_in else ""
    return f"  Baseline:    model {_artifact(baseline)}{trained}"
