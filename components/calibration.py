"""Calibrated confidences: temperature scaling (Guo et al., 2017) and the expected calibration
error (ECE) with its reliability diagram's bins.

A network's top probability is often far from how often it is right (the flatten head answers
"100%" on images it gets wrong). Temperature scaling divides the logits by one number T, fitted
to minimise the negative log-likelihood on held-out images; the predicted class never changes,
only the confidence. The Trainer fits T on the eval split and folds it into the exported model's
last layer (kernel / T, bias / T), so every serving path returns calibrated probabilities; the
Judge measures ECE on the judged split for the candidate and the baseline.

numpy and scipy only, but for `calibrate`, which runs the Keras model (its eval_images: a
tf.data.Dataset of (pixels, label)) and imports TensorFlow when it is called.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from components.settings import TrainingConfig

BINS = 15  # equal-width confidence bins, as in Guo et al.


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    return float(-log_softmax(logits / temperature)[np.arange(len(labels)), labels].mean())


LOWEST, HIGHEST = 0.01, 1000.0  # the temperatures searched: the flatten head's logits run to
# the hundreds on images it gets wrong, so its best T can be far above 10


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T in [LOWEST, HIGHEST] that minimises the NLL of softmax(logits / T) (a bounded
    search on log T: the NLL is smooth and has one minimum for a model that is not
    degenerate)."""
    from scipy.optimize import minimize_scalar

    found = minimize_scalar(
        lambda log_t: negative_log_likelihood(logits, labels, float(np.exp(log_t))),
        bounds=(np.log(LOWEST), np.log(HIGHEST)),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(found.x))


def reliability_bins(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS
) -> list[dict[str, float]]:
    """Per confidence bin (top-1 probability in (k/bins, (k+1)/bins]): how many images, their
    mean confidence and their accuracy. Empty bins are left out."""
    confidence = probabilities.max(axis=1)
    right = probabilities.argmax(axis=1) == labels
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    found = []
    for k in range(bins):
        members = index == k
        if members.any():
            found.append(
                {
                    "low": k / bins,
                    "high": (k + 1) / bins,
                    "count": int(members.sum()),
                    "confidence": float(confidence[members].mean()),
                    "accuracy": float(right[members].mean()),
                }
            )
    return found


def expected_calibration_error(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS
) -> float:
    """The images' share-weighted mean of |accuracy - confidence| over the bins: 0 when the
    top probability is exactly how often the model is right."""
    found = reliability_bins(probabilities, labels, bins)
    total = sum(b["count"] for b in found)
    return float(sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in found) / total)


def uncalibrated(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """The probabilities before a temperature was folded in: softmax(T x log p), since log p is
    the logits / T up to a constant per image (exact where no probability underflowed to 0)."""
    floor = np.finfo(np.float64).tiny
    logits = np.log(np.maximum(np.asarray(probabilities, np.float64), floor)) * temperature
    return np.exp(log_softmax(logits))


def summary(logits: np.ndarray, labels: np.ndarray, temperature: float) -> dict[str, float]:
    """ECE and NLL of softmax(logits) and of softmax(logits / T) on the same images."""
    before = np.exp(log_softmax(logits))
    after = np.exp(log_softmax(logits / temperature))
    return {
        "temperature": round(temperature, 4),
        "ece_before": round(expected_calibration_error(before, labels), 4),
        "ece_after": round(expected_calibration_error(after, labels), 4),
        "nll_before": round(negative_log_likelihood(logits, labels, 1.0), 4),
        "nll_after": round(negative_log_likelihood(logits, labels, temperature), 4),
        "images": int(len(labels)),
    }


def calibrate(model, eval_images, training: TrainingConfig, judged_split: str) -> dict[str, Any]:
    """training.calibration: the temperature fitted on the eval split, folded into the model
    (components/calibration.py), with ECE and NLL before and after on that split; or why
    none was fitted."""
    if training.calibration == "off":
        return {"not_fitted": "training.calibration=off"}
    if judged_split == "eval":
        return {
            "not_fitted": "the data has no test split, so eval is the judged split: a "
            "temperature fitted on it would be judged on the images it was fitted to. Give the "
            "data a test split (data.split_buckets, or a test/ folder)"
        }
    import tensorflow as tf

    from components import model as model_lib

    logits_of = tf.function(model_lib.logits_function(model), reduce_retracing=True)
    logits, labels = [], []
    for pixels, label in eval_images.batch(training.batch_size):
        logits.append(logits_of(pixels).numpy().astype(np.float64))
        labels.append(label.numpy())
    logits, labels = np.concatenate(logits), np.concatenate(labels)
    temperature = fit_temperature(logits, labels)
    model_lib.fold_temperature(model, temperature)
    return {"fitted_on": "eval", **summary(logits, labels, temperature)}
