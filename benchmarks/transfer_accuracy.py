"""Transfer-learning accuracy: random vs ImageNet frozen vs ImageNet fine-tuned, flatten vs gap
head, each with its 95% interval and wall time, on one folder of train/ eval/ test/ splits.

Every contender is the pipeline's own training code (components.model.build_transfer_model and
components.trainer.train: feature cache, phase 1, phase 2, early stopping with best-weights
restore) on the pixels the Transform graph makes (components.preprocessing.images_to_pixels,
centre crop); only TFX and the Evaluator are left out, so many contenders fit in one process.
Accuracy is on test/ (never seen by training or early stopping), with its Wilson interval;
fine-tuned vs frozen is a paired bootstrap over the same test images (components.intervals).
Seconds are the contender's training and test prediction, images already decoded.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras

import components  # noqa: F401  sets TF_USE_LEGACY_KERAS before TensorFlow loads Keras
from benchmarks import common
from components import base_weights, intervals, trainer
from components import model as model_lib
from components.preprocessing import images_to_pixels
from components.settings import TrainingConfig

# name -> (weights, head, fine_tune)
CONTENDERS = {
    "random_flatten": ("none", "flatten", True),
    "imagenet_flatten_frozen": ("imagenet", "flatten", False),
    "imagenet_flatten_finetuned": ("imagenet", "flatten", True),
    "random_gap": ("none", "gap", True),
    "imagenet_gap_frozen": ("imagenet", "gap", False),
    "imagenet_gap_finetuned": ("imagenet", "gap", True),
}


def split_files(root: Path, percentages: list[int]) -> tuple[list[str], dict[str, list]]:
    """(path, label) lists per split: the folder's own train/ eval/ test/, else each class's
    files shuffled with a fixed seed and cut in the given percentages (stratified)."""
    if (root / "train").is_dir():
        classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
        return classes, {
            split: [
                (path, label)
                for label, name in enumerate(classes)
                for path in sorted((root / split / name).iterdir())
                if path.is_file()
            ]
            for split in ("train", "eval", "test")
        }
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    splits: dict[str, list] = {"train": [], "eval": [], "test": []}
    for label, name in enumerate(classes):
        files = sorted(p for p in (root / name).iterdir() if p.is_file())
        order = np.random.default_rng([0, label]).permutation(len(files))
        train_end = round(len(files) * percentages[0] / 100)
        eval_end = train_end + round(len(files) * percentages[1] / 100)
        for split, (start, end) in zip(
            splits, ((0, train_end), (train_end, eval_end), (eval_end, len(files))), strict=True
        ):
            splits[split] += [(files[i], label) for i in order[start:end]]
    return classes, splits


def load_split(files: list, size: int) -> tuple[np.ndarray, np.ndarray]:
    pixels = []
    for start in range(0, len(files), 64):
        chunk = [tf.io.read_file(str(path)) for path, _ in files[start : start + 64]]
        pixels.append(images_to_pixels(tf.stack(chunk), size, "crop").numpy())
    return np.concatenate(pixels), np.array([label for _, label in files], dtype=np.int64)


def run_contender(name: str, data: dict, args: argparse.Namespace, seed: int) -> dict:
    weights_name, head, fine_tune = CONTENDERS[name]
    keras.utils.set_random_seed(seed)
    weights = base_weights.resolve_base_weights(weights_name, say=lambda line: None)
    training = TrainingConfig(
        weights=weights_name,
        head=head,
        epochs=args.epochs,
        fine_tune=fine_tune,
        fine_tune_epochs=args.fine_tune_epochs,
        batch_size=args.batch_size,
        seed=seed,
    )
    start = time.perf_counter()
    transfer = model_lib.build_transfer_model(
        args.image_size, len(data["classes"]), weights, head=head
    )
    datasets = {
        split: tf.data.Dataset.from_tensor_slices(data[split]) for split in ("train", "eval")
    }
    with tempfile.TemporaryDirectory() as logs:
        history = trainer.train(
            transfer,
            datasets["train"],
            datasets["eval"],
            training,
            log_dir=logs,
            strategy=tf.distribute.get_strategy(),
        )
    x_test, y_test = data["test"]
    probabilities = transfer.model.predict(x_test, batch_size=args.batch_size, verbose=0)
    seconds = time.perf_counter() - start
    correct = probabilities.argmax(axis=1) == y_test
    low, high = intervals.wilson_interval(int(correct.sum()), len(correct))
    phase1 = [h for h in history if h.get("phase") == "phase1"]
    return {
        "seconds": seconds,
        "accuracy": float(correct.mean()),
        "ci95": [low, high],
        "n": len(correct),
        "phase1_last_loss": phase1[-1]["loss"] if phase1 else None,
        "phase1_last_val_loss": phase1[-1]["val_loss"] if phase1 else None,
        "correct": correct.astype(int).tolist(),
        "history": history,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--images",
        required=True,
        help="folder with train/ eval/ test/ splits, or of class folders (see --split)",
    )
    parser.add_argument(
        "--split",
        default="60,20,20",
        help="train,eval,test percentages of each class, for a folder without train/",
    )
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--epochs", type=int, default=5, help="phase 1 epochs")
    parser.add_argument("--fine-tune-epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=1, help="seeds per contender")
    parser.add_argument("--only", nargs="*", choices=sorted(CONTENDERS), help="a subset")
    args = parser.parse_args(argv)
    root = Path(args.images)
    classes, files = split_files(root, [int(p) for p in args.split.split(",")])
    data = {"classes": classes}
    for split in ("train", "eval", "test"):
        data[split] = load_split(files[split], args.image_size)
    names = args.only or list(CONTENDERS)
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for seed in range(1, args.repeats + 1):
        for name in names:  # alternating, so a slow spell of the machine hits every contender
            result = run_contender(name, data, args, seed)
            runs[name].append(result)
            print(f"{name} seed {seed}: {common.short(result)} ci95 {result['ci95']}", flush=True)

    summary = {}
    for name, results in runs.items():
        summary[f"{name} accuracy (median)"] = statistics.median(r["accuracy"] for r in results)
        first = results[0]
        summary[f"{name} 95% CI (seed 1)"] = f"{first['ci95'][0]:.3f} to {first['ci95'][1]:.3f}"
        summary[f"{name} seconds (median)"] = statistics.median(r["seconds"] for r in results)
    for head in ("flatten", "gap"):
        tuned, frozen = f"imagenet_{head}_finetuned", f"imagenet_{head}_frozen"
        if tuned in runs and frozen in runs:
            paired = intervals.paired_comparison(
                np.array(runs[tuned][0]["correct"], dtype=bool),
                np.array(runs[frozen][0]["correct"], dtype=bool),
            )
            summary[f"{head}: fine-tuned minus frozen (seed 1, paired 95% CI)"] = (
                f"{paired.difference:+.3f} ({paired.lower:+.3f} to {paired.upper:+.3f})"
            )
    setup = {
        "images": str(root),
        "classes": classes,
        "train/eval/test": [len(data[s][1]) for s in ("train", "eval", "test")],
        "image_size": args.image_size,
        "epochs": args.epochs,
        "fine_tune_epochs": args.fine_tune_epochs,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
    }
    for key, value in summary.items():
        print(f"  {key}: {common.fmt(value)}")
    common.save("transfer_accuracy", setup, runs, summary)


if __name__ == "__main__":
    main()
