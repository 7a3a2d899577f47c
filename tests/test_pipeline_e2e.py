"""The whole pipeline through its command line, on small generated data: bless and push, cache,
refuse a worse model, ship a better one, survive a killed Trainer.

The tests of this module run in order on one pipeline root, as a user's runs would.
Data: three colour-coded classes (conftest.make_colour_classes), 32 px, random VGG16 weights:
random convolutions still separate colours, so a trained model clearly beats chance.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tensorflow as tf
from conftest import (
    PIPELINE_NODES,
    REPO_ROOT,
    SMALL_RUN,
    make_colour_classes,
    schema_for_classes,
    tree_digest,
)

from pipeline.__main__ import main
from pipeline.config import load_config
from pipeline.summary import list_run_ids, load_run, open_store

pytestmark = pytest.mark.slow

COMPONENTS = PIPELINE_NODES
GOOD = SMALL_RUN
WORSE = [*GOOD, "training.epochs=0", "training.fine_tune=false"]  # an untrained head


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("e2e")
    classes = make_colour_classes(root / "images", per_class=30)
    return {
        "images": root / "images",
        "schema": schema_for_classes(classes, root / "schema.pbtxt"),
        "classes": classes,
        "root": root / "runs",
    }


def run(data, overrides, *extra, root=None) -> int:
    args = ["run", "--images", str(data["images"]), "--root", str(root or data["root"])]
    args += ["--set", f"data.schema={data['schema']}"]
    for override in overrides:
        args += ["--set", override]
    return main([*args, *extra])


def latest_run(root: Path):
    config = load_config(overrides=[f"runtime.root={root}"])
    store = open_store(config)
    return load_run(store, list_run_ids(store, config.runtime.name)[-1])


def serving_versions(root: Path) -> list[str]:
    serving = root / "serving"
    return sorted(p.name for p in serving.iterdir()) if serving.exists() else []


def test_first_run_blesses_on_the_value_threshold_and_pushes(data, capfd):
    assert run(data, GOOD) == 0
    out = capfd.readouterr().out

    run_record = latest_run(data["root"])
    assert set(run_record.states) == set(COMPONENTS)
    assert all(state == "done" for state in run_record.states.values()), run_record.states
    assert "(no baseline: no model blessed before)" in out
    assert "Decision:   BLESSED" in out
    (version,) = serving_versions(data["root"])
    assert (data["root"] / "serving" / version / "saved_model.pb").exists()
    assert f"Pushed:     version {version}" in out


def test_trainer_ran_both_phases_and_learned(data):
    run_record = latest_run(data["root"])
    history = json.loads(
        (Path(run_record.uri("Trainer", "model_run")) / "history.json").read_text()
    )
    phase1 = [e for e in history["history"] if e.get("phase") == "phase1"]
    phase2 = [e for e in history["history"] if e.get("phase") == "phase2"]
    assert phase1 and phase2
    assert phase1[-1]["loss"] < phase1[0]["loss"]  # the loss falls
    assert max(e["val_accuracy"] for e in phase1 + phase2) >= 0.6  # chance is 1/3
    assert history["base_weights"].startswith("random")
    assert history["class_names"] == data["classes"]


def test_transform_writes_only_its_graph_and_the_trainer_reads_the_ingested_examples(data):
    run_record = latest_run(data["root"])
    assert "transform_graph" in run_record.outputs["Transform"]
    assert "transformed_examples" not in run_record.outputs["Transform"]  # no pixel copies
    ingested = run_record.artifact("ImageExampleGen", "examples")
    assert run_record.input("Trainer", "examples").id == ingested.id
    assert run_record.input("Evaluator", "examples").id == ingested.id


def test_exported_model_answers_both_signatures(data):
    (version,) = serving_versions(data["root"])
    model = tf.saved_model.load(str(data["root"] / "serving" / version))
    image = (data["images"] / "red" / "red_000.jpg").read_bytes()
    by_bytes = model.signatures["serving_images"](images=tf.constant([image, image]))
    example = tf.train.Example(
        features=tf.train.Features(
            feature={"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image]))}
        )
    ).SerializeToString()
    by_example = model.signatures["serving_default"](examples=tf.constant([example]))
    assert by_bytes["probabilities"].shape == (2, 3)
    assert by_example["probabilities"].shape == (1, 3)
    assert by_bytes["class_name"].numpy()[0].decode() in data["classes"]
    assert by_example["class_name"].numpy()[0] == by_bytes["class_name"].numpy()[0]
    assert [n.decode() for n in model.class_names.numpy()] == data["classes"]


def test_predict_names_a_known_class(data, capfd):
    image = data["images"] / "green" / "green_001.jpg"
    assert main(["predict", "--root", str(data["root"]), str(image)]) == 0
    line = capfd.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(f"{image}: ")
    assert line.split(": ", 1)[1].split(" ")[0] in data["classes"]


def test_predict_rejects_a_non_image_clearly(data, tmp_path, capfd):
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    assert (
        main(["predict", "--root", str(data["root"]), str(text), str(tmp_path / "gone.png")]) == 2
    )
    err = capfd.readouterr().err
    assert f"{text}: not a readable image" in err
    assert f"{tmp_path / 'gone.png'}: no such file" in err


def test_unchanged_rerun_is_all_cached_and_says_so(data, capfd):
    before = serving_versions(data["root"])
    assert run(data, GOOD) == 0
    out = capfd.readouterr().out
    states = latest_run(data["root"]).states
    assert {n: s for n, s in states.items() if n != "latest_blessed_model_resolver"} == {
        n: "cached" for n in COMPONENTS if n != "latest_blessed_model_resolver"
    }
    assert "every step was cached, nothing new ran" in out
    assert serving_versions(data["root"]) == before  # nothing pushed twice


def test_worse_candidate_is_not_blessed_and_serving_is_untouched(data, capfd):
    serving = tree_digest(data["root"] / "serving")
    assert run(data, WORSE) == 0  # not blessed is not a failure by default
    out = capfd.readouterr().out
    assert "Decision:   NOT BLESSED" in out
    assert "sparse_categorical_accuracy" in out
    assert "evaluation.min_accuracy" in out or "evaluation.max_accuracy_drop" in out
    assert "Pushed:     nothing; the serving location is unchanged" in out
    assert tree_digest(data["root"] / "serving") == serving  # byte for byte

    assert run(data, WORSE, "--fail-on-unblessed") == 3  # for CI/CD gates
    assert tree_digest(data["root"] / "serving") == serving


def test_better_candidate_is_blessed_and_pushed_as_a_new_version(data, tmp_path, capfd):
    """A weak model blessed by a zero threshold is the baseline; the trained one beats it."""
    root = tmp_path / "runs"
    assert run(data, [*WORSE, "evaluation.min_accuracy=0"], root=root) == 0
    (weak,) = serving_versions(root)
    capfd.readouterr()

    assert run(data, GOOD, root=root) == 0
    out = capfd.readouterr().out
    assert "Decision:   BLESSED" in out
    assert "candidate   baseline" in out  # compared with the weak model
    versions = serving_versions(root)
    assert len(versions) == 2 and versions[0] == weak and int(versions[1]) > int(weak)


def test_run_killed_in_the_trainer_completes_when_started_again(data):
    """A real SIGKILL while the Trainer runs; the next run reuses what finished before it."""
    overrides = [
        *GOOD,
        "training.seed=7",
        "training.epochs=400",
        "training.early_stopping_patience=0",
    ]
    command = [sys.executable, "-m", "pipeline", "run", "--images", str(data["images"])]
    command += ["--root", str(data["root"]), "--set", f"data.schema={data['schema']}"]
    for override in overrides:
        command += ["--set", override]
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    for line in process.stdout:
        if line.split()[:2] == ["Trainer", "running"]:
            time.sleep(3)  # well inside training
            os.killpg(process.pid, signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL

    database = data["root"] / "metadata.sqlite"
    assert sqlite3.connect(database).execute("PRAGMA integrity_check").fetchone() == ("ok",)

    assert run(data, overrides) == 0  # the same command again
    states = latest_run(data["root"]).states
    for upstream in ("ImageExampleGen", "StatisticsGen", "DataGate", "Transform"):
        assert states[upstream] == "cached"
    assert states["Trainer"] == "done"
    assert states["Evaluator"] == "done"
