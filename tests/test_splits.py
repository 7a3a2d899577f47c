"""components/splits.py: one rule for the splits of an image folder and of a TFRecord folder."""

from pathlib import Path

import pytest

from components.splits import (
    SplitLayoutError,
    image_split_configs,
    split_names,
    tfrecord_split_configs,
)

BUCKETS = {"train": 8, "eval": 1, "test": 1}


def make_folders(base: Path, *names: str) -> Path:
    for name in names:
        (base / name).mkdir(parents=True)
    return base


def test_split_folders_are_the_input_splits_of_images(tmp_path):
    for split in ("train", "eval", "test"):
        make_folders(tmp_path / split, "cats", "dogs")
    input_config, output_config = image_split_configs(str(tmp_path), {"train": 8, "eval": 1})
    assert [(s.name, s.pattern) for s in input_config.splits] == [
        ("train", "train/*/*"),
        ("eval", "eval/*/*"),
        ("test", "test/*/*"),
    ]
    assert not output_config.split_config.splits  # the folders split; no hashing
    assert split_names(input_config, output_config) == ["train", "eval", "test"]


def test_split_folders_are_the_input_splits_of_tfrecords(tmp_path):
    make_folders(tmp_path, "train", "eval")
    input_config, output_config = tfrecord_split_configs(str(tmp_path), BUCKETS)
    assert [(s.name, s.pattern) for s in input_config.splits] == [
        ("train", "train/*"),
        ("eval", "eval/*"),
    ]
    assert split_names(input_config, output_config) == ["train", "eval"]


def test_without_split_folders_images_are_hashed_by_their_id(tmp_path):
    make_folders(tmp_path, "cats", "dogs")
    input_config, output_config = image_split_configs(
        str(tmp_path), BUCKETS, partition_feature="image_id"
    )
    assert [(s.name, s.pattern) for s in input_config.splits] == [("all", "*/*")]
    split_config = output_config.split_config
    assert [(s.name, s.hash_buckets) for s in split_config.splits] == list(BUCKETS.items())
    assert split_config.partition_feature_name == "image_id"
    assert split_names(input_config, output_config) == ["train", "eval", "test"]


def test_without_split_folders_tfrecords_are_hashed_whole(tmp_path):
    (tmp_path / "data.tfrecord").write_bytes(b"")
    input_config, output_config = tfrecord_split_configs(str(tmp_path), BUCKETS)
    assert [(s.name, s.pattern) for s in input_config.splits] == [("all", "*")]
    assert output_config.split_config.partition_feature_name == ""  # the whole record


@pytest.mark.parametrize("configs", [image_split_configs, tfrecord_split_configs])
@pytest.mark.parametrize("present, missing", [("train", "eval"), ("eval", "train")])
def test_one_split_folder_alone_is_an_error(tmp_path, configs, present, missing):
    make_folders(tmp_path / present, "cats", "dogs")
    make_folders(tmp_path, "birds")  # a class folder beside it does not help
    with pytest.raises(SplitLayoutError) as error:
        configs(str(tmp_path), {"train": 8, "eval": 1})
    message = str(error.value)
    assert f"has {present}/ but" in message
    assert f"{missing}/" in message


def test_folders_and_hash_layouts_do_not_read_the_folder(tmp_path):
    unreachable = str(tmp_path / "not-here")  # a bucket this machine cannot list, say
    input_config, _ = image_split_configs(unreachable, {"train": 8, "eval": 1}, "folders")
    assert [s.pattern for s in input_config.splits] == ["train/*/*", "eval/*/*"]
    input_config, output_config = tfrecord_split_configs(unreachable, BUCKETS, "hash")
    assert split_names(input_config, output_config) == ["train", "eval", "test"]


def test_auto_says_what_to_do_when_the_folder_cannot_be_listed(tmp_path):
    with pytest.raises(SplitLayoutError, match="data.splits=folders .* or data.splits=hash"):
        image_split_configs(str(tmp_path / "not-here"), BUCKETS)


def test_the_pipeline_refuses_a_lone_split_folder_before_anything_runs(tmp_path):
    from pipeline.config import ConfigError, load_config
    from pipeline.pipeline import create_pipeline

    make_folders(tmp_path / "images" / "train", "animals", "food")
    config = load_config(
        overrides=[f"runtime.root={tmp_path / 'run'}", f"data.images={tmp_path / 'images'}"]
    )
    with pytest.raises(ConfigError, match="has train/ but a split folder layout needs both"):
        create_pipeline(config)
    assert not (tmp_path / "run").exists()
