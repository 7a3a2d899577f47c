"""Runs the Trainer's run_fn in a process of its own and prints each run's model metadata as one
JSON line. A process of its own because TensorFlow fixes its devices, and a multi-worker
strategy its collective ops, when it first starts in a process: splitting the CPU into two
logical devices, or reading TF_CONFIG, must come before anything else runs TensorFlow.

    python tests/trainer_in_subprocess.py OUT TRANSFORM_GRAPH RECORDS DEVICES RUNS_JSON

TRANSFORM_GRAPH and RECORDS: a Transform graph folder and the raw examples (a file pattern),
read for both training and validation. DEVICES: logical CPU devices to make (1 leaves the CPU
as it is). RUNS_JSON: a list of training-option overrides, one run_fn call each (e.g.
[{"distribution": "mirrored"}]). Used by tests/test_distributed_training.py.
"""

import json
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS.parent))

# isort: off
import components  # noqa: E402, F401  first: sets TF_USE_LEGACY_KERAS before TensorFlow loads
import tensorflow as tf  # noqa: E402

# isort: on


def split_cpu(devices: int) -> None:
    if devices > 1:
        (cpu,) = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)]
        )


def main(out: Path, transform_graph: str, records: str, devices: int, runs: list[dict]) -> None:
    split_cpu(devices)
    from tfx.components.trainer.fn_args_utils import FnArgs

    from components import export, trainer
    from components.settings import TrainingConfig
    from components.trainer_settings import TrainerSettings

    for index, overrides in enumerate(runs):
        training = TrainingConfig(
            weights="none",
            epochs=1,
            fine_tune_epochs=1,
            # 3 examples, one batch: every replica gets some (oneDNN's CPU convolution fails
            # on a replica's empty share of a last, short batch).
            batch_size=3,
            early_stopping_patience=0,
            **overrides,
        )
        settings = TrainerSettings(
            training=training,
            image_size=32,
            class_names=["a", "b", "c"],
            raw_image_key="image",
            raw_label_key="label",
        )
        run = out / f"run{index}"
        trainer.run_fn(
            FnArgs(
                train_files=[records],
                eval_files=[records],
                transform_output=transform_graph,
                serving_model_dir=str(run / "serving"),
                model_run_dir=str(run / "run"),
                custom_config=settings.to_custom_config(),
            )
        )
        history = json.loads((run / "run" / trainer.HISTORY_FILE).read_text())["history"]
        print(
            "RESULT "
            + json.dumps(
                {
                    "overrides": overrides,
                    "metadata": export.read_model_metadata(str(run / "serving")),
                    "phases": [entry["phase"] for entry in history],
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    out, transform_graph, records, devices, runs = sys.argv[1:]
    main(Path(out), transform_graph, records, int(devices), json.loads(runs))
