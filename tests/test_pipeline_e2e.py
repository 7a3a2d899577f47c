"""The whole pipeline through its command line, on small generated data: bless and push, cache,
refuse a worse model, ship a better one, survive a killed Trainer.

The tests of this module run in order on one pipeline root, as a user's runs would.
Data: three colour-coded classes (conftest.make_colour_classes), 32 px, random VGG16 weights:
random convolutions still separate colours, so a trained model clearly beats chance.
"""

import json
import os
import re
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

from components.model_files import damaged_files
from pipeline.__main__ import main
from pipeline.config import load_config
from pipeline.history.build import summarize
from pipeline.history.store import list_run_ids, load_run, open_store

pytestmark = pytest.mark.slow

COMPONENTS = PIPELINE_NODES
GOOD = SMALL_RUN
WORSE = [*GOOD, "training.epochs=0", "training.fine_tune=false"]  # an untrained head
# The untrained head blessed anyway: no accuracy floor and no bar of the most common class.
WEAK_BLESSED = [*WORSE, "evaluation.min_accuracy=0", "evaluation.beat_majority_class=false"]


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
    return load_run(store, list_run_ids(store, config.runtime.name)[-1], config.runtime.name)


def serving_versions(root: Path) -> list[str]:
    serving = root / "serving"
    return sorted(p.name for p in serving.iterdir()) if serving.exists() else []


def test_first_run_blesses_on_the_value_threshold_and_pushes(data, capfd):
    assert run(data, GOOD) == 0
    out = capfd.readouterr().out

    run_record = latest_run(data["root"])
    assert set(run_record.states) == set(COMPONENTS)
    assert all(state == "done" for state in run_record.states.values()), run_record.states
    assert "  Baseline:   no baseline: no model blessed before" in out
    assert re.search(
        r"sparse_categorical_accuracy +\d\.\d{3} \(95% CI 0\.\d\d to 1\.00, n = \d+\)", out
    )
    assert re.search(r"recall red +\d\.\d{3} \(95% CI", out)
    assert "Decision:   BLESSED (random weights: training.weights=none)" in out
    (version,) = serving_versions(data["root"])
    served = data["root"] / "serving" / version
    assert (served / "saved_model.pb").exists()
    assert f"Pushed:     version {version}" in out
    # Smoke-tested before publishing; the copy carries its record and was checked against it.
    record = json.loads((served / "assets.extra" / "push_record.json").read_text())
    assert record["run_id"] == run_record.run_id and record["version"] == version
    assert record["model_artifact_id"] == run_record.artifact("Trainer", "model").id
    assert damaged_files(str(served)) == []
    pushed = run_record.artifact("Pusher", "pushed_model")
    assert pushed.custom_properties["smoke_test_seconds"].double_value > 0
    # The model card, published with the model, carries this run's own figures.
    card = (served / "model_card.md").read_text()
    accuracy = re.search(r"sparse_categorical_accuracy +(\d\.\d{3} \(95% CI [^)]*\))", out)
    assert f"- Accuracy: {accuracy.group(1)}" in card
    assert "**Blessed**" in card and "`evaluation.min_accuracy, evaluation.judge_on`" in card
    counts = json.loads(
        (Path(run_record.uri("DataGate", "result")) / "data_gate.json").read_text()
    )["data"]["examples_per_split_and_class"]
    for name in data["classes"]:
        row = " | ".join(str(counts[split][name]) for split in counts)
        assert f"| {name} | {row} |" in card
    assert "Suspected label errors: not looked for (the base has random weights" in card
    assert "<table>" in (served / "model_card.html").read_text()
    assert set(record["documents"]) == {"model_card.md", "model_card.html"}
    assert f"Model card: {served}/model_card.md" in out


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
    assert run_record.input("Scorer", "examples").id == ingested.id
    # TFMA measures the Scorer's predictions: each model predicts each judged example once.
    predictions = run_record.artifact("Scorer", "predictions")
    assert run_record.input("Evaluator", "examples").id == predictions.id
    assert run_record.input("Judge", "predictions").id == predictions.id
    assert not run_record.input("Evaluator", "model")


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


def test_a_threshold_only_change_pushes_nothing_and_names_the_served_model(data, capfd):
    """The Trainer is cached, so the candidate is the model already blessed and served."""
    serving = tree_digest(data["root"] / "serving")
    (version,) = serving_versions(data["root"])
    first_run = json.loads(
        (data["root"] / "serving" / version / "assets.extra" / "push_record.json").read_text()
    )["run_id"]
    assert run(data, [*GOOD, "evaluation.min_accuracy=0.55"]) == 0
    out = capfd.readouterr().out
    states = latest_run(data["root"]).states
    assert states["Trainer"] == "cached" and states["Judge"] == "done"
    assert states["Scorer"] == states["Evaluator"] == "cached"  # thresholds are the Judge's
    assert f"the candidate is the model blessed in run {first_run} (version {version})" in out
    assert "no baseline" not in out
    assert f"Pushed:     nothing; the candidate is already served as version {version}" in out
    assert tree_digest(data["root"] / "serving") == serving


def test_worse_candidate_is_not_blessed_and_serving_is_untouched(data, capfd):
    serving = tree_digest(data["root"] / "serving")
    assert run(data, WORSE) == 0  # not blessed is not a failure by default
    out = capfd.readouterr().out
    assert "Decision:   NOT BLESSED" in out
    assert "sparse_categorical_accuracy" in out
    assert "below evaluation.min_accuracy=0.5" in out
    assert re.search(r"  Paired:     fixed \d+, broken \d+, both right \d+, both wrong \d+", out)
    assert "significantly worse than the baseline" in out  # the paired comparison
    assert "Pushed:     nothing; the serving location is unchanged" in out
    assert tree_digest(data["root"] / "serving") == serving  # byte for byte

    assert run(data, WORSE, "--fail-on-unblessed") == 3  # for CI/CD gates
    assert tree_digest(data["root"] / "serving") == serving


def test_better_candidate_is_blessed_and_pushed_as_a_new_version(data, capfd):
    """A weak model blessed by zero thresholds is the baseline; the trained one beats it."""
    root = data["root"].parent / "better"
    assert run(data, WEAK_BLESSED, root=root) == 0
    (weak,) = serving_versions(root)
    capfd.readouterr()

    assert run(data, GOOD, root=root) == 0
    out = capfd.readouterr().out
    assert "Decision:   BLESSED" in out
    assert "candidate   baseline" in out  # compared with the weak model
    assert re.search(r"  Paired:     fixed \d+, broken \d+, .*: better$", out, re.MULTILINE)
    versions = serving_versions(root)
    assert len(versions) == 2 and versions[0] == weak and int(versions[1]) > int(weak)


def test_a_damaged_baseline_names_itself_and_baseline_none_proceeds(data, capfd):
    """In the root of the test above: the good model (version 2) is the latest blessed one.
    With its files damaged, judging the weak model again against it fails, naming it."""
    root = data["root"].parent / "better"
    weak, good = serving_versions(root)
    record = json.loads((root / "serving" / good / "assets.extra" / "push_record.json").read_text())
    store = open_store(load_config(overrides=[f"runtime.root={root}"]))
    (baseline,) = store.get_artifacts_by_id([record["model_artifact_id"]])
    model_dir = Path(baseline.uri) / "Format-Serving"
    (model_dir / "saved_model.pb").write_bytes(b"damaged")
    serving = tree_digest(root / "serving")
    capfd.readouterr()

    weak_again = WEAK_BLESSED
    assert run(data, weak_again, root=root) == 1
    captured = capfd.readouterr()
    out = captured.out + captured.err
    assert f"The baseline model (artifact {record['model_artifact_id']} at {model_dir}" in out
    assert f"blessed in run {record['run_id']}, served as version {good}" in out
    assert "saved_model.pb: contents changed" in out and "--baseline none" in out
    assert tree_digest(root / "serving") == serving

    assert run(data, weak_again, "--baseline", "none", root=root) == 0
    out = capfd.readouterr().out
    assert "none (--baseline none): judged on the value thresholds alone" in out
    assert "Decision:   BLESSED" in out
    assert f"already served as version {weak}" in out  # the weak model is version 1
    assert tree_digest(root / "serving") == serving


def test_show_and_predict_name_a_damaged_served_version(data, capfd):
    root = data["root"].parent / "better"
    _, good = serving_versions(root)
    served = root / "serving" / good
    (served / "variables" / "variables.index").write_bytes(b"damaged")
    image = data["images"] / "red" / "red_000.jpg"
    assert main(["predict", "--root", str(root), str(image)]) == 2
    err = capfd.readouterr().err
    assert f"The model at {served} is damaged" in err
    assert "variables/variables.index: contents changed" in err

    pushed_by = json.loads((served / "assets.extra" / "push_record.json").read_text())["run_id"]
    assert main(["show", pushed_by, "--root", str(root)]) == 0
    out = capfd.readouterr().out
    assert "!!! DAMAGED: 1 file(s) differ from the push:" in out
    assert "variables/variables.index: contents changed" in out


@pytest.fixture
def no_imagenet_weights(monkeypatch, tmp_path):
    """A machine that reaches neither Keras' host nor the package index, with an empty cache:
    ImageNet weights cannot be had (the run and its Trainer run in this process)."""
    from components import base_weights

    def unreachable(*args, **kwargs):
        raise base_weights.WeightsUnavailableError("no network")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(base_weights, "_keras_download", lambda folder, tried: None)
    monkeypatch.setattr(base_weights, "fetch_wheel", unreachable)


def test_a_random_weight_fallback_is_not_blessed_unless_allowed(data, capfd, no_imagenet_weights):
    """ImageNet weights cannot be had: the fallback model is judged, not shipped."""
    root = data["root"].parent / "fallback"
    fallback = [*GOOD, "training.weights=imagenet", "training.allow_random_weights_fallback=true"]
    assert run(data, fallback, root=root) == 0
    out = capfd.readouterr().out
    assert "Decision:   NOT BLESSED (RANDOM weights: ImageNet weights were unavailable)" in out
    assert "fell back to RANDOM weights" in out and "evaluation.bless_random_weights=true" in out
    assert serving_versions(root) == []

    assert run(data, [*fallback, "evaluation.bless_random_weights=true"], root=root) == 0
    out = capfd.readouterr().out
    assert "Decision:   BLESSED (RANDOM weights: ImageNet weights were unavailable)" in out
    (version,) = serving_versions(root)
    image = data["images"] / "red" / "red_000.jpg"
    assert main(["predict", "--root", str(root), str(image)]) == 0
    assert "WARNING: trained from RANDOM weights" in capfd.readouterr().out
    assert main(["runs", "--root", str(root)]) == 0
    assert "no (RANDOM weights)" in capfd.readouterr().out


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
    killed = latest_run(data["root"])
    assert killed.states["Trainer"] == "running"
    assert not killed.outputs.get("Trainer")  # a killed step lists no outputs
    half_written = unregistered_folders(data["root"], "Trainer")
    assert half_written  # the killed Trainer's output folders, in no artifact of the store

    assert run(data, overrides) == 0  # the same command again
    states = latest_run(data["root"]).states
    for upstream in ("ImageExampleGen", "StatisticsGen", "DataGate", "Transform"):
        assert states[upstream] == "cached"
    assert states["Trainer"] == "done"
    assert states["Evaluator"] == "done"
    # The killed run is shown as such, and what it half wrote is gone.
    config = load_config(overrides=[f"runtime.root={data['root']}"])
    killed = load_run(open_store(config), killed.run_id, config.runtime.name)
    assert killed.states["Trainer"] == "killed"
    assert summarize(killed).stopped_in == "killed in Trainer"
    assert not any(folder.exists() for folder in half_written)


def unregistered_folders(root: Path, node: str) -> set[Path]:
    """Output folders of `node` that no artifact in the metadata store points to."""
    store = open_store(load_config(overrides=[f"runtime.root={root}"]))
    uris = {Path(a.uri) for a in store.get_artifacts()}
    base = root / "artifacts" / node
    folders = {f for key in base.iterdir() if key.name != ".system" for f in key.iterdir()}
    return folders - uris


def test_warm_start_begins_from_the_last_blessed_model(data, capfd):
    """training.warm_start=baseline: the first run, with nothing blessed, starts from the base
    weights and says so; the next starts from the model just blessed (every weight loaded, as
    tests/test_warm_start.py compares), found by its resolver."""
    root = data["root"].parent / "warm"
    warm = [*GOOD, "training.warm_start=baseline"]
    assert run(data, warm, root=root) == 0
    assert (
        "Warm start: none (no model blessed yet): from the base weights" in capfd.readouterr().out
    )
    blessed = latest_run(root).artifact("Trainer", "model")
    assert latest_run(root).artifact("Judge", "model_blessing").custom_properties["blessed"]

    assert run(data, [*warm, "training.epochs=2"], root=root) == 0
    out = capfd.readouterr().out
    second = latest_run(root)
    assert second.input("Trainer", "base_model").id == blessed.id
    history = json.loads((Path(second.uri("Trainer", "model_run")) / "history.json").read_text())
    assert history["warm_start"]["from"].startswith(blessed.uri)
    assert f"Warm start: from the last blessed model, {history['warm_start']['from']}" in out
