"""Which model the candidate is compared with: the latest blessed model other than itself, or
the model served as a chosen version; a damaged baseline is named before the Evaluator runs."""

from __future__ import annotations

import os

import tensorflow as tf
from ml_metadata.proto import metadata_store_pb2
from tfx import types
from tfx.dsl.components.common import resolver
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components import model_files

_BLESSED = "blessed"
_MODEL_ID = "current_model_id"


class BaselineModelError(RuntimeError):
    """The baseline cannot be used; the message names it and says how to proceed."""


def _blessing_run(store, blessing: types.Artifact) -> str:
    """The run whose execution wrote the blessing."""
    events = store.get_events_by_artifact_ids([blessing.id])
    writers = [e.execution_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT]
    if not writers:
        return "?"
    run_type = store.get_context_type("pipeline_run")
    for context in store.get_contexts_by_execution(min(writers)):
        if context.type_id == run_type.id:
            return context.name
    return "?"


def check_baseline(store, model: types.Artifact, blessing: types.Artifact, serving_dir: str):
    """Raises BaselineModelError when the baseline's files differ from those it was pushed
    with (or its saved_model.pb is gone), naming the model, its run and its version."""
    model_dir = path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))
    served = None
    for version, record in reversed(model_files.served_versions(serving_dir)):
        if record and record.get("model_artifact_id") == model.id:
            served = {**record, "version": version}
            break
    if served is not None and "files" in served:
        problems = model_files.compare_files(served["files"], model_files.file_checksums(model_dir))
    elif not tf.io.gfile.exists(os.path.join(model_dir, "saved_model.pb")):
        problems = ["saved_model.pb: missing"]
    else:
        return
    if not problems:
        return
    version = f"served as version {served['version']}" if served else "not found in serving"
    raise BaselineModelError(
        f"The baseline model (artifact {model.id} at {model_dir}, blessed in run "
        f"{_blessing_run(store, blessing)}, {version}) is damaged: "
        + "; ".join(problems[:5])
        + ". Run again with `--baseline none` to judge the candidate on the value thresholds "
        "alone, or `--baseline VERSION` to compare it with another served version."
    )


def check_latest_baseline(store, model_id: int, serving_dir: str) -> None:
    """Before a run: the model the baseline look-up will pick (model_id, or the latest blessed
    model; when that is the cached candidate itself, it would fail the Evaluator all the same)
    must have the files it was blessed with."""
    blessings = [
        b
        for b in store.get_artifacts_by_type("ModelBlessing")
        if _int_property(b, _BLESSED) == 1 and _int_property(b, _MODEL_ID)
    ]
    if model_id:
        blessings = [b for b in blessings if _int_property(b, _MODEL_ID) == model_id]
    if not blessings:
        return
    blessing = max(blessings, key=lambda b: _int_property(b, _MODEL_ID))
    (model,) = store.get_artifacts_by_id([_int_property(blessing, _MODEL_ID)])
    check_baseline(
        store,
        model=_as_tfx(model, standard_artifacts.Model),
        blessing=blessing,
        serving_dir=serving_dir,
    )


def _int_property(artifact, name: str) -> int:
    value = artifact.custom_properties.get(name)
    return value.int_value if value is not None else 0


def _as_tfx(mlmd_artifact, artifact_class):
    artifact = artifact_class()
    artifact.set_mlmd_artifact(mlmd_artifact)
    return artifact


class LatestBlessedOtherModelStrategy(resolver.ResolverStrategy):
    """TFX's LatestBlessedModelStrategy, minus the candidate itself.

    When nothing changed, the Trainer's cached model is the model that was blessed last time.
    TFX's strategy would then compare it with itself, re-evaluate and push it again as a new
    version; leaving it out keeps the Evaluator's inputs as they were, so the whole re-run is
    cached and nothing is pushed twice. With `model_id` (--baseline VERSION) the baseline is
    that model instead.

    A resolver that raises does not fail a LocalDagRunner run: TFX logs the error and the
    Evaluator runs without a baseline. So nothing is checked here; `check_latest_baseline`
    checks the baseline's files before the run starts.

    Inputs: `model` and `model_blessing` (all of the pipeline's), `candidate` (the Trainer's).
    """

    def __init__(self, model_id: int = 0):
        self._model_id = model_id

    def resolve_artifacts(
        self, store, input_dict: dict[str, list[types.Artifact]]
    ) -> dict[str, list[types.Artifact]]:
        candidate = input_dict.get("candidate", [])
        excluded = {artifact.id for artifact in candidate}
        blessings = {
            b.get_int_custom_property(_MODEL_ID): b
            for b in input_dict.get("model_blessing", [])
            if b.get_int_custom_property(_BLESSED) == 1
        }
        for model in sorted(input_dict.get("model", []), key=lambda a: a.id, reverse=True):
            wanted = model.id == self._model_id if self._model_id else model.id not in excluded
            if model.id in blessings and wanted:
                return {
                    "model": [model],
                    "model_blessing": [blessings[model.id]],
                    "candidate": candidate,
                }
        return {"model": [], "model_blessing": [], "candidate": candidate}
