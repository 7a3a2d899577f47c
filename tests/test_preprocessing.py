"""The tf.Transform preprocessing: any image format to fixed-size uint8 RGB pixels, the two
resize policies, the compact pixel encoding, and preprocessing_fn's outputs."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components import preprocessing
from components.settings import TransformConfig

FORMATS = {
    "grey.png": {"mode": "L"},
    "rgba.png": {"mode": "RGBA"},
    "rgb.jpg": {"mode": "RGB"},
    "palette_animated.gif": {"mode": "P", "frames": 3},
    "sixteen_bit.png": {"mode": "I;16"},
}

RED, GREEN, BLUE = (220, 20, 20), (20, 200, 40), (30, 40, 220)


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def three_bands(width: int = 120, height: int = 40) -> bytes:
    """A wide image: red left third, green centre third, blue right third (PNG bytes)."""
    pixels = np.zeros((height, width, 3), np.uint8)
    third = width // 3
    pixels[:, :third] = RED
    pixels[:, third : 2 * third] = GREEN
    pixels[:, 2 * third :] = BLUE
    return encoded(Image.fromarray(pixels, "RGB"))


@pytest.fixture
def format_bytes(image_dir, make_image) -> tf.Tensor:
    """One file per format (different sizes, none square), as a [N] string tensor."""
    files = [
        make_image(image_dir / name, size=(40 + 7 * i, 30 + 5 * i), **options)
        for i, (name, options) in enumerate(FORMATS.items())
    ]
    return tf.constant([path.read_bytes() for path in files])


def test_sixteen_bit_fixture_really_is_sixteen_bit(format_bytes):
    # Guards the format test below: the 16-bit case must not silently be 8-bit.
    image = Image.open(io.BytesIO(format_bytes.numpy()[list(FORMATS).index("sixteen_bit.png")]))
    assert image.mode.startswith("I")


@pytest.mark.parametrize("policy", ["crop", "pad"])
@pytest.mark.parametrize("size", [32, 48])
def test_every_format_becomes_uint8_rgb_of_the_requested_size(format_bytes, size, policy):
    pixels = preprocessing.images_to_pixels(format_bytes, size, policy)

    assert pixels.dtype == tf.uint8
    assert pixels.shape == (len(FORMATS), size, size, 3)
    # Not all black: the decoded content made it through for every format.
    assert all(np.asarray(image).max() > 0 for image in pixels)


def test_greyscale_is_repeated_over_the_three_channels(format_bytes):
    grey = format_bytes[list(FORMATS).index("grey.png")][None]
    pixels = preprocessing.images_to_pixels(grey, 32, "crop").numpy()[0]

    np.testing.assert_array_equal(pixels[..., 0], pixels[..., 1])
    np.testing.assert_array_equal(pixels[..., 0], pixels[..., 2])


def colour_fraction(pixels: np.ndarray, colour: tuple[int, int, int], tol: int = 30) -> float:
    close = np.all(np.abs(pixels.astype(int) - colour) <= tol, axis=-1)
    return float(close.mean())


def test_crop_keeps_the_centre_and_drops_the_edges():
    pixels = preprocessing.images_to_pixels(tf.constant([three_bands()]), 32, "crop").numpy()[0]

    assert colour_fraction(pixels, GREEN) > 0.9
    assert colour_fraction(pixels, RED) == 0.0
    assert colour_fraction(pixels, BLUE) == 0.0
    assert pixels.min() > 0  # no black padding


@pytest.mark.parametrize("background", [(255, 255, 255), (0, 0, 0), (12, 200, 99)])
def test_pad_keeps_the_whole_image_with_background_rows_top_and_bottom(background):
    pixels = preprocessing.images_to_pixels(
        tf.constant([three_bands()]), 32, "pad", background
    ).numpy()[0]

    # 120x40 fitted into 32x32 is about 32x11: the rest is the background (transform.background,
    # the colour transparent pixels are composited over), split top and bottom.
    padded_rows = np.all(pixels == background, axis=(1, 2))
    assert padded_rows[:8].all() and padded_rows[-8:].all()
    assert not padded_rows[14:18].any()
    middle = pixels[16]
    assert colour_fraction(middle[:8], RED) == 1.0  # the edges survive
    assert colour_fraction(middle[-8:], BLUE) == 1.0
    assert colour_fraction(middle[13:19], GREEN) == 1.0


@pytest.mark.parametrize("size", [32, 224])
def test_encode_decode_round_trip_is_exact_and_compact(size):
    rng = np.random.default_rng(size)
    pixels = tf.constant(rng.integers(0, 256, (3, size, size, 3), dtype=np.uint8))

    strings = preprocessing.encode_pixels(pixels)
    decoded = preprocessing.decode_pixels(strings, size)

    assert strings.dtype == tf.string and strings.shape == (3,)
    np.testing.assert_array_equal(decoded.numpy(), pixels.numpy())
    assert decoded.dtype == tf.uint8
    raw_bytes = size * size * 3
    assert all(len(s) <= 1.1 * raw_bytes for s in strings.numpy())


def test_decode_pixels_accepts_the_transformed_column_shape():
    # The transformed feature may come back as [N, 1] (e.g. from a parsed tf.Example).
    pixels = tf.zeros([2, 32, 32, 3], tf.uint8)
    strings = tf.reshape(preprocessing.encode_pixels(pixels), [2, 1])
    assert preprocessing.decode_pixels(strings, 32).shape == (2, 32, 32, 3)


CONFIG = preprocessing.transform_custom_config(
    TransformConfig(image_size=32, resize="crop"), "image", "label"
)


def test_preprocessing_fn_outputs_pixels_and_label(format_bytes):
    inputs = {
        "image": tf.reshape(format_bytes, [-1, 1]),
        "label": tf.constant([[0], [1], [2], [3], [4]], tf.int64),
    }

    outputs = preprocessing.preprocessing_fn(inputs, CONFIG)

    assert set(outputs) == {preprocessing.PIXELS_KEY, preprocessing.TRANSFORMED_LABEL_KEY}
    assert outputs["pixels"].dtype == tf.string
    decoded = preprocessing.decode_pixels(outputs["pixels"], 32)
    assert decoded.shape == (5, 32, 32, 3)
    expected = preprocessing.images_to_pixels(format_bytes, 32, "crop")
    np.testing.assert_array_equal(decoded.numpy(), expected.numpy())
    assert outputs[preprocessing.TRANSFORMED_LABEL_KEY].dtype == tf.int64
    assert outputs[preprocessing.TRANSFORMED_LABEL_KEY].shape == (5,)
    assert outputs[preprocessing.TRANSFORMED_LABEL_KEY].numpy().tolist() == [0, 1, 2, 3, 4]


def test_preprocessing_fn_without_label_returns_only_pixels(format_bytes):
    outputs = preprocessing.preprocessing_fn({"image": tf.reshape(format_bytes, [-1, 1])}, CONFIG)

    assert set(outputs) == {preprocessing.PIXELS_KEY}
    assert preprocessing.decode_pixels(outputs["pixels"], 32).shape == (5, 32, 32, 3)
