"""`python -m pipeline report` and the end of a run: the record built and saved, the page written
(reports/run-<id>.json and .html under the root)."""

from __future__ import annotations

import os
from typing import Any

from pipeline.config import PipelineConfig
from pipeline.history.build import find_run, record_for
from pipeline.history.html import render
from pipeline.history.page_data import read_report_data
from pipeline.history.record import RunRecord, report_path, save_record, saved_record


def record_failure(config: PipelineConfig, run_id: str, error: str, **details: Any) -> str:
    """Keeps why a run failed in its record, so a rebuilt page shows the same error."""
    record = saved_record(config, run_id) or RunRecord(run_id=run_id)
    record.started = record.started or details.get("started", 0.0)
    record.failure = {"error": error, **details}
    return save_record(config, record)


def write_report(
    config: PipelineConfig,
    run_id: str | None = None,
    error: str = "",
    out: str | None = None,
) -> str:
    """Builds and saves the run's record (default: the latest run), writes its page and
    returns the page's path. The error shown is `error`, else the one recorded when the run
    failed (record_failure)."""
    run = find_run(config, run_id)
    record = record_for(config, run)
    save_record(config, record)
    error = error or (record.failure or {}).get("error", "")
    data = read_report_data(config.runtime.name, run, record, error)
    path = out or report_path(config, run.run_id)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(render(data))
    return path
