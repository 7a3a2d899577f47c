"""`python -m pipeline report` and the end of a run: the record and the page data built and
saved, the page written (reports/run-<id>.json, .page.json and .html under the root). The run's
end builds them from its artifacts, with TensorFlow, TFX and TFMA; `report` renders the saved
ones again without those libraries, and builds them only for a run that has none."""

from __future__ import annotations

import os
from typing import Any

from pipeline.config import PipelineConfig
from pipeline.history.html import render
from pipeline.history.page_data import ReportData, save_page_data, saved_page_data
from pipeline.history.record import (
    RECORD_VERSION,
    RunRecord,
    find_run,
    read_record_file,
    record_path,
    report_path,
    save_record,
    saved_record,
    store_fields,
)
from pipeline.history.store import RunArtifacts


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
    record: RunRecord | None = None,
) -> str:
    """Writes the page of the run whose id is (or starts with) run_id, default the latest, and
    returns its path: from the run's saved record and page data when the metadata store still
    says what they say, else from its artifacts (at the run's end; for a run made before they
    were saved, or by another runner), both then saved. The error shown is `error`, else the one
    recorded when the run failed (record_failure). `record`: the run's record when the caller
    has just built it (the run's end), so it is not built twice."""
    run = find_run(config, run_id)
    data = saved_report_data(config, run, error) or build_report_data(config, run, error, record)
    path = out or report_path(config, run.run_id)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(render(data))
    return path


def saved_report_data(
    config: PipelineConfig, run: RunArtifacts, error: str = ""
) -> ReportData | None:
    """The run's record and page data as saved; None when either is missing or of another
    version, or when the store's steps differ from the record's: saved while the run was still
    running, before a killed step was marked so, or an Airflow run cleared and run again."""
    path = record_path(config, run.run_id)
    record = read_record_file(path) if os.path.exists(path) else None
    page = saved_page_data(config, run.run_id)
    if record is None or page is None or record.version != RECORD_VERSION:
        return None
    if record.steps != store_fields(run).steps:
        return None
    error = error or (record.failure or {}).get("error", "")
    return ReportData.from_json(page, config.runtime.name, record, error)


def build_report_data(
    config: PipelineConfig, run: RunArtifacts, error: str = "", record: RunRecord | None = None
) -> ReportData:
    """The run's record (unless given) and page data read from its artifacts, both saved."""
    from pipeline.history.build import read_report_data, record_for  # TensorFlow, TFX, TFMA

    record = record or record_for(config, run)
    save_record(config, record)
    error = error or (record.failure or {}).get("error", "")
    data = read_report_data(config.runtime.name, run, record, error)
    save_page_data(config, data)
    return data
