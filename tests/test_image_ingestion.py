"""Unit tests of the ingestion checks: one file or one folder at a time, no pipeline run."""

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from components import image_checks
from components.class_folders import (
    check_class_folders,
    discover_classes,
    entries_outside_classes,
)
from components.image_checks import check_image_bytes, skip_reason
from components.ingestion_report import IngestionError, build_report, enforce_report

MIN_SIDE = 32
MAX_PIXELS = 40_000_000


def check_file(path: Path, tree_digest, min_side=MIN_SIDE, max_pixels=MAX_PIXELS):
    """Checks a file as the executor does (read, then check); asserts its folder is untouched."""
    before = tree_digest(path.parent)
    check = check_image_bytes(image_checks.read_file(str(path)), min_side, max_pixels)
    assert tree_digest(path.parent) == before
    assert before  # the folder was not empty: the comparison means something
    return check


def assert_rejected(check: image_checks.ImageCheck, reason: str) -> None:
    assert not check.ok
    assert reason in check.reason
    assert check.image_format == ""


def assert_accepted(check: image_checks.ImageCheck, image_format: str, size=(40, 48)) -> None:
    assert check.ok, check.reason
    assert check.image_format == image_format
    assert (check.width, check.height) == size


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A real, valid 1-bit greyscale PNG of width x height, all black: its rows compress to
    almost nothing, so a huge image is a small file (made row by row, in little memory)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    compressor, row = zlib.compressobj(9), b"\x00" * (1 + (width + 7) // 8)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


# --- check_image_bytes: rejected ---------------------------------------------------------------


def test_truncated_jpeg_is_rejected_as_truncated_or_corrupt(image_dir, make_image, tree_digest):
    path = make_image(image_dir / "cut.jpg", "RGB", (40, 48), "JPEG")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with Image.open(path) as header:  # the header survives: this is caught by the decode
        assert header.size == (40, 48)
    assert_rejected(check_file(path, tree_digest), "truncated or corrupt")


def test_zero_byte_file_is_rejected_as_empty(image_dir, tree_digest):
    path = image_dir / "empty.jpg"
    path.write_bytes(b"")
    assert_rejected(check_file(path, tree_digest), "empty file")


def test_text_named_jpg_is_rejected_as_not_readable(image_dir, tree_digest):
    path = image_dir / "notes.jpg"
    path.write_text("these are my notes, not a photo\n")
    assert_rejected(check_file(path, tree_digest), "not a readable image")


def test_image_below_min_side_is_rejected_as_too_small(image_dir, make_image, tree_digest):
    small = make_image(image_dir / "small.png", "RGB", (MIN_SIDE - 1, 100), "PNG")
    assert_rejected(check_file(small, tree_digest), "too small")
    just_big_enough = make_image(image_dir / "edge.png", "RGB", (MIN_SIDE, 100), "PNG")
    assert_accepted(check_file(just_big_enough, tree_digest), "png", (MIN_SIDE, 100))


@pytest.mark.parametrize("fmt", ["TIFF", "WEBP"])
def test_unsupported_format_with_png_name_is_rejected(image_dir, make_image, tree_digest, fmt):
    path = make_image(image_dir / "disguised.png", "RGB", (40, 48), fmt)
    with Image.open(path) as header:
        assert header.format == fmt  # Pillow reads it: only the format rule rejects it
    check = check_file(path, tree_digest)
    assert_rejected(check, "unsupported format")
    assert fmt in check.reason


def test_more_pixels_than_max_pixels_is_rejected(image_dir, make_image, tree_digest):
    path = make_image(image_dir / "big.png", "RGB", (100, 100), "PNG")
    assert_rejected(check_file(path, tree_digest, max_pixels=1000), "too many pixels")
    assert_accepted(check_file(path, tree_digest, max_pixels=10_000), "png", (100, 100))


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(
    "side",
    [
        12_000,  # 144 M pixels: past max_pixels (40 M), below Pillow's own bomb limit
        20_000,  # 400 M pixels: past Pillow's bomb limit, which refuses it at open
    ],
)
def test_decompression_bomb_is_rejected_without_decoding(image_dir, tree_digest, monkeypatch, side):
    path = png_header_only(image_dir / "bomb.png", side, side)
    assert path.stat().st_size < 200_000  # a tiny file that would decode to >= 144 MB
    decoded = []
    monkeypatch.setattr(tf.io, "decode_image", lambda *a, **k: decoded.append("tf"))
    monkeypatch.setattr(Image.Image, "load", lambda *a, **k: decoded.append("pillow"))

    assert_rejected(check_file(path, tree_digest), "too many pixels")
    assert decoded == []


# --- check_image_bytes: accepted ---------------------------------------------------------------


def test_rgba_png_is_accepted(image_dir, make_image, tree_digest):
    path = make_image(image_dir / "alpha.png", "RGBA", (40, 48), "PNG")
    assert_accepted(check_file(path, tree_digest), "png")


def bmp_with_alpha(path: Path, width: int = 40, height: int = 40) -> Path:
    """A 32-bit BMP with a BITMAPV4 header and an alpha mask (as image editors write them),
    half its rows transparent."""
    rows = b"".join(
        bytes([30, 60, 90, 0 if y < height // 2 else 255]) * width for y in range(height)
    )
    header = struct.pack(
        "<IiiHHIIiiII4I",
        108,
        width,
        height,
        1,
        32,
        3,
        len(rows),
        2835,
        2835,
        0,
        0,
        0x00FF0000,
        0x0000FF00,
        0x000000FF,
        0xFF000000,
    ) + b"\x00" * (108 - 56)
    offset = 14 + len(header)
    path.write_bytes(b"BM" + struct.pack("<IHHI", offset + len(rows), 0, 0, offset) + header + rows)
    return path


def test_gif_with_a_transparent_colour_is_rejected(image_dir, tree_digest):
    """TensorFlow's GIF decoder gives its transparent pixels as black, not the background."""
    path = image_dir / "cut.gif"
    Image.new("P", (40, 48), 0).save(path, transparency=0)
    assert_rejected(check_file(path, tree_digest), "GIF with a transparent colour")


def test_bmp_with_alpha_is_rejected(image_dir, tree_digest):
    path = bmp_with_alpha(image_dir / "cut.bmp")
    with Image.open(path) as header:
        assert header.mode == "RGBA"  # really a BMP with alpha
    assert_rejected(check_file(path, tree_digest), "BMP with an alpha channel")


def test_copies_in_other_formats_share_the_pixel_hash_not_the_byte_hash(image_dir, make_image):
    png = make_image(image_dir / "a.png", "RGB", (40, 48), "PNG")
    with Image.open(png) as image:
        image.save(image_dir / "a.bmp")
    checks = [
        check_image_bytes(p.read_bytes(), MIN_SIDE, MAX_PIXELS) for p in (png, image_dir / "a.bmp")
    ]
    assert checks[0].pixels_sha256 == checks[1].pixels_sha256
    assert checks[0].sha256 != checks[1].sha256
    other = make_image(image_dir / "b.png", "RGB", (40, 48), "PNG")
    assert check_image_bytes(other.read_bytes(), MIN_SIDE, MAX_PIXELS).pixels_sha256 != (
        checks[0].pixels_sha256
    )


@pytest.mark.parametrize("fmt, image_format", [("PNG", "png"), ("JPEG", "jpeg")])
def test_greyscale_is_accepted(image_dir, make_image, tree_digest, fmt, image_format):
    path = make_image(image_dir / f"grey.{image_format}", "L", (40, 48), fmt)
    assert_accepted(check_file(path, tree_digest), image_format)


def test_cmyk_jpeg_is_accepted_and_decodes_to_3_channels(image_dir, make_image, tree_digest):
    path = make_image(image_dir / "print.jpg", "CMYK", (40, 48), "JPEG")
    with Image.open(path) as header:
        assert header.mode == "CMYK"
    assert_accepted(check_file(path, tree_digest), "jpeg")
    assert tf.io.decode_image(path.read_bytes(), channels=3).shape == (48, 40, 3)


def test_16_bit_png_is_accepted(image_dir, make_image, tree_digest):
    path = make_image(image_dir / "deep.png", "I;16", (40, 48), "PNG")
    assert path.read_bytes()[24] == 16  # IHDR bit depth: really a 16-bit PNG
    assert_accepted(check_file(path, tree_digest), "png")


def test_animated_gif_is_accepted_and_first_frame_is_used(image_dir, make_image, tree_digest):
    path = make_image(image_dir / "anim.gif", "RGB", (40, 48), "GIF", frames=3)
    with Image.open(path) as gif:
        assert gif.n_frames == 3
        first_frame = np.asarray(gif.convert("RGB"))
    assert_accepted(check_file(path, tree_digest), "gif")
    decoded = tf.io.decode_image(path.read_bytes(), channels=3, expand_animations=False)
    np.testing.assert_array_equal(decoded.numpy(), first_frame)


def test_bmp_is_accepted(image_dir, make_image, tree_digest):
    path = make_image(image_dir / "paint.bmp", "RGB", (40, 48), "BMP")
    assert_accepted(check_file(path, tree_digest), "bmp")


# --- skip_reason -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, reason",
    [
        (".DS_Store", "hidden file"),
        ("._photo.jpg", "hidden file"),  # macOS resource fork: hidden even with an image name
        ("README.md", "not an image file name"),
        ("labels.csv", "not an image file name"),
        ("photo", "not an image file name"),
        ("x.JPG", ""),  # upper-case extensions are images too
        ("x.jpeg", ""),
        ("x.png", ""),
        ("x.Gif", ""),
        ("x.bmp", ""),
    ],
)
def test_skip_reason(name, reason):
    assert skip_reason(name).startswith(reason) if reason else skip_reason(name) == ""


@pytest.mark.parametrize("name, fmt", [("x.webp", "WebP"), ("x.TIFF", "TIFF"), ("x.heic", "HEIC")])
def test_skip_reason_names_an_unsupported_format_and_what_is_read(name, fmt):
    reason = skip_reason(name)
    assert reason.startswith(f"unsupported format {fmt}")
    assert "only PNG, JPEG, GIF and BMP are read" in reason


def test_skip_reason_names_the_extension_of_a_non_image():
    assert "'.csv' extension" in skip_reason("labels.csv")
    assert "no extension" in skip_reason("photo")


def make_class_folders(base: Path, *classes: str) -> Path:
    for name in classes:
        (base / name).mkdir(parents=True)
    return base


# --- discover_classes --------------------------------------------------------------------------


def test_classes_are_sorted_and_hidden_folders_ignored(image_dir):
    make_class_folders(image_dir, "zebras", "cats", "dogs", ".git", ".ipynb_checkpoints")
    (image_dir / "README.md").write_text("not a class")
    assert discover_classes(str(image_dir), ["*/*"]) == ["cats", "dogs", "zebras"]


def test_classes_of_split_folders(image_dir):
    for split in ("train", "eval"):
        make_class_folders(image_dir / split, "dogs", "cats")
    patterns = ["train/*/*", "eval/*/*"]
    assert discover_classes(str(image_dir), patterns) == ["cats", "dogs"]


def test_one_class_is_an_error(image_dir):
    make_class_folders(image_dir, "cats", ".hidden")
    with pytest.raises(IngestionError, match="at least 2"):
        discover_classes(str(image_dir), ["*/*"])


def test_split_folders_with_different_classes_are_an_error(image_dir):
    make_class_folders(image_dir / "train", "cats", "dogs")
    make_class_folders(image_dir / "eval", "cats", "birds")
    with pytest.raises(IngestionError, match="disagree") as error:
        discover_classes(str(image_dir), ["train/*/*", "eval/*/*"])
    assert "['birds', 'dogs']" in str(error.value)


def test_missing_data_folder_is_an_error(tmp_path):
    with pytest.raises(IngestionError, match="does not exist"):
        discover_classes(str(tmp_path / "nowhere"), ["*/*"])


# --- check_class_folders: the schema's class list ----------------------------------------------


def test_a_folder_that_is_not_a_class_of_the_schema_is_an_error(image_dir):
    for split in ("train", "eval"):
        make_class_folders(image_dir / split, "cats", "dogs")
    make_class_folders(image_dir / "eval", "birds")
    with pytest.raises(IngestionError) as error:
        check_class_folders(str(image_dir), ["train/*/*", "eval/*/*"], ["dogs", "cats"])
    message = str(error.value)
    assert f"{image_dir}/eval has folder(s) ['birds'] that are not classes of the schema" in message
    assert "['dogs', 'cats']" in message


def test_a_class_of_the_schema_without_a_folder_is_left_to_the_report(image_dir):
    make_class_folders(image_dir, "cats", "dogs")  # no owls: counted as 0 examples, then named
    check_class_folders(str(image_dir), ["*/*"], ["owls", "cats", "dogs"])


def test_entries_beside_the_class_folders_are_listed_with_why(image_dir):
    make_class_folders(image_dir, "cats", "dogs", ".thumbnails")
    (image_dir / "README.md").write_text("about the data")
    entries = {e["path"]: e["reason"] for e in entries_outside_classes(str(image_dir), ["*/*"])}
    assert entries == {
        ".thumbnails": "hidden folder: not read as a class",
        "README.md": "file outside the class folders: not read; move it into its class's folder",
    }


# --- build_report / enforce_report -------------------------------------------------------------

CLASSES = ["cats", "dogs"]


def write_events(events_dir: Path, name: str, *events: dict) -> None:
    """One JSON-lines shard, as the executor's WriteToText steps write them."""
    events_dir.mkdir(exist_ok=True)
    lines = "".join(json.dumps(e) + "\n" for e in events)
    (events_dir / f"{name}-00000-of-00001").write_text(lines)


def count(split: str, label: int, n: int) -> dict:
    return {"kind": "count", "split": split, "label": label, "n": n}


def quarantined(path: str, reason: str) -> dict:
    return {"kind": "quarantined", "path": path, "class": path.split("/")[0], "reason": reason}


def skipped(path: str, reason: str) -> dict:
    return {"kind": "skipped", "path": path, "reason": reason}


@pytest.fixture
def events_dir(tmp_path: Path) -> Path:
    """20 good images over 2 splits and 2 classes, 2 quarantined and 3 skipped files."""
    events = tmp_path / "events"
    write_events(
        events,
        "events-all",
        quarantined("dogs/zero.jpg", "empty file (0 bytes)"),
        skipped("cats/.DS_Store", "hidden file"),
        quarantined("cats/cut.jpg", "cannot be decoded (truncated or corrupt): ..."),
        skipped("cats/README.txt", "not an image file name"),
        skipped("dogs/labels.csv", "not an image file name"),
    )
    write_events(events, "counts-train", count("train", 0, 8), count("train", 1, 7))
    write_events(events, "counts-eval", count("eval", 1, 3), count("eval", 0, 2))
    write_events(events, "counts-test")  # an empty shard, as for a PCollection with nothing
    return events


def test_build_report_counts(events_dir):
    report = build_report(CLASSES, str(events_dir))
    assert report["classes"] == CLASSES
    assert report["examples"] == 20
    assert report["examples_per_split"] == {"eval": 5, "train": 15}
    assert report["examples_per_split_and_class"] == {
        "eval": {"cats": 2, "dogs": 3},
        "train": {"cats": 8, "dogs": 7},
    }
    assert report["image_files"] == 22  # examples + quarantined; skipped files are not images
    assert report["quarantined"] == [  # sorted by path
        {
            "path": "cats/cut.jpg",
            "class": "cats",
            "reason": "cannot be decoded (truncated or corrupt): ...",
        },
        {"path": "dogs/zero.jpg", "class": "dogs", "reason": "empty file (0 bytes)"},
    ]
    assert report["quarantined_per_class"] == {"cats": 1, "dogs": 1}
    assert report["image_files_per_class"] == {"cats": 11, "dogs": 11}
    assert report["skipped"] == [  # every file not read, with its path
        {"path": "cats/.DS_Store", "reason": "hidden file"},
        {"path": "cats/README.txt", "reason": "not an image file name"},
        {"path": "dogs/labels.csv", "reason": "not an image file name"},
    ]


def test_enforce_report_passes_within_the_limit(events_dir):
    enforce_report(build_report(CLASSES, str(events_dir)), max_bad_fraction=0.1)  # 2/22 = 9%


def test_enforce_report_fails_when_too_many_are_quarantined(events_dir):
    with pytest.raises(IngestionError) as error:
        enforce_report(build_report(CLASSES, str(events_dir)), max_bad_fraction=0.05)
    message = str(error.value)
    assert "2 of 22 image files" in message
    assert "quarantined" in message
    assert "cats/cut.jpg: cannot be decoded" in message
    assert "dogs/zero.jpg: empty file" in message


def test_enforce_report_fails_when_a_class_is_missing_from_a_split(tmp_path):
    events = tmp_path / "events"
    write_events(events, "counts-train", count("train", 0, 5), count("train", 1, 5))
    write_events(events, "counts-eval", count("eval", 0, 3))  # no dogs in eval
    report = build_report(CLASSES, str(events))
    assert report["examples_per_split_and_class"]["eval"] == {"cats": 3, "dogs": 0}
    with pytest.raises(IngestionError) as error:
        enforce_report(report, max_bad_fraction=0.05)
    assert "Split 'eval' has no usable image of class(es) ['dogs']" in str(error.value)


def test_enforce_report_fails_when_a_split_is_empty(tmp_path):
    events = tmp_path / "events"
    write_events(events, "counts-train", count("train", 0, 5), count("train", 1, 5))
    write_events(events, "counts-eval")  # nothing at all landed in eval
    report = build_report(CLASSES, str(events), splits=["train", "eval"])
    assert report["examples_per_split"] == {"eval": 0, "train": 10}
    with pytest.raises(IngestionError) as error:
        enforce_report(report, max_bad_fraction=0.05)
    assert "Split 'eval' has no usable image of class(es) ['cats', 'dogs']" in str(error.value)


def test_enforce_report_fails_without_any_example(tmp_path):
    events = tmp_path / "events"
    write_events(events, "events-all", quarantined("cats/a.jpg", "empty file (0 bytes)"))
    with pytest.raises(IngestionError, match="No usable image"):
        enforce_report(build_report(CLASSES, str(events)), max_bad_fraction=1.0)


def test_enforce_report_fails_when_one_class_loses_too_many_files(tmp_path):
    """3 bad of 63 files overall (4.8%) is within 5%, but all 3 are dogs: 3 of 13 (23%)."""
    events = tmp_path / "events"
    write_events(
        events,
        "events-all",
        *(quarantined(f"dogs/bad{i}.jpg", "empty file (0 bytes)") for i in range(3)),
    )
    write_events(events, "counts-train", count("train", 0, 40), count("train", 1, 8))
    write_events(events, "counts-eval", count("eval", 0, 10), count("eval", 1, 2))
    report = build_report(CLASSES, str(events))
    with pytest.raises(IngestionError) as error:
        enforce_report(report, max_bad_fraction=0.05)
    message = str(error.value)
    assert "Class 'dogs': 3 of its 13 image files (23.1%) were quarantined" in message
    assert "of 63 image files" not in message  # the overall limit held
    assert "cats" not in message


# --- duplicates --------------------------------------------------------------------------------


def image(path: str, split: str, pixels: str, sha: str = "") -> dict:
    return {
        "kind": "image",
        "split": split,
        "path": path,
        "class": path.split("/")[0],
        "sha256": sha or f"bytes-of-{path}",
        "pixels_sha256": pixels,
    }


def report_with_images(tmp_path: Path, *images: dict) -> dict:
    events = tmp_path / "events"
    write_events(events, "images-all", *images)
    write_events(events, "counts-train", count("train", 0, 4), count("train", 1, 4))
    write_events(events, "counts-eval", count("eval", 0, 2), count("eval", 1, 2))
    report = build_report(CLASSES, str(events))
    report["path"] = "/runs/artifacts/ImageExampleGen/ingestion_reports/x.json"
    return report


def test_an_image_under_two_classes_always_fails_naming_both_paths(tmp_path):
    report = report_with_images(
        tmp_path, image("cats/a.jpg", "train", "p1"), image("dogs/b.png", "train", "p1")
    )
    [group] = report["duplicates"]["across_classes"]
    assert [f["path"] for f in group["files"]] == ["cats/a.jpg", "dogs/b.png"]
    for policy in ("fail", "warn"):
        with pytest.raises(IngestionError) as error:
            enforce_report(report, max_bad_fraction=0.05, duplicates=policy)
        message = str(error.value)
        assert "cats/a.jpg (cats, train) = dogs/b.png (dogs, train)" in message
        assert "in two or more classes" in message
        assert message.endswith("Ingestion report: " + report["path"])


def test_an_image_in_two_splits_fails_or_is_only_reported(tmp_path):
    report = report_with_images(
        tmp_path,
        image("cats/a.jpg", "train", "p1", sha="same"),
        image("cats/a_copy.jpg", "eval", "p1", sha="same"),
        image("cats/other.jpg", "eval", "p2"),
    )
    [group] = report["duplicates"]["across_splits"]
    assert group["same_bytes"] is True
    assert not report["duplicates"]["across_classes"]
    with pytest.raises(IngestionError) as error:
        enforce_report(report, max_bad_fraction=0.05, duplicates="fail")
    assert "cats/a.jpg (cats, train) = cats/a_copy.jpg (cats, eval)" in str(error.value)
    assert "validation.duplicates=warn" in str(error.value)
    enforce_report(report, max_bad_fraction=0.05, duplicates="warn")  # reported, not fatal


def test_copies_within_one_class_and_split_are_counted(tmp_path):
    report = report_with_images(
        tmp_path,
        image("dogs/a.jpg", "train", "p1"),
        image("dogs/a.png", "train", "p1"),  # re-encoded: other bytes, same pixels
        image("dogs/a.bmp", "train", "p1"),
    )
    duplicates = report["duplicates"]
    assert duplicates["within_split_extra_copies"] == 2
    [group] = duplicates["within_split"]
    assert group["same_bytes"] is False
    assert not duplicates["across_splits"] and not duplicates["across_classes"]
    enforce_report(report, max_bad_fraction=0.05)
