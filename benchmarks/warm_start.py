"""Warm start against cold start: retraining on new data from the last blessed model
(training.warm_start=baseline) or from ImageNet, time and epochs to the same validation accuracy.

Run A trains on the old data (the first --old-per-class images of each class) and is blessed.
Then, each on its own copy of A's root, the new data (every image) is trained cold and warm with
the same settings. Each run's history.json gives every epoch's validation accuracy and seconds;
the target is the cold run's best validation accuracy, and each run is timed from the start of
the Trainer's work (the feature cache included) to the end of its first epoch at or above it.

    .venv/bin/python -m benchmarks.warm_start                  # the sample, 96 px
    .venv/bin/python -m benchmarks.warm_start --image-size 224
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import tempfile

from benchmarks import common


def time_to(history: list[dict], target: float) -> tuple[float | None, int | None]:
    """(seconds, epochs) from the start of training to the end of the first epoch whose
    validation accuracy reaches target; (None, None) when none does."""
    seconds, epochs = 0.0, 0
    for entry in history:
        seconds += entry.get("seconds", 0.0)
        if "epoch" in entry:
            epochs += 1
            if entry.get("val_accuracy", 0.0) >= target - 1e-9:
                return seconds, epochs
    return None, None


def old_data(images: str, per_class: int, folder: str) -> str:
    """The first per_class images of each class folder, copied (the user's data is not
    touched)."""
    for class_dir in sorted(glob.glob(os.path.join(images, "*", ""))):
        name = os.path.basename(os.path.dirname(class_dir))
        os.makedirs(os.path.join(folder, name))
        for path in sorted(glob.glob(os.path.join(class_dir, "*")))[:per_class]:
            shutil.copy(path, os.path.join(folder, name))
    return folder


def history_of(root: str) -> dict:
    newest = max(glob.glob(os.path.join(root, "artifacts/Trainer/model_run/*/history.json")),
                 key=os.path.getmtime)  # fmt: skip
    with open(newest) as f:
        return json.load(f)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="data/sample", help="folder of class folders")
    parser.add_argument("--old-per-class", type=int, default=35)
    parser.add_argument("--image-size", type=int, default=96)
    args = parser.parse_args(argv)
    settings = [
        f"transform.image_size={args.image_size}",
        # Bless A whatever it scores (its small test split has classes with 1 or 2 images):
        # the runs are compared through their validation accuracy and time, not the gate.
        "evaluation.min_accuracy=0",
        "evaluation.beat_majority_class=false",
        "evaluation.min_examples=1",
        "evaluation.min_examples_per_class=0",
        "export.tflite_variants=[]",
        "training.early_stopping_patience=0",
    ]
    runs = {}
    with tempfile.TemporaryDirectory(prefix="bench-warm-") as work:
        first = os.path.join(work, "first")
        old = old_data(args.images, args.old_per_class, os.path.join(work, "old"))
        runs["old data, cold"] = common.run_pipeline(first, old, settings)
        for name, mode in (("new data, cold", "off"), ("new data, warm", "baseline")):
            root = os.path.join(work, name.replace(", ", "-").replace(" ", "_"))
            shutil.copytree(first, root)
            extra = [f"training.warm_start={mode}"]
            runs[name] = common.run_pipeline(root, args.images, settings + extra)
            history = history_of(root)
            started = history.get("warm_start", {}).get("from")
            if (mode == "baseline") != (started not in (None, "base_weights")):
                raise RuntimeError(f"{name}: started from {started!r}; is run A blessed?")
            runs[name]["history"] = history["history"]
    cold, warm = (runs[n]["history"] for n in ("new data, cold", "new data, warm"))
    target = max(e.get("val_accuracy", 0.0) for e in cold)
    cold_s, cold_epochs = time_to(cold, target)
    warm_s, warm_epochs = time_to(warm, target)
    summary = {
        "target: the cold run's best val accuracy": target,
        "cold: s to the target": cold_s,
        "cold: epochs to the target": cold_epochs,
        "warm: s to the target": warm_s,
        "warm: epochs to the target": warm_epochs,
        "warm: best val accuracy": max(e.get("val_accuracy", 0.0) for e in warm),
        "warm: val accuracy after its first epoch": next(
            e["val_accuracy"] for e in warm if "val_accuracy" in e
        ),
        "cold: val accuracy after its first epoch": next(
            e["val_accuracy"] for e in cold if "val_accuracy" in e
        ),
        "ratio warm/cold s to the target": warm_s / cold_s if warm_s and cold_s else None,
        **{f"{name}: accuracy": run["accuracy"] for name, run in runs.items()},
    }
    for key, value in summary.items():
        print(f"{key}: {common.fmt(value)}")
    common.save(
        "warm_start",
        {"images": args.images, "old_per_class": args.old_per_class, "settings": settings},
        {name: [{k: v for k, v in run.items() if k != "history"}] for name, run in runs.items()},
        summary,
        notes="Issue 26: retraining on new data from the last blessed model.",
    )


if __name__ == "__main__":
    main()
