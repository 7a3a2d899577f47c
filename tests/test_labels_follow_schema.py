"""Labels are positions in the schema's class list, through the whole command line: a class
folder missing from the data stops the run before Transform, and a schema whose classes are not
in alphabetical order gives examples, a model and `predict` answers in that order."""

import shutil
from pathlib import Path

import pytest
import tensorflow as tf
from conftest import REPO_ROOT, SMALL_RUN, make_colour_classes, schema_for_classes

from pipeline.__main__ import main
from pipeline.config import load_config
from pipeline.history.store import list_run_ids, load_run, open_store

pytestmark = pytest.mark.slow

SAMPLE = Path(REPO_ROOT) / "data" / "sample"
SAMPLE_SCHEMA = Path(REPO_ROOT) / "data" / "sample_schema.pbtxt"


def latest_run(root: Path):
    config = load_config(overrides=[f"runtime.root={root}"])
    store = open_store(config)
    return load_run(store, list_run_ids(store, config.runtime.name)[-1], config.runtime.name)


def test_a_missing_class_folder_stops_the_run_before_transform(tmp_path, capfd):
    images = tmp_path / "images"
    shutil.copytree(
        SAMPLE, images, ignore=lambda folder, names: ["food"] if folder == str(SAMPLE) else []
    )
    assert sorted(p.name for p in images.iterdir()) == [
        "animals",
        "people",
        "plants",
        "transportation",
    ]
    root = tmp_path / "runs"

    status = main(
        [
            "run",
            "--images",
            str(images),
            "--root",
            str(root),
            "--set",
            f"data.schema={SAMPLE_SCHEMA}",  # all five classes
            "--set",
            "training.weights=none",
        ]
    )

    out = capfd.readouterr().out
    assert status != 0
    for split in ("train", "eval", "test"):
        assert f"Split '{split}' has no usable image of class(es) ['food']" in out
    assert "Transform" not in latest_run(root).states  # stopped at ingestion
    report = Path(out.split("Ingestion report: ")[1].split()[0])
    assert report.exists()  # the report outlived the failed step
    page = Path(out.split("Report: ")[1].split()[0]).read_text()  # the HTML run report
    assert f"Ingestion report: <code>{report}</code>" in page
    assert not (root / "serving").exists() or not any((root / "serving").iterdir())


def read_labels(examples_uri: str) -> list[tuple[str, int]]:
    """(class_name, label) of every example in every split of an Examples artifact."""
    files = tf.io.gfile.glob(f"{examples_uri}/Split-*/*")
    pairs = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        feature = tf.train.Example.FromString(record.numpy()).features.feature
        pairs.append(
            (
                feature["class_name"].bytes_list.value[0].decode(),
                feature["label"].int64_list.value[0],
            )
        )
    return pairs


def test_a_schema_out_of_alphabetical_order_gives_its_labels_and_predictions(tmp_path, capfd):
    images = tmp_path / "images"
    make_colour_classes(images, per_class=30)  # blue, green, red
    order = ["red", "blue", "green"]  # as a person might write the schema by hand
    schema = schema_for_classes(order, tmp_path / "schema.pbtxt")
    root = tmp_path / "runs"
    args = ["run", "--images", str(images), "--root", str(root), "--stop-after", "train"]
    args += ["--set", f"data.schema={schema}"]
    for override in SMALL_RUN:
        args += ["--set", override]

    assert main(args) == 0

    run = latest_run(root)
    pairs = read_labels(run.uri("ImageExampleGen", "examples"))
    assert len(pairs) == 90
    assert all(label == order.index(name) for name, label in pairs), pairs[:10]

    model = Path(run.uri("Trainer", "model")) / "Format-Serving"
    chosen = [images / name / f"{name}_{i:03d}.jpg" for name in order for i in range(5)]
    capfd.readouterr()
    assert main(["predict", "--model", str(model), "--top", "1", *map(str, chosen)]) == 0
    lines = [line for line in capfd.readouterr().out.splitlines() if ": " in line]
    named = {line.split(": ", 1)[0]: line.split(": ", 1)[1].split(" ")[0] for line in lines}
    right = sum(named[str(path)] == path.parent.name for path in chosen)
    # A label order that differed from the model's class names would name nearly every image
    # wrongly; the trained colours give most of them right.
    assert right >= 10, named
