"""VGG16's 13 convolutions as arrays: their layout, ImageNet's published reference values and
checksum, the check that arrays are ImageNet's, and the Keras (h5) weights file they are read
from and written to. components/base_weights.py finds or provisions that file."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# VGG16's 13 convolutions in order: (Keras layer name, input channels, output channels).
VGG16_CONVS: tuple[tuple[str, int, int], ...] = (
    ("block1_conv1", 3, 64),
    ("block1_conv2", 64, 64),
    ("block2_conv1", 64, 128),
    ("block2_conv2", 128, 128),
    ("block3_conv1", 128, 256),
    ("block3_conv2", 256, 256),
    ("block3_conv3", 256, 256),
    ("block4_conv1", 256, 512),
    ("block4_conv2", 512, 512),
    ("block4_conv3", 512, 512),
    ("block5_conv1", 512, 512),
    ("block5_conv2", 512, 512),
    ("block5_conv3", 512, 512),
)

# sha256 of the 26 arrays as little-endian float32, kernels HWIO, in layer order, kernel then bias.
IMAGENET_ARRAYS_SHA256 = "d9a27cc1fc7f975ef8cff49180e794ccd7c4bc868ebb49740803b3bbaa8dbefd"

# Published values of Keras' ImageNet VGG16 (layer, "kernel" (HWIO) or "bias", index, value).
IMAGENET_REFERENCE_VALUES: tuple[tuple[str, str, tuple[int, ...], float], ...] = (
    ("block1_conv1", "kernel", (0, 0, 0, 0), 0.42947057),
    ("block1_conv1", "bias", (0,), 0.73429835),
    ("block1_conv1", "bias", (25,), 0.7446502),
    ("block1_conv2", "kernel", (2, 2, 63, 63), 0.016082443),
    ("block1_conv2", "bias", (0,), -0.30912212),
    ("block2_conv1", "bias", (0,), -0.04577766),
    ("block2_conv1", "bias", (1,), 0.06440781),
    ("block3_conv1", "bias", (0,), -0.074358866),
    ("block4_conv1", "bias", (0,), 0.013485669),
    ("block5_conv1", "kernel", (1, 0, 63, 269), -0.011236359),
    ("block5_conv1", "bias", (0,), 0.09722325),
    ("block5_conv2", "bias", (510,), 0.23517226),
    ("block5_conv3", "kernel", (0, 2, 0, 400), -0.008714244),
    ("block5_conv3", "bias", (0,), 0.18837857),
)
REFERENCE_TOLERANCE = 1e-6


class WeightsUnavailableError(RuntimeError):
    """The configured base weights cannot be had; the message says how to provide them, and
    `tried` holds what each route said."""

    def __init__(self, message: str, tried: Sequence[str] = ()):
        super().__init__(message)
        self.tried = list(tried)


class WeightsFileError(WeightsUnavailableError):
    """A weights file or download is not what it must be (checksum, layout, values)."""


@dataclass
class ConvWeights:
    """One convolution's arrays in Keras' layout: kernel HWIO, bias (out,)."""

    name: str
    kernel: np.ndarray
    bias: np.ndarray


def arrays_sha256(convs: Sequence[ConvWeights]) -> str:
    digest = hashlib.sha256()
    for conv in convs:
        for array in (conv.kernel, conv.bias):
            digest.update(np.ascontiguousarray(array, dtype="<f4").tobytes())
    return digest.hexdigest()


def check_imagenet_arrays(convs: Sequence[ConvWeights]) -> None:
    """Refuses arrays that are not ImageNet's VGG16: layer names and shapes, every published
    reference value, then the checksum of all of them."""
    names = [conv.name for conv in convs]
    if names != [name for name, _, _ in VGG16_CONVS]:
        raise WeightsFileError(f"the layers are {names}, not VGG16's 13 convolutions")
    by_name = {conv.name: conv for conv in convs}
    for name, in_channels, out_channels in VGG16_CONVS:
        conv = by_name[name]
        if conv.kernel.shape != (3, 3, in_channels, out_channels) or conv.bias.shape != (
            out_channels,
        ):
            raise WeightsFileError(
                f"{name}: kernel {conv.kernel.shape}, bias {conv.bias.shape}; VGG16's are "
                f"(3, 3, {in_channels}, {out_channels}) and ({out_channels},)"
            )
    for name, role, index, value in IMAGENET_REFERENCE_VALUES:
        actual = float(getattr(by_name[name], role)[index])
        if not abs(actual - value) <= REFERENCE_TOLERANCE:
            raise WeightsFileError(
                f"{name} {role}{list(index)} is {actual!r}; ImageNet's VGG16 has {value!r}"
            )
    digest = arrays_sha256(convs)
    if digest != IMAGENET_ARRAYS_SHA256:
        raise WeightsFileError(
            f"the arrays' sha256 is {digest}, not ImageNet VGG16's {IMAGENET_ARRAYS_SHA256}"
        )


def write_weights_file(convs: Sequence[ConvWeights], path: str) -> str:
    """Writes the arrays as a Keras (h5) weights file of VGG16(include_top=False), the layout
    Keras' own file has, through a temporary file, then checks what was written and renames it
    into place: a reader sees the whole file or none."""
    import tf_keras as keras

    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    for conv in convs:
        base.get_layer(conv.name).set_weights([conv.kernel, conv.bias])
    folder = os.path.dirname(path) or "."
    fd, partial = tempfile.mkstemp(prefix=".partial-", suffix=".h5", dir=folder)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(partial, 0o666 & ~umask)  # mkstemp's 0600 would hide it from other users
    try:
        base.save_weights(partial)
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
        written = read_weights_file(partial)
        if arrays_sha256(written) != arrays_sha256(convs):
            raise WeightsFileError(f"{partial}: what was written differs from what was converted")
        os.replace(partial, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)
    return path


def read_weights_file(path: str) -> list[ConvWeights]:
    """The 13 convolutions of a Keras h5 weights file of VGG16 (Keras' own or ours)."""
    import h5py

    convs = []
    try:
        with h5py.File(path, "r") as weights:
            for name, _, _ in VGG16_CONVS:
                if name not in weights:
                    raise WeightsFileError(f"{path} has no layer {name}")
                group = weights[name]
                weight_names = [
                    n.decode() if isinstance(n, bytes) else n
                    for n in group.attrs.get("weight_names", [])
                ]
                if len(weight_names) != 2:
                    raise WeightsFileError(f"{path}: layer {name} has {len(weight_names)} arrays")
                kernel, bias = (np.asarray(group[n]) for n in weight_names)
                convs.append(ConvWeights(name, kernel, bias))
    except OSError as error:  # not an HDF5 file, truncated
        raise WeightsFileError(f"cannot read {path}: {one_line(error)}") from error
    return convs


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__
