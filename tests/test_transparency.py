"""Transparent pixels reach the model as transform.background, whatever colour the file keeps
under them: in the Transform graph (training, Evaluator) and in every serving signature."""

import io
from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
import tf_keras as keras
from PIL import Image
from tensorflow_transform.tf_metadata import dataset_metadata

from components import export, image_checks, preprocessing
from components import model as model_lib
from components.options import background_rgb
from components.settings import TransformConfig
from pipeline.config import ConfigError, load_config
from pipeline.predict import PredictError, read_images

SIZE = 32
CLASS_NAMES = ["a", "b"]
CONFIG = preprocessing.transform_custom_config(
    TransformConfig(image_size=SIZE, resize="crop", background="white"), "image", "label"
)


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def cut_out(hidden: str) -> bytes:
    """A 40x40 RGBA PNG: a fixed opaque square in the middle, fully transparent around it, and
    under the transparent pixels `hidden`: black, white or random colours."""
    rng = np.random.default_rng(3)
    pixels = {
        "black": np.zeros((40, 40, 3), np.uint8),
        "white": np.full((40, 40, 3), 255, np.uint8),
        "random": rng.integers(0, 256, (40, 40, 3), dtype=np.uint8),
    }[hidden]
    alpha = np.zeros((40, 40, 1), np.uint8)
    pixels[10:30, 10:30] = (30, 140, 70)
    alpha[10:30, 10:30] = 255
    return png(Image.fromarray(np.concatenate([pixels, alpha], axis=-1), "RGBA"))


CUT_OUTS = [cut_out(hidden) for hidden in ("black", "white", "random")]


def pixels_of(images: list[bytes], background=(255, 255, 255)) -> np.ndarray:
    return preprocessing.images_to_pixels(tf.constant(images), SIZE, "crop", background).numpy()


def test_colours_under_transparent_pixels_do_not_reach_the_pixels():
    black, white, random = pixels_of(CUT_OUTS)
    np.testing.assert_array_equal(black, white)
    np.testing.assert_array_equal(black, random)
    assert tuple(black[0, 0]) == (255, 255, 255)  # a corner: transparent, so the background
    assert tuple(black[SIZE // 2, SIZE // 2]) == (30, 140, 70)  # the opaque square as it is


def test_the_background_is_the_configured_colour():
    grey = pixels_of(CUT_OUTS, background_rgb("#808080"))
    assert tuple(grey[0][0, 0]) == (128, 128, 128)
    assert tuple(pixels_of(CUT_OUTS[:1], background_rgb("black"))[0][0, 0]) == (0, 0, 0)


def test_half_transparent_pixels_blend_with_the_background():
    """(200, 0, 0) at alpha 128 over white: 200 * 128/255 + 255 * 127/255 = 227.4 -> 227."""
    half = png(Image.new("RGBA", (40, 40), (200, 0, 0, 128)))
    assert tuple(pixels_of([half])[0][5, 5]) == (227, 127, 127)
    assert tuple(pixels_of([half], (0, 0, 0))[0][5, 5]) == (100, 0, 0)


def test_grey_with_alpha_and_a_palette_with_a_transparent_index_are_composited():
    grey = np.zeros((40, 40, 2), np.uint8)  # grey 0 everywhere, alpha 0 on the left half
    grey[:, 20:, 1] = 255
    la = png(Image.fromarray(grey, "LA"))
    palette = Image.new("P", (40, 40), 1)
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.paste(0, (0, 0, 20, 40))  # index 0 (red, transparent) on the left half
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG", transparency=0)
    la_pixels, palette_pixels = pixels_of([la, buffer.getvalue()])
    assert tuple(la_pixels[5, 2]) == (255, 255, 255) and tuple(la_pixels[5, -3]) == (0, 0, 0)
    assert tuple(palette_pixels[5, 2]) == (255, 255, 255)  # not the red kept under it
    assert tuple(palette_pixels[5, -3]) == (0, 0, 255)


def test_the_ingestion_check_decodes_as_the_transform_graph_does(make_image, image_dir):
    """image_checks decodes outside the graph (for speed); the pixels must be the graph's."""
    half = png(Image.new("RGBA", (40, 40), (200, 0, 0, 128)))
    files = [
        make_image(image_dir / f"{mode}.{ext}", mode, (40, 48))
        for ext, mode in [
            ("jpg", "RGB"),
            ("png", "RGBA"),
            ("png", "LA"),
            ("gif", "P"),
            ("bmp", "RGB"),
        ]
    ]
    for data in [*CUT_OUTS, half, *(f.read_bytes() for f in files)]:
        for background in [(255, 255, 255), (0, 0, 0), (12, 200, 99)]:
            np.testing.assert_array_equal(
                image_checks.decode_like_transform(data, background),
                preprocessing.decode_image(tf.constant(data), background).numpy(),
            )


def test_duplicates_are_found_by_the_pixels_over_the_configured_background():
    """A fully transparent PNG and a half-transparent black one: over a black background the
    model sees both as black (duplicates), over white one white and one grey (not): the check
    hashes what the model sees with transform.background."""
    dark = png(Image.new("RGBA", (40, 40), (0, 0, 0, 0)))
    light = png(Image.new("RGBA", (40, 40), (0, 0, 0, 128)))  # half-transparent black
    over_black = [
        image_checks.check_image_bytes(d, 32, 10**6, background=(0, 0, 0)) for d in (dark, light)
    ]
    over_white = [image_checks.check_image_bytes(d, 32, 10**6) for d in (dark, light)]
    assert over_black[0].pixels_sha256 == over_black[1].pixels_sha256  # both black to the model
    assert over_white[0].pixels_sha256 != over_white[1].pixels_sha256  # white vs grey


def test_opaque_images_are_unchanged():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    decoded = preprocessing.decode_image(tf.constant(png(Image.fromarray(rgb, "RGB"))))
    np.testing.assert_array_equal(decoded.numpy(), rgb)


@pytest.mark.parametrize(
    "text, rgb", [("white", (255,) * 3), ("#0a1B2c", (10, 27, 44)), (" 1, 2,3", (1, 2, 3))]
)
def test_background_forms(text, rgb):
    assert background_rgb(text) == rgb


@pytest.mark.parametrize("text", ["grey", "#12345", "1,2", "1,2,256", "-1,0,0"])
def test_background_rejects_other_forms(text):
    with pytest.raises(ValueError, match="white, black, #rrggbb"):
        background_rgb(text)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """A model exported as the Trainer exports it, with a Transform graph made by tf.Transform
    from preprocessing_fn (untrained weights: only equality of outputs is checked)."""
    work = tmp_path_factory.mktemp("transparency")
    raw_metadata = dataset_metadata.DatasetMetadata.from_feature_spec(
        {
            "image": tf.io.FixedLenFeature([1], tf.string),
            "label": tf.io.FixedLenFeature([1], tf.int64),
        }
    )
    transform_dir = str(work / "transform_graph")
    raw = [{"image": [image], "label": [i % 2]} for i, image in enumerate(CUT_OUTS)]
    with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=str(work / "tft_tmp")):
        transform_fn = (
            pipeline | beam.Create(raw, reshuffle=False),
            raw_metadata,
        ) | tft_beam.AnalyzeDataset(lambda inputs: preprocessing.preprocessing_fn(inputs, CONFIG))
        _ = transform_fn | tft_beam.WriteTransformFn(transform_dir)
        _ = raw_metadata | "RawMetadata" >> tft_beam.WriteMetadata(
            str(Path(transform_dir) / tft.TFTransformOutput.RAW_METADATA_DIR), pipeline
        )
    keras.utils.set_random_seed(0)
    transfer = model_lib.build_transfer_model(
        SIZE, len(CLASS_NAMES), model_lib.BaseWeights(None, "random")
    )
    export_dir = work / "serving_model"
    export.export_model(
        transfer.model,
        tft.TFTransformOutput(transform_dir),
        CLASS_NAMES,
        SIZE,
        str(export_dir),
        {},
        "image",
    )
    return export_dir


def test_serving_and_the_transform_graph_see_identical_pixels(exported):
    loaded = tf.saved_model.load(str(exported))
    outputs = loaded.signatures[export.IMAGES_SIGNATURE](images=tf.constant(CUT_OUTS))
    probabilities = outputs["probabilities"].numpy()
    np.testing.assert_array_equal(probabilities[0], probabilities[1])
    np.testing.assert_array_equal(probabilities[0], probabilities[2])

    examples = [
        tf.train.Example(
            features=tf.train.Features(
                feature={
                    "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
                    "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[0])),
                }
            )
        ).SerializeToString()
        for image in CUT_OUTS
    ]
    transformed = loaded.signatures[export.TRANSFORM_SIGNATURE](examples=tf.constant(examples))
    pixels = preprocessing.decode_pixels(transformed[preprocessing.PIXELS_KEY], SIZE).numpy()
    np.testing.assert_array_equal(pixels, pixels_of(CUT_OUTS))  # the same as in training
    assert tuple(pixels[2][0, 0]) == (255, 255, 255)


def test_predict_refuses_a_gif_whose_transparency_it_cannot_read(tmp_path):
    path = tmp_path / "cut.gif"
    Image.new("P", (40, 40), 0).save(path, transparency=0)
    with pytest.raises(PredictError, match="GIF with a transparent colour"):
        read_images([str(path)], max_pixels=40_000_000)


@pytest.mark.parametrize(
    "option, allowed",
    [("transform.background=grey", "#rrggbb"), ("validation.duplicates=maybe", "warn")],
)
def test_bad_background_or_duplicates_policy_is_refused_before_running(option, allowed):
    with pytest.raises(ConfigError) as error:
        load_config(overrides=[option]).validate()
    assert option.split("=")[0] in str(error.value) and allowed in str(error.value)
