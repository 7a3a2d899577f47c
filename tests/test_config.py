"""The typed configuration: defaults, a YAML file, command-line overrides, and clear errors."""

import pytest

from pipeline.config import ConfigError, PipelineConfig, iter_options, load_config


def test_defaults_are_the_documented_recipe():
    config = PipelineConfig()
    assert config.training.weights == "imagenet"
    assert config.training.head == "flatten"
    assert config.training.fine_tune and config.training.fine_tune_blocks == 1
    assert config.training.fine_tune_learning_rate == 1e-5
    assert config.transform.image_size == 224
    assert config.runtime.enable_cache
    assert config.metadata_path.endswith("metadata.sqlite")
    assert config.serving_dir.endswith("serving")


def test_yaml_file_then_overrides_in_that_order(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("training:\n  epochs: 7\n  learning_rate: 0.01\ndata:\n  class_names: [a, b]\n")
    config = load_config(str(path), ["training.epochs=9", "runtime.enable_cache=false"])
    assert config.training.epochs == 9  # the override wins
    assert config.training.learning_rate == 0.01  # from the file
    assert config.data.class_names == ["a", "b"]
    assert config.runtime.enable_cache is False


def test_override_values_are_typed():
    config = load_config(
        overrides=[
            "evaluation.min_accuracy=1",
            "data.class_names=cat,dog",
            "data.split_buckets={train: 3, eval: 1}",
        ]
    )
    assert config.evaluation.min_accuracy == 1.0 and isinstance(
        config.evaluation.min_accuracy, float
    )
    assert config.data.class_names == ["cat", "dog"]
    assert config.data.split_buckets == {"train": 3, "eval": 1}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.epoch=3", "training has: "),
        ("train.epochs=3", "sections are: "),
        ("training.epochs=three", "expected int"),
        ("training.fine_tune=maybe", "expected true or false"),
        ("training.epochs", "must look like section.name=value"),
    ],
)
def test_bad_overrides_say_what_is_wrong(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[override])


def test_validate_lists_every_problem(tmp_path):
    config = load_config(
        overrides=[
            "transform.image_size=16",
            "training.head=dense",
            f"data.images={tmp_path / 'missing'}",
        ]
    )
    with pytest.raises(ConfigError) as raised:
        config.validate()
    message = str(raised.value)
    assert "VGG16 needs 32+" in message
    assert "'flatten' or 'gap'" in message
    assert "is not a folder" in message


def test_every_option_has_help():
    options = list(iter_options())
    assert len(options) > 30
    assert all(help_text for _, _, help_text in options)
