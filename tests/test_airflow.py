"""The pipeline as an Airflow DAG, run by a real Airflow 2.10 (SQLite, `airflow dags test`)."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import PIPELINE_NODES, make_colour_classes, schema_for_classes
from PIL import Image

pytestmark = pytest.mark.slow

DAG_ID = "vgg16-airflow-test"
LOGICAL_DATE = "2024-01-02"
# The first task checks the machine as `run` does; the last writes the record and page.
TASKS = {"preflight", *PIPELINE_NODES, "run_report"}


def write_config(tmp_path: Path) -> Path:
    classes = make_colour_classes(tmp_path / "images", per_class=30)
    config = {
        "data": {
            "images": str(tmp_path / "images"),
            "schema": str(schema_for_classes(classes, tmp_path / "schema.pbtxt")),
            "split_buckets": {"train": 2, "eval": 1, "test": 1},
        },
        "transform": {"image_size": 32},
        "training": {
            "weights": "none",
            "epochs": 10,
            "learning_rate": 0.003,
            "fine_tune_epochs": 1,
            "batch_size": 16,
        },
        # The hash split leaves 19 test examples here.
        "evaluation": {"min_accuracy": 0.5, "min_examples": 10},
        "export": {"tflite_variants": ["float16"]},
        "runtime": {"name": DAG_ID, "root": str(tmp_path / "runs")},
        "airflow": {"start_date": "2024-01-01"},
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def airflow_env(tmp_path: Path, config: Path) -> dict[str, str]:
    dags = tmp_path / "dags"
    dags.mkdir()
    # What a user puts in the dags folder; Airflow only parses files that mention "airflow"
    # and "dag".
    (dags / "vgg16_pipeline.py").write_text(
        "# The VGG16 pipeline as an Airflow DAG.\nfrom pipeline.airflow_dag import DAG  # noqa\n"
    )
    return {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # Importing TensorFlow and TFX takes longer than Airflow's default 30 s parse limit.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "300",
        "VGG16_PIPELINE_CONFIG": str(config),
    }


def airflow(env: dict[str, str], *args: str, timeout: int = 120, check: bool = True) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", *args],
        env=env,
        cwd=env["AIRFLOW_HOME"],  # not the repository: the package must come from the install
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    failed = check and result.returncode != 0
    assert not failed, f"airflow {' '.join(args)}:\n{result.stderr[-5000:]}"
    return result.stdout


def task_states(env: dict[str, str], run_id: str) -> dict[str, str]:
    states = json.loads(airflow(env, "tasks", "states-for-dag-run", DAG_ID, run_id, "-o", "json"))
    by_task = {s["task_id"]: s["state"] for s in states}
    print("\n".join(f"{task:32} {state}" for task, state in by_task.items()))
    return by_task


def test_dag_runs_every_task_and_pushes_a_model(tmp_path):
    env = airflow_env(tmp_path, write_config(tmp_path))
    Path(env["AIRFLOW_HOME"]).mkdir()
    airflow(env, "db", "migrate")
    airflow(env, "dags", "test", DAG_ID, LOGICAL_DATE, timeout=300)

    # `dags test` does not add the DAG to the `dag` table that `dags list-runs` reads.
    database = sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db")
    ((run_id, run_state),) = database.execute(
        "SELECT run_id, state FROM dag_run WHERE dag_id = ?", (DAG_ID,)
    ).fetchall()
    by_task = task_states(env, run_id)
    assert set(by_task) == TASKS
    assert all(state == "success" for state in by_task.values()), by_task
    assert run_state == "success"
    (version,) = (tmp_path / "runs" / "serving").iterdir()
    assert version.name.isdigit()
    assert (version / "saved_model.pb").exists()
    # The same files as a local run: the model card and the checked TensorFlow Lite variant.
    assert "## Intended use and limitations" in (version / "model_card.md").read_text()
    report = json.loads((version / "tflite" / "report.json").read_text())
    assert report["variants"]["float16"]["published"], report
    assert (version / "tflite" / "float16.tflite").stat().st_size > 1e6

    # The Airflow run is a run like any other in the history commands.
    history = [sys.executable, "-m", "pipeline", "--config", env["VGG16_PIPELINE_CONFIG"]]
    listed = subprocess.run(
        [*history[:3], "runs", "--json", *history[3:]], capture_output=True, text=True, check=True
    )
    (row,) = json.loads(listed.stdout)
    assert row["run_id"] == run_id and row["status"] == "complete"
    assert row["blessed"] is not None and row["pushed_version"] == version.name
    assert row["record"] is True  # the last task wrote the run's record and page
    (page,) = (tmp_path / "runs" / "reports").glob("run-*.html")
    assert "BLESSED" in page.read_text()

    # A run whose step fails is a failed DAG run, though its page is written: a class folder
    # the schema does not list stops ingestion.
    zebras = tmp_path / "images" / "zebras"
    zebras.mkdir()
    Image.new("RGB", (40, 40), (200, 200, 200)).save(zebras / "zebra.png")
    airflow(env, "dags", "test", DAG_ID, "2024-01-03", timeout=300, check=False)
    ((failed_id, failed_state),) = database.execute(
        "SELECT run_id, state FROM dag_run WHERE dag_id = ? AND run_id != ?", (DAG_ID, run_id)
    ).fetchall()
    by_task = task_states(env, failed_id)
    assert by_task["preflight"] == "success"
    assert by_task["ImageExampleGen"] == "failed"
    assert by_task["Pusher"] == "upstream_failed"
    assert by_task["run_report"] == "success"
    assert failed_state == "failed"
    assert [v.name for v in (tmp_path / "runs" / "serving").iterdir()] == [version.name]
    listed = subprocess.run(
        [*history[:3], "runs", "--json", *history[3:]], capture_output=True, text=True, check=True
    )
    statuses = {row["run_id"]: row["status"] for row in json.loads(listed.stdout)}
    assert statuses == {run_id: "complete", failed_id: "failed"}
    pages = {page.name: page.read_text() for page in (tmp_path / "runs" / "reports").glob("*.html")}
    assert len(pages) == 2
    (failed_page,) = [text for name, text in pages.items() if "2024-01-03" in name]
    assert "The pipeline failed in ImageExampleGen" in failed_page
