"""Training/serving parity: a real tf.Transform graph (made by tft_beam from preprocessing_fn,
without running the pipeline), exported with the model, then served through every signature."""

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
import tf_keras as keras
from PIL import Image
from tensorflow_transform.tf_metadata import dataset_metadata

from components import export, preprocessing, trainer
from components import model as model_lib
from components.settings import TransformConfig
from pipeline import predict

SIZE = 32
CLASS_NAMES = ["a", "b", "c"]
CONFIG = preprocessing.transform_custom_config(
    TransformConfig(image_size=SIZE, resize="crop"), "image", "label"
)
METADATA = {"note": "x"}


def image_bytes(seed: int, size: tuple[int, int], fmt: str) -> bytes:
    """A random image (width, height = size), not square so the crop matters."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format=fmt)
    return buffer.getvalue()


IMAGES = [
    image_bytes(0, (48, 40), "PNG"),
    image_bytes(1, (40, 64), "JPEG"),
    image_bytes(2, (90, 36), "PNG"),
]
LABELS = [0, 1, 2]


def serialized_example(
    image: bytes, label: int | None = None, image_key: str = "image", label_key: str = "label"
) -> bytes:
    feature = {image_key: tf.train.Feature(bytes_list=tf.train.BytesList(value=[image]))}
    if label is not None:
        feature[label_key] = tf.train.Feature(int64_list=tf.train.Int64List(value=[label]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def transform_graph_and_examples(
    work: Path, image_key: str = "image", label_key: str = "label"
) -> tuple[tft.TFTransformOutput, str]:
    """Runs tf.Transform's analysis (Beam, in process) on the raw examples and writes the
    transform graph folder as TFX's Transform component lays it out, then the raw examples as
    ExampleGen writes them (GZIP TFRecords), which the Trainer reads. Returns the output and
    the records' pattern. The feature names are the examples' (data.image_feature, ...)."""
    raw_metadata = dataset_metadata.DatasetMetadata.from_feature_spec(
        {
            image_key: tf.io.FixedLenFeature([1], tf.string),
            label_key: tf.io.FixedLenFeature([1], tf.int64),
        }
    )
    raw = [
        {image_key: [image], label_key: [label]}
        for image, label in zip(IMAGES, LABELS, strict=True)
    ]
    config = {**CONFIG, "raw_image_key": image_key, "raw_label_key": label_key}
    transform_dir = str(work / "transform_graph")
    with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=str(work / "tft_tmp")):
        transform_fn = (
            pipeline | beam.Create(raw, reshuffle=False),
            raw_metadata,
        ) | tft_beam.AnalyzeDataset(lambda inputs: preprocessing.preprocessing_fn(inputs, config))
        _ = transform_fn | tft_beam.WriteTransformFn(transform_dir)
        # TFX's Transform also writes the raw schema there; the export reads it.
        _ = raw_metadata | "RawMetadata" >> tft_beam.WriteMetadata(
            str(Path(transform_dir) / tft.TFTransformOutput.RAW_METADATA_DIR), pipeline
        )
    records = work / "examples" / "Split-train" / "data_tfrecord-00000-of-00001.gz"
    records.parent.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(records), tf.io.TFRecordOptions(compression_type="GZIP")) as f:
        for image, label in zip(IMAGES, LABELS, strict=True):
            f.write(serialized_example(image, label, image_key, label_key))
    return tft.TFTransformOutput(transform_dir), str(records.parent / "*")


@dataclass
class Exported:
    keras_model: keras.Model  # the model as trained
    tft_output: tft.TFTransformOutput
    records: str  # the raw training examples (file pattern)
    export_dir: str
    loaded: Any  # the SavedModel, loaded back


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Exported:
    work = tmp_path_factory.mktemp("export")
    tft_output, records = transform_graph_and_examples(work)
    keras.utils.set_random_seed(0)
    transfer = model_lib.build_transfer_model(
        SIZE, len(CLASS_NAMES), model_lib.BaseWeights(None, "random")
    )
    export_dir = str(work / "serving_model")
    export.export_model(
        transfer.model, tft_output, CLASS_NAMES, SIZE, export_dir, METADATA, "image"
    )
    return Exported(
        transfer.model, tft_output, records, export_dir, tf.saved_model.load(export_dir)
    )


def training_pixels(tft_output, records: str) -> np.ndarray:
    """What the Trainer's input (trainer.read_examples) feeds the network, in IMAGES order."""
    by_label = {
        int(label): pixels.numpy()
        for pixels, label in trainer.read_examples([records], tft_output, SIZE, "image", "label")
    }
    assert sorted(by_label) == LABELS
    return np.stack([by_label[label] for label in LABELS])


def direct_pixels() -> np.ndarray:
    """The same, spelled out: preprocessing, its compact encoding, parse_tensor back."""
    pixels = preprocessing.images_to_pixels(
        tf.constant(IMAGES), SIZE, CONFIG["transform"]["resize"]
    )
    encoded = preprocessing.encode_pixels(pixels)
    return np.stack([tf.io.parse_tensor(e, tf.uint8).numpy() for e in encoded])


def check_predictions(outputs: dict, count: int) -> None:
    probabilities = outputs["probabilities"].numpy()
    assert probabilities.shape == (count, len(CLASS_NAMES))
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)
    assert outputs["class_index"].dtype == tf.int64
    assert outputs["class_index"].shape == (count,)
    np.testing.assert_array_equal(outputs["class_index"].numpy(), probabilities.argmax(axis=-1))
    names = [name.decode() for name in outputs["class_name"].numpy()]
    assert names == [CLASS_NAMES[i] for i in outputs["class_index"].numpy()]


def test_the_transform_graph_expects_image_and_label(exported):
    assert set(exported.tft_output.raw_feature_spec()) == {"image", "label"}
    assert set(exported.tft_output.transformed_feature_spec()) == {"pixels", "label_xf"}


def test_all_five_signatures_are_exported(exported):
    loaded = exported.loaded
    assert set(loaded.signatures) == {
        export.EXAMPLES_SIGNATURE,
        export.IMAGES_SIGNATURE,
        export.TRANSFORM_SIGNATURE,
        export.GRADCAM_SIGNATURE,
        export.PIXELS_SIGNATURE,
    }
    assert export.EXAMPLES_SIGNATURE == "serving_default"


def test_the_gradcam_signature_sees_what_serving_sees(exported):
    """The report's Grad-CAM overlays come from this signature: it must run the serving graph
    (the same pixels as training, the same probabilities as serving_default) and return one
    map per image over block5_conv3's positions, scaled to [0, 1]."""
    loaded = exported.loaded
    examples = tf.constant([serialized_example(image, None) for image in IMAGES])
    found = loaded.signatures[export.GRADCAM_SIGNATURE](examples=examples)
    served = loaded.signatures["serving_default"](examples=examples)
    np.testing.assert_allclose(
        found["probabilities"].numpy(), served["probabilities"].numpy(), atol=1e-5
    )
    np.testing.assert_array_equal(found["class_index"].numpy(), served["class_index"].numpy())
    np.testing.assert_array_equal(
        found["pixels"].numpy(), training_pixels(exported.tft_output, exported.records)
    )
    maps = found["gradcam"].numpy()
    assert maps.shape == (len(IMAGES), SIZE // 16, SIZE // 16)
    assert maps.min() >= 0 and maps.max() <= 1


@pytest.mark.parametrize("with_label", [True, False])
def test_serving_default_takes_tf_examples(exported, with_label):
    loaded = exported.loaded
    examples = [
        serialized_example(image, label if with_label else None)
        for image, label in zip(IMAGES, LABELS, strict=True)
    ]

    outputs = loaded.signatures["serving_default"](examples=tf.constant(examples))

    check_predictions(outputs, len(IMAGES))


def test_serving_images_takes_encoded_bytes(exported):
    loaded = exported.loaded
    outputs = loaded.signatures["serving_images"](images=tf.constant(IMAGES))
    check_predictions(outputs, len(IMAGES))


def test_both_serving_paths_agree(exported):
    loaded = exported.loaded
    from_images = loaded.signatures["serving_images"](images=tf.constant(IMAGES))
    examples = tf.constant([serialized_example(image) for image in IMAGES])
    from_examples = loaded.signatures["serving_default"](examples=examples)

    np.testing.assert_allclose(
        from_images["probabilities"].numpy(), from_examples["probabilities"].numpy(), atol=1e-6
    )
    np.testing.assert_array_equal(
        from_images["class_name"].numpy(), from_examples["class_name"].numpy()
    )


def test_the_trainer_reads_what_preprocessing_makes(exported):
    np.testing.assert_array_equal(
        training_pixels(exported.tft_output, exported.records), direct_pixels()
    )


def test_serving_sees_exactly_the_training_pixels_and_predicts_as_the_model(exported):
    loaded = exported.loaded
    examples = [
        serialized_example(image, label) for image, label in zip(IMAGES, LABELS, strict=True)
    ]

    transformed = loaded.signatures["transform_features"](examples=tf.constant(examples))
    served_pixels = preprocessing.decode_pixels(transformed[preprocessing.PIXELS_KEY], SIZE).numpy()
    trained_pixels = training_pixels(exported.tft_output, exported.records)

    np.testing.assert_array_equal(served_pixels, trained_pixels)
    np.testing.assert_array_equal(
        transformed[preprocessing.TRANSFORMED_LABEL_KEY].numpy().reshape(-1), LABELS
    )
    served = loaded.signatures["serving_images"](images=tf.constant(IMAGES))
    np.testing.assert_allclose(
        exported.keras_model(trained_pixels, training=False).numpy(),
        served["probabilities"].numpy(),
        atol=1e-5,
    )


def test_class_names_and_metadata_travel_with_the_model(exported):
    names = [name.decode() for name in exported.loaded.class_names.numpy()]
    assert names == CLASS_NAMES
    metadata = export.read_model_metadata(exported.export_dir)
    assert metadata == {**METADATA, **export.signature_metadata("image")}
    assert metadata["image_feature"] == "image"
    assert exported.loaded.image_feature.numpy().decode() == "image"


def test_a_model_of_imported_examples_serves_by_their_own_image_feature(tmp_path):
    """Trained on examples whose image is `img_bytes`: serving_default reads that feature, the
    model and its metadata say so, and `predict` (serving_images) needs no feature name."""
    tft_output, _ = transform_graph_and_examples(tmp_path, "img_bytes", "cls")
    keras.utils.set_random_seed(0)
    transfer = model_lib.build_transfer_model(
        SIZE, len(CLASS_NAMES), model_lib.BaseWeights(None, "random")
    )
    export_dir = str(tmp_path / "serving" / "1")
    export.export_model(
        transfer.model, tft_output, CLASS_NAMES, SIZE, export_dir, METADATA, "img_bytes"
    )
    loaded = tf.saved_model.load(export_dir)

    examples = [serialized_example(image, None, "img_bytes") for image in IMAGES]
    from_examples = loaded.signatures["serving_default"](examples=tf.constant(examples))
    check_predictions(from_examples, len(IMAGES))
    assert loaded.image_feature.numpy().decode() == "img_bytes"
    metadata = export.read_model_metadata(export_dir)
    assert metadata["image_feature"] == "img_bytes"
    assert "'img_bytes'" in metadata["signatures"]["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="img_bytes"):
        # Examples with the default feature name lack the one this model reads.
        loaded.signatures["serving_default"](examples=tf.constant([serialized_example(IMAGES[0])]))

    paths = []
    for index, image in enumerate(IMAGES):
        paths.append(tmp_path / f"image{index}.img")
        paths[-1].write_bytes(image)
    model_dir, predictions = predict.predict(str(tmp_path / "serving"), [str(p) for p in paths])
    assert model_dir == export_dir
    probabilities = from_examples["probabilities"].numpy()
    for prediction, row in zip(predictions, probabilities, strict=True):
        name, probability = prediction.top[0]
        assert name == CLASS_NAMES[row.argmax()]
        assert probability == pytest.approx(row.max(), abs=1e-5)
