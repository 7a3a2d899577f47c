"""The Judge's evidence comes from the predictions alone, and it refuses predictions of
another model than the one it judges."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from tfx.types import standard_artifacts

from components import judge


def test_the_evidence_counts_each_figure_from_the_predictions():
    labels = np.array([0, 0, 0, 1, 1, 2])
    probabilities = np.array(
        [
            [0.8, 0.1, 0.1],  # right
            [0.6, 0.3, 0.1],  # right
            [0.2, 0.7, 0.1],  # wrong: 1
            [0.1, 0.8, 0.1],  # right
            [0.5, 0.4, 0.1],  # wrong: 0
            [0.1, 0.2, 0.7],  # right
        ]
    )
    baseline = np.roll(probabilities, 1, axis=0)

    evidence = judge.gather_evidence(labels, probabilities, baseline, ["a", "b", "c"])

    assert (evidence.accuracy.value, evidence.accuracy.n) == (4 / 6, 6)
    assert evidence.examples_per_class == [3, 2, 1]
    assert [(r.value, r.n) for r in evidence.recall] == [(2 / 3, 3), (1 / 2, 2), (1.0, 1)]
    assert [(p.value, p.n) for p in evidence.precision] == [(2 / 3, 3), (1 / 2, 2), (1.0, 1)]
    expected_auc = roc_auc_score(labels, probabilities, multi_class="ovr", average="macro")
    assert evidence.auc.value == pytest.approx(expected_auc)
    paired = evidence.paired
    assert paired.n == 6
    assert paired.difference == pytest.approx(
        (probabilities.argmax(1) == labels).mean() - (baseline.argmax(1) == labels).mean()
    )


def test_predictions_that_do_not_fit_the_model_are_refused():
    with pytest.raises(judge.JudgeError, match="do not fit the model"):
        judge.gather_evidence(np.array([0, 1]), np.ones((2, 3)) / 3, None, ["a", "b"])


def _artifact(kind, artifact_id: int, **properties):
    artifact = kind()
    artifact.id = artifact_id
    artifact.uri = f"/artifacts/{artifact_id}"
    for name, value in properties.items():
        artifact.set_int_custom_property(name, value)
    return artifact


def test_predictions_of_another_model_or_baseline_decide_nothing():
    model = _artifact(standard_artifacts.Model, 7)
    baseline = _artifact(standard_artifacts.Model, 3)
    scored = _artifact(standard_artifacts.Examples, 9, model_id=7, baseline_model_id=3)
    judge._check_scored(scored, model, baseline)  # the same models: no error

    with pytest.raises(judge.JudgeError, match="of model 7 and baseline 3.*given model 7 and "):
        judge._check_scored(scored, model, None)
    alone = _artifact(standard_artifacts.Examples, 10, model_id=5)
    with pytest.raises(judge.JudgeError, match="of model 5 and baseline None"):
        judge._check_scored(alone, model, None)
