"""Judge: the step that decides the blessing, from the Scorer's predictions of the judged split.

TFMA 0.47's own threshold validation compares the point estimate with the thresholds (its
validator calls float() on a metric, which drops the confidence interval), and compares a
candidate with its baseline by the difference of two accuracies, unpaired. This step computes
accuracy, per-class recall and precision and macro AUC with their intervals from each example's
prediction (components/intervals.py), compares candidate and baseline on the same examples,
checks the evidence and what the model was built from, and writes the ModelBlessing (with TFX's
`blessed` and `current_model_id` properties) that the Pusher and the baseline resolver read,
with the Scorer's smoke-test sample beside it. It loads no model: a threshold-only change
re-runs this step alone, in seconds.
"""

import json
import os
from dataclasses import asdict

import numpy as np
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.types import standard_artifacts

from components import calibration, gate, intervals, model_card, model_files
from components.contract import (
    DATA_GATE_FILE,
    GALLERY_FILE,
    HISTORY_FILE,
    JUDGEMENT_FILE,
    MODEL_CARD_FILES,
    SAMPLE_FILE,
)
from components.data_gate import DataGateResult
from components.export import read_model_metadata
from components.image_example_gen import IngestionReport
from components.ingestion_report import read_report
from components.options import checked_section
from components.scorer import model_dir, read_json, read_predictions, write_json
from components.settings import EvaluationConfig


class JudgeError(RuntimeError):
    """The judge could not gather its evidence; the message says what and where."""


def gather_evidence(
    labels: np.ndarray,
    probabilities: np.ndarray,
    baseline_probabilities: np.ndarray | None,
    class_names: list[str],
) -> gate.Evidence:
    """Every measured figure the gate and the report show, with its interval, from the
    predictions alone."""
    if len(labels) == 0 or probabilities.shape != (len(labels), len(class_names)):
        raise JudgeError(
            f"The predictions do not fit the model: {probabilities.shape} probabilities for "
            f"{len(labels)} examples and {len(class_names)} classes."
        )
    predicted = probabilities.argmax(axis=1)
    recall, precision = intervals.per_class(labels, predicted, len(class_names))
    evidence = gate.Evidence(
        accuracy=intervals.accuracy(labels, predicted),
        class_names=class_names,
        examples_per_class=np.bincount(labels, minlength=len(class_names)).tolist(),
        recall=recall,
        precision=precision,
        auc=intervals.macro_auc(labels, probabilities),
    )
    if baseline_probabilities is not None:
        evidence.paired = intervals.paired_comparison(
            predicted == labels, baseline_probabilities.argmax(axis=1) == labels
        )
        evidence.baseline_auc = intervals.macro_auc(labels, baseline_probabilities)
    return evidence


def calibration_evidence(
    labels: np.ndarray,
    probabilities: np.ndarray,
    baseline_probabilities: np.ndarray | None,
    trained: dict | None,
) -> dict:
    """Expected calibration error and reliability bins on the judged split: the candidate's
    (as exported: with its temperature folded in), the candidate's before its temperature
    (`trained`: the Trainer's calibration record) and the baseline's."""

    def measured(p: np.ndarray) -> dict:
        return {
            "ece": round(calibration.expected_calibration_error(p, labels), 4),
            "bins": calibration.reliability_bins(p, labels),
        }

    found = {"candidate": measured(probabilities), "trained": trained or {}}
    temperature = (trained or {}).get("temperature")
    if temperature:
        found["candidate_before_temperature"] = measured(
            calibration.uncalibrated(probabilities, temperature)
        )
    if baseline_probabilities is not None:
        found["baseline"] = measured(baseline_probabilities)
    return found


def write_model_card(folder: str, *, title: str, **records) -> None:
    """model_card.md and its HTML rendering, from the run's records."""
    text = model_card.model_card_markdown(title=title, **records)
    for name, content in zip(
        MODEL_CARD_FILES, (text, model_card.to_html(text, f"Model card: {title}")), strict=True
    ):
        with fileio.open(os.path.join(folder, name), "w") as f:
            f.write(content)


def _baseline_description(baseline, mode: str) -> str:
    if mode == "none":
        return "none (--baseline none): judged on the value thresholds alone"
    if baseline is None:
        return ""
    if mode == "latest":
        return f"the last blessed model (artifact {baseline.id})"
    return f"the model served as version {mode} (artifact {baseline.id})"


def _check_scored(predictions, model, baseline_model) -> None:
    """The predictions are of this candidate and this baseline: the Scorer and the Judge read
    the same channels, so a mismatch means artifacts were mixed up and nothing may be decided."""
    scored = (
        predictions.get_int_custom_property("model_id"),
        predictions.get_int_custom_property("baseline_model_id") or None,
    )
    given = (model.id, baseline_model.id if baseline_model is not None else None)
    if scored != given:
        raise JudgeError(
            f"The predictions at {predictions.uri} are of model {scored[0]} and baseline "
            f"{scored[1]}, but the Judge was given model {given[0]} and baseline {given[1]}."
        )


@component
def Judge(
    predictions: InputArtifact[standard_artifacts.Examples],
    model: InputArtifact[standard_artifacts.Model],
    # Not `blessing`: Airflow's launcher names output artifacts <key>:<run id>, and the
    # Evaluator's `blessing` of the same run would take the name first.
    model_blessing: OutputArtifact[standard_artifacts.ModelBlessing],
    split: Parameter[str],
    label_key: Parameter[str],
    serving_dir: Parameter[str],
    baseline_mode: Parameter[str],  # evaluation.baseline
    settings: Parameter[str],  # the evaluation section, JSON
    data_gate: InputArtifact[DataGateResult],  # the data's counts, for the model card
    model_run: InputArtifact[standard_artifacts.ModelRun],  # history.json, for the model card
    data_source: Parameter[str],  # data.images or data.tfrecords, for the model card
    title: Parameter[str],  # the pipeline's name, the model card's title
    baseline_model: InputArtifact[standard_artifacts.Model] = None,
    ingestion_report: InputArtifact[IngestionReport] = None,  # image folders only
) -> None:
    """Decides whether the candidate may be deployed; every reason is written down, and the
    candidate's model card (components/model_card.py) beside the decision."""
    rules = checked_section(EvaluationConfig, "evaluation", json.loads(settings), JudgeError)
    _check_scored(predictions, model, baseline_model)
    candidate_dir = model_dir(model)
    metadata = read_model_metadata(candidate_dir)
    labels, probabilities, baseline_probabilities = read_predictions(predictions, split, label_key)
    evidence = gather_evidence(
        labels, probabilities, baseline_probabilities, list(metadata["class_names"])
    )
    evidence.calibration = calibration_evidence(
        labels, probabilities, baseline_probabilities, metadata.get("calibration")
    )
    evidence.base_weights = metadata.get("base_weights", "")
    evidence.weights_warning = metadata.get("weights_warning", "")
    evidence.baseline = _baseline_description(baseline_model, baseline_mode)
    checksums = model_files.file_checksums(candidate_dir)
    model_fingerprint = model_files.fingerprint(checksums)
    if serving_dir:
        evidence.already_served = model_files.find_served(serving_dir, model.id, model_fingerprint)
    judgement = gate.judge(evidence, rules)

    record = {
        "judgement": judgement.to_dict(),
        "evidence": asdict(evidence),
        "settings": asdict(rules),
        "split": split,
        "fingerprint": model_fingerprint,
    }
    write_json(
        model_blessing.uri,
        JUDGEMENT_FILE,
        {**record, "gallery": read_json(predictions.uri, GALLERY_FILE)},
    )
    write_model_card(
        model_blessing.uri,
        title=title,
        model_id=model.id,
        judgement=record,
        training=read_json(model_run.uri, HISTORY_FILE),
        data_source=data_source,
        counts=read_json(data_gate.uri, DATA_GATE_FILE).get("data"),
        ingestion=read_report(ingestion_report.uri) if ingestion_report is not None else None,
    )
    write_json(
        model_blessing.uri,
        SAMPLE_FILE,
        {**read_json(predictions.uri, SAMPLE_FILE), "files": checksums},
    )
    blessed = judgement.blessed
    model_blessing.set_int_custom_property("blessed", int(blessed))
    model_blessing.set_int_custom_property("current_model_id", model.id)
    model_blessing.set_string_custom_property("current_model", model.uri)
    if baseline_model is not None:
        model_blessing.set_int_custom_property("baseline_model_id", baseline_model.id)
    if evidence.already_served:
        model_blessing.set_string_custom_property(
            "already_served_version", str(evidence.already_served["version"])
        )
    if judgement.random_weights:
        model_blessing.set_string_custom_property("random_weights", judgement.random_weights)
    with fileio.open(
        os.path.join(model_blessing.uri, "BLESSED" if blessed else "NOT_BLESSED"), "w"
    ) as f:
        f.write("")  # the marker file TFX's own Pusher checks
