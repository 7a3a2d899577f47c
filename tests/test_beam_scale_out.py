"""The data steps on Beam's DirectRunner with worker processes give what the in-memory run gives."""

import json
from pathlib import Path

import pytest
import tensorflow as tf
from conftest import make_colour_classes, schema_for_classes
from tfx.orchestration.local.local_dag_runner import LocalDagRunner

from components.ingestion_report import REPORT_FILE
from pipeline.config import load_config
from pipeline.pipeline import create_pipeline

pytestmark = pytest.mark.slow

IN_MEMORY = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
MULTI_PROCESSING = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]


def run_data_steps(tmp_path: Path, name: str, beam_args: list[str]) -> dict:
    config = load_config(overrides=[f"runtime.root={tmp_path / name}"])
    config.data.images = str(tmp_path / "images")
    config.data.schema = str(tmp_path / "schema.pbtxt")
    config.data.split_buckets = {"train": 2, "eval": 1, "test": 1}
    config.runtime.beam_args = beam_args
    LocalDagRunner().run(create_pipeline(config, stop_after="data"))

    artifacts = tmp_path / name / "artifacts"
    (report,) = (artifacts / "ImageExampleGen" / "report").glob(f"*/{REPORT_FILE}")
    (examples,) = (artifacts / "ImageExampleGen" / "examples").glob("*")
    records = {
        split.name.removeprefix("Split-"): sum(
            1 for _ in tf.data.TFRecordDataset(sorted(map(str, split.glob("*"))), "GZIP")
        )
        for split in examples.iterdir()
    }
    (gate,) = (artifacts / "DataGate" / "result").glob("*/data_gate.json")
    return {
        "per_split": json.loads(report.read_text())["examples_per_split"],
        "records": records,
        "anomalies": json.loads(gate.read_text())["anomalies"],
    }


def test_multi_processing_workers_give_the_in_memory_result(tmp_path, monkeypatch):
    classes = make_colour_classes(tmp_path / "images", per_class=12)
    schema_for_classes(classes, tmp_path / "schema.pbtxt")
    # Workers are new Python processes: outside the repository they import `components` from
    # the installed project, as they would on a cluster.
    monkeypatch.chdir(tmp_path)

    in_memory = run_data_steps(tmp_path, "in_memory", IN_MEMORY)
    multi = run_data_steps(tmp_path, "multi", MULTI_PROCESSING)

    assert sum(in_memory["per_split"].values()) == 36
    assert multi["per_split"] == in_memory["per_split"]
    assert multi["records"] == in_memory["records"] == in_memory["per_split"]
    assert multi["anomalies"] == in_memory["anomalies"] == []
