"""Grad-CAM (Selvaraju et al., 2017): where in the image the last convolution block looked when the
model chose a class. The exported model carries it as its `gradcam` signature (components/
export.py), so it runs in the graph clients call, on the pixels the Transform graph made; the
Scorer draws it over the report's misclassified images.

For class c with logit y_c and the activations A of block5_conv3 (k maps of h x w): each map's
weight is the mean over positions of dy_c/dA_k, and the map is ReLU(sum_k weight_k A_k),
scaled to [0, 1] per image (all zeros when nothing argues for the class).
"""

from __future__ import annotations

import io

import numpy as np
import tensorflow as tf
import tf_keras as keras

LAST_CONV = "block5_conv3"


class GradCam:
    """Grad-CAM of a model built by components.model.build_transfer_model (pixels to
    probabilities, with the layers `vgg_preprocess`, `vgg16` and `head`)."""

    def __init__(self, model: keras.Model):
        self.preprocess = model.get_layer("vgg_preprocess")
        base = model.get_layer("vgg16")
        self.conv = keras.Model(base.input, base.get_layer(LAST_CONV).output)
        self.pool = base.layers[-1]  # block5_pool, the base's output
        head = model.get_layer("head")
        self.output_layer = head.get_layer("probabilities")
        # The head up to its last Dense layer: the logits are that layer without its softmax.
        self.before_output = keras.Model(head.input, self.output_layer.input)

    def __call__(self, pixels: tf.Tensor, class_index: tf.Tensor | None = None) -> dict:
        """{'gradcam': [n, h, w] in [0, 1], 'probabilities', 'class_index'} for uint8 pixels;
        the maps are of class_index (default: the predicted class)."""
        activations = self.conv(self.preprocess(pixels), training=False)
        with tf.GradientTape() as tape:
            tape.watch(activations)
            hidden = self.before_output(self.pool(activations), training=False)
            logits = tf.matmul(tf.cast(hidden, tf.float32), self.output_layer.kernel)
            logits += self.output_layer.bias
            probabilities = tf.nn.softmax(logits)
            if class_index is None:
                class_index = tf.argmax(probabilities, axis=-1)
            score = tf.gather(logits, class_index, batch_dims=1)
        gradients = tf.cast(tape.gradient(score, activations), tf.float32)
        weights = tf.reduce_mean(gradients, axis=[1, 2], keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(weights * tf.cast(activations, tf.float32), axis=-1))
        peak = tf.reduce_max(cam, axis=[1, 2], keepdims=True)
        cam = tf.math.divide_no_nan(cam, peak)
        return {"gradcam": cam, "probabilities": probabilities, "class_index": class_index}


def overlay_png(pixels: np.ndarray, cam: np.ndarray, opacity: float = 0.45) -> bytes:
    """The image with the map drawn over it (matplotlib's `jet`: blue cold, red hot), as PNG."""
    from matplotlib import colormaps
    from PIL import Image

    size = pixels.shape[:2]
    heat = tf.image.resize(cam[..., None], size, method="bilinear").numpy()[..., 0]
    colours = colormaps["jet"](np.clip(heat, 0, 1))[..., :3] * 255
    blended = (1 - opacity) * pixels.astype(np.float32) + opacity * colours
    buffer = io.BytesIO()
    Image.fromarray(np.clip(blended, 0, 255).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()
