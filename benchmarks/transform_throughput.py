"""Transform's image preprocessing vs a plain per-file `tf.io.decode_image` + resize loop.

Three contenders on the same files, in one process that may use every core:
- `transform_fn`: the function the Transform graph runs on every batch
  (`components.preprocessing.images_to_pixels`: decode, crop-resize with antialiasing, to
  uint8), traced once as a tf.function and called on batches of file bytes read inside the
  timing;
- `trainer_input`: the path images take at training time, `trainer.read_examples` over a GZIP
  TFRecord file of tf.Examples holding the files' bytes, as ImageExampleGen writes them
  (written before the timing): parse, the Transform graph's function, pixels;
- `plain_loop`: an eager loop that reads, decodes and resizes one file at a time.
Not measured here: Beam, TFX bookkeeping and ImageExampleGen's checks; the `cache_rerun` and
`scale` benchmarks report those steps' wall seconds from real pipeline runs.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import tensorflow as tf

from benchmarks import common, raw_examples
from components.preprocessing import images_to_pixels


def list_images(folder: str, limit: int | None) -> list[str]:
    files = common.list_images(folder)
    return files[:limit] if limit else files


def project_transform(files: list[str], size: int, batch: int) -> None:
    """images_to_pixels on batches of encoded bytes, as Transform calls it."""
    convert = tf.function(lambda b: images_to_pixels(b, size, "crop"))
    for start in range(0, len(files), batch):
        chunk = [Path(f).read_bytes() for f in files[start : start + batch]]
        convert(tf.constant(chunk)).numpy()


def write_records(files: list[str], path: str) -> None:
    """The files' bytes and class numbers as ImageExampleGen stores them."""
    classes = sorted({Path(f).parent.name for f in files})
    labels = [classes.index(Path(f).parent.name) for f in files]
    raw_examples.write_examples([Path(f).read_bytes() for f in files], labels, path)


def trainer_input(records: str, size: int) -> None:
    """The Trainer's input pipeline, run to the end: records to uint8 pixels."""
    for _ in raw_examples.trainer_input(records, size).batch(256):
        pass


def plain_loop(files: list[str], size: int) -> None:
    """The textbook loop: read, decode, resize, cast, one file at a time."""
    for path in files:
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image = tf.image.resize(image, [size, size])
        tf.cast(image, tf.uint8).numpy()


def timed(fn, images: int, cores: int) -> dict:
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "images_per_s": images / seconds,
        "images_per_s_per_core": images / seconds / cores,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="data/sample", help="folder of class folders")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N files")
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 64])
    parser.add_argument("--batch-size", type=int, default=32, help="Transform's batch")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    files = list_images(args.images, args.limit)
    cores = os.cpu_count() or 1
    runs, summary = {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-transform-") as work:
        records = os.path.join(work, "examples.gz")
        write_records(files, records)
        for size in args.sizes:
            print(f"{size} px: {len(files)} files from {args.images}", flush=True)
            project_transform(files[: args.batch_size], size, args.batch_size)  # warm-up
            contenders = {
                "transform_fn": lambda s=size: timed(
                    lambda: project_transform(files, s, args.batch_size), len(files), cores
                ),
                "trainer_input": lambda s=size: timed(
                    lambda: trainer_input(records, s), len(files), cores
                ),
                "plain_loop": lambda s=size: timed(lambda: plain_loop(files, s), len(files), cores),
            }
            size_runs = common.alternate(contenders, args.repeats)
            runs[f"{size}px"] = size_runs
            per_core = {
                n: common.median_of(r, "images_per_s_per_core") for n, r in size_runs.items()
            }
            for name, value in per_core.items():
                summary[f"{size}px {name} images/s/core"] = value
            plain = per_core["plain_loop"]
            summary[f"{size}px ratio transform/plain"] = per_core["transform_fn"] / plain
            summary[f"{size}px ratio trainer input/plain"] = per_core["trainer_input"] / plain
    setup = {
        "data": args.images,
        "files": len(files),
        "image_sizes": args.sizes,
        "batch_size": args.batch_size,
        "cores": cores,
    }
    notes = (
        "In-process: the Transform graph's per-batch function and the Trainer's input pipeline "
        "(GZIP tf.Example records to pixels) vs a plain eager loop; the function and the loop "
        "read the files inside the timing. Per core = images/s / all cores of the machine "
        "(TensorFlow may use them all on every side). Beam/TFX overhead is not in these figures."
    )
    common.save("transform_throughput", setup, runs, summary, notes)


if __name__ == "__main__":
    main()
