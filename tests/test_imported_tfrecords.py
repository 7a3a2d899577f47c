"""Existing TFRecords as the README's "Existing TFRecords" has a user bring them: their own
feature names (img_bytes, cls), classes in mixed order, GZIP files without a `.gz` name.
Compression read from the files' first bytes, the schema and class list checked before the run,
the labels' range checked by the data gate, counts from StatisticsGen, serving by the
examples' own image feature."""

import copy
import json
from pathlib import Path

import pytest
import tensorflow as tf
from conftest import make_colour_classes, schema_for_classes
from tfx.orchestration.local.local_dag_runner import LocalDagRunner

from components import export, tfrecord_import
from components.data_gate import DataValidationError
from pipeline.config import ConfigError, PipelineConfig, load_config
from pipeline.pipeline import create_pipeline

IMAGE_KEY, LABEL_KEY = "img_bytes", "cls"
REPO = Path(__file__).resolve().parents[1]


def example(image: bytes, label: int) -> bytes:
    feature = {
        IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
        LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_records(path: Path, records: list[bytes], compression: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path), tf.io.TFRecordOptions(compression_type=compression)) as f:
        for record in records:
            f.write(record)
    return path


def read_back(path: Path) -> list[bytes]:
    compression = tfrecord_import.compression_of([str(path)])
    return [r.numpy() for r in tf.data.TFRecordDataset(str(path), compression_type=compression)]


def imported_records(tmp_path: Path) -> tuple[Path, list[str]]:
    """train/ and eval/ folders of GZIP TFRecords named `.tfrecord`, classes interleaved."""
    classes = make_colour_classes(tmp_path / "images", per_class=6)
    files = {name: sorted((tmp_path / "images" / name).iterdir()) for name in classes}
    for split, chosen in (("train", range(0, 4)), ("eval", range(4, 6))):
        records = [
            example(files[name][i].read_bytes(), label)
            for i in chosen
            for label, name in enumerate(classes)
        ]
        write_records(tmp_path / "records" / split / "part-0.tfrecord", records, "GZIP")
    return tmp_path / "records", classes


def imported_config(tmp_path: Path, records: Path, classes: list[str], **data) -> PipelineConfig:
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
    config.data.tfrecords = str(records)
    config.data.image_feature, config.data.label_feature = IMAGE_KEY, LABEL_KEY
    config.data.class_names = list(classes)
    for key, value in data.items():
        setattr(config.data, key, value)
    return config


# --- Compression --------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["", "GZIP", "ZLIB"])
@pytest.mark.parametrize("name", ["data.tfrecord", "data.gz", "data"])
def test_compression_is_read_from_the_first_bytes_not_the_name(tmp_path, compression, name):
    records = [example(b"x" * n, n % 3) for n in range(1, 6)]
    path = write_records(tmp_path / name, records, compression)

    assert tfrecord_import.compression_of_file(str(path)) == compression
    assert read_back(path) == records


def test_an_uncompressed_record_whose_length_looks_like_a_gzip_header_is_uncompressed(tmp_path):
    # A record of 0x8b1f bytes: its length field starts with GZIP's magic number 1f 8b.
    record = b"\x00" * 0x8B1F
    path = write_records(tmp_path / "data.gz", [record])
    assert path.read_bytes()[:2] == b"\x1f\x8b"

    assert tfrecord_import.compression_of_file(str(path)) == ""
    assert read_back(path) == [record]


def test_files_that_are_not_tfrecords_or_mix_compressions_are_refused_by_name(tmp_path):
    not_records = tmp_path / "notes.txt"
    not_records.write_text("hello, these are not records")
    with pytest.raises(tfrecord_import.TFRecordFormatError, match="notes.txt is not a TFRecord"):
        tfrecord_import.compression_of([str(not_records)])

    plain = write_records(tmp_path / "a.tfrecord", [example(b"x", 0)])
    packed = write_records(tmp_path / "b.tfrecord", [example(b"x", 0)], "GZIP")
    with pytest.raises(tfrecord_import.TFRecordFormatError) as raised:
        tfrecord_import.compression_of([str(plain), str(packed)])
    assert "a.tfrecord" in str(raised.value) and "b.tfrecord" in str(raised.value)
    assert "GZIP" in str(raised.value) and "uncompressed" in str(raised.value)


# --- Checked before the run ---------------------------------------------------------------------


def test_a_schema_without_the_examples_features_is_refused_naming_theirs_and_the_command(
    tmp_path,
):
    records = tmp_path / "records"
    write_records(records / "train" / "part-0", [example(b"x", 1)], "GZIP")
    write_records(records / "eval" / "part-0", [example(b"x", 0)], "GZIP")
    config = imported_config(tmp_path, records, ["a", "b"])  # the bundled sample schema

    with pytest.raises(ConfigError) as raised:
        create_pipeline(config, stop_after="data")

    message = str(raised.value)
    assert "no feature 'img_bytes' or 'cls'" in message
    assert "The examples' features (first record of " in message
    assert "cls, img_bytes." in message  # the examples' own, read from the first record
    assert f"infer-schema --tfrecords {records} --set data.image_feature=img_bytes" in message
    assert "--set data.class_names=a,b" in message
    assert "--set data.schema=" in message


def renamed_schema(classes: list[str], out: Path) -> Path:
    """The sample schema for these classes, its image and label renamed to the examples'."""
    import tensorflow_data_validation as tfdv

    schema = tfdv.load_schema_text(str(schema_for_classes(classes, out)))
    for feature in schema.feature:
        feature.name = {"image": IMAGE_KEY, "label": LABEL_KEY}.get(feature.name, feature.name)
    tfdv.write_schema_text(schema, str(out))
    return out


def test_class_names_that_differ_from_the_schemas_class_list_are_refused_naming_both(tmp_path):
    records = tmp_path / "records"
    write_records(records / "train" / "part-0", [example(b"x", 1)])
    write_records(records / "eval" / "part-0", [example(b"x", 0)])
    schema = renamed_schema(["a", "b", "c"], tmp_path / "schema.pbtxt")
    config = imported_config(tmp_path, records, ["b", "a", "c"], schema=str(schema))

    with pytest.raises(ConfigError) as raised:
        create_pipeline(config, stop_after="data")

    assert "data.class_names is ['b', 'a', 'c']" in str(raised.value)
    assert "lists the classes ['a', 'b', 'c']" in str(raised.value)

    config.data.class_names = ["a", "b", "c"]
    create_pipeline(config, stop_after="data")  # the same list, in the same order: accepted


# --- The user's path, run ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def user_run(tmp_path_factory):
    """infer-schema for the imported records, then a run up to the Trainer, as the README
    tells a user to."""
    from pipeline.infer_schema import infer_schema

    tmp_path = tmp_path_factory.mktemp("imported")
    records, classes = imported_records(tmp_path)
    config = imported_config(tmp_path, records, classes)
    schema = infer_schema(config, str(tmp_path / "schema.pbtxt"))
    config.data.schema = schema
    LocalDagRunner().run(create_pipeline(config, stop_after="train"))
    return tmp_path, config, classes


@pytest.mark.slow
def test_infer_schema_writes_the_examples_own_features(user_run):
    import tensorflow_data_validation as tfdv

    _, config, classes = user_run
    schema = tfdv.load_schema_text(config.data.schema)
    features = {f.name: f for f in schema.feature}
    assert set(features) == {IMAGE_KEY, LABEL_KEY}
    assert features[LABEL_KEY].int_domain.max == len(classes) - 1


@pytest.mark.slow
def test_counts_of_imported_examples_come_from_statistics_gen(user_run):
    from pipeline.history.build import build_record
    from pipeline.history.commands import run_rows
    from pipeline.history.console import summary_text
    from pipeline.history.record import save_record

    tmp_path, config, classes = user_run
    (gate,) = (tmp_path / "run" / "artifacts" / "DataGate" / "result").glob("*/data_gate.json")
    data = json.loads(gate.read_text())["data"]
    assert data["examples_per_split"] == {"eval": 6, "train": 12}
    assert data["examples_per_split_and_class"] == {
        "eval": {name: 2 for name in classes},
        "train": {name: 4 for name in classes},
    }

    record = build_record(config)
    assert "Data:       18 imported examples (eval 6, train 12), 3 classes" in summary_text(record)
    assert run_rows(config)[-1]["examples"] is None  # LocalDagRunner alone saves no record
    save_record(config, record)
    assert run_rows(config)[-1]["examples"] == 18


@pytest.mark.slow
def test_the_report_shows_imported_counts(user_run):
    from pipeline.history.report import write_report

    tmp_path, config, _ = user_run
    html = Path(write_report(config, out=str(tmp_path / "report.html"))).read_text()
    assert "18 imported examples (eval 6, train 12) in 3" in html
    assert "Examples per class and split (StatisticsGen)" in html


@pytest.mark.slow
def test_the_model_serves_and_predicts_by_the_examples_image_feature(user_run):
    from pipeline.predict import predict

    tmp_path, _, classes = user_run
    (model_dir,) = (tmp_path / "run" / "artifacts" / "Trainer" / "model").glob("*/Format-Serving")
    assert export.read_model_metadata(str(model_dir))["image_feature"] == IMAGE_KEY
    image = next((tmp_path / "images" / classes[0]).iterdir())
    served = tf.saved_model.load(str(model_dir)).signatures["serving_default"](
        examples=tf.constant([example(image.read_bytes(), 0)])
    )

    _, (prediction,) = predict(str(model_dir), [str(image)], top_k=3)

    assert prediction.top[0][0] == served["class_name"].numpy()[0].decode()
    assert prediction.top[0][1] == pytest.approx(float(served["probabilities"].numpy().max()))


@pytest.mark.slow
def test_labels_beyond_a_short_class_list_stop_the_run_at_the_data_gate(user_run, tmp_path):
    """Labels 0 to 2 and two class names: stopped before Transform, naming both."""
    _, config, classes = user_run
    config = copy.deepcopy(config)
    config.data.class_names = classes[:2]
    config.runtime.root = str(tmp_path / "run")

    with pytest.raises(Exception) as raised:
        LocalDagRunner().run(create_pipeline(config, stop_after="train"))

    chain, error = [], raised.value
    while error is not None:
        chain.append(f"{type(error).__name__}: {error}")
        error = error.__cause__ or error.__context__
    message = "\n".join(chain)
    assert DataValidationError.__name__ in message
    assert "feature 'cls': labels range from 0 to 2" in message
    assert f"the class list has 2 names ({classes[0]}, {classes[1]})" in message
    assert not (tmp_path / "run" / "artifacts" / "Transform").exists()
