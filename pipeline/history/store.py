"""Metadata-store queries: which runs exist, and what each execution of a run read, wrote and
recorded. Imports ml_metadata only (no TensorFlow), so the history commands answer at once."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline.config import PipelineConfig

_STATE_NAMES = {
    metadata_store_pb2.Execution.COMPLETE: "done",
    metadata_store_pb2.Execution.CACHED: "cached",
    metadata_store_pb2.Execution.FAILED: "failed",
    metadata_store_pb2.Execution.RUNNING: "running",
    # local_runner.clean_killed_executions marks the steps of a killed run so.
    metadata_store_pb2.Execution.CANCELED: "killed",
}
# LocalDagRunner (TFX's IR orchestration) records a run as a "pipeline_run" context named by the
# run id, and each step's execution under a "node" context "<pipeline>.<node>"; AirflowDagRunner
# (TFX's older launcher) as a "run" context "<pipeline>.<run id>", with the step's name in the
# execution's component_id property. Both share the "pipeline" context of the pipeline's name.
_RUN_CONTEXT_TYPES = ("pipeline_run", "run")
_OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.INTERNAL_OUTPUT)
_FINISHED = (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED)


@dataclass
class RunArtifacts:
    """One pipeline run as recorded in MLMD: node states, input and output artifacts, the
    executions' properties and times (seconds since the epoch)."""

    run_id: str
    states: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # node -> key -> artifact
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # node -> key -> artifact
    properties: dict[str, dict[str, Any]] = field(default_factory=dict)  # execution properties
    times: dict[str, tuple[float, float]] = field(default_factory=dict)  # node -> (start, end)
    started: float = 0.0

    def uri(self, node: str, key: str) -> str | None:
        artifact = self.outputs.get(node, {}).get(key)
        return artifact.uri if artifact is not None else None

    def artifact(self, node: str, key: str):
        return self.outputs.get(node, {}).get(key)

    def input(self, node: str, key: str):
        return self.inputs.get(node, {}).get(key)

    @property
    def seconds(self) -> float:
        """From the run's start to its last execution's last update."""
        return max((end for _, end in self.times.values()), default=self.started) - self.started


class RunLookupError(LookupError):
    """No metadata store, no runs, or no run of that id; the message says which and what to do."""


def open_store(config: PipelineConfig) -> metadata_store.MetadataStore:
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = os.path.abspath(config.metadata_path)
    connection.sqlite.connection_mode = (
        metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    )
    return metadata_store.MetadataStore(connection)


def open_existing_store(config: PipelineConfig) -> metadata_store.MetadataStore:
    """open_store for reading: SQLite would create a missing file, so refuse one first."""
    if not os.path.exists(config.metadata_path):
        raise RunLookupError(
            f"No metadata store at {config.metadata_path}: nothing has run with "
            f"runtime.root={config.runtime.root} (set --root or --config to the run's)."
        )
    return open_store(config)


def _run_contexts(store: metadata_store.MetadataStore, pipeline_name: str) -> dict[str, Any]:
    """{run id: its run context} of this pipeline, oldest first, whichever runner made it."""
    pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline is None:
        return {}
    ours = {e.id for e in store.get_executions_by_context(pipeline.id)}
    found = []
    for kind in _RUN_CONTEXT_TYPES:
        for context in store.get_contexts_by_type(kind):
            if any(e.id in ours for e in store.get_executions_by_context(context.id)):
                found.append((kind, context))
    runs = {}
    prefix = f"{pipeline_name}."
    for kind, context in sorted(found, key=lambda c: (c[1].create_time_since_epoch, c[1].name)):
        run_id = context.name
        if kind == "run" and run_id.startswith(prefix):  # Airflow: "<pipeline>.<run id>"
            run_id = run_id[len(prefix) :]
        runs[run_id] = context
    return runs


def list_run_ids(store: metadata_store.MetadataStore, pipeline_name: str) -> list[str]:
    """Run ids of this pipeline, oldest first: LocalDagRunner's are timestamps, Airflow's its
    DAG run ids."""
    return list(_run_contexts(store, pipeline_name))


def find_run_id(
    store: metadata_store.MetadataStore, pipeline_name: str, query: str | None = None
) -> str:
    """The run whose id is `query` or starts with it; the latest run when query is None."""
    run_ids = list_run_ids(store, pipeline_name)
    if not run_ids:
        raise RunLookupError(f"The metadata store has no run of pipeline {pipeline_name!r} yet.")
    if query is None or query == "latest":
        return run_ids[-1]
    if query in run_ids:
        return query
    matches = [r for r in run_ids if r.startswith(query)]
    if len(matches) == 1:
        return matches[0]
    what = f"{len(matches)} run ids start with" if matches else "No run has the id"
    raise RunLookupError(
        f"{what} {query!r}; the metadata store has {len(run_ids)} run(s) of "
        f"{pipeline_name!r}, and `python -m pipeline runs` lists them."
    )


def _value(value: metadata_store_pb2.Value) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind in ("int_value", "double_value", "string_value") else None


def _node_name(store: metadata_store.MetadataStore, execution) -> str:
    if "component_id" in execution.properties:  # AirflowDagRunner
        return execution.properties["component_id"].string_value
    return next(
        c.name.split(".", 1)[1]
        for c in store.get_contexts_by_execution(execution.id)
        if store.get_context_types_by_id([c.type_id])[0].name == "node"
    )


def load_run(store: metadata_store.MetadataStore, run_id: str, pipeline_name: str) -> RunArtifacts:
    run = RunArtifacts(run_id)
    context = _run_contexts(store, pipeline_name).get(run_id)
    if context is None:
        raise RunLookupError(f"No run {run_id!r} in the metadata store.")
    run.started = context.create_time_since_epoch / 1000
    executions = sorted(store.get_executions_by_context(context.id), key=lambda e: e.id)
    for execution in executions:
        node = _node_name(store, execution)
        run.states[node] = _STATE_NAMES.get(execution.last_known_state, "unknown")
        run.times[node] = (
            execution.create_time_since_epoch / 1000,
            execution.last_update_time_since_epoch / 1000,
        )
        run.properties[node] = {
            k: _value(v)
            for properties in (execution.properties, execution.custom_properties)
            for k, v in properties.items()
        }
        events = store.get_events_by_execution_ids([execution.id])
        artifacts = {
            a.id: a for a in store.get_artifacts_by_id(list({e.artifact_id for e in events}))
        }
        # A resolver's outputs are INTERNAL_OUTPUT events (for the resolver, the baseline model).
        # Only a finished step's outputs exist: Airflow's launcher records a step's outputs
        # before it runs, and a failed step's folders are deleted.
        finished = execution.last_known_state in _FINISHED
        outputs = [e for e in events if e.type in _OUTPUT_EVENTS and finished]
        inputs = [e for e in events if e.type == metadata_store_pb2.Event.INPUT]
        run.outputs[node] = {e.path.steps[0].key: artifacts[e.artifact_id] for e in outputs}
        run.inputs[node] = {e.path.steps[0].key: artifacts[e.artifact_id] for e in inputs}
    return run


def unfinished_executions(store: metadata_store.MetadataStore, context_id: int) -> list:
    """The executions of a context (a run's, or the pipeline's) that never recorded an end."""
    unfinished = (metadata_store_pb2.Execution.RUNNING, metadata_store_pb2.Execution.NEW)
    return [
        execution
        for execution in store.get_executions_by_context(context_id)
        if execution.last_known_state in unfinished
    ]


def mark_failed(
    store: metadata_store.MetadataStore, run_id: str, pipeline_name: str, nodes
) -> list[str]:
    """Marks the run's unfinished executions of `nodes` FAILED; returns the nodes marked.
    For runners that know a step failed when the store does not: Airflow's TFX launcher leaves
    a failed step's execution RUNNING, and its run would read as killed or still running."""
    context = _run_contexts(store, pipeline_name).get(run_id)
    if context is None:
        return []
    failed = [
        execution
        for execution in unfinished_executions(store, context.id)
        if _node_name(store, execution) in nodes
    ]
    for execution in failed:
        execution.last_known_state = metadata_store_pb2.Execution.FAILED
    if failed:
        store.put_executions(failed)
    return sorted(_node_name(store, execution) for execution in failed)


def producing_run(store: metadata_store.MetadataStore, artifact_id: int) -> str | None:
    """The run whose execution first wrote the artifact (cached executions re-use it later)."""
    events = store.get_events_by_artifact_ids([artifact_id])
    writers = [e.execution_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT]
    if not writers:
        return None
    types = {t.id: t.name for t in store.get_context_types() if t.name in _RUN_CONTEXT_TYPES}
    for context in store.get_contexts_by_execution(min(writers)):
        if types.get(context.type_id) == "pipeline_run":
            return context.name
        if types.get(context.type_id) == "run":  # Airflow: "<pipeline>.<run id>"
            return context.name.split(".", 1)[-1]
    return None


def iso_time(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(seconds)) if seconds else ""
