"""`python -m pipeline infer-schema`: the same ingestion checks and messages as `run`, and a
curated schema that constrains the classes but not the file names."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow_data_validation as tfdv
from conftest import REPO_ROOT
from test_image_example_gen import make_good_images

from pipeline.__main__ import main

pytestmark = pytest.mark.slow


def infer(image_dir: Path, out: Path, root: Path) -> int:
    args = ["infer-schema", "--images", str(image_dir), "--root", str(root), "--out", str(out)]
    return main([*args, "--set", "data.split_buckets={train: 1, eval: 1}"])


def test_too_many_bad_files_give_the_ingestion_message_not_a_traceback(
    tmp_path, image_dir, make_image
):
    make_good_images(image_dir, make_image, classes=["cats", "dogs"])
    for i in range(3):
        (image_dir / f"dogs/notes{i}.jpg").write_text("not a photo\n")
    out = tmp_path / "schema.pbtxt"
    command = ["infer-schema", "--images", str(image_dir), "--root", str(tmp_path / "runs")]

    # As a person runs it (a terminal's file descriptors: the traceback goes to the log).
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", *command, "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )

    status, console = result.returncode, result.stdout + result.stderr
    assert status != 0
    assert "3 of 19 image files" in console
    assert "dogs/notes0.jpg: not a readable image" in console
    assert "Traceback" not in console
    assert "No schema was written." in console
    assert not out.exists()
    kept = tmp_path / "schema.ingestion_report.json"
    assert f"Ingestion report: {kept}" in console
    assert len(json.loads(kept.read_text())["quarantined"]) == 3


def test_the_schema_names_the_classes_it_found_and_no_file(tmp_path, image_dir, make_image):
    make_good_images(image_dir, make_image, classes=["zebras", "cats", "dogs"], per_class=8)
    out = tmp_path / "schema.pbtxt"

    assert infer(image_dir, out, tmp_path / "runs") == 0

    schema = tfdv.load_schema_text(str(out))
    domains = {d.name: list(d.value) for d in schema.string_domain}
    assert domains["class_name_values"] == ["cats", "dogs", "zebras"]  # the order it found
    assert sorted(domains) == ["class_name_values", "image_format_values"]  # no image_id list
    image_id = next(f for f in schema.feature if f.name == "image_id")
    assert not image_id.HasField("domain")
    label = next(f for f in schema.feature if f.name == "label")
    assert (label.int_domain.min, label.int_domain.max) == (0, 2)
