"""Bulk inference: `predict --images DIR --out FILE` (Beam, RunInference, the file checks) against
a bare loop that reads the same files and calls the same signature on batches of the same size.

The model is VGG16 with random weights and the project's own serving signatures, exported with
the preprocessing function called directly (benchmarks/raw_examples.PreprocessingGraph), so no
pipeline run is needed.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np
import tensorflow as tf

from benchmarks import common, raw_examples
from components import export
from components import model as model_lib
from components.export import EXAMPLES_SIGNATURE
from pipeline import bulk_predict

CLASS_NAMES = ["a", "b", "c", "d", "e"]


def export_model(size: int, model_dir: str) -> None:
    transfer = model_lib.build_transfer_model(
        size, len(CLASS_NAMES), model_lib.BaseWeights(None, "random")
    )
    export.export_model(
        transfer.model,
        raw_examples.PreprocessingGraph(size),
        CLASS_NAMES,
        size,
        model_dir,
        {"class_names": CLASS_NAMES, "image_size": size},
        raw_examples.IMAGE_KEY,
    )


def write_images(folder: str, count: int, size: int) -> list[str]:
    rng = np.random.default_rng(0)
    os.makedirs(folder)
    paths = []
    for i in range(count):
        side = int(rng.integers(size, 2 * size))  # not square, not the model's size: resized
        pixels = rng.integers(0, 256, (side, size, 3), dtype=np.uint8)
        path = os.path.join(folder, f"{i:05d}.png")
        tf.io.write_file(path, tf.io.encode_png(pixels))
        paths.append(path)
    return paths


def bare(model_dir: str, paths: list[str], batch_size: int) -> dict:
    model = tf.saved_model.load(model_dir)
    serve = model.signatures[EXAMPLES_SIGNATURE]
    scored = 0
    for start in range(0, len(paths), batch_size):
        examples = []
        for path in paths[start : start + batch_size]:
            data = tf.io.read_file(path).numpy()
            feature = tf.train.Feature(bytes_list=tf.train.BytesList(value=[data]))
            example = tf.train.Example(
                features=tf.train.Features(feature={raw_examples.IMAGE_KEY: feature})
            )
            examples.append(example.SerializeToString())
        scored += len(serve(examples=tf.constant(examples))["probabilities"])
    return {"images": scored}


def bulk(model_dir: str, folder: str, out: str, batch_size: int) -> dict:
    result = bulk_predict.score_folder(
        model_dir,
        folder,
        out,
        batch_size=batch_size,
        beam_args=["--direct_running_mode=in_memory", "--direct_num_workers=1"],
    )
    return {"images": result.scored}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-bulk-") as work:
        model_dir = os.path.join(work, "model")
        export_model(args.image_size, model_dir)
        folder = os.path.join(work, "images")
        paths = write_images(folder, args.images, args.image_size)
        out = os.path.join(work, "predictions.jsonl")
        runs = common.alternate(
            {
                "bare batched call": lambda: bare(model_dir, paths, args.batch_size),
                "predict --images": lambda: bulk(model_dir, folder, out, args.batch_size),
            },
            args.repeats,
        )
    bare_s = common.median_of(runs["bare batched call"], "seconds")
    bulk_s = common.median_of(runs["predict --images"], "seconds")
    summary = {
        "bare images/s": round(args.images / bare_s, 2),
        "bulk images/s": round(args.images / bulk_s, 2),
        "ratio bulk/bare": round(bare_s / bulk_s, 3),
    }
    common.save(
        "bulk_inference",
        setup={**vars(args), "weights": "none", "beam": "DirectRunner in_memory, 1 worker"},
        runs=runs,
        summary=summary,
        notes="Both load the SavedModel and read every file; the bulk path also checks each file "
        "as ingestion does (header, size, decode) and writes the JSONL rows.",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
