"""Decides, file by file, whether an image may become a training example, and why not."""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from PIL import Image

from components.preprocessing import PNG_SIGNATURE
from components.settings import DEFAULT_BACKGROUND

# Formats tf.io.decode_image reads, as Pillow names them (MPO is a camera JPEG with extras).
SUPPORTED_FORMATS = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "GIF": "gif", "BMP": "bmp"}
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".bmp"}
READ_FORMATS = "only PNG, JPEG, GIF and BMP are read"
# Image formats people keep next to those, which TensorFlow's decoders cannot read.
UNSUPPORTED_IMAGE_EXTENSIONS = {
    ".webp": "WebP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".heic": "HEIC",
    ".heif": "HEIF",
    ".avif": "AVIF",
    ".jxl": "JPEG XL",
    ".jp2": "JPEG 2000",
    ".svg": "SVG",
    ".ico": "ICO",
    ".psd": "PSD",
}


@dataclass(frozen=True)
class ImageCheck:
    """The verdict on one file: accepted (with what was read) or rejected with a reason."""

    reason: str = ""
    image_format: str = ""
    width: int = 0
    height: int = 0
    sha256: str = ""  # of the file's bytes
    pixels_sha256: str = ""  # of its decoded pixels (see pixels_digest)

    @property
    def ok(self) -> bool:
        return not self.reason


def skip_reason(name: str) -> str:
    """Why a directory entry is not an image candidate at all ('' when it is one): hidden files
    (.DS_Store), image formats TensorFlow cannot read, files that are not images (README.txt).
    The report lists each with this reason; they are not counted as bad images."""
    if name.startswith("."):
        return "hidden file (its name starts with '.')"
    extension = posixpath.splitext(name)[1].lower()
    if extension in IMAGE_EXTENSIONS:
        return ""
    if extension in UNSUPPORTED_IMAGE_EXTENSIONS:
        return (
            f"unsupported format {UNSUPPORTED_IMAGE_EXTENSIONS[extension]} ({READ_FORMATS}): "
            "convert it to PNG or JPEG to use it"
        )
    kind = f"'{extension}' extension" if extension else "no extension"
    return f"not an image file name ({kind}; {READ_FORMATS})"


def decode_like_transform(
    data: bytes, background: tuple[int, int, int] = DEFAULT_BACKGROUND
) -> np.ndarray:
    """uint8 RGB pixels as the Transform graph's decode_image makes them (same decoder ops: a
    PNG with its alpha composited over `background`, transform.background, anything else as 3
    channels), without the graph: called eagerly once per file, its tf.cond and compositing ops
    cost 12 times the decoding."""
    if data.startswith(PNG_SIGNATURE):
        rgba = tf.io.decode_png(data, channels=4).numpy()
        if rgba[..., 3].min() == 255:  # opaque (most PNGs): compositing changes nothing
            return rgba[..., :3]
        rgba = rgba.astype(np.float32)
        alpha = rgba[..., 3:] / 255.0
        colour = np.array(background, np.float32)
        return np.round(rgba[..., :3] * alpha + colour * (1.0 - alpha)).astype(np.uint8)
    return tf.io.decode_image(data, channels=3, expand_animations=False).numpy()


def pixels_digest(pixels: np.ndarray) -> str:
    """sha256 of decoded pixels and their shape: equal for copies of an image whatever their
    file format or compression (a PNG and a BMP of the same pixels, a PNG saved twice)."""
    digest = hashlib.sha256(str(pixels.shape).encode())
    digest.update(pixels.tobytes())
    return digest.hexdigest()


def transparency_reason(header: Image.Image) -> str:
    """Why an image's transparency cannot be composited in the Transform graph ('' if it can).

    The graph composites PNG alpha over transform.background (components/preprocessing.py).
    TensorFlow's GIF decoder returns RGB with transparent pixels as black (measured), and its BMP
    decoder reads no alpha mask, so the colours under them would reach the model: refused here,
    at ingestion and in `predict` alike, rather than trained on.
    """
    if header.format == "GIF" and "transparency" in header.info:
        return (
            "GIF with a transparent colour: TensorFlow decodes its transparent pixels as black "
            "whatever transform.background is; convert it to PNG (which keeps transparency)"
        )
    if header.format == "BMP" and "A" in header.getbands():
        return (
            "BMP with an alpha channel: TensorFlow's BMP decoder ignores transparency; "
            "convert it to PNG (which keeps transparency)"
        )
    return ""


def check_image_bytes(
    data: bytes,
    min_side: int,
    max_pixels: int,
    background: tuple[int, int, int] = DEFAULT_BACKGROUND,
) -> ImageCheck:
    """Checks the header first (cheap, guards against decompression bombs), then decodes with
    the Transform step's decoders (decode_like_transform), so what passes here decodes there,
    and hashes the bytes and the decoded pixels (for the duplicate checks: the pixels the model
    sees, transparency composited over `background`)."""
    if not data:
        return ImageCheck(reason="empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as header:
            pil_format, (width, height) = header.format, header.size
            transparency = transparency_reason(header)
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
    if transparency:
        return ImageCheck(reason=transparency)
    try:
        pixels = decode_like_transform(data, background)
    except tf.errors.InvalidArgumentError as error:
        detail = error.message.split("}}")[-1].strip()
        return ImageCheck(reason=f"cannot be decoded (truncated or corrupt): {detail}")
    return ImageCheck(
        image_format=SUPPORTED_FORMATS[pil_format],
        width=int(width),
        height=int(height),
        sha256=hashlib.sha256(data).hexdigest(),
        pixels_sha256=pixels_digest(pixels),
    )


def read_file(path: str) -> bytes:
    """Reads a file through tf.io.gfile, so local paths and gs://, s3://... URLs all work."""
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


def relative_id(path: str, base: str) -> str:
    """The stable id of an example: its path relative to the data folder, with '/'."""
    rel = os.path.relpath(path, base) if "://" not in base else path[len(base) :].lstrip("/")
    return rel.replace(os.sep, "/")
