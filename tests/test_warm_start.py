"""training.warm_start=baseline (components/warm_start.py): the new model starts from every
weight of the last blessed model, with the temperature folded into its last layer undone; a
model that is not the same one is refused, naming what differs."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from components import model as model_lib
from components.base_weights import BaseWeights
from components.contract import MODEL_METADATA_FILE
from components.settings import TrainingConfig
from components.warm_start import WarmStartError, warm_start

SIZE, CLASSES = 32, ["cat", "dog", "fox"]
TRAINING = TrainingConfig(warm_start="baseline", head="flatten", head_units=16)


def build(seed: int, classes=CLASSES) -> model_lib.TransferModel:
    tf.keras.utils.set_random_seed(seed)
    return model_lib.build_transfer_model(
        SIZE, len(classes), BaseWeights(None, "random"), head="flatten", head_units=16
    )


@pytest.fixture(scope="module")
def blessed(tmp_path_factory):
    """A 'blessed model' as the Trainer exports it: a SavedModel of the Keras model, with a
    temperature of 4 folded into its last layer and recorded in its metadata."""
    transfer = build(seed=1)
    model_lib.fold_temperature(transfer.model, 4.0)
    folder = str(tmp_path_factory.mktemp("blessed") / "model")
    tf.saved_model.save(transfer.model, folder)
    os.makedirs(os.path.dirname(os.path.join(folder, MODEL_METADATA_FILE)), exist_ok=True)
    metadata = {
        "class_names": CLASSES,
        "image_size": SIZE,
        "training_config": {"head": "flatten", "head_units": 16},
        "calibration": {"temperature": 4.0},
    }
    with open(os.path.join(folder, MODEL_METADATA_FILE), "w") as f:
        json.dump(metadata, f)
    return folder, transfer


def test_every_weight_comes_from_the_blessed_model_with_its_temperature_undone(blessed):
    folder, old = blessed
    new = build(seed=2)
    head = "head_dense"
    before = new.head.get_layer(head).kernel.numpy()
    assert not np.allclose(before, old.head.get_layer(head).kernel.numpy())
    found = warm_start(new, TRAINING, folder, CLASSES, SIZE)
    assert found == {"from": folder, "temperature_undone": 4.0}
    for mine, theirs in zip(new.model.weights, old.model.weights, strict=True):
        if "probabilities" in mine.name:  # the last layer: the folded temperature undone
            np.testing.assert_allclose(mine.numpy(), theirs.numpy() * 4.0, rtol=1e-6)
        else:  # the base, block5 and the hidden layer of the head, as blessed
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_a_different_model_is_refused_naming_what_differs(blessed):
    folder, _ = blessed
    other = ["cat", "dog", "fox", "owl"]
    with pytest.raises(WarmStartError, match=r"class_names \['cat', 'dog', 'fox'\] there"):
        warm_start(build(seed=3, classes=other), TRAINING, folder, other, SIZE)
    with pytest.raises(WarmStartError, match="image_size 32 there, 64 here"):
        warm_start(build(seed=3), TRAINING, folder, CLASSES, 64)


def test_off_or_nothing_blessed_starts_from_the_base_weights(blessed):
    folder, _ = blessed
    assert warm_start(build(seed=4), TrainingConfig(), folder, CLASSES, SIZE) == {
        "from": "base_weights"
    }
    assert warm_start(build(seed=4), TRAINING, None, CLASSES, SIZE) == {
        "from": "base_weights",
        "why": "no model blessed yet",
    }
