"""The Scorer reads the judged split in batches: its scores and the examples it keeps (thumbnails,
the smoke test's sample) without holding the split in memory; its predictions, written as
tf.Examples, read back as they were."""

import numpy as np
import pytest
import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts

from components import scorer


def examples_artifact(tmp_path, labels: list[int]) -> standard_artifacts.Examples:
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    examples.split_names = artifact_utils.encode_split_names(["test"])
    folder = tmp_path / "examples" / "Split-test"
    folder.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(folder / "data.gz"), options="GZIP") as writer:
        for i, label in enumerate(labels):
            feature = {
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                "n": tf.train.Feature(int64_list=tf.train.Int64List(value=[i])),
            }
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())
    return examples


class FakeModel:
    """A serving_default that gives example n the probabilities [n / N, 1 - n / N]."""

    def __init__(self, total: int):
        def serve(examples):
            n = tf.io.parse_example(examples, {"n": tf.io.FixedLenFeature([1], tf.int64)})["n"]
            p = tf.cast(n, tf.float32) / total
            return {"probabilities": tf.concat([p, 1 - p], axis=1)}

        self.signatures = {scorer.EXAMPLES_SIGNATURE: serve}


def test_scores_and_kept_examples_come_from_batches_in_file_order(tmp_path):
    total = 2 * scorer.PREDICT_BATCH + 5  # three batches, the last short
    labels = [i % 2 for i in range(total)]
    examples = examples_artifact(tmp_path, labels)

    found, (first, second) = scorer.score_split(
        examples, "test", "label", [FakeModel(total), FakeModel(2 * total)]
    )

    np.testing.assert_array_equal(found, labels)
    assert first.shape == second.shape == (total, 2)
    np.testing.assert_allclose(first[:, 0], np.arange(total) / total)
    kept = scorer.records_at(examples, "test", {0, scorer.PREDICT_BATCH + 1, total - 1})
    assert sorted(kept) == [0, scorer.PREDICT_BATCH + 1, total - 1]
    for position, record in kept.items():
        assert scorer._feature(record, "n").int64_list.value[0] == position


def test_gallery_picks_the_most_confident_mistakes_and_right_answers_per_class():
    labels = np.array([0, 0, 1, 1, 0])
    probabilities = np.array(
        [[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4], [0.55, 0.45]]
    )  # right, wrong (0.8), right, wrong (0.6), right

    picks = scorer.gallery_picks(labels, probabilities, num_classes=2)

    assert picks["mistakes"] == [1, 3]  # most confident first
    assert picks["correct"] == [0, 4, 2]  # class 0 by confidence, then class 1


def test_predictions_read_back_in_order_with_and_without_a_baseline(tmp_path):
    labels = np.array([2, 0, 1, 1, 0])
    candidate = np.random.default_rng(0).dirichlet([1, 1, 1], size=5).astype(np.float32)
    baseline = candidate[::-1].copy()
    for name, models in (("both", [candidate, baseline]), ("alone", [candidate])):
        predictions = standard_artifacts.Examples()
        predictions.uri = str(tmp_path / name)
        predictions.split_names = artifact_utils.encode_split_names(["test"])
        split = tmp_path / name / "Split-test"
        split.mkdir(parents=True)
        scorer.write_predictions(str(split / scorer.PREDICTIONS_FILE), "label", labels, models)

        found, first, second = scorer.read_predictions(predictions, "test", "label")

        np.testing.assert_array_equal(found, labels)
        np.testing.assert_array_equal(first, candidate)
        if name == "both":
            np.testing.assert_array_equal(second, baseline)
        else:
            assert second is None


def test_a_judged_split_without_examples_is_refused_by_name(tmp_path):
    examples = examples_artifact(tmp_path, [])  # a file, but no record in it
    with pytest.raises(scorer.ScorerError, match="judged split 'test' holds no examples"):
        scorer.score_split(examples, "test", "label", [FakeModel(1)])
