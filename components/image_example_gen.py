"""ImageExampleGen: a folder of labelled images to TFRecords of tf.Examples, bad files quarantined.

Built on TFX's FileBasedExampleGen, so splitting, output format, span/version handling and the
input fingerprint that drives the pipeline cache are TFX's own. What it adds: every file is
checked (components/image_checks.py) in a Beam DoFn; files that fail are left out and listed in
an IngestionReport artifact; the run fails when too many are bad (overall or in one class), a
class has no image in a split, or an image is there twice under two classes or in two splits.

Labels are the index of each class in the schema's class list (components.schema), never the
order of the folders that happen to exist: a missing class folder cannot shift the others.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import posixpath
from typing import Any

import apache_beam as beam
import tensorflow as tf
from absl import logging
from tfx import types
from tfx.components.example_gen import input_processor
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.components.example_gen.driver import FileBasedDriver
from tfx.dsl.components.base import base_beam_component, base_driver, executor_spec
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.types import standard_component_specs as specs
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.types.standard_component_specs import FileBasedExampleGenSpec
from tfx.utils import proto_utils

from components import image_checks
from components.class_folders import (
    check_class_folders,
    discover_classes,
    entries_outside_classes,
    split_folder,
    split_label,
)
from components.contract import (
    CLASS_NAME_KEY,
    CLASS_NAMES_PROPERTY,
    IMAGE_ID_KEY,
    RAW_IMAGE_KEY,
    RAW_LABEL_KEY,
)
from components.ingestion_report import (
    HASHES_FILE,
    REPORTS_FOLDER,
    build_report,
    enforce_report,
    report_name,
    summarize_report,
    write_image_hashes,
    write_report,
)
from components.options import background_rgb, checked_section, section_problems
from components.settings import IngestionConfig
from components.splits import image_split_configs

DUPLICATE_POLICIES = ("fail", "warn")
# Hashes travel from the checking DoFn to the split-aware step in these features, which are
# removed before the examples are written.
_SHA256_KEY = "_sha256"
_PIXELS_SHA256_KEY = "_pixels_sha256"


class IngestionReport(types.Artifact):
    """JSON report of one ingestion: classes, counts per split, quarantined and skipped files."""

    # `package.Class`: KFP v2 accepts only such names and imports the class by it at run time.
    TYPE_NAME = "components.IngestionReport"


# --- Beam: list, check, encode ------------------------------------------------------------------


def _list_class_folder(item: tuple[str, int, str], input_base: str):
    """Yields (path, label, class) for candidates and a 'skipped' event for every other entry.
    A class of the schema without a folder yields nothing: the report names it, per split."""
    folder, label, class_name = item
    if not tf.io.gfile.isdir(folder):
        return
    for name in sorted(tf.io.gfile.listdir(folder)):
        path = posixpath.join(folder, name.rstrip("/"))
        if not tf.io.gfile.isdir(path):
            reason = image_checks.skip_reason(name)
        elif name.startswith("."):
            reason = "hidden folder: not read"
        else:
            reason = (
                "folder inside a class folder: not read; move its images up into the class "
                "folder, or make it a class of its own"
            )
        if reason:
            rel = image_checks.relative_id(path, input_base)
            yield beam.pvalue.TaggedOutput(
                "events", json.dumps({"kind": "skipped", "path": rel, "reason": reason})
            )
        else:
            yield (path, label, class_name)


def _mixed_order(items: list[tuple[str, int, str]], input_base: str) -> list[tuple[str, int, str]]:
    """The files of every class in one order fixed by a hash of each relative path, so classes
    interleave.

    Listing yields class after class, and the DirectRunner keeps that order all the way into the
    TFRecords (its Reshuffle does not reorder), so the Trainer's bounded shuffle buffer would see
    one class at a time once a split outgrows the buffer. Only the paths are collected here, not
    the images. The order depends only on the paths inside the folder, so a run is reproducible
    wherever the folder is mounted.
    """

    def key(item: tuple[str, int, str]) -> bytes:
        return hashlib.sha1(image_checks.relative_id(item[0], input_base).encode("utf-8")).digest()

    return sorted(items, key=key)


class _CheckAndEncode(beam.DoFn):
    """Reads one file, checks it, and emits a tf.Example or a quarantine event."""

    def __init__(
        self, input_base: str, min_side: int, max_pixels: int, background: tuple[int, int, int]
    ):
        self._input_base = input_base
        self._min_side = min_side
        self._max_pixels = max_pixels
        self._background = background

    def process(self, item: tuple[str, int, str]):
        path, label, class_name = item
        rel = image_checks.relative_id(path, self._input_base)
        try:
            data = image_checks.read_file(path)
        except (tf.errors.OpError, OSError) as error:
            detail = _link_problem(path) or getattr(error, "message", error)
            check = image_checks.ImageCheck(reason=f"unreadable: {detail}")
        else:
            check = image_checks.check_image_bytes(
                data, self._min_side, self._max_pixels, background=self._background
            )
        if not check.ok:
            event = {
                "kind": "quarantined",
                "path": rel,
                "class": class_name,
                "reason": check.reason,
            }
            yield beam.pvalue.TaggedOutput("events", json.dumps(event))
            return
        yield _make_example(data, label=label, class_name=class_name, rel=rel, check=check)


def _link_problem(path: str) -> str:
    """'symbolic link loop' or 'broken symbolic link ...' for a local link that cannot be read."""
    if "://" in path or not os.path.islink(path):
        return ""
    try:
        os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "symbolic link loop"
        return f"broken symbolic link (points at {os.readlink(path)}, which does not exist)"
    return ""


def _make_example(
    data: bytes, label: int, class_name: str, rel: str, check: image_checks.ImageCheck
) -> tf.train.Example:
    def b(value: bytes) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def i(value: int) -> tf.train.Feature:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    return tf.train.Example(
        features=tf.train.Features(
            feature={
                RAW_IMAGE_KEY: b(data),  # the file's bytes as they are: no re-encoding
                RAW_LABEL_KEY: i(label),
                CLASS_NAME_KEY: b(class_name.encode()),
                IMAGE_ID_KEY: b(rel.encode()),
                "image_format": b(check.image_format.encode()),
                "height": i(check.height),
                "width": i(check.width),
                _SHA256_KEY: b(check.sha256.encode()),
                _PIXELS_SHA256_KEY: b(check.pixels_sha256.encode()),
            }
        )
    )


def ingestion_settings(exec_properties: dict[str, Any]) -> IngestionConfig:
    """The ingestion section the component was given, checked again where it is used."""
    return checked_section(IngestionConfig, "ingestion", json.loads(exec_properties["ingestion"]))


@beam.ptransform_fn
def _ImagesToExamples(pipeline: beam.Pipeline, exec_properties: dict[str, Any], split_pattern: str):
    settings = ingestion_settings(exec_properties)
    input_base = exec_properties[specs.INPUT_BASE_KEY]
    classes = json.loads(exec_properties["_class_names"])
    split_dir = split_folder(input_base, split_pattern)
    folders = [(posixpath.join(split_dir, c), label, c) for label, c in enumerate(classes)]
    listed = (
        pipeline
        | "ClassFolders" >> beam.Create(folders)
        | "ListFiles"
        >> beam.FlatMap(_list_class_folder, input_base=input_base).with_outputs(
            "events", main="files"
        )
    )
    checked = (
        listed.files
        | "CollectPaths" >> beam.combiners.ToList()
        | "MixClasses" >> beam.FlatMap(_mixed_order, input_base=input_base)
        | "Spread" >> beam.Reshuffle()
        | "CheckAndEncode"
        >> beam.ParDo(
            _CheckAndEncode(
                input_base,
                min_side=settings.min_side,
                max_pixels=settings.max_pixels,
                background=background_rgb(exec_properties["background"]),
            )
        ).with_outputs("events", main="examples")
    )
    events_prefix = posixpath.join(exec_properties["_events_dir"], "events")
    _ = (
        (listed.events, checked.events)
        | "MergeEvents" >> beam.Flatten()
        | "WriteEvents" >> beam.io.WriteToText(f"{events_prefix}-{split_label(split_pattern)}")
    )
    return checked.examples


def _strip_hashes(example: tf.train.Example, split: str):
    """The example without the hash features, and an 'image' event with them for the report."""
    stripped = tf.train.Example()
    stripped.CopyFrom(example)  # Beam's elements are not to be changed in place
    features = stripped.features.feature
    event = {
        "kind": "image",
        "split": split,
        "path": features[IMAGE_ID_KEY].bytes_list.value[0].decode(),
        "class": features[CLASS_NAME_KEY].bytes_list.value[0].decode(),
        "sha256": features[_SHA256_KEY].bytes_list.value[0].decode(),
        "pixels_sha256": features[_PIXELS_SHA256_KEY].bytes_list.value[0].decode(),
    }
    del features[_SHA256_KEY], features[_PIXELS_SHA256_KEY]
    yield stripped
    yield beam.pvalue.TaggedOutput("images", json.dumps(event))


class Executor(BaseExampleGenExecutor):
    """Runs TFX's ExampleGen over the image folder, then writes and enforces the report."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return _ImagesToExamples

    def GenerateExamplesByBeam(self, pipeline, exec_properties):
        splits = super().GenerateExamplesByBeam(pipeline, exec_properties)
        events_dir = exec_properties["_events_dir"]
        stripped = {}
        for name, examples in splits.items():
            # The split of each example is known only here (a hash split is made by TFX).
            parts = examples | f"StripHashes[{name}]" >> beam.FlatMap(
                _strip_hashes, split=name
            ).with_outputs("images", main="examples")
            stripped[name] = parts.examples
            _ = parts.images | f"WriteImages[{name}]" >> beam.io.WriteToText(
                posixpath.join(events_dir, f"images-{name}")
            )
            _ = (
                parts.examples
                | f"Labels[{name}]"
                >> beam.Map(lambda e: e.features.feature[RAW_LABEL_KEY].int64_list.value[0])
                | f"CountLabels[{name}]" >> beam.combiners.Count.PerElement()
                | f"CountsToJson[{name}]"
                >> beam.Map(
                    lambda kv, split=name: json.dumps(
                        {"kind": "count", "split": split, "label": kv[0], "n": kv[1]}
                    )
                )
                | f"WriteCounts[{name}]"
                >> beam.io.WriteToText(posixpath.join(events_dir, f"counts-{name}"))
            )
        return stripped

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties[specs.INPUT_CONFIG_KEY], input_config)
        input_base = exec_properties[specs.INPUT_BASE_KEY]
        patterns = [s.pattern for s in input_config.splits]
        classes = json.loads(exec_properties.get("class_names") or "[]")
        if classes:
            check_class_folders(input_base, patterns, classes)
        else:
            classes = discover_classes(input_base, patterns)
        report_artifact = output_dict["report"][0]
        events_dir = posixpath.join(report_artifact.uri, "events")
        exec_properties = dict(
            exec_properties, _class_names=json.dumps(classes), _events_dir=events_dir
        )
        super().Do(input_dict, output_dict, exec_properties)

        examples = output_dict[specs.EXAMPLES_KEY][0]
        splits = artifact_utils.decode_split_names(examples.split_names)
        report = build_report(
            classes, events_dir, splits, not_read=entries_outside_classes(input_base, patterns)
        )
        report["path"] = self._surviving_report_path(report_artifact.uri)
        write_report(report, report_artifact.uri)
        write_image_hashes(events_dir, posixpath.join(report_artifact.uri, HASHES_FILE))
        tf.io.gfile.rmtree(events_dir)
        examples.set_string_custom_property(CLASS_NAMES_PROPERTY, json.dumps(classes))
        report_artifact.set_int_custom_property("quarantined", len(report["quarantined"]))
        report_artifact.set_int_custom_property("examples", report["examples"])
        logging.info("Ingestion report: %s (%s)", summarize_report(report), report["path"])
        enforce_report(
            report,
            max_bad_fraction=ingestion_settings(exec_properties).max_bad_fraction,
            duplicates=exec_properties["duplicates"],
        )

    def _surviving_report_path(self, report_uri: str) -> str:
        """Where the copy of the report that outlives a failed step goes (see REPORTS_FOLDER)."""
        run_id = getattr(self._context, "pipeline_run_id", None) or posixpath.basename(
            report_uri.rstrip("/")
        )
        node_dir = posixpath.dirname(posixpath.dirname(report_uri.rstrip("/")))
        return posixpath.join(node_dir, REPORTS_FOLDER, report_name(run_id))


# --- The component ------------------------------------------------------------------------------


class _ImageFolderInputProcessor(input_processor.FileBasedInputProcessor):
    """Fingerprints the image folder for the pipeline cache, without failing on the broken
    symlinks and unreadable entries that ingestion itself reports."""

    def resolve_span_and_version(self):
        self._fingerprint = "\n".join(
            _fingerprint_split(self._input_base_uri, s) for s in self._splits
        )
        return 0, None


def _fingerprint_split(input_base: str, split: example_gen_pb2.Input.Split) -> str:
    files = tf.io.gfile.glob(posixpath.join(input_base, split.pattern))
    total_bytes = xor_mtime = sum_mtime = unreadable = 0
    for path in files:
        try:
            stat = tf.io.gfile.stat(path)
        except tf.errors.OpError:
            unreadable += 1
            continue
        mtime = int(stat.mtime_nsec // 1_000_000_000)
        total_bytes, xor_mtime, sum_mtime = (
            total_bytes + stat.length,
            xor_mtime ^ mtime,
            sum_mtime + mtime,
        )
    return (
        f"split:{split.name},num_files:{len(files)},unreadable:{unreadable},"
        f"total_bytes:{total_bytes},xor_checksum:{xor_mtime},sum_checksum:{sum_mtime}"
    )


class ImageFolderDriver(FileBasedDriver):
    def get_input_processor(self, splits, range_config=None, input_base_uri=None):
        return _ImageFolderInputProcessor(input_base_uri, splits, range_config)

    def _prepare_output_artifacts(self, input_artifacts, output_dict, **context):
        # Legacy launchers (AirflowDagRunner) take the outputs from here, and FileBasedDriver
        # makes only `examples`: the base driver makes the rest (the report). TFX calls this
        # with keyword arguments; `context` is the execution id, pipeline and component info.
        result = super()._prepare_output_artifacts(
            input_artifacts=input_artifacts, output_dict=output_dict, **context
        )
        others = {name: channel for name, channel in output_dict.items() if name not in result}
        result.update(
            base_driver.BaseDriver._prepare_output_artifacts(
                self, input_artifacts=input_artifacts, output_dict=others, **context
            )
        )
        return result


class ImageExampleGenSpec(FileBasedExampleGenSpec):
    PARAMETERS = {
        **FileBasedExampleGenSpec.PARAMETERS,
        # JSON of the ingestion section (components.settings.IngestionConfig), whole.
        "ingestion": ExecutionParameter(type=str),
        # JSON list of the class names in label order (the schema's); empty: the sorted folders.
        "class_names": ExecutionParameter(type=str, optional=True),
        "duplicates": ExecutionParameter(type=str),  # validation.duplicates
        # transform.background, which the duplicate checks' pixels composite transparency over,
        # as the Transform graph does.
        "background": ExecutionParameter(type=str),
    }
    OUTPUTS = {
        **FileBasedExampleGenSpec.OUTPUTS,
        "report": ChannelParameter(type=IngestionReport),
    }


class ImageExampleGen(FileBasedExampleGen):
    """ExampleGen for a folder of images in class sub-folders (see module docstring)."""

    SPEC_CLASS = ImageExampleGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
    DRIVER_CLASS = ImageFolderDriver

    def __init__(
        self,
        input_base: str,
        split_buckets: dict[str, int],
        *,
        ingestion: IngestionConfig,
        duplicates: str,
        background: str,
        input_config: example_gen_pb2.Input | None = None,
        output_config: example_gen_pb2.Output | None = None,
        class_names: list[str] | None = None,
    ):
        """ingestion: the ingestion section, whole. duplicates: 'fail' or 'warn' on an image in
        two splits (validation.duplicates). background: transform.background, for the pixels
        the duplicates are found by. class_names: the schema's class list; label = position in
        it. None: the sorted class folders (for a data set without a schema yet, as
        infer-schema ingests it). input_config/output_config: the splits when already worked
        out (components.splits.image_split_configs); by default they are found by listing
        input_base."""
        problems = section_problems("ingestion", ingestion)
        if duplicates not in DUPLICATE_POLICIES:
            problems.append(f"duplicates is {duplicates!r}; use one of {DUPLICATE_POLICIES}")
        background_rgb(background)  # a colour it cannot read raises ValueError, saying so
        if problems:
            raise ValueError("; ".join(problems))
        if input_config is None or output_config is None:
            input_config, output_config = image_split_configs(
                input_base, split_buckets, partition_feature=IMAGE_ID_KEY
            )
        spec = ImageExampleGenSpec(
            input_base=os.path.abspath(input_base) if "://" not in input_base else input_base,
            input_config=input_config,
            output_config=output_config,
            output_data_format=example_gen_pb2.FORMAT_TF_EXAMPLE,
            output_file_format=example_gen_pb2.FORMAT_TFRECORDS_GZIP,
            ingestion=json.dumps(dataclasses.asdict(ingestion)),
            class_names=json.dumps(list(class_names or [])),
            duplicates=duplicates,
            background=background,
            examples=types.Channel(type=standard_artifacts.Examples),
            report=types.Channel(type=IngestionReport),
        )
        base_beam_component.BaseBeamComponent.__init__(self, spec=spec)
