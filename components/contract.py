"""The names that steps, commands and reports share: the raw examples' features, the schema's
class list, metric names and the files steps leave in their artifacts for later readers, and
the one rule (and wording) for which class names a run uses. Standard library only, so any of
them imports it without loading TensorFlow."""

from __future__ import annotations

# The features of ImageExampleGen's tf.Examples (imported TFRecords name theirs:
# data.image_feature, data.label_feature).
RAW_IMAGE_KEY = "image"  # the file's bytes, as they are
RAW_LABEL_KEY = "label"  # the class's position in the class list
CLASS_NAME_KEY = "class_name"
IMAGE_ID_KEY = "image_id"  # the file's path under the data folder
# The curated schema's closed list of class names, in label order (infer-schema writes it).
CLASS_NAME_DOMAIN = f"{CLASS_NAME_KEY}_values"
# The property of ExampleGen's examples that records the class list they were labelled by.
CLASS_NAMES_PROPERTY = "class_names"

# The resolver that hands the Trainer the last blessed model (training.warm_start=baseline).
WARM_START_RESOLVER = "warm_start_model_resolver"

ACCURACY = "sparse_categorical_accuracy"  # top-1 accuracy, as Keras and TFMA name it

# Files a step writes into its output artifact, which later steps and the run history read.
HISTORY_FILE = "history.json"  # Trainer's model_run: epochs, phases, base weights
MODEL_METADATA_FILE = "assets.extra/model_metadata.json"  # in the exported SavedModel
PUSH_RECORD_FILE = "assets.extra/push_record.json"  # in a served version (TF Serving skips it)
PREDICTIONS_FILE = "predictions.tfrecord.gz"  # Scorer's predictions, in the judged split's folder
GALLERY_FILE = "gallery.json"  # Scorer's thumbnails of the judged split
SAMPLE_FILE = (
    "smoke_sample.json"  # Scorer's smoke-test examples; the Judge's copy beside its blessing
)
JUDGEMENT_FILE = "judgement.json"  # Judge's model_blessing: the decision and its evidence
# The candidate's model card, written by the Judge beside its judgement and published by the
# Pusher at the root of every served version (TF Serving reads only the SavedModel's files).
MODEL_CARD_FILES = ("model_card.md", "model_card.html")
# LiteExporter's output: every TensorFlow Lite variant's check; published as tflite/report.json.
TFLITE_REPORT_FILE = "tflite_report.json"
TFLITE_FOLDER = "tflite"  # in a served version: <variant>.tflite and report.json
DATA_GATE_FILE = "data_gate.json"  # DataGate's result: anomalies and what the data held
# The Trainer's data findings, in its model_run beside HISTORY_FILE (components/data_findings.py).
LABEL_ISSUES_FILE = "label_issues.json"  # suspected label errors, worst first
NEAR_DUPLICATES_FILE = "near_duplicates.json"  # near-copy pairs, leaks first
FINDINGS_GALLERY_FILE = "findings_gallery.json"  # thumbnails of the suspects and the pairs


class ClassNamesError(ValueError):
    """The run's class names cannot be worked out; the message says what to set."""


def class_names(
    schema_names: list[str], configured: list[str], schema_path: str, *, imported: bool
) -> list[str]:
    """The class names in label order: the schema's class list (which an image folder's labels
    are positions in), or data.class_names for imported TFRecords; where both are given they
    must be the same list."""
    if configured and schema_names and list(configured) != list(schema_names):
        raise ClassNamesError(
            f"data.class_names is {list(configured)} but the schema {schema_path} lists the "
            f"classes {list(schema_names)}: a label is a position in this list, so they must be "
            "the same, in the same order. Fix data.class_names, or write a schema for this "
            "data with `python -m pipeline infer-schema`."
        )
    if imported and configured:
        return list(configured)
    if schema_names:
        return list(schema_names)
    raise ClassNamesError(no_class_names_message(schema_path, imported=imported))


def no_class_names_message(schema_path: str, *, imported: bool) -> str:
    if imported:
        return (
            f"data.class_names is empty and the schema {schema_path} names no classes: "
            "imported TFRecords don't name theirs; set data.class_names in label order "
            "(e.g. --set data.class_names=cat,dog)"
        )
    return (
        f"The schema {schema_path} names no classes (it has no {CLASS_NAME_DOMAIN} domain), so "
        "the labels of the image folder are undefined. Write a schema for this data with "
        "`python -m pipeline infer-schema`, review its class list (labels are positions in it) "
        "and use it."
    )
