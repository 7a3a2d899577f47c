"""The Tuner in the pipeline: its best hyperparameters reach the Trainer, and the Kubeflow and
Airflow versions of the DAG run it between Transform and the Trainer."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO_ROOT, SMALL_RUN, make_colour_classes, schema_for_classes
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from pipeline.__main__ import main

pytestmark = pytest.mark.slow

TUNING = ["tuning.enabled=true", "tuning.trials=3", "tuning.epochs_per_trial=2"]


def one(folder: Path, pattern: str) -> Path:
    (path,) = folder.glob(pattern)
    return path


def test_the_tuners_best_hyperparameters_train_the_model(tmp_path, capfd):
    classes = make_colour_classes(tmp_path / "images", per_class=12)
    schema = schema_for_classes(classes, tmp_path / "schema.pbtxt")
    root = tmp_path / "runs"
    args = ["run", "--images", str(tmp_path / "images"), "--root", str(root)]
    args += ["--set", f"data.schema={schema}", "--stop-after", "train"]
    for override in [*SMALL_RUN, "training.epochs=2", "training.fine_tune=false", *TUNING]:
        args += ["--set", override]

    assert main(args) == 0, capfd.readouterr().out

    artifacts = root / "artifacts"
    best = json.loads(
        one(artifacts, "Tuner/best_hyperparameters/*/best_hyperparameters.txt").read_text()
    )["values"]
    trials = json.loads(one(artifacts, "Tuner/tuner_results/*/tuner_results.json").read_text())
    assert len(trials) == 3
    assert best["head"] in ("flatten", "gap") and 1e-4 <= best["learning_rate"] <= 1e-2
    metadata = json.loads(
        one(
            artifacts, "Trainer/model/*/Format-Serving/assets.extra/model_metadata.json"
        ).read_text()
    )
    tuned = metadata["tuned_hyperparameters"]
    assert tuned["head"] == best["head"] and tuned["learning_rate"] == best["learning_rate"]
    # The trained model is the tuned one, not the configured default (flatten, 0.003).
    assert metadata["training_config"]["head"] == best["head"]
    assert metadata["training_config"]["learning_rate"] == best["learning_rate"]


def tuning_config(tmp_path: Path, **sections) -> Path:
    config = {
        "data": {
            "images": "gs://my-bucket/images",
            "splits": "hash",
            "schema": str(schema_for_classes(["cat", "dog"], tmp_path / "schema.pbtxt")),
        },
        "tuning": {"enabled": True},
        **sections,
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_kubeflow_runs_the_tuner_before_the_trainer(tmp_path):
    config = tuning_config(
        tmp_path, kubeflow={"image": "gcr.io/p/vgg16:1", "pipeline_root": "gs://my-bucket/root"}
    )
    out = tmp_path / "pipeline.json"
    assert (
        main(["compile", "--target", "kubeflow", "--config", str(config), "--out", str(out)]) == 0
    )

    job = json_format.Parse(out.read_text(), pipeline_spec_pb2.PipelineJob())
    tasks = json_format.MessageToDict(job.pipeline_spec)["root"]["dag"]["tasks"]
    assert "Tuner" in tasks
    assert "Tuner" in tasks["Trainer"]["dependentTasks"]
    hyperparameters = tasks["Trainer"]["inputs"]["artifacts"]["hyperparameters"]
    assert hyperparameters["taskOutputArtifact"]["producerTask"] == "Tuner"


def test_airflow_runs_the_tuner_before_the_trainer(tmp_path):
    config = tuning_config(tmp_path, runtime={"root": str(tmp_path / "runs")})
    code = (
        "from pipeline.airflow_dag import DAG\n"
        "print(sorted(DAG.get_task('Trainer').upstream_task_ids))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={
            **os.environ,
            "AIRFLOW_HOME": str(tmp_path / "airflow"),
            "VGG16_PIPELINE_CONFIG": str(config),
            "PYTHONPATH": REPO_ROOT,
        },
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "'Tuner'" in result.stdout.splitlines()[-1]
