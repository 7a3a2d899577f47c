"""The VGG16 transfer model: the base (its weights come from components.base_weights), the head,
and the freeze/unfreeze steps of the recipe."""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf
import tf_keras as keras
from tensorflow.python.autograph.core import config as autograph_config

from components.base_weights import BaseWeights

BLOCKS = ("block1", "block2", "block3", "block4", "block5")


def _skip_autograph_for_tf_keras() -> None:
    """AutoGraph leaves TensorFlow's own modules alone, and Keras' when it was the `keras`
    package, but not `tf_keras`: it re-transpiles about 500 tf_keras functions on the first
    fit of every model, 15 s on a 2-core machine (0.5 s without). tf_keras is written for
    graph mode and needs no conversion, exactly like the `keras` it was forked from."""
    rules = autograph_config.CONVERSION_RULES
    if not any(getattr(rule, "_prefix", None) == "tf_keras" for rule in rules):
        autograph_config.CONVERSION_RULES = (autograph_config.DoNotConvert("tf_keras"), *rules)


_skip_autograph_for_tf_keras()


class VGGPreprocess(keras.layers.Layer):
    """VGG16's own input preprocessing (caffe mode: RGB to BGR, ImageNet means subtracted),
    inside the model so training and every serving path apply it identically."""

    def call(self, pixels: tf.Tensor) -> tf.Tensor:
        return keras.applications.vgg16.preprocess_input(tf.cast(pixels, tf.float32))


def build_head(
    feature_shape: tuple[int, ...], num_classes: int, head: str, units: int, dropout: float
) -> keras.Model:
    """The seed's head (`flatten`) or a lighter global-average-pooling head (`gap`)."""
    inputs = keras.Input(shape=feature_shape, name="features")
    if head == "gap":
        x = keras.layers.GlobalAveragePooling2D(name="head_pool")(inputs)
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    else:
        x = keras.layers.Flatten(name="head_flatten")(inputs)
        x = keras.layers.Dense(units, activation="relu", name="head_dense")(x)
    # float32 output even under mixed precision, for a numerically stable softmax.
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", dtype="float32", name="probabilities"
    )(x)
    return keras.Model(inputs, outputs, name="head")


@dataclass
class TransferModel:
    """The full model (uint8 pixels to class probabilities) and its parts, sharing weights."""

    model: keras.Model
    base: keras.Model
    head: keras.Model
    feature_extractor: keras.Model  # pixels to the frozen base's output


def build_transfer_model(
    image_size: int,
    num_classes: int,
    base_weights: BaseWeights,
    head: str = "flatten",
    head_units: int = 1024,
    dropout: float = 0.5,
) -> TransferModel:
    pixels = keras.Input(shape=(image_size, image_size, 3), dtype=tf.uint8, name="pixels")
    base = keras.applications.VGG16(
        include_top=False, weights=base_weights.keras_arg, input_shape=(image_size, image_size, 3)
    )
    features = base(VGGPreprocess(name="vgg_preprocess")(pixels))
    head_model = build_head(
        tuple(base.output_shape[1:]), num_classes, head=head, units=head_units, dropout=dropout
    )
    model = keras.Model(pixels, head_model(features), name="vgg16_transfer")
    freeze_base(base)
    return TransferModel(
        model=model,
        base=base,
        head=head_model,
        feature_extractor=keras.Model(pixels, features, name="features"),
    )


def freeze_base(base: keras.Model) -> None:
    """Phase 1: only the head learns; the pretrained features stay as they are."""
    base.trainable = False


def unfreeze_top_blocks(base: keras.Model, num_blocks: int) -> list[str]:
    """Phase 2: the top `num_blocks` convolution blocks learn too (block5 first)."""
    top = BLOCKS[len(BLOCKS) - num_blocks :]
    base.trainable = True
    for layer in base.layers:
        layer.trainable = layer.name.startswith(top)
    return [layer.name for layer in base.layers if layer.trainable and layer.weights]


def count_weights(model: keras.Model) -> tuple[int, int]:
    """(trainable, frozen) parameter counts."""
    trainable = sum(int(tf.size(w)) for w in model.trainable_weights)
    frozen = sum(int(tf.size(w)) for w in model.non_trainable_weights)
    return trainable, frozen


def compile_model(model: keras.Model, learning_rate: float) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        # Integer labels: the same loss as categorical cross-entropy on one-hot labels.
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )


def logits_function(model: keras.Model):
    """pixels -> the logits under `model`'s softmax (the last Dense layer, `probabilities`,
    without its activation), for a model build_transfer_model made."""
    head = model.get_layer("head")
    output = head.get_layer("probabilities")
    hidden = keras.Model(head.input, output.input)
    preprocess, base = model.get_layer("vgg_preprocess"), model.get_layer("vgg16")

    def logits(pixels: tf.Tensor) -> tf.Tensor:
        features = hidden(base(preprocess(pixels), training=False), training=False)
        return tf.matmul(tf.cast(features, tf.float32), output.kernel) + output.bias

    return logits


def fold_temperature(model: keras.Model, temperature: float) -> None:
    """softmax(logits / T) from now on: the last layer's kernel and bias divided by T, so every
    graph the model is exported in returns the calibrated probabilities."""
    output = model.get_layer("head").get_layer("probabilities")
    output.kernel.assign(output.kernel / temperature)
    output.bias.assign(output.bias / temperature)
