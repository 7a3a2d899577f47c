"""The Trainer's run_fn: train the head on the frozen base, fine-tune the top blocks, export.

Referenced by import path (`components.trainer.run_fn`), so the same code runs locally and in
a Kubeflow or Airflow worker without TFX building a wheel of it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_data_validation as tfdv
import tensorflow_transform as tft
import tf_keras as keras
from absl import logging
from sklearn.utils.class_weight import compute_class_weight
from tfx.components.trainer.fn_args_utils import FnArgs

from components import base_weights, calibration, export, trainer_findings, warm_start
from components import model as model_lib
from components import schema as schema_lib
from components.base_features import (
    FeatureTableBuilder,
    base_feature_table,
    cache_base_features,
)
from components.contract import HISTORY_FILE, IMAGE_ID_KEY
from components.data_findings import FeatureTable
from components.preprocessing import PIXELS_KEY, TRANSFORMED_LABEL_KEY, decode_pixels
from components.settings import TrainingConfig
from components.tfrecord_import import compression_of
from components.trainer_settings import TrainerSettings

SHUFFLE_BUFFER = 1024
# Training settings the Tuner may choose (components/tuner.py); the rest come from the config.
TUNED_SETTINGS = ("head", "head_units", "dropout", "learning_rate")
PREPROCESS_BATCH = 64  # records parsed and run through the Transform graph at a time


# --- Input ---------------------------------------------------------------------------------------


def read_labels(file_patterns: list[str], label_key: str) -> np.ndarray:
    """The labels of ExampleGen's raw examples, parsing nothing else (no image is decoded)."""
    files = sorted(f for pattern in file_patterns for f in tf.io.gfile.glob(pattern))
    spec = {label_key: tf.io.FixedLenFeature([], tf.int64)}
    dataset = tf.data.TFRecordDataset(files, compression_type=compression_of(files))
    batches = [tf.io.parse_example(batch, spec)[label_key].numpy() for batch in dataset.batch(4096)]
    return np.concatenate(batches) if batches else np.zeros(0, dtype=np.int64)


def class_weights(labels: np.ndarray, class_names: list[str], mode: str) -> dict[int, float] | None:
    """training.class_weight as Keras' fit takes it: None for `none`; for `balanced`, each
    class's weight n / (classes x its count) (scikit-learn's compute_class_weight), so every
    class weighs as much in the loss, whatever its share of the train split."""
    if mode == "none":
        return None
    counts = np.bincount(labels, minlength=len(class_names))
    missing = [name for name, count in zip(class_names, counts, strict=False) if not count]
    if missing:
        raise ValueError(
            f"training.class_weight=balanced: the train split has no example of {missing}, so "
            "their weight is undefined. Add examples of them, or set training.class_weight=none."
        )
    weights = compute_class_weight("balanced", classes=np.arange(len(class_names)), y=labels)
    return {k: float(w) for k, w in enumerate(weights)}


def read_examples(
    file_patterns: list[str],
    tf_transform_output,
    image_size: int,
    image_key: str,
    label_key: str,
    *,
    split: str = "",
    only_paths: list[str] | None = None,
) -> tf.data.Dataset:
    """ExampleGen's raw examples through the Transform graph: (uint8 pixels [size, size, 3],
    int64 label), unbatched; with `split` given, (pixels, label, path), where path is the
    image's file under the data folder (ImageExampleGen's image_id) or `<split>#<n>` for
    imported records without one, and `only_paths` keeps just those images (decoding no other).
    Transform does not write its output (see `pipeline.py`): decoding and resizing here costs
    less than writing and reading back compressed pixel records, runs in parallel with
    training, and, for phase 1, only once, in the feature-cache pass."""
    files = sorted(f for pattern in file_patterns for f in tf.io.gfile.glob(pattern))
    raw_spec = tf_transform_output.raw_feature_spec()
    spec = {key: raw_spec[key] for key in (image_key, label_key)}  # ids and sizes aren't needed
    transform = tf_transform_output.transform_features_layer()

    def preprocess(records: tf.Tensor, *paths: tf.Tensor) -> tuple[tf.Tensor, ...]:
        transformed = transform(tf.io.parse_example(records, spec))
        pixels = decode_pixels(transformed[PIXELS_KEY], image_size)
        return (pixels, transformed[TRANSFORMED_LABEL_KEY], *paths)

    dataset = tf.data.TFRecordDataset(
        files, compression_type=compression_of(files), num_parallel_reads=tf.data.AUTOTUNE
    )
    if split:
        dataset = dataset.enumerate().map(
            lambda n, record: (record, _image_path(record, n, split, IMAGE_ID_KEY in raw_spec))
        )
        if only_paths is not None:
            wanted = tf.constant(list(only_paths) or [""], tf.string)
            dataset = dataset.filter(lambda _, path: tf.reduce_any(tf.equal(path, wanted)))
    return (
        dataset.batch(PREPROCESS_BATCH)
        .map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
        .unbatch()
    )


def _image_path(record: tf.Tensor, n: tf.Tensor, split: str, has_id: bool) -> tf.Tensor:
    if has_id:
        spec = {IMAGE_ID_KEY: tf.io.FixedLenFeature([], tf.string)}
        return tf.io.parse_single_example(record, spec)[IMAGE_ID_KEY]
    return tf.strings.join([split, "#", tf.strings.as_string(n)])


def augment(pixels: tf.Tensor, label: tf.Tensor, seed: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Training-only: random flip, zoom (crop 80-100% and resize back) and brightness."""
    size = pixels.shape[0]
    image = tf.image.random_flip_left_right(tf.cast(pixels, tf.float32), seed=seed)
    crop = tf.cast(tf.cast(size, tf.float32) * tf.random.uniform([], 0.8, 1.0, seed=seed), tf.int32)
    image = tf.image.random_crop(image, [crop, crop, 3], seed=seed)
    image = tf.image.resize(image, [size, size])
    image = tf.image.random_brightness(image, 32.0, seed=seed)
    return tf.cast(tf.clip_by_value(image, 0.0, 255.0), tf.uint8), label


def training_batches(
    dataset: tf.data.Dataset, batch_size: int, seed: int, augment_images: bool
) -> tf.data.Dataset:
    dataset = dataset.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    if augment_images:
        dataset = dataset.map(lambda x, y: augment(x, y, seed), num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


# --- Training -----------------------------------------------------------------------------------


class EpochLog(keras.callbacks.Callback):
    """Collects per-epoch metrics, learning rate and seconds for history.json."""

    def __init__(self, phase: str, history: list[dict[str, Any]]):
        super().__init__()
        self.phase, self.history = phase, history

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        entry = {
            "phase": self.phase,
            "epoch": epoch + 1,
            "seconds": time.perf_counter() - self._start,
        }
        entry["learning_rate"] = float(keras.backend.get_value(self.model.optimizer.learning_rate))
        entry.update({k: float(v) for k, v in (logs or {}).items()})
        self.history.append(entry)
        logging.info("%s epoch %d: %s", self.phase, epoch + 1, entry)


def _callbacks(phase: str, patience: int, history: list, log_dir: str) -> list:
    callbacks = [
        EpochLog(phase, history),
        keras.callbacks.TensorBoard(os.path.join(log_dir, phase)),
    ]
    if patience > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=patience, restore_best_weights=True
            )
        )
    return callbacks


def choose_strategy(distribution: str) -> tf.distribute.Strategy:
    """`auto`: MirroredStrategy over several visible GPUs, else the default strategy.
    Called before anything else in run_fn: a multi-worker strategy configures TensorFlow's
    collective ops, which is only possible before TensorFlow has started in the process."""
    if distribution == "multiworker":
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as error:
            raise RuntimeError(
                f"training.distribution=multiworker: {error}. TensorFlow already ran in this "
                "process before the Trainer (`python -m pipeline run`'s LocalDagRunner runs "
                "every step in one process). Run the Trainer as a process of its own on each "
                "worker, with TF_CONFIG set (README: 'Training on GPUs and machines'), or use "
                "training.distribution=mirrored on one machine."
            ) from error
    gpus = tf.config.list_logical_devices("GPU")
    if distribution == "mirrored" or (distribution == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def use_mixed_precision(setting: str) -> bool:
    on = setting == "on" or (setting == "auto" and bool(tf.config.list_physical_devices("GPU")))
    keras.mixed_precision.set_global_policy("mixed_float16" if on else "float32")
    return on


def class_names_for(schema_path: str | None, configured: list[str], *, label_key: str) -> list[str]:
    """Configured names first, then the curated schema's class list, then label numbers (from
    the domain of the raw label feature, `label_key`)."""
    if configured:
        return list(configured)
    schema = tfdv.load_schema_text(schema_path)
    names = schema_lib.class_names_from_schema(schema)
    if names:
        return names
    label = next(f for f in schema.feature if f.name == label_key)
    return [str(i) for i in range(label.int_domain.max + 1)]


def train(
    transfer: model_lib.TransferModel,
    train_images: tf.data.Dataset,
    eval_images: tf.data.Dataset,
    training: TrainingConfig,
    log_dir: str,
    strategy: tf.distribute.Strategy,
    class_weight: dict[int, float] | None = None,
    inspect: Callable[[list[FeatureTable]], None] | None = None,
) -> list[dict[str, Any]]:
    """Phase 1 (frozen base, new head), then phase 2 (top blocks unfrozen, low learning rate).
    `training.batch_size` is the global batch: the strategy splits each batch across replicas.
    `class_weight` (class_weights) weighs each example's loss by its class in both phases.
    `inspect`, for images read with their paths (read_examples' `split`), is called with the
    frozen base's features of train and eval before any head is trained (from the feature
    cache, or from a pass of its own without one), and may raise to stop the run."""
    history: list[dict[str, Any]] = []
    batch, seed = training.batch_size, training.seed
    train_pairs, eval_pairs = (_pairs(images) for images in (train_images, eval_images))
    eval_batches = eval_pairs.batch(batch).prefetch(tf.data.AUTOTUNE)

    def fit(model, *, learning_rate, train_batches, validation, epochs, phase) -> None:
        """Compiles with Adam at learning_rate, then trains, logging epochs under `phase`. The
        optimizer and metrics hold variables: they must be made in the scope of the strategy
        that made the model's, or Keras refuses them (and each replica needs its copy)."""
        with strategy.scope():
            model_lib.compile_model(model, learning_rate)
            model.fit(
                train_batches,
                validation_data=validation,
                epochs=epochs,
                class_weight=class_weight,
                callbacks=_callbacks(
                    phase,
                    patience=training.early_stopping_patience,
                    history=history,
                    log_dir=log_dir,
                ),
                verbose=2,
            )

    def look_at_data(tables: list[FeatureTable]) -> None:
        start = time.perf_counter()
        inspect(tables)
        history.append({"phase": "findings", "seconds": time.perf_counter() - start})

    if training.cache_features and not training.augment:
        cache_dir = tempfile.mkdtemp(prefix="vgg16-features-")
        try:
            start = time.perf_counter()
            builders = {split: FeatureTableBuilder(split) for split in ("train", "eval")}
            train_features, eval_features = (
                cache_base_features(
                    transfer.feature_extractor,
                    images if inspect else _pairs(images),
                    batch_size=batch,
                    cache_file=os.path.join(cache_dir, split),
                    table=builders[split] if inspect else None,
                )
                for split, images in (("train", train_images), ("eval", eval_images))
            )
            history.append({"phase": "feature_cache", "seconds": time.perf_counter() - start})
            if inspect:
                look_at_data([builder.table() for builder in builders.values()])
            fit(
                transfer.head,
                learning_rate=training.learning_rate,
                train_batches=training_batches(
                    train_features, batch_size=batch, seed=seed, augment_images=False
                ),
                validation=eval_features.batch(batch),
                epochs=training.epochs,
                phase="phase1",
            )
        finally:
            shutil.rmtree(cache_dir, ignore_errors=True)
    else:
        if inspect:  # no feature cache (augmentation): the findings need a pass of their own
            start = time.perf_counter()
            tables = [
                base_feature_table(transfer.feature_extractor, images, batch, split)
                for split, images in (("train", train_images), ("eval", eval_images))
            ]
            history.append({"phase": "findings_features", "seconds": time.perf_counter() - start})
            look_at_data(tables)
        fit(
            transfer.model,
            learning_rate=training.learning_rate,
            train_batches=training_batches(
                train_pairs, batch_size=batch, seed=seed, augment_images=training.augment
            ),
            validation=eval_batches,
            epochs=training.epochs,
            phase="phase1",
        )

    if training.fine_tune and training.fine_tune_epochs > 0:
        unfrozen = model_lib.unfreeze_top_blocks(transfer.base, training.fine_tune_blocks)
        logging.info("Phase 2: fine-tuning %s", unfrozen)
        fit(
            transfer.model,
            learning_rate=training.fine_tune_learning_rate,
            train_batches=training_batches(
                train_pairs, batch_size=batch, seed=seed, augment_images=training.augment
            ),
            validation=eval_batches,
            epochs=training.fine_tune_epochs,
            phase="phase2",
        )
    return history


def _pairs(images: tf.data.Dataset) -> tf.data.Dataset:
    """(pixels, label) of images read with or without their paths: what Keras fits on (a third
    element would be taken for sample weights)."""
    if len(images.element_spec) == 2:
        return images
    return images.map(lambda pixels, label, _: (pixels, label))


def tuned_settings(hyperparameters: dict[str, Any] | None) -> dict[str, Any]:
    """The training settings in the Tuner's best_hyperparameters (a keras-tuner HyperParameters
    config, {"space": ..., "values": ...}); {} when the pipeline has no Tuner."""
    values = (hyperparameters or {}).get("values", {})
    return {key: values[key] for key in TUNED_SETTINGS if key in values}


def run_fn(fn_args: FnArgs) -> None:
    """TFX Trainer entry point."""
    tuned = tuned_settings(fn_args.hyperparameters)
    settings = TrainerSettings.from_custom_config(fn_args.custom_config, tuned)
    training = settings.training
    strategy = choose_strategy(training.distribution)  # first: see choose_strategy
    keras.utils.set_random_seed(training.seed)
    weights = base_weights.resolve_base_weights(
        training.weights, training.allow_random_weights_fallback
    )
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    size = settings.image_size
    class_names = class_names_for(
        fn_args.schema_path, settings.class_names, label_key=settings.raw_label_key
    )
    mixed = use_mixed_precision(training.mixed_precision)
    with strategy.scope():
        transfer = model_lib.build_transfer_model(
            size,
            len(class_names),
            weights,
            head=training.head,
            head_units=training.head_units,
            dropout=training.dropout,
        )
    read = functools.partial(
        read_examples,
        tf_transform_output=tf_transform_output,
        image_size=size,
        image_key=settings.raw_image_key,
        label_key=settings.raw_label_key,
    )
    files = {"train": fn_args.train_files, "eval": fn_args.eval_files}
    judged = settings.judged_split
    files.setdefault(judged, trainer_findings.split_files(fn_args.train_files, judged))
    findings: dict[str, Any] = {}
    inspect = trainer_findings.make_inspector(
        settings,
        class_names=class_names,
        files=files,
        read=read,
        judged_table=lambda: base_feature_table(
            transfer.feature_extractor,
            read(files[judged], split=judged),
            training.batch_size,
            judged,
        ),
        model_run_dir=fn_args.model_run_dir,
        summary=findings,
        random_weights=weights.keras_arg is None,
    )
    # With findings on, the images carry their paths (read_examples' `split`).
    train_images, eval_images = (
        read(files[split], split=split if inspect else "") for split in ("train", "eval")
    )
    started_from = warm_start.warm_start(transfer, training, fn_args.base_model, class_names, size)
    weights_by_class = class_weights(
        read_labels(fn_args.train_files, settings.raw_label_key), class_names, training.class_weight
    )
    history = train(
        transfer,
        train_images,
        eval_images,
        training=training,
        log_dir=fn_args.model_run_dir,
        strategy=strategy,
        class_weight=weights_by_class,
        inspect=inspect,
    )

    calibrated = calibration.calibrate(
        transfer.model, _pairs(eval_images), training, settings.judged_split
    )

    metadata = {
        "warm_start": started_from,
        "calibration": calibrated,
        "class_names": class_names,
        "image_size": size,
        "base_weights": weights.description,
        "weights_warning": weights.warning,
        "mixed_precision": mixed,
        "replicas": strategy.num_replicas_in_sync,
        "tuned_hyperparameters": tuned,
        "class_weight": None
        if weights_by_class is None
        else {class_names[k]: round(w, 4) for k, w in weights_by_class.items()},
        "training_config": dataclasses.asdict(training),
        "findings": findings,
    }
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, HISTORY_FILE), "w") as f:
        json.dump({"history": history, **metadata}, f, indent=2)
    export.export_model(
        transfer.model,
        tf_transform_output,
        class_names=class_names,
        image_size=size,
        export_dir=fn_args.serving_model_dir,
        metadata=metadata,
        raw_image_key=settings.raw_image_key,
    )
