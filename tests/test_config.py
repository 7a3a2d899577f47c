"""The typed configuration: defaults, a YAML file, command-line overrides, and clear errors."""

import dataclasses
import typing

import pytest

from pipeline.config import ConfigError, PipelineConfig, _sections, iter_options, load_config


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
        ("training.epochs=three", "expected a whole number"),
        ("training.fine_tune=maybe", "expected true or false"),
        ("training.epochs", "must look like section.name=value"),
    ],
)
def test_bad_overrides_say_what_is_wrong(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[override])


def test_validate_lists_every_problem_one_line_each():
    config = load_config(
        overrides=["transform.image_size=16", "training.head=dense", "training.batch_size=0"]
    )
    with pytest.raises(ConfigError) as raised:
        config.validate()
    assert raised.value.lines == [
        "transform.image_size=16 is out of range; allowed: >= 32",
        "training.head='dense' is not allowed; use one of flatten, gap",
        "training.batch_size=0 is out of range; allowed: >= 1",
    ]


def test_the_defaults_are_valid():
    assert PipelineConfig().problems() == []


def test_every_number_declares_its_range():
    """New numeric options must say what they allow, so validation stays complete."""
    config = PipelineConfig()
    for section_name, section in _sections(config).items():
        hints = typing.get_type_hints(type(section))
        for f in dataclasses.fields(section):
            if hints[f.name] in (int, float):
                bounds = [f.metadata.get(k) for k in ("minimum", "maximum", "above", "below")]
                assert any(b is not None for b in bounds), f"{section_name}.{f.name}: no range"


@pytest.mark.parametrize(
    ("yaml_text", "key", "value"),
    [
        ("training:\n  mixed_precision: off\n", "mixed_precision", "off"),  # YAML 1.1 bool
        ("training:\n  mixed_precision: on\n", "mixed_precision", "on"),
        ("training:\n  fine_tune_learning_rate: 1e-5\n", "fine_tune_learning_rate", 1e-5),
    ],
)
def test_yaml_quirks_still_mean_what_was_written(tmp_path, yaml_text, key, value):
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    assert getattr(load_config(str(path)).training, key) == value


def test_an_override_written_1e_5_is_a_number():
    config = load_config(overrides=["training.fine_tune_learning_rate=1e-5"])
    assert config.training.fine_tune_learning_rate == 1e-5


def test_yaml_syntax_error_names_file_line_and_column(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("training:\n  epochs: 3\n  head: gap: x\n")
    with pytest.raises(ConfigError, match=rf"^{path}:3:12: YAML syntax error: mapping values"):
        load_config(str(path))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.class_names=[1, 2]", "expected str values, got 1"),
        ("data.split_buckets={train: 1, eval: x}", "expected int values, got 'x'"),
        ("training.seed=true", "expected a whole number, got True"),
    ],
)
def test_container_items_and_booleans_are_type_checked(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[override])


def test_every_option_has_help():
    options = list(iter_options())
    assert len(options) > 30
    assert all(help_text for _, _, help_text in options)


def test_a_section_handed_to_a_step_is_checked_again_there():
    from components.options import checked_section
    from components.settings import TransformConfig

    assert checked_section(TransformConfig, "transform", {"image_size": 64}).image_size == 64
    with pytest.raises(
        ValueError, match=r"^Transform settings not allowed: transform.image_size=8"
    ):
        checked_section(TransformConfig, "transform", {"image_size": 8})
    with pytest.raises(KeyError, match="Transform settings not allowed"):
        checked_section(TransformConfig, "transform", {"resize": "stretch"}, KeyError)
