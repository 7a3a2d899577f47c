"""components.schema: the curated schema constrains the classes, not the file names."""

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from components.schema import class_names_from_schema, curate_schema

# What TFDV infers from a small image folder: a value list for every string feature, the
# image ids (one per file) among them.
INFERRED = """
feature { name: "image" type: BYTES }
feature { name: "label" type: INT }
feature { name: "class_name" type: BYTES domain: "class_name" }
feature { name: "image_id" type: BYTES domain: "image_id" }
feature { name: "image_format" type: BYTES domain: "image_format" }
string_domain { name: "class_name" value: "cats" value: "dogs" }
string_domain { name: "image_id" value: "cats/a.jpg" value: "dogs/b.jpg" }
string_domain { name: "image_format" value: "jpeg" }
"""


def test_curated_schema_drops_the_list_of_file_names():
    curated = curate_schema(text_format.Parse(INFERRED, schema_pb2.Schema()), ["dogs", "cats"])
    assert [d.name for d in curated.string_domain] == ["class_name_values", "image_format_values"]
    image_id = next(f for f in curated.feature if f.name == "image_id")
    assert not image_id.HasField("domain")
    assert class_names_from_schema(curated) == ["dogs", "cats"]  # the order given
