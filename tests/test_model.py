"""The VGG16 transfer model: shapes, the freeze/unfreeze recipe (counted in parameters), VGG's
input preprocessing, and a weights file loaded into the base."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

from components import model
from components.base_weights import resolve_base_weights

RANDOM = model.BaseWeights(None, "random")
SIZE = 32  # VGG16's smallest input: the base's output is 1x1x512

VGG16_NOTOP_PARAMS = 14_714_688
BLOCK5_PARAMS = 3 * (3 * 3 * 512 * 512 + 512)
BLOCK4_PARAMS = (3 * 3 * 256 * 512 + 512) + 2 * (3 * 3 * 512 * 512 + 512)


def flatten_head_params(num_classes: int, units: int = 1024) -> int:
    return (512 * units + units) + (units * num_classes + num_classes)


@pytest.fixture
def transfer() -> model.TransferModel:
    keras.utils.set_random_seed(0)
    return model.build_transfer_model(SIZE, 5, RANDOM, head="flatten")


def test_output_is_one_probability_per_class(transfer):
    assert transfer.model.output_shape == (None, 5)
    assert transfer.model.input.dtype == tf.uint8
    probabilities = transfer.model(np.zeros((2, SIZE, SIZE, 3), np.uint8)).numpy()
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)


def test_phase_one_trains_only_the_head(transfer):
    trainable, frozen = model.count_weights(transfer.model)

    assert trainable == flatten_head_params(5)
    assert frozen == VGG16_NOTOP_PARAMS
    assert model.count_weights(transfer.base) == (0, VGG16_NOTOP_PARAMS)


def test_unfreezing_one_block_trains_block5_and_the_head(transfer):
    names = model.unfreeze_top_blocks(transfer.base, 1)

    assert names == ["block5_conv1", "block5_conv2", "block5_conv3"]
    trainable, frozen = model.count_weights(transfer.model)
    assert trainable == flatten_head_params(5) + BLOCK5_PARAMS
    assert trainable + frozen == flatten_head_params(5) + VGG16_NOTOP_PARAMS


def test_unfreezing_two_blocks_adds_block4(transfer):
    names = model.unfreeze_top_blocks(transfer.base, 2)

    assert len(names) == 6
    assert all(name.startswith(("block4", "block5")) for name in names)
    trainable, _ = model.count_weights(transfer.model)
    assert trainable == flatten_head_params(5) + BLOCK5_PARAMS + BLOCK4_PARAMS


def test_freeze_base_undoes_unfreezing(transfer):
    model.unfreeze_top_blocks(transfer.base, 2)
    model.freeze_base(transfer.base)
    assert model.count_weights(transfer.model)[0] == flatten_head_params(5)


@pytest.mark.parametrize("num_classes", [3, 7])
def test_gap_head_has_only_the_output_layer_to_train(num_classes):
    transfer = model.build_transfer_model(SIZE, num_classes, RANDOM, head="gap")

    assert transfer.model.output_shape == (None, num_classes)
    trainable, frozen = model.count_weights(transfer.model)
    assert trainable == 512 * num_classes + num_classes
    assert frozen == VGG16_NOTOP_PARAMS


def test_vgg_preprocess_is_keras_caffe_preprocessing():
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)

    ours = model.VGGPreprocess()(tf.constant(pixels)).numpy()
    expected = keras.applications.vgg16.preprocess_input(pixels.astype(np.float32))

    np.testing.assert_allclose(ours, expected, atol=1e-4)
    # Caffe mode, spelled out: BGR order, ImageNet means subtracted, no scaling.
    bgr_means = np.array([103.939, 116.779, 123.68], np.float32)
    np.testing.assert_allclose(ours, pixels[..., ::-1] - bgr_means, atol=1e-4)


def test_feature_extractor_shares_the_base_and_feeds_the_head(transfer):
    pixels = np.random.default_rng(2).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)

    features = transfer.feature_extractor(pixels)

    assert features.shape == (3, 1, 1, 512)
    np.testing.assert_allclose(
        transfer.head(features).numpy(), transfer.model(pixels).numpy(), atol=1e-6
    )


# --- Base weights (their resolution: tests/test_base_weights.py) ------------------------------


def test_a_weights_file_is_loaded_into_the_base(tmp_path):
    keras.utils.set_random_seed(1)
    first = model.build_transfer_model(SIZE, 3, RANDOM)
    path = str(tmp_path / "w.h5")
    first.base.save_weights(path)

    weights = resolve_base_weights(path)
    assert weights.keras_arg == path

    keras.utils.set_random_seed(2)  # a different random init that the file must overwrite
    second = model.build_transfer_model(SIZE, 3, weights)
    third = model.build_transfer_model(SIZE, 3, RANDOM)

    for ours, theirs in zip(second.base.get_weights(), first.base.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    first_kernel = first.base.get_layer("block1_conv1").get_weights()[0]
    assert not np.array_equal(third.base.get_layer("block1_conv1").get_weights()[0], first_kernel)
