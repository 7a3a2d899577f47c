"""The Tuner's tuner_fn: searches the head's hyperparameters on the frozen base's features.

TFX's Tuner component calls `tuner_fn(fn_args)`, then `tuner.search(**fit_kwargs)` and
`tuner.get_best_hyperparameters()`; the best values reach the Trainer through the Tuner's
`best_hyperparameters` artifact (`fn_args.hyperparameters` in `run_fn`).

Why trials are cheap: the base is frozen while the head trains, so its outputs are computed once
(the feature cache of the Trainer's phase 1) and every trial trains only a head on them.

Why not keras-tuner's usual HyperModel: keras-tuner 1.4.8 imports Keras 3 and rejects the
tf_keras models TFX 1.16 needs ("Expected the model-building function ... to return a valid
Keras Model instance"). `HeadSearch` is a keras-tuner BaseTuner whose `run_trial` builds and
fits the tf_keras head itself and returns the objective, so keras-tuner only drives the search.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from typing import Any

import keras_tuner
import tensorflow_transform as tft
from absl import logging
from keras_tuner.engine import base_tuner
from tfx.components.trainer.fn_args_utils import FnArgs
from tfx.components.tuner.component import TunerFnResult

from components import base_weights, trainer
from components import model as model_lib
from components.trainer_settings import TrainerSettings

OBJECTIVE = "val_accuracy"
SEARCHES = ("random", "bayesian")
# What is searched. The fine-tuning learning rate is not: judging it needs phase 2, a pass of
# the network per epoch per trial, which is what makes tuning on cached features cheap.
HEADS = ["flatten", "gap"]
HEAD_UNITS = [128, 256, 512, 1024]
DROPOUT = (0.0, 0.6, 0.1)  # min, max, step: the `gap` head's dropout
LEARNING_RATE = (1e-4, 1e-2)  # phase 1, log-uniform


def search_space() -> keras_tuner.HyperParameters:
    """Head type; units for `flatten`, dropout for `gap`; phase 1's learning rate."""
    hp = keras_tuner.HyperParameters()
    hp.Choice("head", HEADS)
    hp.Choice("head_units", HEAD_UNITS, parent_name="head", parent_values=["flatten"])
    low, high, step = DROPOUT
    hp.Float("dropout", low, high, step=step, parent_name="head", parent_values=["gap"])
    hp.Float("learning_rate", *LEARNING_RATE, sampling="log")
    return hp


def make_oracle(search: str, max_trials: int, seed: int) -> keras_tuner.Oracle:
    if search not in SEARCHES:
        raise ValueError(f"tuning.search is {search!r}; use one of {SEARCHES}")
    oracle_class = (
        keras_tuner.oracles.BayesianOptimizationOracle
        if search == "bayesian"
        else keras_tuner.oracles.RandomSearchOracle
    )
    return oracle_class(
        objective=keras_tuner.Objective(OBJECTIVE, direction="max"),
        max_trials=max_trials,
        hyperparameters=search_space(),
        tune_new_entries=False,
        seed=seed,
    )


def head_settings(values: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The training settings a set of hyperparameter values decides; the rest from defaults."""
    return {key: values.get(key, defaults[key]) for key in trainer.TUNED_SETTINGS}


class HeadSearch(base_tuner.BaseTuner):
    """Searches head hyperparameters, each trial a tf_keras head trained on cached features."""

    def __init__(
        self,
        oracle: keras_tuner.Oracle,
        feature_shape: tuple[int, ...],
        num_classes: int,
        defaults: dict[str, Any],
        **kwargs: Any,
    ):
        super().__init__(oracle=oracle, **kwargs)
        self.feature_shape = feature_shape
        self.num_classes = num_classes
        self.defaults = defaults

    def run_trial(self, trial, train_features, eval_features, epochs, batch_size, seed):
        settings = head_settings(trial.hyperparameters.values, self.defaults)
        try:
            model_lib.keras.utils.set_random_seed(seed)
            head = model_lib.build_head(
                self.feature_shape,
                self.num_classes,
                head=settings["head"],
                units=settings["head_units"],
                dropout=settings["dropout"],
            )
            model_lib.compile_model(head, settings["learning_rate"])
            history = head.fit(
                trainer.training_batches(train_features, batch_size, seed, augment_images=False),
                validation_data=eval_features.batch(batch_size),
                epochs=epochs,
                verbose=0,
            )
        except Exception as error:
            # keras-tuner would record a failing trial as "invalid" and go on; a search whose
            # trials cannot run must stop the run, saying why.
            raise keras_tuner.errors.FatalError(
                f"Tuning trial {trial.trial_id} with {settings} failed: "
                f"{type(error).__name__}: {error}"
            ) from error
        best = max(history.history[OBJECTIVE])
        logging.info("Tuning trial %s: %s -> %s %.4f", trial.trial_id, settings, OBJECTIVE, best)
        return {OBJECTIVE: best}


def tuner_fn(fn_args: FnArgs) -> TunerFnResult:
    """TFX Tuner entry point: computes the frozen base's features once, then searches."""
    settings = TrainerSettings.from_custom_config(fn_args.custom_config)
    training, tuning = settings.training, settings.tuning
    model_lib.keras.utils.set_random_seed(training.seed)
    weights = base_weights.resolve_base_weights(
        training.weights, training.allow_random_weights_fallback
    )
    transfer = model_lib.build_transfer_model(
        settings.image_size, len(settings.class_names), weights
    )
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    cache_dir = tempfile.mkdtemp(prefix="vgg16-tuner-features-")
    features = {}
    for split, files in (("train", fn_args.train_files), ("eval", fn_args.eval_files)):
        images = trainer.read_examples(
            files,
            tf_transform_output,
            image_size=settings.image_size,
            image_key=settings.raw_image_key,
            label_key=settings.raw_label_key,
        )
        features[split] = trainer.cache_base_features(
            transfer.feature_extractor,
            images,
            batch_size=training.batch_size,
            cache_file=os.path.join(cache_dir, split),
        )
    # The cache must outlive tuner_fn: the executor runs the search after it returns.
    atexit.register(shutil.rmtree, cache_dir, ignore_errors=True)
    tuner = HeadSearch(
        oracle=make_oracle(tuning.search, tuning.trials, training.seed),
        feature_shape=tuple(transfer.base.output_shape[1:]),
        num_classes=len(settings.class_names),
        defaults={key: getattr(training, key) for key in trainer.TUNED_SETTINGS},
        directory=fn_args.working_dir,
        project_name="head_search",
        overwrite=True,
    )
    return TunerFnResult(
        tuner=tuner,
        fit_kwargs={
            "train_features": features["train"],
            "eval_features": features["eval"],
            "epochs": tuning.epochs_per_trial,
            "batch_size": training.batch_size,
            "seed": training.seed,
        },
    )
