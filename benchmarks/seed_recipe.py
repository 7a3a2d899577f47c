"""The seed recipe as a plain Keras script: the baseline the pipeline is compared against.

VGG16(include_top=False), base frozen, Flatten -> Dense(1024, relu) -> Dense(N, softmax), Adam,
categorical cross-entropy on one-hot labels; images loaded into memory from `train/` and `eval/`
class folders, fit for E epochs, then evaluated on `eval/`. Prints one JSON line with the wall
seconds of the whole script (imports included) and the evaluation accuracy.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse
import json
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras

EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".bmp"}


def load_split(folder: Path, classes: list[str], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Every image of the class folders, decoded to RGB and resized, with one-hot labels."""
    images, labels = [], []
    for index, name in enumerate(classes):
        for path in sorted((folder / name).iterdir()):
            if path.suffix.lower() not in EXTENSIONS:
                continue
            image = tf.io.decode_image(path.read_bytes(), channels=3, expand_animations=False)
            images.append(tf.image.resize(image, [size, size]).numpy())
            labels.append(index)
    x = keras.applications.vgg16.preprocess_input(np.stack(images))
    y = keras.utils.to_categorical(labels, num_classes=len(classes))
    return x, y


def head_layers(num_classes: int) -> list[keras.layers.Layer]:
    """The seed's head: Flatten -> Dense(1024, relu) -> Dense(N, softmax)."""
    return [
        keras.layers.Flatten(),
        keras.layers.Dense(1024, activation="relu"),
        keras.layers.Dense(num_classes, activation="softmax"),
    ]


def build_model(size: int, num_classes: int, weights: str | None) -> keras.Model:
    base = keras.applications.VGG16(include_top=False, weights=weights, input_shape=(size, size, 3))
    base.trainable = False
    model = keras.Sequential([base, *head_layers(num_classes)])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", required=True, help="folder with train/ and eval/ splits")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--weights",
        default="none",
        help="`imagenet` (found or provisioned as the pipeline does), `none` or an .h5 path",
    )
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    root = Path(args.images)
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    x_train, y_train = load_split(root / "train", classes, args.image_size)
    x_eval, y_eval = load_split(root / "eval", classes, args.image_size)
    weights = None if args.weights == "none" else args.weights
    if weights == "imagenet":  # Keras' own file, else the project's checked conversion
        from components.base_weights import imagenet_weights

        weights = imagenet_weights(say=lambda line: None).path
    model = build_model(args.image_size, len(classes), weights)
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=2)
    _, accuracy = model.evaluate(x_eval, y_eval, batch_size=args.batch_size, verbose=0)
    result = {
        "seconds": time.perf_counter() - STARTED,
        "accuracy": float(accuracy),
        "train_images": len(x_train),
        "eval_images": len(x_eval),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
