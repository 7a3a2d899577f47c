"""Ingestion -> statistics -> curated schema -> validation gate, through LocalDagRunner."""

from pathlib import Path

import pytest
import tensorflow as tf
from conftest import make_colour_classes, schema_for_classes
from tfx.orchestration.local.local_dag_runner import LocalDagRunner

from components.data_gate import DataValidationError
from pipeline.config import PipelineConfig, load_config
from pipeline.pipeline import create_pipeline

pytestmark = pytest.mark.slow


def _config(tmp_path: Path, **data) -> PipelineConfig:
    config = load_config(overrides=[f"runtime.root={tmp_path / 'run'}"])
    for key, value in data.items():
        setattr(config.data, key, value)
    return config


def _error_chain(error: BaseException) -> str:
    parts = []
    while error is not None:
        parts.append(f"{type(error).__name__}: {error}")
        error = error.__cause__ or error.__context__
    return "\n".join(parts)


def test_clean_image_folder_passes_validation(tmp_path):
    classes = make_colour_classes(tmp_path / "images", per_class=8)
    config = _config(
        tmp_path,
        images=str(tmp_path / "images"),
        schema=str(schema_for_classes(classes, tmp_path / "schema.pbtxt")),
        split_buckets={"train": 1, "eval": 1},
    )
    LocalDagRunner().run(create_pipeline(config, stop_after="data"))
    (result,) = (tmp_path / "run" / "artifacts" / "DataGate" / "result").glob("*/data_gate.json")
    assert '"anomalies": []' in result.read_text()


def _example(image: bytes | None, label: int) -> bytes:
    feature = {"label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label]))}
    if image is not None:
        feature["image"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[image]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _write_tfrecords(path: Path, examples: list[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for example in examples:
            writer.write(example)


def test_anomalies_in_imported_tfrecords_stop_the_pipeline(tmp_path):
    """Eval examples without an image, with a label the schema doesn't know, and a label mix
    unlike train's: each is named, and nothing after the gate runs."""
    png = tf.io.encode_png(tf.zeros([40, 40, 3], tf.uint8)).numpy()
    train = [_example(png, label % 3) for label in range(30)]
    eval_ = [_example(png, 0) for _ in range(12)] + [_example(None, 1), _example(png, 7)]
    _write_tfrecords(tmp_path / "records" / "train" / "data.tfrecord", train)
    _write_tfrecords(tmp_path / "records" / "eval" / "data.tfrecord", eval_)
    schema = _imported_schema(tmp_path / "schema.pbtxt")
    config = _config(
        tmp_path,
        tfrecords=str(tmp_path / "records"),
        schema=str(schema),
        class_names=["a", "b", "c"],
    )

    with pytest.raises(Exception) as raised:
        LocalDagRunner().run(create_pipeline(config, stop_after="all"))

    message = _error_chain(raised.value)
    assert DataValidationError.__name__ in message
    assert "split 'eval', feature 'image'" in message  # missing in one example
    assert "split 'eval', feature 'label'" in message  # 7 is out of [0, 2]
    assert "validation.label_drift_threshold" in message  # all-zero labels against train's mix
    assert not (tmp_path / "run" / "artifacts" / "Transform").exists()  # stopped before it


def _imported_schema(
    out: Path, names: dict[str, str] | None = None, classes: tuple[str, ...] = ("a", "b", "c")
) -> Path:
    """The curated schema for records that carry only image and label (renamed by `names`)."""
    import tensorflow_data_validation as tfdv

    schema = tfdv.load_schema_text(str(schema_for_classes(list(classes), out)))
    keep = [f for f in schema.feature if f.name in ("image", "label")]
    for feature in keep:
        feature.name = (names or {}).get(feature.name, feature.name)
    del schema.feature[:]
    schema.feature.extend(keep)
    tfdv.write_schema_text(schema, str(out))
    return out


def test_imported_tfrecords_with_their_own_feature_names_train_and_serve(tmp_path):
    """Uncompressed TFRecords whose features have TF-slim names pass validation, and the Trainer
    reads them as imported, through the Transform graph, by those names; the model it exports
    classifies an image through the same graph."""
    classes = make_colour_classes(tmp_path / "images", per_class=6)
    image_key, label_key = "image/encoded", "image/class/label"
    for split, chosen in (("train", slice(0, 4)), ("eval", slice(4, 6))):
        examples = []
        for label, name in enumerate(classes):
            for path in sorted((tmp_path / "images" / name).iterdir())[chosen]:
                feature = {
                    image_key: tf.train.Feature(
                        bytes_list=tf.train.BytesList(value=[path.read_bytes()])
                    ),
                    label_key: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                }
                example = tf.train.Example(features=tf.train.Features(feature=feature))
                examples.append(example.SerializeToString())
        _write_tfrecords(tmp_path / "records" / split / "data.tfrecord", examples)
    schema = _imported_schema(
        tmp_path / "schema.pbtxt", {"image": image_key, "label": label_key}, tuple(classes)
    )
    config = load_config(
        overrides=[
            f"runtime.root={tmp_path / 'run'}",
            "transform.image_size=32",
            "training.weights=none",
            "training.epochs=1",
            "training.fine_tune=false",
            "training.batch_size=4",
        ]
    )
    config.data.tfrecords = str(tmp_path / "records")
    config.data.schema = str(schema)
    config.data.class_names = classes
    config.data.image_feature, config.data.label_feature = image_key, label_key

    LocalDagRunner().run(create_pipeline(config, stop_after="train"))

    (model_dir,) = (tmp_path / "run" / "artifacts" / "Trainer" / "model").glob("*/Format-Serving")
    served = tf.saved_model.load(str(model_dir)).signatures["serving_images"](
        images=tf.constant([next((tmp_path / "images" / classes[0]).iterdir()).read_bytes()])
    )
    assert served["probabilities"].shape == (1, len(classes))
    assert served["class_name"].numpy()[0].decode() in classes
