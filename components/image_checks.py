"""Decides, file by file, whether an image may become a training example, and why not."""

from __future__ import annotations

import io
import os
import posixpath
from dataclasses import dataclass

import tensorflow as tf
from PIL import Image

# Formats tf.io.decode_image reads, as Pillow names them (MPO is a camera JPEG with extras).
SUPPORTED_FORMATS = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "GIF": "gif", "BMP": "bmp"}
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".bmp"}


@dataclass(frozen=True)
class ImageCheck:
    """The verdict on one file: accepted (with what was read) or rejected with a reason."""

    reason: str = ""
    image_format: str = ""
    width: int = 0
    height: int = 0

    @property
    def ok(self) -> bool:
        return not self.reason


def skip_reason(name: str) -> str:
    """Why a directory entry is not an image candidate at all ('' when it is one).

    Skipped files are counted but not reported as bad: hidden files (.DS_Store) and files
    whose extension is not an image's (README.txt, labels.csv).
    """
    if name.startswith("."):
        return "hidden file"
    if posixpath.splitext(name)[1].lower() not in IMAGE_EXTENSIONS:
        return "not an image file name"
    return ""


def check_image_bytes(data: bytes, min_side: int, max_pixels: int) -> ImageCheck:
    """Checks the header first (cheap, guards against decompression bombs), then decodes with
    TensorFlow: the same decoder the Transform step uses, so what passes here decodes there."""
    if not data:
        return ImageCheck(reason="empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as header:
            pil_format, (width, height) = header.format, header.size
    except Image.DecompressionBombError as error:
        return ImageCheck(reason=f"too many pixels: {error}")
    except Exception:  # Pillow raises many types for unreadable headers.
        return ImageCheck(reason="not a readable image (unknown format or corrupt header)")
    if pil_format not in SUPPORTED_FORMATS:
        return ImageCheck(
            reason=f"unsupported format {pil_format}; use JPEG, PNG, GIF or BMP",
        )
    if width * height > max_pixels:
        return ImageCheck(
            reason=f"too many pixels: {width}x{height} = {width * height:,} > {max_pixels:,} "
            "(ingestion.max_pixels)",
        )
    if min(width, height) < min_side:
        return ImageCheck(
            reason=f"too small: {width}x{height}, shorter side < {min_side} px "
            "(ingestion.min_side)",
        )
    try:
        tf.io.decode_image(data, channels=3, expand_animations=False)
    except tf.errors.InvalidArgumentError as error:
        detail = error.message.split("}}")[-1].strip()
        return ImageCheck(reason=f"cannot be decoded (truncated or corrupt): {detail}")
    return ImageCheck(
        image_format=SUPPORTED_FORMATS[pil_format], width=int(width), height=int(height)
    )


def read_file(path: str) -> bytes:
    """Reads a file through tf.io.gfile, so local paths and gs://, s3://... URLs all work."""
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


def relative_id(path: str, base: str) -> str:
    """The stable id of an example: its path relative to the data folder, with '/'."""
    rel = os.path.relpath(path, base) if "://" not in base else path[len(base) :].lstrip("/")
    return rel.replace(os.sep, "/")
