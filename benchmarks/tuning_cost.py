"""What tuning costs: the Tuner's work (the frozen base's features computed once, then N trials of
head training on them) against one forward pass of the frozen base over the same images.

In process, synthetic images, random base weights (speed does not depend on the weights). Both
contenders see the training and the evaluation images, as the Tuner does.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import tensorflow as tf

from benchmarks import common
from components import model as model_lib
from components import trainer
from components import tuner as tuner_lib

CLASSES = 5


def images(count: int, size: int, seed: int) -> tf.data.Dataset:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8)
    labels = rng.integers(0, CLASSES, count).astype(np.int64)
    return tf.data.Dataset.from_tensor_slices((pixels, labels))


def forward_pass(transfer, data: dict, batch_size: int) -> dict:
    for split in data.values():
        for batch, _ in split.batch(batch_size):
            transfer.feature_extractor(batch, training=False)
    return {}


def tuning(transfer, data: dict, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-tuning-") as work:
        start = time.perf_counter()
        features = {
            name: trainer.cache_base_features(
                transfer.feature_extractor, split, args.batch_size, os.path.join(work, name)
            )
            for name, split in data.items()
        }
        feature_seconds = time.perf_counter() - start
        search = tuner_lib.HeadSearch(
            oracle=tuner_lib.make_oracle(args.search, args.trials, seed=0),
            feature_shape=tuple(transfer.base.output_shape[1:]),
            num_classes=CLASSES,
            defaults={"head": "flatten", "head_units": 1024, "dropout": 0.5, "learning_rate": 1e-3},
            directory=work,
            project_name="bench",
        )
        search.search(
            train_features=features["train"],
            eval_features=features["eval"],
            epochs=args.epochs_per_trial,
            batch_size=args.batch_size,
            seed=0,
        )
        return {
            "feature seconds": feature_seconds,
            "search seconds": time.perf_counter() - start - feature_seconds,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="training images")
    parser.add_argument("--eval-images", type=int, default=200)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs-per-trial", type=int, default=3)
    parser.add_argument("--search", choices=tuner_lib.SEARCHES, default="random")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)

    data = {
        "train": images(args.images, args.image_size, 0),
        "eval": images(args.eval_images, args.image_size, 1),
    }
    transfer = model_lib.build_transfer_model(
        args.image_size, CLASSES, model_lib.BaseWeights(None, "random")
    )
    runs = common.alternate(
        {
            "forward pass": lambda: forward_pass(transfer, data, args.batch_size),
            "tuning": lambda: tuning(transfer, data, args),
        },
        args.repeats,
    )
    forward = common.median_of(runs["forward pass"], "seconds")
    tuned = common.median_of(runs["tuning"], "seconds")
    summary = {
        "forward pass s": round(forward, 1),
        "tuning s": round(tuned, 1),
        "search s (trials only)": round(common.median_of(runs["tuning"], "search seconds"), 1),
        "ratio tuning/forward": round(tuned / forward, 3),
    }
    common.save(
        "tuning_cost",
        setup={**vars(args), "classes": CLASSES, "weights": "none"},
        runs=runs,
        summary=summary,
        notes="Both contenders run the frozen base over the training and evaluation images; "
        "tuning then runs every trial on the cached features (trials draw the head, units, "
        "dropout and learning rate from components/tuner.py's search space).",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
