"""Writes Debian's Fashion-MNIST as PNG files in class folders, for benchmark runs.

Run from the repository root: ``python -m data.materialize_fashion_mnist --out build/fashion-mnist``
(or ``make fashion-mnist``). The training set goes to train/, the t10k test set to eval/.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import time
from pathlib import Path

import numpy as np
from PIL import Image

CLASS_NAMES = (
    "t-shirt_top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle_boot",
)
# Output split name -> file prefix in the Debian package.
SPLITS = {"train": "train", "eval": "t10k"}
IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension
PROGRESS_EVERY = 10_000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source",
        type=Path,
        default=Path("/usr/share/datasets/fashion-mnist"),
        help="folder of the gzipped IDX files (default: %(default)s)",
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="output folder; gets train/ and eval/"
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="write only the first N images of each split (default: all)",
    )
    parser.add_argument(
        "--eval-limit",
        type=int,
        default=None,
        help="write only the first N images of eval/ (default: as --limit)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the train/ and eval/ folders when --out is not empty",
    )
    args = parser.parse_args(argv)
    for flag, value in (("--limit", args.limit), ("--eval-limit", args.eval_limit)):
        if value is not None and value < 1:
            parser.error(f"{flag} must be 1 or more")
    if args.eval_limit is None:
        args.eval_limit = args.limit
    return args


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Reads a gzipped IDX file of unsigned bytes into an array of its declared shape."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise SystemExit(f"{path}: magic number {found:#010x}, expected {magic:#010x}")
    ndim = magic & 0xFF
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise SystemExit(f"{path}: {array.size} bytes of data, header says {shape}")
    return array.reshape(shape)


def read_split(source: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(source / f"{prefix}-images-idx3-ubyte.gz", IMAGES_MAGIC)
    labels = read_idx(source / f"{prefix}-labels-idx1-ubyte.gz", LABELS_MAGIC)
    if len(images) != len(labels):
        raise SystemExit(f"{prefix}: {len(images)} images but {len(labels)} labels")
    if labels.max() >= len(CLASS_NAMES):
        raise SystemExit(f"{prefix}: label {labels.max()} has no class name")
    return images, labels


def prepare_output(out: Path, overwrite: bool) -> None:
    """Refuses a non-empty out unless overwrite; then removes only its split folders."""
    if out.exists() and not out.is_dir():
        raise SystemExit(f"{out} is not a folder")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise SystemExit(f"{out} is not empty; pass --overwrite to replace its split folders")
        for split in SPLITS:
            shutil.rmtree(out / split, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)


def write_split(images: np.ndarray, labels: np.ndarray, folder: Path) -> None:
    """Writes images[i] as folder/<class name>/<i:05d>.png, greyscale 28x28."""
    for name in CLASS_NAMES:
        (folder / name).mkdir(parents=True, exist_ok=True)
    for index, (pixels, label) in enumerate(zip(images, labels, strict=True)):
        # A 2-D uint8 array becomes a greyscale (mode "L") image.
        Image.fromarray(pixels).save(folder / CLASS_NAMES[label] / f"{index:05d}.png")
        if (index + 1) % PROGRESS_EVERY == 0:
            print(f"  {folder.name}: {index + 1:,} / {len(images):,}", flush=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    prepare_output(args.out, args.overwrite)
    start = time.perf_counter()
    total = 0
    for split, prefix in SPLITS.items():
        images, labels = read_split(args.source, prefix)
        limit = args.eval_limit if split == "eval" else args.limit
        images, labels = images[:limit], labels[:limit]
        print(f"{split}: writing {len(images):,} images from {prefix}-*", flush=True)
        write_split(images, labels, args.out / split)
        counts = np.bincount(labels, minlength=len(CLASS_NAMES))
        summary = ", ".join(f"{n} {c}" for n, c in zip(CLASS_NAMES, counts, strict=True))
        print(f"{split}: {summary}")
        total += len(images)
    seconds = time.perf_counter() - start
    print(f"wrote {total:,} PNG files to {args.out} in {seconds:.1f} s")


if __name__ == "__main__":
    main()
