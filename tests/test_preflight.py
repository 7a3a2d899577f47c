"""The machine checks before a run: writable folders, readable inputs, disk room."""

import shutil
from collections import namedtuple

from pipeline import preflight
from pipeline.config import load_config


def test_a_folder_that_can_be_made_passes_and_the_check_leaves_nothing(tmp_path):
    serving = tmp_path / "deep" / "serving"
    assert preflight.writable_folder_problem(str(serving), "runtime.serving_dir", False) is None
    assert list(tmp_path.iterdir()) == []  # not even the scratch folder of the check


def test_the_root_is_made_when_it_can_be(tmp_path):
    root = tmp_path / "runs"
    assert preflight.writable_folder_problem(str(root), "runtime.root", create=True) is None
    assert root.is_dir() and list(root.iterdir()) == []


def test_unwritable_places_name_the_option_and_the_fix(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("")
    problem = preflight.writable_folder_problem(f"{a_file}/runs", "runtime.root", create=True)
    assert problem == (
        f"runtime.root={a_file}/runs: {a_file} is a file, not a folder; "
        "set runtime.root to a folder you can write to"
    )
    problem = preflight.writable_folder_problem("/proc/serving", "runtime.serving_dir", False)
    assert problem.startswith("runtime.serving_dir=/proc/serving: cannot write in /proc (")


def test_remote_locations_are_left_to_the_steps():
    assert preflight.writable_folder_problem("gs://bucket/runs", "runtime.root", True) is None
    assert preflight.readable_folder_problem("gs://bucket/images", "data.images") is None


def test_a_schema_names_its_classes_or_not(tmp_path):
    named = tmp_path / "named.pbtxt"
    named.write_text('string_domain { name: "class_name_values" value: "cat" value: "dog" }\n')
    unnamed = tmp_path / "unnamed.pbtxt"
    unnamed.write_text('feature { name: "image" type: BYTES }\n')
    assert preflight.schema_has_class_names(str(named))
    assert not preflight.schema_has_class_names(str(unnamed))


def test_imported_tfrecords_with_a_schema_that_names_the_classes_pass(tmp_path):
    schema = tmp_path / "schema.pbtxt"
    schema.write_text('string_domain { name: "class_name_values" value: "cat" }\n')
    config = load_config(overrides=[f"data.tfrecords={tmp_path}", f"data.schema={schema}"])
    assert preflight.data_problems(config) == []
    assert preflight.data_problems(config, needs_schema=False) == [
        "data.class_names is empty: imported TFRecords don't name their classes; set it in "
        "label order (e.g. --set data.class_names=cat,dog)"
    ]


Usage = namedtuple("Usage", "total used free")


def test_a_disk_without_room_for_the_estimate_gets_a_warning(tmp_path, monkeypatch, make_image):
    for i in range(3):
        make_image(tmp_path / "images" / "cat" / f"{i}.png", size=(64, 64))
    config = load_config(
        overrides=[f"data.images={tmp_path / 'images'}", f"runtime.root={tmp_path}"]
    )
    needed = preflight.estimated_run_bytes(config)
    data_bytes = sum(p.stat().st_size for p in (tmp_path / "images" / "cat").iterdir())
    assert needed > 2 * data_bytes + 3 * 59_000_000  # the data twice, three models with heads
    # Each TensorFlow Lite variant is written twice (the step's output, the pushed version).
    without = load_config(
        overrides=[
            f"data.images={tmp_path / 'images'}",
            f"runtime.root={tmp_path}",
            "export.tflite_variants=[]",
        ]
    )
    assert needed - preflight.estimated_run_bytes(without) > 2 * 2 * 59_000_000

    monkeypatch.setattr(shutil, "disk_usage", lambda _: Usage(10**12, 0, needed - 1))
    warning = preflight.disk_warning(config)
    assert warning.startswith(f"warning: {tmp_path} has ") and "Free some room" in warning
    monkeypatch.setattr(shutil, "disk_usage", lambda _: Usage(10**12, 0, needed))
    assert preflight.disk_warning(config) is None
