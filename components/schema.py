"""Turns TFDV's inferred schema into the curated one the pipeline validates against."""

from __future__ import annotations

from tensorflow_metadata.proto.v0 import schema_pb2

from components.contract import (
    CLASS_NAME_DOMAIN,
    CLASS_NAME_KEY,
    IMAGE_ID_KEY,
    RAW_IMAGE_KEY,
    RAW_LABEL_KEY,
)

IMAGE_FORMATS = ["bmp", "gif", "jpeg", "png"]


def _feature(schema: schema_pb2.Schema, name: str) -> schema_pb2.Feature:
    for feature in schema.feature:
        if feature.name == name:
            return feature
    raise KeyError(
        f"The examples have no feature {name!r}; features: {[f.name for f in schema.feature]}"
    )


def _require_one_value(feature: schema_pb2.Feature) -> None:
    """Present in every example with exactly one value: a fixed [1] shape, so tf.Transform
    and the serving signatures read it as a dense tensor."""
    feature.presence.min_fraction = 1.0
    feature.presence.min_count = 1
    feature.ClearField("value_count")
    feature.shape.Clear()
    feature.shape.dim.add(size=1)


def _set_string_domain(schema: schema_pb2.Schema, feature: schema_pb2.Feature, values) -> None:
    """Replaces whatever domain TFDV inferred with a named, closed list of values."""
    name = f"{feature.name}_values"
    for domain in list(schema.string_domain):
        if domain.name in (name, feature.domain):
            schema.string_domain.remove(domain)
    feature.ClearField("domain")
    schema.string_domain.add(name=name, value=list(values))
    feature.domain = name


def curate_schema(
    schema: schema_pb2.Schema,
    class_names: list[str],
    image_key: str = RAW_IMAGE_KEY,
    label_key: str = RAW_LABEL_KEY,
) -> schema_pb2.Schema:
    """Makes the inferred schema strict where it matters and loose where inference overfits:
    the image is required bytes (an image domain, so statistics don't try UTF-8), the label is
    a required categorical integer in [0, N-1], class names and formats are closed lists."""
    curated = schema_pb2.Schema()
    curated.CopyFrom(schema)

    image = _feature(curated, image_key)
    image.type = schema_pb2.BYTES
    image.ClearField("domain_info")
    image.image_domain.SetInParent()
    _require_one_value(image)

    label = _feature(curated, label_key)
    label.type = schema_pb2.INT
    label.ClearField("domain_info")
    label.int_domain.min = 0
    label.int_domain.max = len(class_names) - 1
    label.int_domain.is_categorical = True
    _require_one_value(label)

    names = {f.name for f in curated.feature}
    if CLASS_NAME_KEY in names:
        class_name = _feature(curated, CLASS_NAME_KEY)
        _set_string_domain(curated, class_name, class_names)
        _require_one_value(class_name)
    if IMAGE_ID_KEY in names:
        image_id = _feature(curated, IMAGE_ID_KEY)
        image_id.ClearField("domain_info")
        _require_one_value(image_id)
    if "image_format" in names:
        _set_string_domain(curated, _feature(curated, "image_format"), IMAGE_FORMATS)
    for side in ("height", "width"):
        if side in names:
            feature = _feature(curated, side)
            feature.ClearField("domain_info")
            feature.int_domain.min = 1
    _drop_unused_domains(curated)
    return curated


def _drop_unused_domains(schema: schema_pb2.Schema) -> None:
    """TFDV keeps a value list for every string feature with few enough values: for image_id
    that names every file, so any new image would be an anomaly. Only the lists a feature
    still refers to (class names, image formats) stay."""
    used = {feature.domain for feature in schema.feature if feature.HasField("domain")}
    for domain in list(schema.string_domain):
        if domain.name not in used:
            schema.string_domain.remove(domain)


def class_names_from_schema(schema: schema_pb2.Schema) -> list[str]:
    """The class list recorded in a curated schema (the class-name domain), or [] if none."""
    for domain in schema.string_domain:
        if domain.name == CLASS_NAME_DOMAIN:
            return list(domain.value)
    return []


def set_label_drift_threshold(
    schema: schema_pb2.Schema, threshold: float, label_key: str = RAW_LABEL_KEY
) -> None:
    """TFDV's drift comparator on the label: the L-infinity distance between two splits'
    label distributions may not exceed the threshold."""
    _feature(schema, label_key).drift_comparator.infinity_norm.threshold = threshold
