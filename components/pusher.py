"""A Pusher executor that publishes a blessed model atomically in TF Serving's layout.

TFX's own Pusher copies into `<base>/<version>/` in place, so a server polling the folder can
see a half-written version. This one writes into a hidden folder beside it and renames it into
place when complete, and never reuses or goes below an existing version number.
Before publishing it smoke-tests the model in a fresh process (components.smoke_test); the
copy carries a push record (run, model, file checksums) and is checked against it, so a
damaged served version can be told later. A model the Judge found already served is not
pushed again.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

from absl import logging
from tfx import types
from tfx.components.pusher import executor as tfx_pusher
from tfx.dsl.components.base import base_component, executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import io_utils, json_utils, proto_utils

from components import model_files
from components.contract import MODEL_CARD_FILES, SAMPLE_FILE, TFLITE_FOLDER, TFLITE_REPORT_FILE
from components.lite_export import TFLiteModels
from components.smoke_test import run_smoke_test

LITE_MODELS_KEY = "lite_models"


class PushError(RuntimeError):
    """The model was not published; the message says why. Serving is as it was."""


def existing_versions(base_directory: str) -> list[int]:
    if not fileio.exists(base_directory):
        return []
    return sorted(
        int(name.rstrip("/"))
        for name in fileio.listdir(base_directory)
        if name.rstrip("/").isdigit()
    )


def next_version(base_directory: str) -> int:
    """A Unix timestamp, bumped past the newest version already there."""
    versions = existing_versions(base_directory)
    return max([int(time.time())] + [v + 1 for v in versions])


def _verify_copy(folder: str, expected: dict[str, str], what: str) -> None:
    problems = model_files.compare_files(expected, model_files.file_checksums(folder))
    if problems:
        raise PushError(f"The {what} differs from the model: " + "; ".join(problems[:5]))


def publish_model(
    model_path: str,
    base_directory: str,
    record: dict[str, Any] | None = None,
    documents: dict[str, str] | None = None,
) -> tuple[str, str]:
    """Copies the SavedModel aside with its push record and `documents` ({file name: path},
    written at the version's root: the model card), checks the copy, renames it to
    `<base>/<version>` and checks it again; returns both. Nothing is left on failure. The
    record's `files` and fingerprint are the model's files alone (what a baseline and a model
    already served are recognised by); `documents` the others'."""
    fileio.makedirs(base_directory)
    version = str(next_version(base_directory))
    staging = os.path.join(base_directory, f".staging-{version}-{uuid.uuid4().hex[:8]}")
    serving_path = os.path.join(base_directory, version)
    model_checksums = model_files.file_checksums(model_path)
    written = {}  # the documents' checksums
    published = False
    try:
        io_utils.copy_dir(model_path, staging)
        for name, source in (documents or {}).items():
            fileio.makedirs(os.path.dirname(os.path.join(staging, name)))
            fileio.copy(source, os.path.join(staging, name))
            written[name] = model_files.file_checksum(source)
        model_files.write_push_record(
            staging,
            {
                **(record or {}),
                "version": version,
                "fingerprint": model_files.fingerprint(model_checksums),
                "files": model_checksums,  # the model's: what a baseline is checked against
                "documents": written,
            },
        )
        checksums = {**model_checksums, **written}
        _verify_copy(staging, checksums, "staged copy")
        fileio.rename(staging, serving_path)
        published = True
        _verify_copy(serving_path, checksums, f"published copy {serving_path}")
    except Exception:
        if published and fileio.exists(serving_path):
            fileio.rmtree(serving_path)  # a failed run leaves serving as it was
        raise
    finally:
        if fileio.exists(staging):
            fileio.rmtree(staging)
    return serving_path, version


class Executor(tfx_pusher.Executor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY]
        )
        if not self.CheckBlessing(input_dict):
            logging.info("Model is not blessed; the serving location is left untouched.")
            self._MarkNotPushed(model_push)
            return
        blessing = artifact_utils.get_single_instance(
            input_dict[standard_component_specs.MODEL_BLESSING_KEY]
        )
        served = blessing.get_string_custom_property("already_served_version")
        if served:
            logging.info("The model is already served as version %s; nothing pushed.", served)
            model_push.set_string_custom_property("already_served_version", served)
            self._MarkNotPushed(model_push)
            return
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination
        )
        model_path = self.GetModelPath(input_dict)
        problems, seconds = run_smoke_test(model_path, os.path.join(blessing.uri, SAMPLE_FILE))
        if problems:
            raise PushError(
                f"The smoke test refused the model at {model_path}; nothing was pushed:\n  - "
                + "\n  - ".join(problems)
            )
        model = artifact_utils.get_single_instance(input_dict[standard_component_specs.MODEL_KEY])
        serving_path, version = publish_model(
            model_path,
            destination.filesystem.base_directory,
            {
                "run_id": getattr(self._context, "pipeline_run_id", None) or "",
                "model_artifact_id": model.id,
            },
            documents={
                **{
                    name: os.path.join(blessing.uri, name)
                    for name in MODEL_CARD_FILES
                    if fileio.exists(os.path.join(blessing.uri, name))
                },
                **lite_documents(input_dict.get(LITE_MODELS_KEY) or []),
            },
        )
        logging.info("Model smoke-tested in %.1f s and published to %s", seconds, serving_path)
        io_utils.copy_dir(model_path, model_push.uri)
        model_push.set_float_custom_property("smoke_test_seconds", seconds)
        model_push.set_int_custom_property("model_artifact_id", model.id)
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)


def lite_documents(lite_models: list) -> dict[str, str]:
    """{tflite/<variant>.tflite and tflite/report.json: path} of the LiteExporter's output:
    the variants that passed their check, and the report of all of them."""
    if not lite_models:
        return {}
    folder = lite_models[0].uri
    found = {
        os.path.join(TFLITE_FOLDER, name): os.path.join(folder, name)
        for name in fileio.listdir(folder)
        if name.endswith(".tflite")
    }
    report = os.path.join(folder, TFLITE_REPORT_FILE)
    if fileio.exists(report):
        with fileio.open(report) as f:
            checked = json.load(f).get("variants")
        if checked:  # not when no variant was asked for (export.tflite_variants=[])
            found[os.path.join(TFLITE_FOLDER, "report.json")] = report
    return found


class AtomicPusherSpec(standard_component_specs.PusherSpec):
    INPUTS = {
        **standard_component_specs.PusherSpec.INPUTS,
        LITE_MODELS_KEY: ChannelParameter(type=TFLiteModels, optional=True),
    }


class AtomicPusher(base_component.BaseComponent):
    """TFX's Pusher with this module's Executor, which also publishes the LiteExporter's checked
    TensorFlow Lite variants (`lite_models`) in the version."""

    SPEC_CLASS = AtomicPusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(
        self,
        model: types.BaseChannel,
        model_blessing: types.BaseChannel,
        push_destination: pusher_pb2.PushDestination,
        lite_models: types.BaseChannel | None = None,
    ):
        super().__init__(
            spec=AtomicPusherSpec(
                model=model,
                model_blessing=model_blessing,
                push_destination=push_destination,
                custom_config=json_utils.dumps(None),
                pushed_model=types.Channel(type=standard_artifacts.PushedModel),
                **({LITE_MODELS_KEY: lite_models} if lite_models is not None else {}),
            )
        )
