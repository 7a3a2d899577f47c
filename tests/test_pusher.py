"""Publishing a model into TF Serving's layout: atomic, never reusing a version."""

from pathlib import Path

import pytest

from components.pusher import existing_versions, next_version, publish_model


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
