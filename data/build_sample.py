"""Builds data/sample, the committed sample image set, from Debian's openclipart-png package.

Run from the repository root: ``python -m data.build_sample`` (or ``make sample-data``).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import random
import shutil
import sys
import warnings
from pathlib import Path

from PIL import Image

CLASSES = ("animals", "food", "people", "plants", "transportation")
MAX_PIXELS = 40_000_000
MIN_SIDE = 32  # before and after downscaling, as the pipeline's ingestion.min_side
JPEG_QUALITY = 90
WHITE = (255, 255, 255)
# Sub-folders whose pictures are not of the class's subject: pictograms, road signs, sailing
# diagrams and knots under transportation; clothes and hats under people.
OFF_TOPIC = {
    "transportation": ("aiga-symbols", "boating", "roadsigns"),
    "people": ("clothing",),
}
# Renders of SVGs whose linked bitmap was missing: a "Linked Image Not Found" box.
BROKEN = (
    "animals/birds/duck_yellow_ii_kurt_cagl_.png",
    "animals/birds/penguin/tux_didier_fabert_01.png",
)


class Skipped(Exception):
    """A source image that cannot be used (unreadable, too large or too small)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source",
        type=Path,
        default=Path("/usr/share/openclipart/png"),
        help="openclipart-png folder with one sub-folder per category (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("data/sample"),
        help="output folder; deleted and recreated (default: %(default)s)",
    )
    parser.add_argument(
        "--per-class", type=int, default=70, help="images per class (default: %(default)s)"
    )
    parser.add_argument(
        "--max-side",
        type=int,
        default=128,
        help="longer side of the saved images, in pixels, at most (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the random pick (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    if args.per_class < 1:
        parser.error("--per-class must be 1 or more")
    if args.max_side < MIN_SIDE:
        parser.error(f"--max-side must be {MIN_SIDE} or more")
    return args


def candidates(source: Path, category: str) -> list[Path]:
    """The category's distinct, on-topic PNG files, sorted.

    Files sit in nested sub-folders, and many are symlinks into the same or another category:
    symlinks are resolved and byte-identical copies merged. A file is left out when any of its
    names in the category lies under an off-topic sub-folder, or when it is a known bad render.
    """
    off_topic = {source / category / name for name in OFF_TOPIC.get(category, ())}
    broken = {source / name for name in BROKEN}
    kept: set[Path] = set()
    dropped: set[Path] = set()
    for path in (source / category).rglob("*.png"):
        if not path.is_file():
            continue
        real = path.resolve()
        names = (path, real)
        if real in broken or any(n.is_relative_to(f) for n in names for f in off_topic):
            dropped.add(real)
        else:
            kept.add(real)
    seen: set[str] = set()
    unique: list[Path] = []
    for path in sorted(kept - dropped):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            unique.append(path)
    return unique


def load(path: Path) -> Image.Image:
    """Opens and decodes an image, checking its size from the header before decoding."""
    try:
        with warnings.catch_warnings():
            # Pillow warns about huge images while reading the header; the check below rejects
            # them all (MAX_PIXELS is under Pillow's limit), and Pillow raises on the hugest.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise Skipped(f"{width}x{height} is over {MAX_PIXELS:,} pixels")
                if min(width, height) < MIN_SIDE:
                    raise Skipped(f"{width}x{height} has a side under {MIN_SIDE} px")
                image.load()
                return image
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise Skipped(f"{type(e).__name__}: {e}") from e


def to_small_rgb(image: Image.Image, max_side: int) -> Image.Image:
    """Downscales to at most max_side (aspect ratio kept), then flattens alpha onto white."""
    rgba = image.convert("RGBA")  # also turns palette transparency into alpha
    rgba.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    background = Image.new("RGBA", rgba.size, WHITE + (255,))
    return Image.alpha_composite(background, rgba).convert("RGB")


def encode_jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def pick_class(
    paths: list[Path],
    category: str,
    out: Path,
    args: argparse.Namespace,
    rng: random.Random,
    seen: set[str],
) -> None:
    """Saves args.per_class images of a category, taken in seeded random order.

    seen holds digests of the JPEGs saved so far, in any class: an image that comes out the
    same as one already saved (a copy of a file with other metadata) is passed over.
    """
    order = paths[:]
    rng.shuffle(order)
    folder = out / category
    folder.mkdir(parents=True)
    saved = 0
    for path in order:
        if saved == args.per_class:
            break
        try:
            image = load(path)
        except Skipped as e:
            print(f"  skipped {path}: {e}", file=sys.stderr)
            continue
        small = to_small_rgb(image, args.max_side)
        if min(small.size) < MIN_SIDE:
            # The pipeline's ingestion quarantines images with a side under MIN_SIDE.
            print(f"  skipped {path}: {small.size} after downscaling", file=sys.stderr)
            continue
        data = encode_jpeg(small)
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            print(f"  skipped {path}: same picture as one already saved", file=sys.stderr)
            continue
        seen.add(digest)
        (folder / f"{category}_{saved:03d}.jpg").write_bytes(data)
        saved += 1
    if saved < args.per_class:
        raise SystemExit(f"{category}: only {saved} usable images, {args.per_class} wanted")


def reset_output(out: Path) -> None:
    """Deletes and recreates out, refusing when it holds anything but class folders of JPEGs."""
    if out.exists():
        strays = [p for p in out.rglob("*") if not (p.is_dir() or p.suffix == ".jpg")]
        if not out.is_dir() or strays or any(p.is_file() for p in out.iterdir()):
            raise SystemExit(f"{out} does not look like a sample folder; not deleting it")
        shutil.rmtree(out)
    out.mkdir(parents=True)


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    pools = {category: candidates(args.source, category) for category in CLASSES}
    reset_output(args.out)
    # An image filed under two of the classes goes to only one of them: the classes pick in
    # order of their pool size, smallest first, and pass over what an earlier class saved.
    seen: set[str] = set()
    for category in sorted(CLASSES, key=lambda c: (len(pools[c]), c)):
        rng = random.Random(f"{args.seed}:{category}")
        pick_class(pools[category], category, args.out, args, rng, seen)
    for category in CLASSES:
        count = len(list((args.out / category).glob("*.jpg")))
        print(f"{category:16s} {count:4d} images  ({len(pools[category])} candidates)")
    size = folder_size(args.out)
    print(f"total {len(seen)} images, {size / 1e6:.2f} MB in {args.out}")


if __name__ == "__main__":
    main()
