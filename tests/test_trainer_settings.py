"""The Trainer's and the Tuner's settings travel as JSON and come back as the typed dataclasses
the command line validated, checked again (a Tuner's value included)."""

import dataclasses
import json

import pytest

from components.trainer_settings import TrainerSettings
from pipeline.config import TrainingConfig, TuningConfig, load_config
from pipeline.pipeline import create_pipeline


def settings(**training) -> TrainerSettings:
    return TrainerSettings(
        training=TrainingConfig(**training),
        image_size=64,
        class_names=["cats", "dogs"],
        raw_image_key="img",
        raw_label_key="cls",
        tuning=TuningConfig(enabled=True, trials=4),
    )


def test_settings_come_back_as_they_went_through_json():
    sent = settings(head="gap", dropout=0.25, epochs=2)
    received = TrainerSettings.from_custom_config(json.loads(json.dumps(sent.to_custom_config())))
    assert received == sent
    assert isinstance(received.training, TrainingConfig)
    assert received.training.head == "gap" and received.tuning.trials == 4


def test_tuned_values_replace_the_configured_ones():
    tuned = {"head": "flatten", "head_units": 256, "learning_rate": 0.003}
    received = TrainerSettings.from_custom_config(settings().to_custom_config(), tuned)
    assert (received.training.head, received.training.head_units) == ("flatten", 256)
    assert received.training.learning_rate == 0.003
    assert received.training.epochs == TrainingConfig().epochs  # the rest as configured


def test_a_value_the_option_does_not_allow_is_refused_by_name():
    with pytest.raises(ValueError) as error:
        TrainerSettings.from_custom_config(
            settings().to_custom_config(), {"learning_rate": -0.1, "dropout": 1.5}
        )
    message = str(error.value)
    assert "training.learning_rate=-0.1 is out of range" in message
    assert "training.dropout=1.5 is out of range" in message


@pytest.mark.parametrize(
    "damage",
    [
        lambda c: c.pop("training"),
        lambda c: c["training"].update(an_option_this_version_lacks=1),
        lambda c: c.update(learning_rate=0.1),  # the old, flat layout
    ],
)
def test_settings_from_another_version_are_refused_saying_so(damage):
    custom_config = settings().to_custom_config()
    damage(custom_config)
    with pytest.raises(ValueError, match="written by another version of the pipeline"):
        TrainerSettings.from_custom_config(custom_config)


def test_the_pipeline_hands_the_trainer_the_validated_training_options(tmp_path):
    config = load_config(
        overrides=[
            f"runtime.root={tmp_path}",
            "training.head=gap",
            "training.dropout=0.3",
            "training.batch_size=7",
            "transform.image_size=48",
        ]
    )
    trainer = {c.id: c for c in create_pipeline(config).components}["Trainer"]
    received = TrainerSettings.from_custom_config(
        json.loads(trainer.exec_properties["custom_config"])
    )
    assert received.training == config.training
    assert dataclasses.asdict(received.training)["batch_size"] == 7
    assert received.image_size == 48
    assert received.class_names == ["animals", "food", "people", "plants", "transportation"]
    assert (received.raw_image_key, received.raw_label_key) == ("image", "label")
