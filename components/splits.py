"""How a data folder is split into train, eval and (optionally) test: one rule for image folders
and for folders of TFRecord files.

Split sub-folders (`train/`, `eval/`, and `test/` when present) are the splits as they are.
Without them, ExampleGen assigns each image or record to a split by a hash, in the proportions
of data.split_buckets, so the same input always lands in the same split. `data.splits` says
which of the two to use: `auto` lists the folder to find out, `folders` and `hash` decide without
reading it (for data this machine cannot reach, such as a bucket when compiling for Kubeflow).
"""

from __future__ import annotations

import posixpath

import tensorflow as tf
from tfx.proto import example_gen_pb2

SPLIT_FOLDERS = ("train", "eval", "test")
LAYOUTS = ("auto", "folders", "hash")


class SplitLayoutError(ValueError):
    """The data folder's split sub-folders cannot be used as they are; the message says why."""


def split_folders(folder: str, split_buckets: dict[str, int], layout: str = "auto") -> list[str]:
    """The split sub-folders of `folder`: those present (`auto`, which lists it), those named by
    split_buckets' keys (`folders`), or none (`hash`)."""
    if layout == "hash":
        return []
    if layout == "folders":
        return list(split_buckets)
    # tf.io.gfile.isdir answers False, not an error, for a bucket it cannot authenticate to;
    # `auto` would then quietly hash-split a folder that has split sub-folders.
    if not tf.io.gfile.isdir(folder):
        raise SplitLayoutError(
            f"The data folder {folder} does not exist or cannot be listed from this machine; "
            "data.splits=auto lists it to find the splits. Make it readable here, or set "
            "data.splits=folders (train/, eval/... sub-folders) or data.splits=hash."
        )
    return [s for s in SPLIT_FOLDERS if tf.io.gfile.isdir(posixpath.join(folder, s))]


def image_split_configs(
    images_dir: str,
    split_buckets: dict[str, int],
    layout: str = "auto",
    *,
    partition_feature: str = "",
) -> tuple[example_gen_pb2.Input, example_gen_pb2.Output]:
    """Splits of an image folder, whose files sit one level down, in class folders. A hash split
    partitions on `partition_feature` (the image's relative path), not on the whole example."""
    return _split_configs(images_dir, split_buckets, layout, "*/*", partition_feature)


def tfrecord_split_configs(
    tfrecords_dir: str, split_buckets: dict[str, int], layout: str = "auto"
) -> tuple[example_gen_pb2.Input, example_gen_pb2.Output]:
    """Splits of a folder of TFRecord files (in split sub-folders, or directly in it)."""
    return _split_configs(tfrecords_dir, split_buckets, layout, "*", partition_feature="")


def split_names(
    input_config: example_gen_pb2.Input, output_config: example_gen_pb2.Output
) -> list[str]:
    """The names of the splits ExampleGen writes with these configs."""
    if output_config.split_config.splits:
        return [s.name for s in output_config.split_config.splits]
    return [s.name for s in input_config.splits]


def _split_configs(
    folder: str,
    split_buckets: dict[str, int],
    layout: str,
    files: str,
    partition_feature: str,
) -> tuple[example_gen_pb2.Input, example_gen_pb2.Output]:
    present = split_folders(folder, split_buckets, layout)
    if "train" in present and "eval" in present:
        splits = [example_gen_pb2.Input.Split(name=s, pattern=f"{s}/{files}") for s in present]
        return example_gen_pb2.Input(splits=splits), example_gen_pb2.Output()
    if present:
        raise SplitLayoutError(
            f"{folder} has {'/'.join(present)}/ but a split folder layout needs both train/ "
            "and eval/ (test/ optional). Add the missing folder, or move the data out of the "
            "split folder(s) to have the splits made by hash."
        )
    output = example_gen_pb2.Output(
        split_config=example_gen_pb2.SplitConfig(
            splits=[
                example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=buckets)
                for name, buckets in split_buckets.items()
            ],
            partition_feature_name=partition_feature,
        )
    )
    return example_gen_pb2.Input(
        splits=[example_gen_pb2.Input.Split(name="all", pattern=files)]
    ), output
