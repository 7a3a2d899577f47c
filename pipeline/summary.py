"""The end-of-run summary, read from the metadata store and the run's artifacts."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import tensorflow as tf
import tensorflow_model_analysis as tfma
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration import metadata

from components.data_gate import RESULT_FILE as GATE_RESULT_FILE
from components.evaluation import ACCURACY
from components.image_example_gen import read_failed_run_report, read_report
from components.judge import JUDGEMENT_FILE
from components.trainer import HISTORY_FILE
from pipeline.config import PipelineConfig
from pipeline.console import StepLog

_STATE_NAMES = {
    metadata_store_pb2.Execution.COMPLETE: "done",
    metadata_store_pb2.Execution.CACHED: "cached",
    metadata_store_pb2.Execution.FAILED: "failed",
    metadata_store_pb2.Execution.RUNNING: "running",
    # local_runner.clean_killed_executions marks the steps of a killed run so.
    metadata_store_pb2.Execution.CANCELED: "killed",
}
_SYSTEM_NODES = {"latest_blessed_model_resolver"}  # resolvers run every time; nothing to cache
_OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.INTERNAL_OUTPUT)


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


class RunLookupError(LookupError):
    """No metadata store, no runs, or no run of that id; the message says which and what to do."""


def open_store(config: PipelineConfig) -> metadata_store.MetadataStore:
    return metadata_store.MetadataStore(
        metadata.sqlite_metadata_connection_config(os.path.abspath(config.metadata_path))
    )


def list_run_ids(store: metadata_store.MetadataStore, pipeline_name: str) -> list[str]:
    """Run ids (LocalDagRunner uses a timestamp) of this pipeline, oldest first."""
    pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline is None:
        return []
    executions = store.get_executions_by_context(pipeline.id)
    runs: dict[int, str] = {}
    for context in store.get_contexts_by_type("pipeline_run"):
        runs[context.id] = context.name
    run_ids = []
    for execution in executions:
        for context in store.get_contexts_by_execution(execution.id):
            if context.id in runs and context.name not in run_ids:
                run_ids.append(context.name)
    return sorted(run_ids)


def open_existing_store(config: PipelineConfig) -> metadata_store.MetadataStore:
    """open_store for reading: SQLite would create a missing file, so refuse one first."""
    if not os.path.exists(config.metadata_path):
        raise RunLookupError(
            f"No metadata store at {config.metadata_path}: nothing has run with "
            f"runtime.root={config.runtime.root} (set --root or --config to the run's)."
        )
    return open_store(config)


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


def load_run(store: metadata_store.MetadataStore, run_id: str) -> RunArtifacts:
    run = RunArtifacts(run_id)
    context = store.get_context_by_type_and_name("pipeline_run", run_id)
    if context is None:
        raise RunLookupError(f"No run {run_id!r} in the metadata store.")
    run.started = context.create_time_since_epoch / 1000
    executions = sorted(store.get_executions_by_context(context.id), key=lambda e: e.id)
    for execution in executions:
        node = next(
            c.name.split(".", 1)[1]
            for c in store.get_contexts_by_execution(execution.id)
            if store.get_context_types_by_id([c.type_id])[0].name == "node"
        )
        run.states[node] = _STATE_NAMES.get(execution.last_known_state, "unknown")
        run.times[node] = (
            execution.create_time_since_epoch / 1000,
            execution.last_update_time_since_epoch / 1000,
        )
        run.properties[node] = {k: _value(v) for k, v in execution.custom_properties.items()}
        events = store.get_events_by_execution_ids([execution.id])
        artifacts = {
            a.id: a for a in store.get_artifacts_by_id(list({e.artifact_id for e in events}))
        }
        # A resolver's outputs are INTERNAL_OUTPUT events (for the resolver, the baseline model).
        outputs = [e for e in events if e.type in _OUTPUT_EVENTS]
        inputs = [e for e in events if e.type == metadata_store_pb2.Event.INPUT]
        run.outputs[node] = {e.path.steps[0].key: artifacts[e.artifact_id] for e in outputs}
        run.inputs[node] = {e.path.steps[0].key: artifacts[e.artifact_id] for e in inputs}
    return run


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


def estimate_text(estimate: dict[str, Any]) -> str:
    """A components.gate.Estimate's fields as "0.619 (95% CI 0.41 to 0.80, n = 21)"."""
    return (
        f"{estimate['value']:.3f} (95% CI {estimate['lower']:.2f} to {estimate['upper']:.2f}, "
        f"n = {estimate['n']})"
    )


@dataclass
class RunSummary:
    run_id: str = ""
    steps: list[tuple[str, str]] = field(default_factory=list)
    ingestion: dict[str, Any] | None = None
    imported: dict[str, Any] | None = None  # counts of imported examples, from StatisticsGen
    anomalies: list[str] | None = None
    training: dict[str, Any] | None = None
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    blessed: bool | None = None
    failures: list[str] = field(default_factory=list)
    judgement: dict[str, Any] | None = None  # the Judge's judgement.json: why, and the evidence
    baseline_id: int | None = None  # the model artifact the candidate was compared with
    already_served: str = ""  # the serving version that already holds the candidate
    pushed_version: str = ""
    pushed_path: str = ""
    push_cached: bool = False

    @property
    def all_cached(self) -> bool:
        states = [state for node, state in self.steps if node not in _SYSTEM_NODES]
        return bool(states) and all(state == "cached" for state in states)

    @property
    def status(self) -> str:
        """complete, cached (nothing new ran), failed, or incomplete (killed, or still running)."""
        states = {state for _, state in self.steps}
        if "failed" in states:
            return "failed"
        if states & {"running", "unknown", "killed"}:
            return "incomplete"
        return "cached" if self.all_cached else "complete"

    @property
    def stopped_in(self) -> str:
        """Where an incomplete run stopped: 'killed in Trainer' (found by the next run on the
        root), 'Trainer running or killed', or '' for a run that ended."""
        for node, state in self.steps:
            if state == "killed":
                return f"killed in {node}"
            if state in ("running", "unknown"):
                return f"{node} running or killed"
        return ""

    def text(self) -> str:
        lines = ["", f"Run {self.run_id}"]
        if self.all_cached:
            lines.append(
                "  Nothing changed since the last run: every step was cached, nothing new ran."
            )
        if self.ingestion:
            report = self.ingestion
            splits = ", ".join(f"{s} {n}" for s, n in report["examples_per_split"].items())
            classes = len(report["classes"])
            lines.append(
                f"  Data:       {report['examples']} examples ({splits}), {classes} classes"
            )
            bad = len(report["quarantined"])
            lines.append(
                f"  Quarantined: {bad} file(s); {len(report['skipped'])} other file(s) or "
                "folder(s) not read"
            )
            for q in report["quarantined"][:10]:
                lines.append(f"      {q['path']}: {q['reason']}")
            if len(report["quarantined"]) > 10:
                lines.append(
                    f"      ... {len(report['quarantined']) - 10} more in the ingestion report"
                )
            duplicates = report.get("duplicates")
            if duplicates:
                lines.append(
                    f"  Duplicates: {len(duplicates['across_classes'])} under two classes, "
                    f"{len(duplicates['across_splits'])} across splits, "
                    f"{duplicates['within_split_extra_copies']} extra copies within a split"
                )
            if report.get("path"):
                lines.append(f"  Ingestion report: {report['path']}")
        elif self.imported:
            counts = self.imported
            splits = ", ".join(f"{s} {n}" for s, n in counts["examples_per_split"].items())
            lines.append(
                f"  Data:       {counts['examples']} imported examples ({splits}), "
                f"{len(counts['classes'])} classes"
            )
        if self.anomalies is not None:
            lines.append(f"  Anomalies:  {len(self.anomalies) or 'none'}")
            lines += [f"      {a}" for a in self.anomalies]
        if self.training:
            lines += self._training_lines()
        if self.metrics:
            lines += self._metric_lines()
        if self.blessed is not None:
            lines += self._decision_lines()
        if self.already_served and not self.push_cached:
            lines.append(
                f"  Pushed:     nothing; the candidate is already served as version "
                f"{self.already_served}"
            )
        elif self.pushed_version and self.push_cached:
            lines.append(
                f"  Serving:    version {self.pushed_version} at {self.pushed_path} "
                "(pushed by an earlier run; nothing new pushed)"
            )
        elif self.pushed_version:
            lines.append(f"  Pushed:     version {self.pushed_version} to {self.pushed_path}")
        elif self.blessed is False:
            lines.append("  Pushed:     nothing; the serving location is unchanged")
        return "\n".join(lines)

    def _training_lines(self) -> list[str]:
        t = self.training
        lines = [f"  Base:       VGG16, {t['base_weights']}"]
        if t.get("weights_warning"):
            lines.append(f"  !!! {t['weights_warning']}")
        for phase in ("phase1", "phase2"):
            epochs = [e for e in t["history"] if e.get("phase") == phase]
            if epochs:
                best = max(e.get("val_accuracy", 0.0) for e in epochs)
                lines.append(
                    f"  {phase.capitalize()}:     {len(epochs)} epoch(s), "
                    f"best val accuracy {best:.3f}, last loss {epochs[-1]['loss']:.3f}"
                )
        return lines

    @property
    def random_weights(self) -> str:
        """'fallback', 'chosen' (training.weights=none) or '' for a model with ImageNet's."""
        return (self.judgement or {}).get("judgement", {}).get("random_weights", "")

    def baseline_text(self) -> str:
        """What the candidate was compared with, in words; "no baseline" only when no model
        was ever blessed (and served) under this root."""
        if self.judgement is None:
            return ""
        evidence = self.judgement["evidence"]
        parts = [evidence["baseline"]] if evidence.get("baseline") else []
        served = evidence.get("already_served")
        if served:
            parts.append(
                f"the candidate is the model blessed in run {served.get('run_id') or '?'} "
                f"(version {served['version']})"
            )
        if not parts and self.baseline_id is not None:
            parts.append(f"model artifact {self.baseline_id}")
        return "; ".join(parts) or "no baseline: no model blessed before"

    def _metric_lines(self) -> list[str]:
        candidate = self.metrics.get("candidate", {})
        baseline = self.metrics.get("baseline", {})
        lines = ["  Metrics:    candidate" + ("   baseline" if baseline else "")]
        evidence = (self.judgement or {}).get("evidence", {})
        for name in ("example_count", ACCURACY, "macro_auc"):
            if name in candidate:
                value = f"{candidate[name]:.4f}"
                if name == ACCURACY and evidence:
                    value = estimate_text(evidence["accuracy"])
                base = f"   {baseline[name]:.4f}" if name in baseline else ""
                lines.append(f"    {name:<28} {value}{base}")
        names, recalls = evidence.get("class_names", []), evidence.get("recall", [])
        for name, recall in zip(names, recalls, strict=True):
            lines.append(f"    {'recall ' + name:<28} {estimate_text(recall)}")
        if self.judgement is not None:
            lines.append(f"  Baseline:   {self.baseline_text()}")
        paired = evidence.get("paired")
        if paired:
            verdict = self.judgement["judgement"]["comparison"]
            lines.append(
                f"  Paired:     fixed {paired['fixed']}, broken {paired['broken']}, both right "
                f"{paired['both_right']}, both wrong {paired['both_wrong']}; accuracy "
                f"difference {paired['difference']:+.3f} (95% CI {paired['lower']:+.2f} to "
                f"{paired['upper']:+.2f}): {verdict}"
            )
        return lines

    def _decision_lines(self) -> list[str]:
        word = "BLESSED" if self.blessed else "NOT BLESSED"
        if self.random_weights == "fallback":
            word += " (RANDOM weights: ImageNet weights were unavailable)"
        elif self.random_weights == "chosen":
            word += " (random weights: training.weights=none)"
        lines = [f"  Decision:   {word}"]
        lines += [f"      {f}" for f in self.failures]
        return lines


def run_summary(
    config: PipelineConfig, steps: StepLog | None = None, run_id: str | None = None
) -> RunSummary:
    store = open_store(config)
    run_ids = list_run_ids(store, config.runtime.name)
    if not run_ids:
        return RunSummary()
    summary = summarize(load_run(store, run_id or run_ids[-1]))
    if summary.ingestion is None:  # a failed ingestion leaves its report outside the artifacts
        summary.ingestion = read_failed_run_report(config.pipeline_root, summary.run_id)
    return summary


def summarize(run: RunArtifacts) -> RunSummary:
    """What the run's artifacts say: data, anomalies, training, metrics, decision, push."""
    summary = RunSummary(run_id=run.run_id, steps=list(run.states.items()))
    report_uri = run.uri("ImageExampleGen", "report")
    if report_uri:
        summary.ingestion = read_report(report_uri)
    gate = _read_json(run.uri("DataGate", "result"), GATE_RESULT_FILE)
    if gate is not None:
        summary.anomalies = gate["anomalies"]
        if summary.ingestion is None:
            summary.imported = gate.get("data")
    summary.training = _read_json(run.uri("Trainer", "model_run"), HISTORY_FILE)
    evaluation_uri = run.uri("Evaluator", "evaluation")
    if evaluation_uri:
        summary.metrics = overall_metrics(evaluation_uri)
    blessing = run.artifact("Judge", "blessing")
    if blessing is not None and "blessed" in blessing.custom_properties:
        summary.blessed = bool(blessing.custom_properties["blessed"].int_value)
        summary.judgement = _read_json(blessing.uri, JUDGEMENT_FILE)
        if summary.judgement is not None:
            summary.judgement.pop("gallery", None)  # thumbnails: the report reads them itself
            summary.failures = summary.judgement["judgement"]["reasons"]
        baseline = run.input("Judge", "baseline_model")
        summary.baseline_id = baseline.id if baseline is not None else None
    pushed = run.artifact("Pusher", "pushed_model")
    if pushed is not None and pushed.custom_properties["pushed"].int_value:
        summary.pushed_version = pushed.custom_properties["pushed_version"].string_value
        summary.pushed_path = pushed.custom_properties["pushed_destination"].string_value
        summary.push_cached = run.states.get("Pusher") == "cached"
    if pushed is not None and "already_served_version" in pushed.custom_properties:
        summary.already_served = pushed.custom_properties["already_served_version"].string_value
    return summary
