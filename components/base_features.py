"""The frozen base's features: computed once per image for phase 1 (the feature cache the head
trains on), and averaged over positions into FeatureTables for the data findings
(components/data_findings.py)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras

from components.data_findings import FeatureTable


def cache_base_features(
    feature_extractor: keras.Model,
    images: tf.data.Dataset,
    batch_size: int,
    cache_file: str,
    table: FeatureTableBuilder | None = None,
) -> tf.data.Dataset:
    """The frozen base's outputs, computed once and read from cache_file afterwards; `table`
    (for images read with their paths) collects them averaged over positions, for the data
    findings. The base runs here, outside tf.data: a `Dataset.map` function always runs on the
    CPU, so mapping the network over the images would leave a GPU idle through the costliest
    pass."""
    extract = _compiled(feature_extractor)
    specs = None  # of one batch of features and labels, taken from the first
    with tf.io.TFRecordWriter(cache_file) as writer:
        for pixels, labels, *paths in images.batch(batch_size).prefetch(tf.data.AUTOTUNE):
            features = extract(pixels)
            specs = specs or [
                tf.TensorSpec([None, *t.shape[1:]], t.dtype) for t in (features, labels)
            ]
            writer.write(_features_record(features, labels))
            if table is not None:
                table.add(features, labels, *paths)
    if specs is None:
        raise ValueError("No examples to compute the base's features of.")

    def parse(record: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        batch = tf.io.parse_single_example(record, _FEATURES_SPEC)
        return tuple(
            tf.ensure_shape(tf.io.parse_tensor(batch[key], spec.dtype), spec.shape)
            for key, spec in zip(("features", "labels"), specs, strict=True)
        )

    return tf.data.TFRecordDataset(cache_file).map(parse).unbatch()


def _compiled(feature_extractor: keras.Model):
    """The frozen base as one traced function (training off), for its passes over a split."""
    return tf.function(
        lambda pixels: feature_extractor(pixels, training=False), reduce_retracing=True
    )


class FeatureTableBuilder:
    """Collects one split's base features, averaged over positions, with labels and paths."""

    def __init__(self, split: str):
        self.split = split
        self.features, self.labels, self.paths = [], [], []

    def add(self, features: tf.Tensor, labels: tf.Tensor, paths: tf.Tensor) -> None:
        pooled = tf.reduce_mean(tf.cast(features, tf.float32), axis=[1, 2])
        self.features.append(pooled.numpy())
        self.labels.append(labels.numpy())
        self.paths += [p.decode() for p in paths.numpy()]

    def table(self) -> FeatureTable:
        return FeatureTable(
            self.split,
            np.concatenate(self.features) if self.features else np.zeros((0, 0), np.float32),
            np.concatenate(self.labels) if self.labels else np.zeros(0, np.int64),
            self.paths,
        )


def base_feature_table(
    feature_extractor: keras.Model, images: tf.data.Dataset, batch_size: int, split: str
) -> FeatureTable:
    """One split's FeatureTable from a pass of the frozen base (when there is no cache)."""
    extract = _compiled(feature_extractor)
    builder = FeatureTableBuilder(split)
    for pixels, labels, paths in images.batch(batch_size).prefetch(tf.data.AUTOTUNE):
        builder.add(extract(pixels), labels, paths)
    return builder.table()


_FEATURES_SPEC = {
    "features": tf.io.FixedLenFeature([], tf.string),
    "labels": tf.io.FixedLenFeature([], tf.string),
}


def _features_record(features: tf.Tensor, labels: tf.Tensor) -> bytes:
    """One batch of cached features and their labels, as serialized tensors."""
    feature = {
        key: tf.train.Feature(
            bytes_list=tf.train.BytesList(value=[tf.io.serialize_tensor(tensor).numpy()])
        )
        for key, tensor in (("features", features), ("labels", labels))
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
