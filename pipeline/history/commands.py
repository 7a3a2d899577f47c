"""What `runs` and `show` answer: each run's saved record, or for a run without one (made by
another runner, or before records were saved) what the metadata store alone says."""

from __future__ import annotations

import os
from typing import Any

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
