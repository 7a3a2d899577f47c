"""TensorFlow Lite variants (components/lite_export.py): converted from a SavedModel's pixel
signature, each checked against the model it came from; a variant that disagrees is refused,
not published."""

import numpy as np
import pytest
import tensorflow as tf

from components import lite_export
from components import model as model_lib
from components.base_weights import BaseWeights
from components.export import PIXELS_SIGNATURE

SIZE = 32


def saved_pixel_model(folder: str, seed: int):
    """A transfer model (random base, gap head with a spread of logits) saved with only the
    pixel signature the LiteExporter converts; returns the Keras model."""
    tf.keras.utils.set_random_seed(seed)
    transfer = model_lib.build_transfer_model(
        SIZE, 4, BaseWeights(None, "random"), head="gap", dropout=0.0
    )
    output = transfer.model.get_layer("head").get_layer("probabilities")
    output.kernel.assign(np.random.default_rng(seed).normal(size=output.kernel.shape) * 2)
    preprocess, base, head = (
        transfer.model.get_layer(n) for n in ("vgg_preprocess", "vgg16", "head")
    )

    @tf.function(input_signature=[tf.TensorSpec([None, SIZE, SIZE, 3], tf.float32, "pixels")])
    def serve_pixels(pixels):
        return {"probabilities": head(base(preprocess(pixels), training=False), training=False)}

    tf.saved_model.save(transfer.model, folder, signatures={PIXELS_SIGNATURE: serve_pixels})
    return transfer.model


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("lite")
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (40, SIZE, SIZE, 3)).astype(np.float32)
    found = {}
    for name, seed in (("model", 1), ("other", 2)):
        folder = str(root / name)
        keras_model = saved_pixel_model(folder, seed)
        found[name] = (folder, keras_model(pixels.astype(np.uint8)).numpy())
    return found, pixels, root


def test_each_variant_is_checked_against_the_savedmodel_and_the_faithful_ones_published(models):
    """float32 and float16 agree with the SavedModel on every image and are written; int8
    takes uint8 pixels (its quantization is applied by LiteModel) and returns probabilities."""
    found, pixels, root = models
    folder, reference = found["model"]
    out = root / "out"
    out.mkdir()
    results = lite_export.export_variants(
        folder,
        ["float32", "float16", "dynamic_int8", "int8"],
        judged=pixels,
        reference=reference,
        representative=pixels[:10],
        min_agreement=0.99,
        out_dir=str(out),
    )
    assert results["float32"]["agreement"] == 1.0
    assert results["float32"]["max_probability_difference"] < 1e-4
    assert results["float16"]["agreement"] == 1.0 and results["float16"]["published"]
    assert results["float16"]["bytes"] < 0.6 * results["float32"]["bytes"]
    assert results["dynamic_int8"]["bytes"] < 0.3 * results["float32"]["bytes"]
    assert results["int8"]["input"]["dtype"] == "uint8"
    for name, result in results.items():
        assert result["latency_ms"] > 0 and result["convert_seconds"] > 0
        assert (out / f"{name}.tflite").exists() == result["published"], name
    int8 = lite_export.LiteModel(lite_export.convert(folder, "int8", pixels[:10]))
    np.testing.assert_allclose(int8.predict(pixels[:5]).sum(axis=1), 1.0, atol=0.02)


def test_a_variant_that_disagrees_is_refused_with_its_agreement(models):
    """A variant of another model (what a broken conversion looks like from outside: same
    shapes, other answers) fails the check and is not written."""
    found, pixels, root = models
    _, reference = found["model"]
    other, _ = found["other"]
    content = lite_export.convert(other, "float32")
    probabilities = lite_export.LiteModel(content).predict(pixels)
    result = lite_export.check(probabilities, reference, min_agreement=0.99)
    agreement = float((probabilities.argmax(1) == reference.argmax(1)).mean())
    assert agreement < 0.9 and result["agreement"] == round(agreement, 4)
    assert result["published"] is False
    assert "below export.tflite_min_agreement=0.99" in result["reason"]


def test_int8_without_representative_images_is_refused_by_name(models):
    found, _, _ = models
    with pytest.raises(ValueError, match="representative images"):
        lite_export.convert(found["model"][0], "int8")
