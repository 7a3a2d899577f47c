"""What `runs` and `show` answer: each run's saved record, or for a run without one (made by
another runner, or before records were saved) what the metadata store alone says."""

from __future__ import annotations

import json
import os
from typing import Any

from components.contract import LABEL_ISSUES_FILE, NEAR_DUPLICATES_FILE
from components.model_files import file_system
from pipeline.config import PipelineConfig
from pipeline.history.console import run_row, show_lines
from pipeline.history.lineage import lineage_lines
from pipeline.history.record import (
    RunRecord,
    read_record_file,
    record_path,
    report_path,
    store_fields,
)
from pipeline.history.store import (
    RunArtifacts,
    RunLookupError,
    find_run_id,
    list_run_ids,
    load_run,
    open_existing_store,
)


def _saved(config: PipelineConfig, run_id: str) -> RunRecord | None:
    """The run's saved record, when it holds the finished run (not only a failure)."""
    path = record_path(config, run_id)
    saved = read_record_file(path) if os.path.exists(path) else None
    return saved if saved is not None and saved.steps else None


def record_of(config: PipelineConfig, run: RunArtifacts) -> RunRecord:
    saved = _saved(config, run.run_id)
    if saved is not None:
        return saved
    path = record_path(config, run.run_id)
    saved = read_record_file(path) if os.path.exists(path) else None
    record = store_fields(run)
    record.from_store_only = True
    record.failure = saved.failure if saved is not None else None
    return record


def run_rows(config: PipelineConfig) -> list[dict[str, Any]]:
    """Every run of the pipeline, oldest first; the store's executions are read only for the
    runs without a saved record."""
    store = open_existing_store(config)
    rows = []
    for run_id in list_run_ids(store, config.runtime.name):
        saved = _saved(config, run_id)
        if saved is None:
            saved = record_of(config, load_run(store, run_id, config.runtime.name))
        rows.append(run_row(saved))
    return rows


def show_text(config: PipelineConfig, query: str | None = None) -> str:
    """One run's summary, timing and lineage (default: the latest run)."""
    store = open_existing_store(config)
    name = config.runtime.name
    run = load_run(store, find_run_id(store, name, query), name)
    record = record_of(config, run)
    lines = show_lines(record) + lineage_lines(store, run, record)
    report = report_path(config, run.run_id)
    if os.path.exists(report):
        lines.append(f"  Report:      {report}")
    return "\n".join(lines)


def findings(config: PipelineConfig, query: str | None = None) -> dict[str, Any]:
    """A run's label_issues.json and near_duplicates.json (default: the latest run), with the
    folder they are in: {"run_id", "folder", "label_issues", "near_duplicates"} (None where
    the Trainer did not look)."""
    store = open_existing_store(config)
    name = config.runtime.name
    run = load_run(store, find_run_id(store, name, query), name)
    folder = run.uri("Trainer", "model_run")
    if folder is None:
        saved = _saved_failure(config, run.run_id)
        raise RunLookupError(
            f"Run {run.run_id} has no training output: it stopped before the Trainer finished"
            + (f" ({saved})" if saved else "")
            + ". A run the data findings stopped names its lists in that message."
        )
    found: dict[str, Any] = {"run_id": run.run_id, "folder": folder}
    for key, file in (
        ("label_issues", LABEL_ISSUES_FILE),
        ("near_duplicates", NEAR_DUPLICATES_FILE),
    ):
        found[key] = _read_json(os.path.join(folder, file))
    return found


def findings_text(found: dict[str, Any], limit: int) -> str:
    """The suspects, worst first, and the near-copy pairs, leaks first, `limit` of each."""
    lines = [f"Run {found['run_id']}: {found['folder']}"]
    issues = found["label_issues"]
    if issues is None:
        lines.append("  Label issues: not looked for (findings.label_issues=off)")
    elif issues.get("not_computed"):
        lines.append(f"  Label issues: not looked for: {issues['not_computed']}")
    else:
        suspects = issues["suspects"]
        lines.append(
            f"  Label issues: {len(suspects)} suspected of {issues['examined']} images "
            f"(heads {issues.get('out_of_fold_accuracy', 0):.0%} right out of fold), worst first:"
        )
        lines += [
            f"    {s['score']:.3f}  {s['split']:<5}  {s['path']}: labelled {s['given']}, looks "
            f"like {s['suggested']} ({s['suggested_probability']:.0%})"
            for s in suspects[:limit]
        ]
        if len(suspects) > limit:
            lines.append(f"    ... {len(suspects) - limit} more in {LABEL_ISSUES_FILE}")
    copies = found["near_duplicates"]
    if copies is None:
        lines.append("  Near-copies: not looked for (findings.near_duplicates=off)")
    elif copies.get("not_computed"):
        lines.append(f"  Near-copies: not looked for: {copies['not_computed']}")
    else:
        lines.append(
            f"  Near-copies: {copies['pairs_found']} pair(s) at similarity >= "
            f"{copies['threshold']:g}, {copies['leaks']} leak(s) into {copies['judged_split']}:"
        )
        for pair in copies["pairs"][:limit]:
            a, b = pair["a"], pair["b"]
            tag = "LEAK " if pair["leak"] else "     "
            lines.append(
                f"    {tag}{pair['similarity']:.4f}  {a['split']}/{a['path']}  ~  "
                f"{b['split']}/{b['path']}"
            )
        if copies["pairs_found"] > limit:
            lines.append(f"    ... {copies['pairs_found'] - limit} more in {NEAR_DUPLICATES_FILE}")
    return "\n".join(lines)


def _read_json(path: str) -> Any:
    fs = file_system(path)  # TensorFlow's only for a bucket: the command stays light
    if not fs.exists(path):
        return None
    with fs.GFile(path) as f:
        return json.load(f)


def _saved_failure(config: PipelineConfig, run_id: str) -> str:
    path = record_path(config, run_id)
    saved = read_record_file(path) if os.path.exists(path) else None
    return (saved.failure or {}).get("error", "") if saved is not None else ""
