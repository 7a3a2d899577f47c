"""What create_pipeline needs before it wires the steps: class names by the one rule, and the
baseline looked up only by a pipeline that goes as far as the Judge."""

from pathlib import Path

import pytest

from pipeline.config import ConfigError, load_config
from pipeline.inputs import resolve_inputs

REPO = Path(__file__).resolve().parents[1]
SCHEMA = str(REPO / "data" / "sample_schema.pbtxt")


def config_for(tmp_path, *overrides: str):
    return load_config(
        overrides=[f"runtime.root={tmp_path / 'runs'}", f"data.schema={SCHEMA}", *overrides]
    )


def test_the_sample_schema_names_the_classes_and_the_raw_features(tmp_path):
    inputs = resolve_inputs(config_for(tmp_path))
    assert inputs.class_names == ["animals", "food", "people", "plants", "transportation"]
    assert (inputs.image_key, inputs.label_key) == ("image", "label")
    assert inputs.serving_dir == str(tmp_path / "runs" / "serving")


def test_a_served_version_that_is_not_there_stops_only_a_run_that_judges(tmp_path):
    config = config_for(tmp_path, "evaluation.baseline=1234")
    with pytest.raises(ConfigError, match="--baseline 1234: .* holds no version 1234"):
        resolve_inputs(config)
    assert resolve_inputs(config, judging=False).baseline_model_id == 0  # --stop-after data


def test_class_names_that_disagree_with_the_schema_are_refused(tmp_path):
    config = config_for(tmp_path, "data.class_names=food,animals,people,plants,transportation")
    with pytest.raises(ConfigError, match="must be the same, in the same order"):
        resolve_inputs(config)
