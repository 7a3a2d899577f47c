"""The Tuner's head search: tf_keras heads driven by keras-tuner, on cached features."""

import numpy as np
import pytest
import tensorflow as tf

from components import model as model_lib
from components import trainer
from components import tuner as tuner_lib

FEATURE_SHAPE, CLASSES, PER_CLASS = (2, 2, 8), 3, 40
# A deliberately bad default: at this learning rate the head cannot learn in a few epochs.
BAD_DEFAULTS = {"head": "flatten", "head_units": 128, "dropout": 0.5, "learning_rate": 1e-7}


def separable_features(seed: int) -> tf.data.Dataset:
    """(features, label) pairs whose classes are far apart: an easy problem for a good head."""
    centres = np.random.default_rng(0).normal(0, 3, (CLASSES, *FEATURE_SHAPE)).astype(np.float32)
    rng = np.random.default_rng(seed)  # the same classes, other examples
    labels = np.repeat(np.arange(CLASSES), PER_CLASS)
    rng.shuffle(labels)
    noise = rng.normal(0, 1, (len(labels), *FEATURE_SHAPE)).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices((centres[labels] + noise, labels.astype(np.int64)))


def fit_kwargs(epochs: int = 8) -> dict:
    return {
        "train_features": separable_features(1),
        "eval_features": separable_features(2),
        "epochs": epochs,
        "batch_size": 16,
        "seed": 0,
    }


def default_accuracy(epochs: int) -> float:
    """The bad default head, trained exactly as a trial would train it."""
    model_lib.keras.utils.set_random_seed(0)
    head = model_lib.build_head(FEATURE_SHAPE, CLASSES, "flatten", BAD_DEFAULTS["head_units"], 0.5)
    model_lib.compile_model(head, BAD_DEFAULTS["learning_rate"])
    kwargs = fit_kwargs(epochs)
    history = head.fit(
        trainer.training_batches(kwargs["train_features"], 16, 0, augment_images=False),
        validation_data=kwargs["eval_features"].batch(16),
        epochs=epochs,
        verbose=0,
    )
    return max(history.history["val_accuracy"])


@pytest.mark.parametrize("search", ["random", "bayesian"])
def test_search_finds_a_clearly_better_head_than_a_bad_default(search, tmp_path):
    search_tuner = tuner_lib.HeadSearch(
        oracle=tuner_lib.make_oracle(search, max_trials=5, seed=3),
        feature_shape=FEATURE_SHAPE,
        num_classes=CLASSES,
        defaults=BAD_DEFAULTS,
        directory=str(tmp_path),
        project_name="search",
    )
    search_tuner.search(**fit_kwargs())

    trials = search_tuner.oracle.get_best_trials(5)
    assert len(trials) == 5 and all(t.status == "COMPLETED" for t in trials)
    best = search_tuner.get_best_hyperparameters()[0].values
    assert best["head"] in tuner_lib.HEADS
    assert tuner_lib.LEARNING_RATE[0] <= best["learning_rate"] <= tuner_lib.LEARNING_RATE[1]
    assert trials[0].score >= 0.9
    assert trials[0].score >= default_accuracy(epochs=8) + 0.3


def test_a_failing_trial_stops_the_search_with_the_reason(tmp_path):
    search_tuner = tuner_lib.HeadSearch(
        oracle=tuner_lib.make_oracle("random", max_trials=2, seed=0),
        feature_shape=(3, 3, 8),  # not the features' shape: every trial fails
        num_classes=CLASSES,
        defaults=BAD_DEFAULTS,
        directory=str(tmp_path),
        project_name="search",
    )
    with pytest.raises(Exception, match="Tuning trial .* failed"):
        search_tuner.search(**fit_kwargs(epochs=1))


def test_best_hyperparameters_become_training_settings():
    hp = tuner_lib.search_space()
    hp.values.update({"head": "gap", "dropout": 0.2, "learning_rate": 0.003})
    settings = trainer.tuned_settings(hp.get_config())
    assert settings == {"head": "gap", "head_units": 128, "dropout": 0.2, "learning_rate": 0.003}
    assert trainer.tuned_settings(None) == {}
