"""tf.Transform preprocessing: encoded image bytes to fixed-size uint8 pixels, shared by training
and serving (the Trainer embeds this graph in the exported model)."""

from __future__ import annotations

import dataclasses
from typing import Any

import tensorflow as tf

from components.options import background_rgb, checked_section
from components.settings import DEFAULT_BACKGROUND, TransformConfig

# The transformed features. The raw ones (ExampleGen's) are named by custom_config's raw_image_key
# and raw_label_key; "_xf" marks a transformed feature, as in TFX's own examples.
PIXELS_KEY = "pixels"  # a serialized uint8 [size, size, 3] tensor
TRANSFORMED_LABEL_KEY = "label_xf"  # the label, int64


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def composite_over(rgba: tf.Tensor, background: tuple[int, int, int]) -> tf.Tensor:
    """uint8 RGBA over an opaque background colour: alpha 0 gives the background whatever RGB
    the file stores there, alpha 255 the pixel, values between blend linearly. Rounded uint8."""
    rgba = tf.cast(rgba, tf.float32)
    alpha = rgba[..., 3:] / 255.0
    colour = tf.constant(background, tf.float32)
    blended = rgba[..., :3] * alpha + colour * (1.0 - alpha)
    return tf.cast(tf.round(blended), tf.uint8)


def decode_image(
    image_bytes: tf.Tensor, background: tuple[int, int, int] = DEFAULT_BACKGROUND
) -> tf.Tensor:
    """Any supported format to uint8 RGB: grey is repeated, a GIF's first frame. A PNG is read
    with its alpha (RGBA, grey+alpha, palette with a transparent index) and composited over
    `background`, so the colours a file keeps under transparent pixels never reach the model.
    GIFs with a transparent colour and BMPs with alpha are refused before this point
    (components/image_checks.py): TensorFlow cannot read their transparency."""
    is_png = tf.equal(tf.strings.substr(image_bytes, 0, len(PNG_SIGNATURE)), PNG_SIGNATURE)
    image = tf.cond(
        is_png,
        lambda: composite_over(tf.io.decode_png(image_bytes, channels=4), background),
        lambda: tf.io.decode_image(image_bytes, channels=3, expand_animations=False),
    )
    image.set_shape([None, None, 3])
    return image


def resize_image(
    image: tf.Tensor, size: int, policy: str, background: tuple[int, int, int] = DEFAULT_BACKGROUND
) -> tf.Tensor:
    """Resizes to size x size. `crop`: scale the shorter side to `size`, then cut the centre
    (no distortion; loses the edges of long images). `pad`: fit the longer side and pad with
    `background` (keeps the whole image), the colour transparent pixels are composited over."""
    image = tf.cast(image, tf.float32)
    if policy == "pad":
        # resize_with_pad pads with 0: pad the difference to the background, then add it back
        # (resizing is linear, so the image itself comes out as resize_with_pad gives it).
        colour = tf.constant(background, tf.float32)
        resized = tf.image.resize_with_pad(image - colour, size, size, antialias=True) + colour
    else:
        shape = tf.cast(tf.shape(image)[:2], tf.float32)
        scale = size / tf.reduce_min(shape)
        new_shape = tf.cast(tf.math.ceil(shape * scale), tf.int32)
        new_shape = tf.maximum(new_shape, size)  # guard against float round-down
        resized = tf.image.resize(image, new_shape, antialias=True)
        top = (new_shape[0] - size) // 2
        left = (new_shape[1] - size) // 2
        resized = resized[top : top + size, left : left + size, :]
    resized = tf.ensure_shape(resized, [size, size, 3])
    return tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8)


def encode_pixels(pixels: tf.Tensor) -> tf.Tensor:
    """A batch of uint8 images to one compact string each (H*W*3 bytes plus a small header)."""
    return tf.map_fn(tf.io.serialize_tensor, pixels, fn_output_signature=tf.string)


def decode_pixels(encoded: tf.Tensor, size: int) -> tf.Tensor:
    """The inverse of encode_pixels, used by the training input and every serving signature."""
    encoded = tf.reshape(encoded, [-1])
    pixels = tf.map_fn(
        lambda s: tf.io.parse_tensor(s, tf.uint8),
        encoded,
        fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8),
    )
    return tf.ensure_shape(pixels, [None, size, size, 3])


def images_to_pixels(
    image_bytes: tf.Tensor,
    size: int,
    policy: str,
    background: tuple[int, int, int] = DEFAULT_BACKGROUND,
) -> tf.Tensor:
    """A batch of encoded images to a [batch, size, size, 3] uint8 tensor."""
    return tf.map_fn(
        lambda b: resize_image(decode_image(b, background), size, policy, background),
        tf.reshape(image_bytes, [-1]),
        fn_output_signature=tf.TensorSpec([size, size, 3], tf.uint8),
    )


def transform_custom_config(
    transform: TransformConfig, raw_image_key: str, raw_label_key: str
) -> dict[str, Any]:
    """What the pipeline hands the Transform step: the transform section whole, and the raw
    examples' image and label features."""
    return {
        "transform": dataclasses.asdict(transform),
        "raw_image_key": raw_image_key,
        "raw_label_key": raw_label_key,
    }


def preprocessing_fn(inputs: dict[str, tf.Tensor], custom_config: dict[str, Any]) -> dict:
    """The tf.Transform entry point (referenced by import path from the pipeline), on the
    custom_config `transform_custom_config` makes; the section is checked again here."""
    settings = checked_section(TransformConfig, "transform", custom_config["transform"])
    pixels = images_to_pixels(
        inputs[custom_config["raw_image_key"]],
        size=settings.image_size,
        policy=settings.resize,
        background=background_rgb(settings.background),
    )
    outputs = {PIXELS_KEY: encode_pixels(pixels)}
    raw_label_key = custom_config["raw_label_key"]
    if raw_label_key in inputs:
        outputs[TRANSFORMED_LABEL_KEY] = tf.cast(tf.reshape(inputs[raw_label_key], [-1]), tf.int64)
    return outputs
