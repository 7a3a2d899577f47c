"""A Pusher executor that publishes a blessed model atomically in TF Serving's layout.

TFX's own Pusher copies into `<base>/<version>/` in place, so a server polling the folder can
see a half-written version. This one writes into a hidden folder beside it and renames it into
place when complete, and never reuses or goes below an existing version number.
"""

from __future__ import annotations

import os
import time
import uuid

from absl import logging
from tfx.components.pusher import executor as tfx_pusher
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils


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


def publish_model(model_path: str, base_directory: str) -> tuple[str, str]:
    """Copies the SavedModel aside, then renames it to `<base>/<version>`; returns both."""
    fileio.makedirs(base_directory)
    version = str(next_version(base_directory))
    staging = os.path.join(base_directory, f".staging-{version}-{uuid.uuid4().hex[:8]}")
    try:
        io_utils.copy_dir(model_path, staging)
        serving_path = os.path.join(base_directory, version)
        fileio.rename(staging, serving_path)
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
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination
        )
        model_path = self.GetModelPath(input_dict)
        serving_path, version = publish_model(model_path, destination.filesystem.base_directory)
        logging.info("Model published to %s", serving_path)
        io_utils.copy_dir(model_path, model_push.uri)
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)
