"""`python -m pipeline infer-schema`: a curated schema that constrains the classes but not the
file names. (Its ingestion failure, the same message as `run`'s, is tested in test_cli.py.)"""

from pathlib import Path

import pytest
import tensorflow_data_validation as tfdv
from test_image_example_gen import make_good_images

from pipeline.__main__ import main

pytestmark = pytest.mark.slow


def infer(image_dir: Path, out: Path, root: Path) -> int:
    args = ["infer-schema", "--images", str(image_dir), "--root", str(root), "--out", str(out)]
    return main([*args, "--set", "data.split_buckets={train: 1, eval: 1}"])


def test_the_schema_names_the_classes_it_found_and_no_file(tmp_path, image_dir, make_image):
    make_good_images(image_dir, make_image, classes=["zebras", "cats", "dogs"], per_class=8)
    out = tmp_path / "schema.pbtxt"

    assert infer(image_dir, out, tmp_path / "runs") == 0

    schema = tfdv.load_schema_text(str(out))
    domains = {d.name: list(d.value) for d in schema.string_domain}
    assert domains["class_name_values"] == ["cats", "dogs", "zebras"]  # the order it found
    assert sorted(domains) == ["class_name_values", "image_format_values"]  # no image_id list
    image_id = next(f for f in schema.feature if f.name == "image_id")
    assert not image_id.HasField("domain")
    label = next(f for f in schema.feature if f.name == "label")
    assert (label.int_domain.min, label.int_domain.max) == (0, 2)
