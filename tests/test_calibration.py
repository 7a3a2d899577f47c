"""Calibrated confidences (components/calibration.py and the Trainer's calibrate): temperature
scaling recovers a known over-confidence, lowers the expected calibration error of a real Keras
model made over-confident, and is folded into the model so its own output is calibrated."""

import numpy as np
import pytest
import tensorflow as tf

from components import calibration
from components import model as model_lib
from components.base_weights import BaseWeights
from components.calibration import calibrate
from components.settings import TrainingConfig


def sampled(rng, n: int, classes: int, scale: float = 2.0):
    """Logits, and labels drawn from their softmax: calibrated by construction."""
    logits = rng.normal(size=(n, classes)) * scale
    probabilities = np.exp(calibration.log_softmax(logits))
    labels = np.array([rng.choice(classes, p=p) for p in probabilities])
    return logits, labels


def test_the_fitted_temperature_undoes_a_known_over_confidence():
    """Logits 30x too large (what a saturated head gives) are fitted a temperature near 30,
    and the ECE falls from far off to near 0; calibrated logits keep a temperature near 1."""
    rng = np.random.default_rng(0)
    logits, labels = sampled(rng, 3000, 5)
    found = calibration.summary(
        logits * 30, labels, calibration.fit_temperature(logits * 30, labels)
    )
    assert 25 < found["temperature"] < 36, found
    assert found["ece_before"] > 0.25 and found["ece_after"] < 0.04, found
    assert found["nll_after"] < found["nll_before"] / 5
    assert 0.85 < calibration.fit_temperature(logits, labels) < 1.15


def test_ece_and_its_bins():
    """ECE is the count-weighted |accuracy - confidence| over the bins: hand-made cases."""
    labels = np.array([0, 0, 1, 1])
    always_sure = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])  # half right
    assert calibration.expected_calibration_error(always_sure, labels) == pytest.approx(0.5)
    honest = np.array([[0.5, 0.5]] * 4)  # argmax 0: right half the time, 50% sure
    assert calibration.expected_calibration_error(honest, labels) == pytest.approx(0.0)
    bins = calibration.reliability_bins(always_sure, labels)
    assert bins == [{"low": 14 / 15, "high": 1.0, "count": 4, "confidence": 1.0, "accuracy": 0.5}]


def test_uncalibrated_inverts_a_folded_temperature():
    rng = np.random.default_rng(1)
    logits, _ = sampled(rng, 50, 4)
    folded = np.exp(calibration.log_softmax(logits / 3.0))
    np.testing.assert_allclose(
        calibration.uncalibrated(folded, 3.0), np.exp(calibration.log_softmax(logits)), atol=1e-9
    )


@pytest.fixture(scope="module")
def over_confident():
    """A real transfer model (32 px, random base) whose head is made over-confident: its last
    layer's weights multiplied by 40, and held-out images labelled by its own calibrated
    probabilities (so the right temperature is 40)."""
    tf.keras.utils.set_random_seed(3)
    transfer = model_lib.build_transfer_model(
        32, 3, BaseWeights(None, "random"), head="gap", dropout=0.0
    )
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (600, 32, 32, 3), dtype=np.uint8)
    output = transfer.model.get_layer("head").get_layer("probabilities")
    output.kernel.assign(rng.normal(size=output.kernel.shape) * 0.5)
    logits = model_lib.logits_function(transfer.model)(tf.constant(pixels)).numpy()
    true = np.exp(calibration.log_softmax(logits))
    labels = np.array([rng.choice(3, p=p) for p in true])
    output.kernel.assign(output.kernel * 40.0)
    output.bias.assign(output.bias * 40.0)
    return transfer.model, pixels, labels


def test_calibrate_folds_the_temperature_into_the_model_and_lowers_ece(over_confident):
    """The Trainer's calibrate on the first 400 images (its eval split): the model's own
    probabilities on the other 200 are then softmax(logits / T), and their ECE is lower."""
    model, pixels, labels = over_confident
    fit, held_out = slice(0, 400), slice(400, 600)
    before = model(pixels[held_out]).numpy()
    logits = model_lib.logits_function(model)(tf.constant(pixels[held_out])).numpy()
    eval_images = tf.data.Dataset.from_tensor_slices((pixels[fit], labels[fit]))
    found = calibrate(model, eval_images, TrainingConfig(batch_size=64), judged_split="test")
    assert found["fitted_on"] == "eval" and found["images"] == 400
    assert 25 < found["temperature"] < 60, found
    after = model(pixels[held_out]).numpy()
    np.testing.assert_array_equal(after.argmax(1), before.argmax(1))  # same answers
    ece_before = calibration.expected_calibration_error(before, labels[held_out])
    ece_after = calibration.expected_calibration_error(after, labels[held_out])
    assert ece_after < ece_before / 2, (ece_before, ece_after)
    expected = np.exp(calibration.log_softmax(logits.astype(np.float64) / found["temperature"]))
    np.testing.assert_allclose(after, expected, atol=1e-5)


def test_no_temperature_is_fitted_on_the_judged_split_or_when_off(over_confident):
    model, pixels, labels = over_confident
    images = tf.data.Dataset.from_tensor_slices((pixels[:10], labels[:10]))
    kernel = model.get_layer("head").get_layer("probabilities").kernel.numpy()
    judged = calibrate(model, images, TrainingConfig(), judged_split="eval")
    assert "eval is the judged split" in judged["not_fitted"]
    off = calibrate(model, images, TrainingConfig(calibration="off"), judged_split="test")
    assert off == {"not_fitted": "training.calibration=off"}
    np.testing.assert_array_equal(
        model.get_layer("head").get_layer("probabilities").kernel.numpy(), kernel
    )
