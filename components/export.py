"""Exports the trained model as a SavedModel whose signatures carry the tf.Transform graph, so
every serving path applies exactly the training preprocessing."""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf
import tf_keras as keras

from components.contract import MODEL_METADATA_FILE
from components.gradcam import GradCam
from components.preprocessing import PIXELS_KEY, decode_pixels

EXAMPLES_SIGNATURE = "serving_default"
IMAGES_SIGNATURE = "serving_images"
TRANSFORM_SIGNATURE = "transform_features"
GRADCAM_SIGNATURE = "gradcam"
PIXELS_SIGNATURE = "serving_pixels"  # decoded pixels in: what TensorFlow Lite is converted from


def _predictions(model: keras.Model, class_names: tf.Tensor, pixels: tf.Tensor) -> dict:
    probabilities = model(pixels, training=False)
    class_index = tf.argmax(probabilities, axis=-1)
    return {
        "probabilities": probabilities,
        "class_index": class_index,
        "class_name": tf.gather(class_names, class_index),
    }


def make_signatures(
    model: keras.Model,
    tf_transform_output,
    class_names: list[str],
    image_size: int,
    raw_image_key: str,
) -> dict[str, Any]:
    """serving_default (tf.Examples whose encoded image is the feature `raw_image_key`, the
    training examples' data.image_feature), serving_images (encoded image bytes, whatever the
    feature is called), transform_features, gradcam (components/gradcam.py). The feature name
    travels with the model: `loaded.image_feature` and model_metadata.json's `image_feature`."""
    model.tft_layer = tf_transform_output.transform_features_layer()
    model.class_names = tf.Variable(class_names, trainable=False, name="class_names")
    model.image_feature = tf.Variable(raw_image_key, trainable=False, name="image_feature")
    raw_spec = tf_transform_output.raw_feature_spec()
    # Clients send the image alone: the label, ids and sizes are not needed to predict.
    serving_spec = {raw_image_key: raw_spec[raw_image_key]}

    def from_transformed(transformed: dict) -> dict:
        pixels = decode_pixels(transformed[PIXELS_KEY], image_size)
        return _predictions(model, model.class_names, pixels)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(serialized):
        return from_transformed(model.tft_layer(tf.io.parse_example(serialized, serving_spec)))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")])
    def serve_images(image_bytes):
        return from_transformed(model.tft_layer({raw_image_key: tf.reshape(image_bytes, [-1, 1])}))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(serialized):
        return model.tft_layer(tf.io.parse_example(serialized, raw_spec))

    gradcam = GradCam(model)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def gradcam_examples(serialized):
        transformed = model.tft_layer(tf.io.parse_example(serialized, serving_spec))
        pixels = decode_pixels(transformed[PIXELS_KEY], image_size)
        return {**gradcam(pixels), "pixels": pixels}

    # The model's layers on float pixels (its input is uint8): no casts for TensorFlow Lite.
    preprocess, base, head = (model.get_layer(n) for n in ("vgg_preprocess", "vgg16", "head"))

    @tf.function(
        input_signature=[tf.TensorSpec([None, image_size, image_size, 3], tf.float32, "pixels")]
    )
    def serve_pixels(pixels):
        return {"probabilities": head(base(preprocess(pixels), training=False), training=False)}

    return {
        EXAMPLES_SIGNATURE: serve_examples,
        IMAGES_SIGNATURE: serve_images,
        TRANSFORM_SIGNATURE: transform_features,
        GRADCAM_SIGNATURE: gradcam_examples,
        PIXELS_SIGNATURE: serve_pixels,
    }


def export_model(
    model: keras.Model,
    tf_transform_output,
    class_names: list[str],
    image_size: int,
    export_dir: str,
    metadata: dict[str, Any],
    raw_image_key: str,
) -> None:
    signatures = make_signatures(
        model,
        tf_transform_output,
        class_names=class_names,
        image_size=image_size,
        raw_image_key=raw_image_key,
    )
    tf.saved_model.save(model, export_dir, signatures=signatures)
    path = os.path.join(export_dir, MODEL_METADATA_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump({**metadata, **signature_metadata(raw_image_key)}, f, indent=2)


def signature_metadata(raw_image_key: str) -> dict[str, Any]:
    """What a client sends to each serving signature, for model_metadata.json."""
    return {
        "image_feature": raw_image_key,
        "signatures": {
            EXAMPLES_SIGNATURE: f"examples: serialized tf.Examples with the encoded image in "
            f"the bytes feature {raw_image_key!r}",
            IMAGES_SIGNATURE: "images: encoded image bytes (JPEG, PNG, GIF, BMP)",
            TRANSFORM_SIGNATURE: "examples: serialized tf.Examples; returns the transformed "
            "features",
            PIXELS_SIGNATURE: "pixels: float32 [n, size, size, 3], RGB 0-255, decoded and "
            "resized as the transform_features signature does; returns the probabilities (the "
            "TensorFlow Lite variants are converted from it)",
            GRADCAM_SIGNATURE: "examples: as serving_default; returns the Grad-CAM map of the "
            "predicted class (block5_conv3, [n, h, w] in [0, 1]), the probabilities, the class "
            "index and the pixels the model saw",
        },
    }


def read_model_metadata(export_dir: str) -> dict[str, Any]:
    with tf.io.gfile.GFile(os.path.join(export_dir, MODEL_METADATA_FILE)) as f:
        return json.load(f)
