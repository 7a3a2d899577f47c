"""The end-of-run summary (placeholder, filled from the metadata store)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import PipelineConfig
from pipeline.console import StepLog


@dataclass
class RunSummary:
    blessed: bool | None = None

    def text(self) -> str:
        return ""


def run_summary(config: PipelineConfig, steps: StepLog) -> RunSummary:
    return RunSummary()
