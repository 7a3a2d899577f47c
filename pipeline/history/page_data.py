"""What the HTML page shows beyond the run record: the class names, the image size histograms,
the validator's anomalies of a run the DataGate stopped, the confusion matrix, the Judge's rules
as rows and its thumbnails. Read from the artifacts once when the run ends (pipeline.history.build)
and saved beside the record (reports/run-<id>.page.json), so `report` renders a past run's page
again without TensorFlow."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pipeline.config import PipelineConfig
from pipeline.history.record import RunRecord, report_path

PAGE_DATA_VERSION = 1
SIZE_FEATURES = ("height", "width")  # written by ImageExampleGen for every example


@dataclass
class SizeHistogram:
    """One split's StatisticsGen histogram of one image-size feature, in pixels."""

    buckets: list[tuple[float, float, float]]  # (low, high, count)
    min: float
    median: float
    max: float


@dataclass
class ReportData:
    """What the page shows of one run, read once."""

    pipeline_name: str
    record: RunRecord
    class_names: list[str] = field(default_factory=list)
    image_sizes: dict[str, dict[str, SizeHistogram]] = field(default_factory=dict)
    validator_anomalies: list[str] | None = None  # when DataGate failed
    confusion: np.ndarray | None = None
    gate: list[dict[str, Any]] = field(default_factory=list)  # the Judge's rules and results
    gallery: dict[str, Any] = field(default_factory=dict)  # thumbnails
    # The Trainer's data findings, the first of each list, with their thumbnails
    # ({"label_issues", "near_duplicates", "thumbnails"}); {} when the Trainer did not finish.
    findings: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        """The page's own data: not the record (saved on its own, which `runs` reads), nor the
        pipeline's name and the error (the config's and the record's)."""
        return {
            "version": PAGE_DATA_VERSION,
            "class_names": self.class_names,
            "image_sizes": {
                feature: {split: asdict(h) for split, h in per_split.items()}
                for feature, per_split in self.image_sizes.items()
            },
            "validator_anomalies": self.validator_anomalies,
            "confusion": None if self.confusion is None else self.confusion.tolist(),
            "gate": self.gate,
            "gallery": self.gallery,
            "findings": self.findings,
        }

    @classmethod
    def from_json(
        cls, data: dict[str, Any], pipeline_name: str, record: RunRecord, error: str = ""
    ) -> ReportData:
        sizes = {
            feature: {
                split: SizeHistogram(
                    buckets=[tuple(b) for b in h["buckets"]],
                    min=h["min"],
                    median=h["median"],
                    max=h["max"],
                )
                for split, h in per_split.items()
            }
            for feature, per_split in data["image_sizes"].items()
        }
        confusion = data["confusion"]
        return cls(
            pipeline_name,
            record,
            class_names=data["class_names"],
            image_sizes=sizes,
            validator_anomalies=data["validator_anomalies"],
            confusion=None if confusion is None else np.array(confusion, dtype=float),
            gate=data["gate"],
            gallery=data["gallery"],
            findings=data.get("findings", {}),  # none in page data saved before findings
            error=error,
        )


def gate_rows(summary: RunRecord) -> list[dict[str, Any]]:
    """Each rule of the Judge as it was applied and saved with the judgement
    (components.gate.RuleResult): nothing here decides a rule again. A judgement saved before
    the rules were (no `rules`) shows its reasons, or that every rule passed."""
    if summary.judgement is None:
        return []
    verdict = summary.judgement["judgement"]
    if "rules" in verdict:
        return [
            {
                "rule": r["rule"],
                "option": r["option"],
                "value": r["value"],
                "result": r["passed"],
            }
            for r in verdict["rules"]
        ]
    reasons = verdict["reasons"] or ["every rule passed"]
    return [
        {
            "rule": reason,
            "option": "",
            "value": "(saved before rule results were)",
            "result": not verdict["reasons"],
        }
        for reason in reasons
    ]


# --- The file beside the record -----------------------------------------------------------------


def page_data_path(config: PipelineConfig, run_id: str) -> str:
    return report_path(config, run_id, ".page.json")


def save_page_data(config: PipelineConfig, data: ReportData) -> str:
    path = page_data_path(config, data.record.run_id)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(data.to_json(), f)
    os.replace(path + ".tmp", path)  # a reader never sees half a file
    return path


def saved_page_data(config: PipelineConfig, run_id: str) -> dict[str, Any] | None:
    """The page data saved for the run, None when there is none or it is of another version."""
    try:
        with open(page_data_path(config, run_id), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("version") == PAGE_DATA_VERSION else None
