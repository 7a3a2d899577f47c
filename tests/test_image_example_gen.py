"""Runs the real ImageExampleGen through TFX's LocalDagRunner on folders of good, odd and bad
files. Slow (TFX imports alone take tens of seconds), so each run covers as many cases as it can."""

import hashlib
import itertools
import json
import os
from pathlib import Path

import pytest
import tensorflow as tf
from ml_metadata.metadata_store import metadata_store
from PIL import Image
from tfx.orchestration import metadata
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.orchestration.local.local_dag_runner import LocalDagRunner

from components import image_example_gen
from components.image_example_gen import ImageExampleGen, IngestionReport
from components.ingestion_report import HASHES_FILE, REPORT_FILE
from components.settings import IngestionConfig

pytestmark = pytest.mark.slow

CLASSES = ["cats", "dogs", "owls"]  # sorted: label = index
BEAM_ARGS = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]


def run_pipeline(
    work: Path,
    input_base: Path,
    max_bad_fraction: float,
    class_names: list[str] | None = None,
    duplicates: str = "fail",
) -> Path:
    """Runs ImageExampleGen alone, with its own pipeline root and metadata store under `work`."""
    component = ImageExampleGen(
        input_base=str(input_base),
        split_buckets={"train": 1, "eval": 1},
        ingestion=IngestionConfig(max_bad_fraction=max_bad_fraction),
        duplicates=duplicates,
        background="white",
        class_names=class_names,
    )
    pipeline = tfx_pipeline.Pipeline(
        pipeline_name="image-ingestion-test",
        pipeline_root=str(work / "root"),
        components=[component],
        enable_cache=False,
        metadata_connection_config=metadata_config(work),
        beam_pipeline_args=BEAM_ARGS,
    )
    LocalDagRunner().run(pipeline)
    return work / "root"


def metadata_config(work: Path):
    return metadata.sqlite_metadata_connection_config(str(work / "metadata.sqlite"))


def error_text(error: BaseException) -> str:
    """The messages of an exception and of everything it was raised from."""
    texts = []
    while error is not None:
        texts.append(str(error))
        error = error.__cause__ or error.__context__
    return "\n".join(texts)


def only(paths: list) -> Path:
    assert len(paths) == 1, paths
    return Path(paths[0])


def read_examples(examples_dir: Path) -> dict[str, list[tf.train.Example]]:
    """The tf.Examples of each Split-<name> folder of an Examples artifact (gzipped TFRecords)."""
    splits = {}
    for split_dir in sorted(examples_dir.glob("Split-*")):
        files = [str(f) for f in sorted(split_dir.iterdir())]
        records = tf.data.TFRecordDataset(files, compression_type="GZIP")
        splits[split_dir.name[len("Split-") :]] = [
            tf.train.Example.FromString(r.numpy()) for r in records
        ]
    return splits


def feature(example: tf.train.Example, key: str):
    value = example.features.feature[key]
    return value.bytes_list.value[0] if value.bytes_list.value else value.int64_list.value[0]


def make_good_images(base: Path, make_image, classes=CLASSES, per_class=8) -> dict[str, str]:
    """per_class small noise images per class, JPEG and PNG in turn. Returns {id: class}."""
    good = {}
    for name in classes:
        for i in range(per_class):
            fmt, ext = ("JPEG", "jpg") if i % 2 else ("PNG", "png")
            make_image(base / name / f"img{i}.{ext}", "RGB", (40, 48), fmt)
            good[f"{name}/img{i}.{ext}"] = name
    return good


def make_messy_folder(base: Path, make_image) -> tuple[dict[str, str], dict[str, str]]:
    """Good images, images of odd but accepted kinds, bad files and non-image files, spread over
    the class folders. Returns ({good id: class}, {bad id: expected reason fragment})."""
    good = make_good_images(base, make_image)
    odd = {
        "cats/alpha.png": ("RGBA", "PNG", 1),
        "cats/grey.png": ("L", "PNG", 1),
        "dogs/grey.jpg": ("L", "JPEG", 1),
        "dogs/print.jpg": ("CMYK", "JPEG", 1),
        "owls/deep.png": ("I;16", "PNG", 1),
        "owls/anim.gif": ("RGB", "GIF", 3),
        "owls/paint.bmp": ("RGB", "BMP", 1),
    }
    for rel, (mode, fmt, frames) in odd.items():
        make_image(base / rel, mode, (40, 48), fmt, frames=frames)
        good[rel] = rel.split("/")[0]

    cut = make_image(base / "cats/cut.jpg", "RGB", (40, 48), "JPEG")
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    (base / "cats/zero.jpg").write_bytes(b"")
    (base / "dogs/notes.jpg").write_text("not a photo\n")
    make_image(base / "dogs/tiny.png", "RGB", (20, 20), "PNG")
    os.symlink("loop.jpg", base / "owls/loop.jpg")  # points at itself
    os.symlink("gone.jpg", base / "owls/broken.jpg")  # points at nothing
    Image.new("P", (40, 48), 0).save(base / "owls/cut.gif", transparency=0)
    bad = {
        "cats/cut.jpg": "truncated or corrupt",
        "cats/zero.jpg": "empty file",
        "dogs/notes.jpg": "not a readable image",
        "dogs/tiny.png": "too small",
        "owls/loop.jpg": "unreadable: symbolic link loop",
        "owls/broken.jpg": "unreadable: broken symbolic link (points at gone.jpg",
        "owls/cut.gif": "GIF with a transparent colour",
    }
    return good, bad


def make_files_not_read(base: Path, make_image) -> dict[str, str]:
    """Entries that are not images to ingest. Returns {path: expected reason fragment}."""
    (base / "cats/.DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (base / "dogs/README.txt").write_text("photos of dogs\n")
    make_image(base / "dogs/photo.webp", "RGB", (40, 48), "WEBP")
    make_image(base / "owls/scan.tif", "RGB", (40, 48), "TIFF")
    make_image(base / "owls/more/img0.jpg", "RGB", (40, 48), "JPEG")  # nested folder
    make_image(base / "owls/.cache/img0.jpg", "RGB", (40, 48), "JPEG")
    (base / ".thumbnails").mkdir()  # a hidden folder is not a class
    make_image(base / ".thumbnails/img0.png", "RGB", (40, 48), "PNG")
    (base / "labels.csv").write_text("file,label\n")
    return {
        "cats/.DS_Store": "hidden file",
        "dogs/README.txt": "not an image file name ('.txt' extension; only PNG, JPEG, GIF and BMP",
        "dogs/photo.webp": "unsupported format WebP (only PNG, JPEG, GIF and BMP are read)",
        "owls/scan.tif": "unsupported format TIFF (only PNG, JPEG, GIF and BMP are read)",
        "owls/more": "folder inside a class folder: not read; move its images up",
        "owls/.cache": "hidden folder: not read",
        ".thumbnails": "hidden folder: not read as a class",
        "labels.csv": "file outside the class folders",
    }


def test_messy_folder_is_ingested_with_bad_files_quarantined(
    tmp_path, image_dir, make_image, tree_digest
):
    good, bad = make_messy_folder(image_dir, make_image)
    not_read = make_files_not_read(image_dir, make_image)
    before = tree_digest(image_dir)

    root = run_pipeline(tmp_path, image_dir, max_bad_fraction=0.5)

    assert tree_digest(image_dir) == before  # nothing in the source folder was touched

    report = json.loads(
        only(list(root.glob(f"ImageExampleGen/report/*/{REPORT_FILE}"))).read_text()
    )
    assert report["classes"] == CLASSES
    reasons = {q["path"]: q["reason"] for q in report["quarantined"]}
    assert sorted(reasons) == sorted(bad)
    for path, fragment in bad.items():
        assert fragment in reasons[path], (path, reasons[path])
    skipped = {s["path"]: s["reason"] for s in report["skipped"]}
    assert sorted(skipped) == sorted(not_read)
    for path, fragment in not_read.items():
        assert fragment in skipped[path], (path, skipped[path])
    assert report["examples"] == len(good)
    # The report also lies outside the artifact folder (which TFX deletes if the step fails).
    assert json.loads(Path(report["path"]).read_text()) == report
    hashes = (Path(report["path"]).parents[1] / "report").glob(f"*/{HASHES_FILE}")
    lines = only(list(hashes)).read_text().splitlines()
    assert lines[0].split("\t") == ["path", "class", "split", "sha256", "pixels_sha256"]
    by_path = {line.split("\t")[0]: line.split("\t") for line in lines[1:]}
    assert sorted(by_path) == sorted(good)
    some = "cats/img0.png"
    assert by_path[some][3] == hashlib.sha256((image_dir / some).read_bytes()).hexdigest()
    assert report["image_files"] == len(good) + len(bad)

    splits = read_examples(only(list(root.glob("ImageExampleGen/examples/*"))))
    assert sorted(splits) == ["eval", "train"]
    ids_per_split = {}
    for split, examples in splits.items():
        ids = [feature(e, "image_id").decode() for e in examples]
        ids_per_split[split] = set(ids)
        assert len(ids) == len(set(ids)), f"an image is twice in {split}"
        assert report["examples_per_split"][split] == len(ids)
        for example, image_id in zip(examples, ids, strict=True):
            class_name = good[image_id]
            assert feature(example, "image") == (image_dir / image_id).read_bytes()  # as is
            assert feature(example, "class_name").decode() == class_name
            assert feature(example, "label") == CLASSES.index(class_name)
            assert not any(key.startswith("_") for key in example.features.feature)
    assert not ids_per_split["train"] & ids_per_split["eval"]
    assert ids_per_split["train"] | ids_per_split["eval"] == set(good)
    # Classes are interleaved, not written class after class: a bounded shuffle buffer in the
    # Trainer would otherwise see one class at a time once a split is larger than the buffer.
    labels = [feature(e, "label") for e in splits["train"]]
    changes = sum(a != b for a, b in itertools.pairwise(labels))
    assert changes >= len(labels) // 3, labels  # in listing order: len(CLASSES) - 1 changes

    store = metadata_store.MetadataStore(metadata_config(tmp_path))
    [examples_artifact] = store.get_artifacts_by_type("Examples")
    class_names = examples_artifact.custom_properties["class_names"].string_value
    assert json.loads(class_names) == CLASSES
    [report_artifact] = store.get_artifacts_by_type(IngestionReport.TYPE_NAME)
    assert report_artifact.custom_properties["quarantined"].int_value == len(bad)
    assert report_artifact.custom_properties["examples"].int_value == len(good)


def test_file_order_interleaves_classes_and_ignores_where_the_folder_is():
    files = [(f"{c}/img{i}.jpg", CLASSES.index(c), c) for c in CLASSES for i in range(20)]

    def order(base: str) -> list[str]:
        items = [(f"{base}/{rel}", label, c) for rel, label, c in files]
        mixed = image_example_gen._mixed_order(items, base)
        return [path[len(base) + 1 :] for path, _, _ in mixed]

    local, bucket = order("/data/pets"), order("gs://bucket/pets")
    assert local == bucket  # same order wherever the folder is mounted
    assert sorted(local) == sorted(rel for rel, _, _ in files)  # every file, once
    classes = [rel.split("/")[0] for rel in local]
    assert sum(a != b for a, b in itertools.pairwise(classes)) >= len(classes) // 3


def test_bad_data_fails_the_run_and_the_report_survives(
    tmp_path, image_dir, make_image, tree_digest
):
    make_good_images(image_dir, make_image, classes=["cats", "dogs"])
    (image_dir / "cats/zero.jpg").write_bytes(b"")
    (image_dir / "dogs/notes.jpg").write_text("not a photo\n")  # 2 bad of 19: 10.5% > 5%
    (image_dir / "dogs/cat_too.jpg").write_bytes((image_dir / "cats/img1.jpg").read_bytes())
    (image_dir / "owls").mkdir()  # a class without a single image
    before = tree_digest(image_dir)

    with pytest.raises(Exception) as error:  # noqa: B017 - the runner wraps the executor's error
        run_pipeline(tmp_path, image_dir, max_bad_fraction=0.05)

    message = error_text(error.value)
    assert "2 of 19 image files" in message
    assert "quarantined" in message
    assert "cats/zero.jpg: empty file" in message
    assert "dogs/notes.jpg: not a readable image" in message
    assert "Class 'dogs': 1 of its 10 image files (10.0%) were quarantined" in message
    assert "no usable image of class(es) ['owls']" in message
    assert "cats/img1.jpg (cats, " in message and "= dogs/cat_too.jpg (dogs, " in message
    # The artifact folder is gone (TFX removes a failed step's outputs); the copy is not.
    assert not list((tmp_path / "root").glob(f"ImageExampleGen/report/*/{REPORT_FILE}"))
    path = Path(message.split("Ingestion report: ")[1].split("\n")[0])
    report = json.loads(path.read_text())
    assert {q["path"] for q in report["quarantined"]} == {"cats/zero.jpg", "dogs/notes.jpg"}
    assert report["duplicates"]["across_classes"]
    assert tree_digest(image_dir) == before


def test_labels_are_positions_in_the_schemas_class_list(tmp_path, image_dir, make_image):
    """Not alphabetical, and with train/ and eval/ folders: copies across and within splits
    are reported (validation.duplicates=warn), not fatal."""
    schema_order = ["owls", "cats", "dogs"]
    for split in ("train", "eval"):
        make_good_images(image_dir / split, make_image, classes=CLASSES, per_class=3)
    copy = (image_dir / "train/cats/img0.png").read_bytes()
    (image_dir / "eval/cats/seen.png").write_bytes(copy)  # in train and eval
    (image_dir / "train/dogs/again.jpg").write_bytes(
        (image_dir / "train/dogs/img1.jpg").read_bytes()
    )

    root = run_pipeline(tmp_path, image_dir, 0.05, class_names=schema_order, duplicates="warn")

    splits = read_examples(only(list(root.glob("ImageExampleGen/examples/*"))))
    assert sorted(splits) == ["eval", "train"]
    for examples in splits.values():
        for example in examples:
            class_name = feature(example, "class_name").decode()
            assert feature(example, "label") == schema_order.index(class_name)
    report = json.loads(
        only(list(root.glob(f"ImageExampleGen/report/*/{REPORT_FILE}"))).read_text()
    )
    assert report["classes"] == schema_order
    duplicates = report["duplicates"]
    [across] = duplicates["across_splits"]
    assert [f["path"] for f in across["files"]] == ["eval/cats/seen.png", "train/cats/img0.png"]
    assert duplicates["within_split_extra_copies"] == 1
    assert not duplicates["across_classes"]


def test_a_class_of_the_schema_without_images_fails_naming_class_and_split(
    tmp_path, image_dir, make_image
):
    make_good_images(image_dir, make_image, classes=["cats", "dogs"])

    with pytest.raises(Exception) as error:  # noqa: B017 - the runner wraps the executor's error
        run_pipeline(tmp_path, image_dir, 0.05, class_names=["cats", "owls", "dogs"])

    message = error_text(error.value)
    assert "Split 'train' has no usable image of class(es) ['owls']" in message
    assert "Split 'eval' has no usable image of class(es) ['owls']" in message


def test_a_split_folder_without_usable_images_fails_the_run(tmp_path, image_dir, make_image):
    make_good_images(image_dir / "train", make_image, classes=["cats", "dogs"], per_class=4)
    for name in ("cats", "dogs"):  # eval/ has the class folders, but not one image in them
        (image_dir / "eval" / name).mkdir(parents=True)
        (image_dir / "eval" / name / ".DS_Store").write_bytes(b"")

    with pytest.raises(Exception) as error:  # noqa: B017 - the runner wraps the executor's error
        run_pipeline(tmp_path, image_dir, max_bad_fraction=0.05)

    assert "Split 'eval' has no usable image of class(es) ['cats', 'dogs']" in error_text(
        error.value
    )


def test_a_single_class_fails_the_run(tmp_path, image_dir, make_image):
    make_good_images(image_dir, make_image, classes=["cats"])

    with pytest.raises(Exception) as error:  # noqa: B017 - the runner wraps the executor's error
        run_pipeline(tmp_path, image_dir, max_bad_fraction=0.05)

    assert "at least 2" in error_text(error.value)
