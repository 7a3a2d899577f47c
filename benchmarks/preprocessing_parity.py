"""Does the pipeline's preprocessing train a worse head than the seed recipe's? The same frozen
ImageNet VGG16 features computed both ways, the seed's head trained on each over several seeds.

The seed script resizes with `tf.image.resize` (bilinear, float, no antialiasing); the pipeline's
Transform graph (components.preprocessing.images_to_pixels) crops the centre with antialiasing
and rounds to uint8. Both then apply VGG16's caffe preprocessing and the frozen base once; the
seed's head (Flatten, Dense(1024, relu), Dense(N, softmax), Adam 1e-3) is trained for E epochs
on each set of features with every seed, and scored on eval/. seed_vs_pipeline runs each
contender with one fixed seed; this separates the preprocessing from the head's own variance.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras

import components  # noqa: F401  sets TF_USE_LEGACY_KERAS before TensorFlow loads Keras
from benchmarks import common, seed_recipe
from components import base_weights
from components.preprocessing import images_to_pixels


def features(root: Path, split: str, classes: list[str], base, size: int) -> dict:
    files = [(p, i) for i, c in enumerate(classes) for p in sorted((root / split / c).iterdir())]
    raw = [tf.io.read_file(str(path)) for path, _ in files]
    seed_pixels = np.stack(
        [
            tf.image.resize(tf.io.decode_image(r, channels=3, expand_animations=False), [size] * 2)
            for r in raw
        ]
    )
    pipeline_pixels = np.concatenate(
        [images_to_pixels(tf.stack(raw[i : i + 64]), size, "crop") for i in range(0, len(raw), 64)]
    ).astype(np.float32)
    out = {"labels": np.array([label for _, label in files])}
    for way, pixels in (("seed", seed_pixels), ("pipeline", pipeline_pixels)):
        batch = keras.applications.vgg16.preprocess_input(pixels)
        out[way] = base.predict(batch, batch_size=32, verbose=0)
    out["largest pixel difference"] = float(np.abs(seed_pixels - pipeline_pixels).max())
    out["mean relative feature difference"] = float(
        np.abs(out["seed"] - out["pipeline"]).mean() / np.abs(out["seed"]).mean()
    )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", required=True, help="folder with train/ and eval/ splits")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    root = Path(args.images)
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    weights = base_weights.imagenet_weights(say=print).path
    size = args.image_size
    base = keras.applications.VGG16(include_top=False, weights=weights, input_shape=(size, size, 3))
    start = time.perf_counter()
    data = {split: features(root, split, classes, base, size) for split in ("train", "eval")}
    feature_seconds = time.perf_counter() - start
    runs: dict[str, list[dict]] = {"seed": [], "pipeline": []}
    for seed in range(1, args.seeds + 1):
        for way in runs:
            keras.utils.set_random_seed(seed)
            head = keras.Sequential(
                [keras.Input(data["train"][way].shape[1:]), *seed_recipe.head_layers(len(classes))]
            )
            head.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
            fit = head.fit(
                data["train"][way], data["train"]["labels"], epochs=args.epochs, verbose=0
            )
            _, accuracy = head.evaluate(data["eval"][way], data["eval"]["labels"], verbose=0)
            result = {"seed": seed, "accuracy": float(accuracy), "loss": fit.history["loss"][-1]}
            runs[way].append(result)
            print(f"{way} preprocessing, seed {seed}: {common.short(result)}", flush=True)
    summary = {}
    for way, results in runs.items():
        accuracies = [r["accuracy"] for r in results]
        summary[f"{way} preprocessing accuracy (mean of seeds)"] = statistics.mean(accuracies)
        low, high = min(accuracies), max(accuracies)
        summary[f"{way} preprocessing accuracy range"] = f"{low:.3f} to {high:.3f}"
        losses = [r["loss"] for r in results]
        summary[f"{way} last training loss range"] = f"{min(losses):.3f} to {max(losses):.3f}"
    summary["largest pixel difference"] = data["train"]["largest pixel difference"]
    summary["mean relative feature difference"] = data["train"]["mean relative feature difference"]
    summary["feature seconds (both ways, both splits)"] = feature_seconds
    setup = {
        "images": str(root),
        "train/eval": [len(data[s]["labels"]) for s in ("train", "eval")],
        "image_size": size,
        "epochs": args.epochs,
        "seeds": args.seeds,
        "weights": "imagenet (components/base_weights.py)",
    }
    for key, value in summary.items():
        print(f"  {key}: {common.fmt(value)}")
    common.save("preprocessing_parity", setup, runs, summary)


if __name__ == "__main__":
    main()
