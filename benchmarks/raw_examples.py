"""Examples as ExampleGen writes them, and what the Trainer reads them through, for benchmarks
that time the Trainer's input without running the pipeline."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from components import preprocessing, trainer
from components.settings import TransformConfig

IMAGE_KEY, LABEL_KEY = "image", "label"


class PreprocessingGraph:
    """Stands in for TFTransformOutput in `trainer.read_examples`: the raw feature spec and the
    function the Transform graph holds (`preprocessing_fn`), called directly instead of loaded
    from a SavedModel, so no Beam run is needed."""

    def __init__(self, image_size: int, resize: str = "crop"):
        self.config = preprocessing.transform_custom_config(
            TransformConfig(image_size=image_size, resize=resize), IMAGE_KEY, LABEL_KEY
        )

    def raw_feature_spec(self) -> dict:
        return {
            IMAGE_KEY: tf.io.FixedLenFeature([1], tf.string),
            LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64),
        }

    def transform_features_layer(self):
        return lambda features: preprocessing.preprocessing_fn(features, self.config)


def trainer_input(path: str, image_size: int) -> tf.data.Dataset:
    """The Trainer's input over a file `write_examples` wrote: (uint8 pixels, label), unbatched."""
    graph = PreprocessingGraph(image_size)
    return trainer.read_examples([path], graph, image_size, IMAGE_KEY, LABEL_KEY)


def write_examples(encoded_images: list[bytes], labels: list[int], path: str) -> None:
    """A GZIP TFRecord file of tf.Examples holding the encoded image and its label."""
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    with tf.io.TFRecordWriter(path, options) as writer:
        for image, label in zip(encoded_images, labels, strict=True):
            feature = {
                IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
                LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
            }
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())


def png_bytes(pixels: np.ndarray) -> list[bytes]:
    """uint8 [N, H, W, 3] images, each encoded as PNG."""
    return [tf.io.encode_png(image).numpy() for image in pixels]
