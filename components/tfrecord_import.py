"""Existing TFRecords: their compression read from the files' first bytes, and ImportExampleGen
reading them that way. TFX's ImportExampleGen (Beam's ReadFromTFRecord, compression AUTO) and
tf.data both go by the file name: GZIP files not named `.gz` fail with "Not a valid TFRecord"."""

from __future__ import annotations

import os
import struct
from typing import Any

import apache_beam as beam
import tensorflow as tf
from tfx.components import ImportExampleGen
from tfx.components.example_gen.import_example_gen import executor as import_executor
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs

GZIP, ZLIB, UNCOMPRESSED = "GZIP", "ZLIB", ""


class TFRecordFormatError(ValueError):
    """A file that is not a TFRecord file, or files of mixed compression read as one."""


def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    """TFRecord's checksum of a record's length: crc32c, rotated and offset."""
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def compression_of_file(path: str) -> str:
    """'' (uncompressed), 'GZIP' or 'ZLIB', from the first bytes, whatever the file's name.
    An uncompressed TFRecord starts with a record length and that length's checksum, which
    is checked first (a length can begin with a GZIP or ZLIB magic number by chance)."""
    with tf.io.gfile.GFile(path, "rb") as f:
        head = f.read(12)
    if not head:
        return UNCOMPRESSED  # an empty file holds no records, however it is read
    if len(head) == 12 and _masked_crc(head[:8]) == struct.unpack("<I", head[8:])[0]:
        return UNCOMPRESSED
    if head[:2] == b"\x1f\x8b":
        return GZIP
    if len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0:
        return ZLIB
    raise TFRecordFormatError(
        f"{path} is not a TFRecord file: it starts neither with a valid record header nor with "
        "a GZIP or ZLIB header."
    )


def compression_of(files: list[str]) -> str:
    """The one compression of a list of files read as a single data set."""
    kinds = {path: compression_of_file(path) for path in files}
    found = set(kinds.values())
    if len(found) > 1:
        examples = {kind: next(p for p, k in kinds.items() if k == kind) for kind in found}
        raise TFRecordFormatError(
            "TFRecord files of one split must share one compression; found "
            + ", ".join(
                f"{kind or 'uncompressed'} (e.g. {path})" for kind, path in examples.items()
            )
            + ". Rewrite them alike."
        )
    return found.pop() if found else UNCOMPRESSED


def first_example_features(folder: str) -> tuple[str, list[str]]:
    """(file, feature names) of the first tf.Example in a folder of TFRecords (sub-folders
    included), so a message can name the examples' own features."""
    files = sorted(
        os.path.join(root, name)
        for root, _, names in tf.io.gfile.walk(folder)
        for name in names
        if not name.startswith(".")
    )
    for path in files:
        records = tf.data.TFRecordDataset(path, compression_type=compression_of_file(path))
        for record in records.take(1):
            example = tf.train.Example.FromString(record.numpy())
            return path, sorted(example.features.feature)
    raise TFRecordFormatError(f"{folder} holds no TFRecord files with examples.")


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(bytes)
def _ReadRecords(  # noqa: N802 (Beam transforms are named like classes)
    pipeline: beam.Pipeline, exec_properties: dict[str, Any], split_pattern: str
) -> beam.pvalue.PCollection:
    pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY], split_pattern)
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise TFRecordFormatError(f"No TFRecord files match {pattern}.")
    return (
        pipeline
        | "Files" >> beam.Create(files)
        | "Read" >> beam.io.ReadAllFromTFRecord(compression_type=_beam_compression(files))
    )


def _beam_compression(files: list[str]) -> str:
    return {
        GZIP: beam.io.filesystem.CompressionTypes.GZIP,
        ZLIB: beam.io.filesystem.CompressionTypes.DEFLATE,
        UNCOMPRESSED: beam.io.filesystem.CompressionTypes.UNCOMPRESSED,
    }[compression_of(files)]


class Executor(import_executor.Executor):
    """ImportExampleGen's executor, reading tf.Example TFRecords with the compression their
    first bytes show."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:  # noqa: N802 (TFX's name)
        @beam.ptransform_fn
        def ImportRecord(pipeline, exec_properties, split_pattern):  # noqa: N802
            payload = exec_properties.get(standard_component_specs.OUTPUT_DATA_FORMAT_KEY)
            if payload != example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE:
                raise TFRecordFormatError("Only tf.Example TFRecords are imported.")
            return (
                pipeline
                | "ReadRecords" >> _ReadRecords(exec_properties, split_pattern)
                | "ToTFExample" >> beam.Map(tf.train.Example.FromString)
            )

        return ImportRecord


class TFRecordExampleGen(ImportExampleGen):
    """TFX's ImportExampleGen with the executor above (its node id stays ImportExampleGen)."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.with_id("ImportExampleGen")
