"""Publishing a model into TF Serving's layout: atomic, never reusing a version, checked
against the model's files, and smoke-tested in a fresh process first."""

import base64
import json
import shutil
from pathlib import Path

import pytest
from conftest import tree_digest

from components.model_files import damaged_files, file_checksums, fingerprint, read_push_record
from components.pusher import PushError, existing_versions, next_version, publish_model
from components.smoke_test import check_model, run_smoke_test


def _model(folder: Path) -> Path:
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"graph")
    (folder / "variables" / "variables.index").write_bytes(b"index")
    return folder


def test_publish_copies_into_a_numbered_version_and_leaves_no_staging(tmp_path):
    serving = tmp_path / "serving"
    path, version = publish_model(str(_model(tmp_path / "model")), str(serving))
    assert Path(path) == serving / version
    assert (serving / version / "saved_model.pb").read_bytes() == b"graph"
    assert (serving / version / "variables" / "variables.index").read_bytes() == b"index"
    assert [p.name for p in serving.iterdir()] == [version]  # no hidden staging folder left


def test_versions_only_go_up(tmp_path):
    serving = tmp_path / "serving"
    (serving / "99999999999").mkdir(parents=True)  # a version from the future
    (serving / "notes").mkdir()
    assert existing_versions(str(serving)) == [99999999999]
    assert next_version(str(serving)) == 100000000000
    _, version = publish_model(str(_model(tmp_path / "model")), str(serving))
    assert version == "100000000000"


def test_a_failed_copy_leaves_the_serving_folder_as_it_was(tmp_path, monkeypatch):
    serving = tmp_path / "serving"
    publish_model(str(_model(tmp_path / "model")), str(serving))
    before = sorted(p.name for p in serving.iterdir())

    def broken_copy(source, destination):
        Path(destination).mkdir(parents=True)
        (Path(destination) / "saved_model.pb").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr("components.pusher.io_utils.copy_dir", broken_copy)
    with pytest.raises(OSError, match="disk full"):
        publish_model(str(tmp_path / "model"), str(serving))
    assert sorted(p.name for p in serving.iterdir()) == before


def test_the_published_copy_carries_a_push_record_that_finds_damage(tmp_path):
    serving = tmp_path / "serving"
    path, version = publish_model(
        str(_model(tmp_path / "model")), str(serving), {"run_id": "r1", "model_artifact_id": 7}
    )
    record = read_push_record(path)
    assert record["run_id"] == "r1" and record["model_artifact_id"] == 7
    assert record["version"] == version
    assert record["files"] == file_checksums(str(tmp_path / "model"))
    assert record["fingerprint"] == fingerprint(record["files"])
    assert damaged_files(path) == []
    (Path(path) / "variables" / "variables.index").write_bytes(b"changed")
    (Path(path) / "saved_model.pb").unlink()
    assert damaged_files(path) == [
        "saved_model.pb: missing",
        "variables/variables.index: contents changed (sha256 "
        + file_checksums(path)["variables/variables.index"][:12]
        + "..., expected "
        + record["files"]["variables/variables.index"][:12]
        + "...)",
    ]


def test_a_copy_that_differs_from_the_model_is_not_published(tmp_path, monkeypatch):
    serving = tmp_path / "serving"
    publish_model(str(_model(tmp_path / "model")), str(serving))
    before = tree_digest(serving)

    def corrupting_copy(source, destination):
        shutil.copytree(source, destination)
        (Path(destination) / "saved_model.pb").write_bytes(b"grapH")  # one flipped byte

    monkeypatch.setattr("components.pusher.io_utils.copy_dir", corrupting_copy)
    with pytest.raises(PushError, match="saved_model.pb: contents changed"):
        publish_model(str(tmp_path / "model"), str(serving))
    assert tree_digest(serving) == before


CLASSES = ["cat", "dog"]


def _served_model(folder: Path, total: float = 1.0, with_images: bool = True) -> str:
    """A tiny SavedModel with the pipeline's two serving signatures: every input gets the
    probabilities [0.25, 0.75] * total (total != 1 makes a broken model)."""
    import tensorflow as tf

    module = tf.Module()
    module.class_names = tf.Variable(CLASSES)

    def answer(inputs):
        probabilities = tf.tile([[0.25 * total, 0.75 * total]], [tf.shape(inputs)[0], 1])
        names = tf.gather(module.class_names, tf.argmax(probabilities, axis=1))
        return {"probabilities": probabilities, "class_name": names}

    examples = tf.function(
        answer, input_signature=[tf.TensorSpec([None], tf.string, name="examples")]
    )
    signatures = {"serving_default": examples.get_concrete_function()}
    if with_images:
        images = tf.function(
            answer, input_signature=[tf.TensorSpec([None], tf.string, name="images")]
        )
        signatures["serving_images"] = images.get_concrete_function()
    tf.saved_model.save(module, str(folder), signatures=signatures)
    return str(folder)


def _sample(path: Path, n: int = 3) -> dict:
    sample = {
        "class_names": CLASSES,
        "signatures": ["serving_default", "serving_images"],
        "examples": [base64.b64encode(b"example").decode()] * n,
        "images": [base64.b64encode(b"image").decode()] * n,
        "probabilities": [[0.25, 0.75]] * n,
    }
    path.write_text(json.dumps(sample))
    return sample


def test_the_smoke_test_passes_a_model_that_answers_as_judged(tmp_path):
    assert check_model(_served_model(tmp_path / "good"), _sample(tmp_path / "s.json")) == []


def test_the_smoke_test_refuses_broken_signatures(tmp_path):
    sample = _sample(tmp_path / "s.json")
    problems = check_model(_served_model(tmp_path / "half", total=0.5), sample)
    assert "serving_default's probabilities do not sum to 1 (sums [0.5 0.5 0.5])" in problems
    assert any("disagrees with the predictions the model was judged on" in p for p in problems)
    problems = check_model(_served_model(tmp_path / "no-images", with_images=False), sample)
    assert problems == ["the SavedModel has no serving_images signature"]
    other = {**sample, "class_names": ["cat", "cow"]}
    problems = check_model(_served_model(tmp_path / "good"), other)
    assert "the model's class names ['cat', 'dog'] are not ['cat', 'cow']" in problems


def test_the_smoke_test_runs_in_a_fresh_process_and_reports_why(tmp_path):
    _sample(tmp_path / "s.json")
    model = _served_model(tmp_path / "half", total=0.5)
    problems, seconds = run_smoke_test(model, str(tmp_path / "s.json"))
    assert "serving_images's probabilities do not sum to 1 (sums [0.5 0.5 0.5])" in problems
    assert seconds > 0
    (tmp_path / "empty").mkdir()
    problems, _ = run_smoke_test(str(tmp_path / "empty"), str(tmp_path / "s.json"))
    assert problems[0].startswith(f"the SavedModel at {tmp_path / 'empty'} does not load")
