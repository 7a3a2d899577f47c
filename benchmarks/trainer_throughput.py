"""Trainer throughput vs a bare Keras fit on in-memory tensors: same model, batch and images.

The Trainer side runs the project's own input and training functions: the images are written,
PNG-encoded, to a GZIP TFRecord file of tf.Examples the way ExampleGen writes them, and read
back with `trainer.read_examples`, which decodes and resizes them with the Transform graph's
function (every epoch, as the Trainer does), batched with `trainer.training_batches`; cached
phase 1 includes `trainer.cache_base_features`' pass over the base. The bare side is
`model.fit(x, y)` on the same uint8 pixels, as numpy arrays in memory. Base weights are
random (`none`): the speed of a step does not depend on them.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from benchmarks import common, raw_examples
from components import model as model_lib
from components import trainer

NUM_CLASSES = 10
SEED = 0


def synthetic_images(count: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    pixels = rng.integers(0, 256, size=(count, size, size, 3), dtype=np.uint8)
    labels = rng.integers(0, NUM_CLASSES, size=(count,), dtype=np.int64)
    return pixels, labels


def build(size: int) -> model_lib.TransferModel:
    weights = model_lib.BaseWeights(None, "random")
    return model_lib.build_transfer_model(size, NUM_CLASSES, weights)


def trainer_phase1(size, path, batch, epochs, cached: bool, cache_dir: str) -> None:
    transfer = build(size)
    images = raw_examples.trainer_input(path, size)
    if cached:
        cache_file = os.path.join(cache_dir, f"features-{time.monotonic_ns()}")
        extractor = transfer.feature_extractor
        features = trainer.cache_base_features(extractor, images, batch, cache_file)
        model_lib.compile_model(transfer.head, 1e-3)
        batches = trainer.training_batches(features, batch, SEED, augment_images=False)
        transfer.head.fit(batches, epochs=epochs, verbose=0)
    else:
        model_lib.compile_model(transfer.model, 1e-3)
        batches = trainer.training_batches(images, batch, SEED, augment_images=False)
        transfer.model.fit(batches, epochs=epochs, verbose=0)


def trainer_phase2(size, path, batch, epochs) -> None:
    transfer = build(size)
    model_lib.unfreeze_top_blocks(transfer.base, 1)
    model_lib.compile_model(transfer.model, 1e-5)
    images = raw_examples.trainer_input(path, size)
    batches = trainer.training_batches(images, batch, SEED, augment_images=False)
    transfer.model.fit(batches, epochs=epochs, verbose=0)


def bare_fit(size, pixels, labels, batch, epochs, fine_tune: bool) -> None:
    transfer = build(size)
    if fine_tune:
        model_lib.unfreeze_top_blocks(transfer.base, 1)
    model_lib.compile_model(transfer.model, 1e-5 if fine_tune else 1e-3)
    transfer.model.fit(pixels, labels, batch_size=batch, epochs=epochs, shuffle=True, verbose=0)


def timed(fn, images: int) -> dict:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "images_per_s": images / seconds}


def bench_size(size: int, count: int, batch: int, epochs: int, repeats: int, work: str) -> dict:
    pixels, labels = synthetic_images(count, size)
    path = os.path.join(work, f"examples-{size}.tfrecord.gz")
    raw_examples.write_examples(raw_examples.png_bytes(pixels), list(labels), path)
    seen = count * epochs
    contenders = {
        "trainer_phase1_cached": lambda: timed(
            lambda: trainer_phase1(size, path, batch, epochs, True, work), seen
        ),
        "bare_phase1": lambda: timed(
            lambda: bare_fit(size, pixels, labels, batch, epochs, False), seen
        ),
        "trainer_phase1_uncached": lambda: timed(
            lambda: trainer_phase1(size, path, batch, epochs, False, work), seen
        ),
        "trainer_phase2": lambda: timed(lambda: trainer_phase2(size, path, batch, epochs), seen),
        "bare_phase2": lambda: timed(
            lambda: bare_fit(size, pixels, labels, batch, epochs, True), seen
        ),
    }
    print(f"{size} px: {count} images, batch {batch}, {epochs} epochs", flush=True)
    runs = common.alternate(contenders, repeats)
    med = {name: common.median_of(r, "images_per_s") for name, r in runs.items()}
    summary = {f"{size}px {name} images/s": value for name, value in med.items()}
    summary[f"{size}px ratio phase1 cached/bare"] = (
        med["trainer_phase1_cached"] / med["bare_phase1"]
    )
    summary[f"{size}px ratio phase1 uncached/bare"] = (
        med["trainer_phase1_uncached"] / med["bare_phase1"]
    )
    summary[f"{size}px ratio phase2 trainer/bare"] = med["trainer_phase2"] / med["bare_phase2"]
    return {"runs": runs, "summary": summary}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 96], help="image sizes (px)")
    parser.add_argument("--images", type=int, default=256, help="synthetic images")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    runs, summary = {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-trainer-") as work:
        for size in args.sizes:
            result = bench_size(size, args.images, args.batch_size, args.epochs, args.repeats, work)
            runs[f"{size}px"] = result["runs"]
            summary.update(result["summary"])
    setup = {
        "data": f"synthetic uint8 images, {NUM_CLASSES} classes",
        "images": args.images,
        "image_sizes": args.sizes,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "weights": "none (random)",
        "precision": "float32",
    }
    notes = (
        "images/s = images x epochs / wall seconds, model build and compile included for every "
        "contender. Phase 1 bare = full frozen model fit on numpy arrays; cached = the Trainer's "
        "feature-cache pass plus head epochs. Phase 2 = block5 unfrozen, both sides."
    )
    common.save("trainer_throughput", setup, runs, summary, notes)


if __name__ == "__main__":
    main()
