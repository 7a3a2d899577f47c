"""One typed record of a run: everything the console summary, `runs`, `show` and the HTML
report show of it. Built once (pipeline.history.build) and saved as JSON beside the run's report
(reports/run-<id>.json), so the history commands read it back without TensorFlow."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from components.contract import ACCURACY, WARM_START_RESOLVER
from pipeline.config import PipelineConfig
from pipeline.history.store import (
    RunArtifacts,
    RunLookupError,
    find_run_id,
    load_run,
    open_existing_store,
)

RECORD_VERSION = 1
SYSTEM_NODES = {
    "latest_blessed_model_resolver",
    WARM_START_RESOLVER,
}  # resolvers run every time; nothing to cache


@dataclass
class Step:
    name: str
    state: str  # done, cached, failed, running, killed, unknown
    seconds: float


@dataclass
class PhaseSummary:
    """One training phase. best_val_accuracy is the highest val_accuracy of its epochs, None
    when no epoch recorded one (the console printed 0.000 there, the page NaN)."""

    phase: str
    epochs: int
    learning_rates: list[float]
    best_val_accuracy: float | None
    last_loss: float | None
    seconds: float


@dataclass
class RunRecord:
    run_id: str = ""
    started: float = 0.0  # seconds since the epoch
    seconds: float = 0.0  # from the start to the last step's last update
    steps: list[Step] = field(default_factory=list)
    from_store_only: bool = False  # no saved record: artifacts unread (`report RUN` reads them)
    ingestion: dict[str, Any] | None = None  # ImageExampleGen's ingestion report
    imported: dict[str, Any] | None = None  # counts of imported examples, from the DataGate
    anomalies: list[str] | None = None
    training: dict[str, Any] | None = None  # the Trainer's history.json
    phases: list[PhaseSummary] = field(default_factory=list)
    tuned_hyperparameters: dict[str, Any] | None = None  # the Tuner's best, when one ran
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # model -> name -> value
    eval_split: str = ""
    blessed: bool | None = None
    failures: list[str] = field(default_factory=list)
    judgement: dict[str, Any] | None = None  # the Judge's judgement.json, without thumbnails
    baseline_id: int | None = None  # the model artifact the candidate was compared with
    already_served: str = ""  # the serving version that already holds the candidate
    pushed_version: str = ""
    tflite: dict[str, Any] | None = None  # the LiteExporter's report: each variant's check
    pushed_path: str = ""
    push_cached: bool = False
    failure: dict[str, Any] | None = None  # why the run failed: error, exit_status, log
    version: int = RECORD_VERSION

    @property
    def states(self) -> dict[str, str]:
        return {step.name: step.state for step in self.steps}

    @property
    def all_cached(self) -> bool:
        states = [s.state for s in self.steps if s.name not in SYSTEM_NODES]
        return bool(states) and all(state == "cached" for state in states)

    @property
    def status(self) -> str:
        """complete, cached (nothing new ran), failed, or incomplete (killed, or still running)."""
        states = {s.state for s in self.steps}
        if "failed" in states or (self.failure and not states):
            return "failed"
        if states & {"running", "unknown", "killed"}:
            return "incomplete"
        return "cached" if self.all_cached else "complete"

    @property
    def stopped_in(self) -> str:
        """Where an incomplete run stopped: 'killed in Trainer' (found by the next run on the
        root), 'Trainer running or killed', or '' for a run that ended."""
        for step in self.steps:
            if step.state == "killed":
                return f"killed in {step.name}"
            if step.state in ("running", "unknown"):
                return f"{step.name} running or killed"
        return ""

    @property
    def examples(self) -> int | None:
        return (self.ingestion or self.imported or {}).get("examples")

    @property
    def random_weights(self) -> str:
        """'fallback', 'chosen' (training.weights=none) or '' for a model with ImageNet's."""
        return (self.judgement or {}).get("judgement", {}).get("random_weights", "")

    @property
    def accuracy_interval(self) -> list[float] | None:
        """[lower, upper] of the candidate's accuracy, 95%, from the Judge."""
        if self.judgement is None:
            return None
        accuracy = self.judgement["evidence"]["accuracy"]
        return [accuracy["lower"], accuracy["upper"]]

    def overall_metrics(self, model: str) -> dict[str, float]:
        """TFMA's overall metrics of `model` ('candidate' or 'baseline'), with the Judge's exact
        macro AUC in place of TFMA's where the Judge computed it: TFMA buckets probabilities
        into 10,000 thresholds, and a saturated model's probabilities tie in its lowest bucket
        (0.863 against the exact 0.903 on the sample's make run)."""
        metrics = dict((self.metrics or {}).get(model, {}))
        evidence = (self.judgement or {}).get("evidence", {})
        auc = evidence.get("auc" if model == "candidate" else "baseline_auc")
        if auc and "macro_auc" in metrics:
            metrics["macro_auc"] = auc["value"]
        return metrics

    def metric_estimates(self) -> dict[str, dict[str, Any]]:
        """The candidate's metrics the Judge gave a 95% interval, by TFMA's metric name."""
        evidence = (self.judgement or {}).get("evidence", {})
        found = {ACCURACY: evidence.get("accuracy"), "macro_auc": evidence.get("auc")}
        return {name: estimate for name, estimate in found.items() if estimate}

    @property
    def class_names(self) -> list[str]:
        """The model's class names (label order), else the ingested folders' (the same order)."""
        if self.training and self.training.get("class_names"):
            return list(self.training["class_names"])
        if self.ingestion:
            return list(self.ingestion["classes"])
        return []

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

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        data = dict(data)
        data["steps"] = [Step(**s) for s in data.get("steps", [])]
        data["phases"] = [PhaseSummary(**p) for p in data.get("phases", [])]
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def phase_summaries(history: list[dict[str, Any]]) -> list[PhaseSummary]:
    """Each phase of history.json in the order it ran (a phase without epochs: 0 epochs)."""
    phases = []
    for phase in dict.fromkeys(e["phase"] for e in history):
        entries = [e for e in history if e["phase"] == phase]
        epochs = [e for e in entries if "epoch" in e]
        accuracies = [e["val_accuracy"] for e in epochs if "val_accuracy" in e]
        phases.append(
            PhaseSummary(
                phase=phase,
                epochs=len(epochs),
                learning_rates=sorted({e["learning_rate"] for e in epochs if "learning_rate" in e}),
                best_val_accuracy=max(accuracies) if accuracies else None,
                last_loss=epochs[-1].get("loss") if epochs else None,
                seconds=sum(e.get("seconds", 0.0) for e in entries),
            )
        )
    return phases


def store_fields(run: RunArtifacts) -> RunRecord:
    """What the metadata store alone says of a run (no artifact file is read): its steps,
    the Judge's blessing and the Pusher's push."""
    record = RunRecord(run_id=run.run_id, started=run.started, seconds=run.seconds)
    record.steps = [
        Step(node, run.states[node], round(end - start, 3))
        for node, (start, end) in run.times.items()
    ]
    blessing = run.artifact("Judge", "model_blessing")
    if blessing is not None and "blessed" in blessing.custom_properties:
        record.blessed = bool(blessing.custom_properties["blessed"].int_value)
        baseline = run.input("Judge", "baseline_model")
        record.baseline_id = baseline.id if baseline is not None else None
    pushed = run.artifact("Pusher", "pushed_model")
    if pushed is not None and pushed.custom_properties["pushed"].int_value:
        record.pushed_version = pushed.custom_properties["pushed_version"].string_value
        record.pushed_path = pushed.custom_properties["pushed_destination"].string_value
        record.push_cached = run.states.get("Pusher") == "cached"
    if pushed is not None and "already_served_version" in pushed.custom_properties:
        record.already_served = pushed.custom_properties["already_served_version"].string_value
    return record


# --- Files beside the run's report --------------------------------------------------------------


def report_path(config: PipelineConfig, run_id: str, suffix: str = ".html") -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", run_id)
    return os.path.join(config.runtime.root, "reports", f"run-{safe}{suffix}")


def record_path(config: PipelineConfig, run_id: str) -> str:
    return report_path(config, run_id, ".json")


def save_record(config: PipelineConfig, record: RunRecord) -> str:
    path = record_path(config, record.run_id)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(record.to_json(), f, indent=2)
    os.replace(path + ".tmp", path)  # a reader never sees half a record
    return path


def read_record_file(path: str) -> RunRecord | None:
    try:
        with open(path, encoding="utf-8") as f:
            return RunRecord.from_json(json.load(f))
    except (OSError, ValueError, TypeError):
        return None


def saved_record(config: PipelineConfig, run_id: str) -> RunRecord | None:
    """The record saved for the run whose id is run_id or starts with it, if exactly one."""
    exact = record_path(config, run_id)
    if os.path.exists(exact):
        return read_record_file(exact)
    folder = os.path.dirname(exact)
    prefix = os.path.basename(report_path(config, run_id, ""))
    names = [
        n
        for n in (os.listdir(folder) if os.path.isdir(folder) else [])
        if n.startswith(prefix) and n.endswith(".json") and not n.endswith(".page.json")
    ]
    return read_record_file(os.path.join(folder, names[0])) if len(names) == 1 else None


# --- Finding a run ------------------------------------------------------------------------------


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
