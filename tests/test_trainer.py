"""The Trainer's parts: the feature cache (same outputs and same training as the full model, the
base runs once), augmentation, the epoch log, strategy / mixed precision, class names."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from tensorflow_metadata.proto.v0 import schema_pb2

from components import model as model_lib
from components import trainer
from components.settings import TrainingConfig

SIZE, CLASSES, EXAMPLES, BATCH = 32, 3, 40, 8
RANDOM = model_lib.BaseWeights(None, "random")
REPO = Path(__file__).resolve().parents[1]
SAMPLE_SCHEMA = str(REPO / "data" / "sample_schema.pbtxt")


@pytest.fixture
def images() -> tf.data.Dataset:
    """(uint8 [32, 32, 3], int64 label) pairs, unbatched, in a fixed order."""
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (EXAMPLES, SIZE, SIZE, 3), dtype=np.uint8)
    labels = rng.integers(0, CLASSES, EXAMPLES).astype(np.int64)
    return tf.data.Dataset.from_tensor_slices((pixels, labels))


def build(seed: int = 0) -> model_lib.TransferModel:
    keras.utils.set_random_seed(seed)
    return model_lib.build_transfer_model(SIZE, CLASSES, RANDOM, head="flatten")


def counting(extractor: keras.Model, counter: tf.Variable, graphs: list[str] | None = None):
    """The extractor, counting the images it is run on (and naming the graphs it is traced in)."""

    def extract(pixels, training=False):
        if graphs is not None:
            graphs.append(tf.compat.v1.get_default_graph().name)
        with tf.control_dependencies([counter.assign_add(tf.shape(pixels, tf.int64)[0])]):
            return tf.identity(extractor(pixels, training=training))

    return extract


def test_cached_features_give_the_full_models_outputs_and_are_computed_once(images, tmp_path):
    transfer = build()
    counter = tf.Variable(0, dtype=tf.int64)
    cache_file = str(tmp_path / "train")
    graphs: list[str] = []

    features = trainer.cache_base_features(
        counting(transfer.feature_extractor, counter, graphs), images, BATCH, cache_file
    )

    assert int(counter.numpy()) == EXAMPLES  # one full pass when the cache is made
    assert (tmp_path / "train").stat().st_size > 0  # the cache is on disk
    # Not in a tf.data function (those run on the CPU, whatever accelerator there is).
    assert graphs and not any(name.lower().startswith("dataset") for name in graphs), graphs
    for (feature_batch, cached_labels), (image_batch, labels) in zip(
        features.batch(BATCH), images.batch(BATCH), strict=True
    ):
        np.testing.assert_allclose(
            transfer.head(feature_batch).numpy(), transfer.model(image_batch).numpy(), atol=1e-5
        )
        np.testing.assert_array_equal(cached_labels.numpy(), labels.numpy())
    assert sum(1 for _ in features) == EXAMPLES
    assert int(counter.numpy()) == EXAMPLES  # later passes read the cache, not the base


def test_training_the_head_on_cached_features_equals_training_the_frozen_model(images, tmp_path):
    cached, full = build(seed=0), build(seed=1)
    full.model.set_weights(cached.model.get_weights())
    features = trainer.cache_base_features(
        cached.feature_extractor, images, BATCH, str(tmp_path / "train")
    )
    before = [w.copy() for w in cached.head.get_weights()]

    model_lib.compile_model(cached.head, 1e-3)
    cached.head.fit(features.batch(BATCH), epochs=1, shuffle=False, verbose=0)
    model_lib.compile_model(full.model, 1e-3)
    full.model.fit(images.batch(BATCH), epochs=1, shuffle=False, verbose=0)

    after_cached, after_full = cached.head.get_weights(), full.head.get_weights()
    assert any(
        not np.allclose(b, a) for b, a in zip(before, after_cached, strict=True)
    )  # it did learn
    for ours, theirs in zip(after_cached, after_full, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-4)
    # The frozen base stayed as it was in both.
    for ours, theirs in zip(cached.base.get_weights(), full.base.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_augment_changes_pixels_but_not_shape_dtype_or_label():
    pixels = tf.constant(np.random.default_rng(4).integers(0, 256, (SIZE, SIZE, 3), np.uint8))
    label = tf.constant(2, tf.int64)

    outputs = [trainer.augment(pixels, label, seed) for seed in range(5)]

    for augmented, augmented_label in outputs:
        assert augmented.dtype == tf.uint8
        assert augmented.shape == (SIZE, SIZE, 3)
        assert int(augmented_label) == 2
    assert any(not np.array_equal(a.numpy(), pixels.numpy()) for a, _ in outputs)


def test_training_batches_batch_and_augment(images):
    batches = list(trainer.training_batches(images, BATCH, seed=0, augment_images=True))

    assert len(batches) == EXAMPLES // BATCH
    assert batches[0][0].shape == (BATCH, SIZE, SIZE, 3)
    assert batches[0][0].dtype == tf.uint8
    labels = np.concatenate([y.numpy() for _, y in batches])
    assert sorted(labels) == sorted(y.numpy() for _, y in images)  # shuffled, none lost


def test_epoch_log_records_phase_epoch_seconds_learning_rate_and_metrics():
    keras.utils.set_random_seed(0)
    tiny = keras.Sequential([keras.Input((4,)), keras.layers.Dense(CLASSES, "softmax")])
    model_lib.compile_model(tiny, 0.01)
    x = np.random.default_rng(5).normal(size=(16, 4)).astype(np.float32)
    y = np.arange(16) % CLASSES
    history: list[dict] = []

    tiny.fit(
        x, y, epochs=2, batch_size=8, verbose=0, callbacks=[trainer.EpochLog("phase1", history)]
    )

    assert [entry["epoch"] for entry in history] == [1, 2]
    for entry in history:
        assert entry["phase"] == "phase1"
        assert entry["seconds"] >= 0
        assert entry["learning_rate"] == pytest.approx(0.01)
        assert isinstance(entry["loss"], float) and entry["loss"] > 0
        assert 0 <= entry["accuracy"] <= 1


@pytest.fixture
def cpu_only(monkeypatch):
    """Whatever the machine, these tests see no GPU (the CPU behaviour is what they check)."""
    physical, logical = tf.config.list_physical_devices, tf.config.list_logical_devices

    def without_gpus(listing):
        return lambda device_type=None: [] if device_type == "GPU" else listing(device_type)

    monkeypatch.setattr(tf.config, "list_physical_devices", without_gpus(physical))
    monkeypatch.setattr(tf.config, "list_logical_devices", without_gpus(logical))


@pytest.fixture
def restore_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("distribution", ["none", "auto"])
def test_one_device_gets_the_default_strategy(cpu_only, distribution):
    strategy = trainer.choose_strategy(distribution)
    assert strategy is tf.distribute.get_strategy()
    assert strategy.num_replicas_in_sync == 1


def test_mixed_precision_auto_is_off_without_a_gpu(cpu_only, restore_policy):
    keras.mixed_precision.set_global_policy("mixed_float16")  # must be reset, not kept

    assert trainer.use_mixed_precision("auto") is False
    assert keras.mixed_precision.global_policy().name == "float32"


def test_mixed_precision_on_sets_the_policy(restore_policy):
    assert trainer.use_mixed_precision("on") is True
    assert keras.mixed_precision.global_policy().name == "mixed_float16"
    assert trainer.use_mixed_precision("off") is False
    assert keras.mixed_precision.global_policy().name == "float32"


def test_class_names_come_from_the_schema():
    assert trainer.class_names_for(SAMPLE_SCHEMA, [], label_key="label") == [
        "animals",
        "food",
        "people",
        "plants",
        "transportation",
    ]


def test_configured_class_names_take_precedence():
    assert trainer.class_names_for(SAMPLE_SCHEMA, ["b", "a"], label_key="label") == ["b", "a"]


def test_without_a_class_list_the_names_are_label_numbers(tmp_path):
    from google.protobuf import text_format

    schema = text_format.Parse(Path(SAMPLE_SCHEMA).read_text(), schema_pb2.Schema())
    for domain in list(schema.string_domain):
        if domain.name == "class_name_values":
            schema.string_domain.remove(domain)
    path = tmp_path / "schema.pbtxt"
    path.write_text(text_format.MessageToString(schema))

    assert trainer.class_names_for(str(path), [], label_key="label") == ["0", "1", "2", "3", "4"]


def test_balanced_class_weights_are_the_inverse_shares_of_the_train_split():
    labels = np.array([0, 0, 0, 1])  # a class of 3, a class of 1
    assert trainer.class_weights(labels, ["a", "b"], "none") is None
    assert trainer.class_weights(labels, ["a", "b"], "balanced") == pytest.approx(
        {0: 4 / (2 * 3), 1: 4 / (2 * 1)}
    )
    with pytest.raises(ValueError, match=r"no example of \['c'\].*training.class_weight=none"):
        trainer.class_weights(labels, ["a", "b", "c"], "balanced")


def test_labels_are_read_without_decoding_an_image(tmp_path):
    path = str(tmp_path / "part.gz")
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for label in [2, 0, 1, 1]:
            feature = {
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"not decoded"])),
            }
            writer.write(
                tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
            )
    np.testing.assert_array_equal(trainer.read_labels([str(tmp_path / "*")], "label"), [2, 0, 1, 1])


def test_class_weights_reach_the_loss_of_both_phases(images, tmp_path):
    """The same seeded model and data, trained with and without class weights: every epoch's
    loss of both phases differs, which it could not if fit ignored them."""
    training = TrainingConfig(
        epochs=1, fine_tune_epochs=1, batch_size=BATCH, early_stopping_patience=0
    )

    def losses(class_weight):
        history = trainer.train(
            build(seed=0),
            images,
            images,
            training=training,
            log_dir=str(tmp_path / str(class_weight is None)),
            strategy=tf.distribute.get_strategy(),
            class_weight=class_weight,
        )
        return {e["phase"]: e["loss"] for e in history if "loss" in e}

    plain, weighted = losses(None), losses({0: 5.0, 1: 0.2, 2: 0.2})
    assert set(plain) == set(weighted) == {"phase1", "phase2"}
    for phase in plain:
        assert weighted[phase] != pytest.approx(plain[phase], rel=1e-3), phase
