"""Runs the pipeline with LocalDagRunner, reporting each component's start and end."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterator

from absl import logging as absl_logging
from ml_metadata.proto import metadata_store_pb2
from tfx.orchestration.local import local_dag_runner
from tfx.orchestration.portable import launcher

from pipeline.config import PipelineConfig
from pipeline.console import StepLog
from pipeline.history.store import open_store, unfinished_executions
from pipeline.pipeline import create_pipeline


class _CacheHitHandler(logging.Handler):
    """Notices the launcher's 'A cached execution ... is used.' record."""

    def __init__(self, steps: StepLog):
        super().__init__(logging.INFO)
        self.steps = steps

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("A cached execution"):
            self.steps.cached()


@contextlib.contextmanager
def reporting_steps(steps: StepLog) -> Iterator[None]:
    """Has LocalDagRunner launch each component through a launcher that reports to steps."""

    class ReportingLauncher(launcher.Launcher):
        def launch(self):
            # Components (Transform, Beam) lower absl's verbosity; the cache notice needs INFO.
            absl_logging.set_verbosity(absl_logging.INFO)
            run_id = self._pipeline_runtime_spec.pipeline_run_id.field_value.string_value
            steps.run_id = steps.run_id or run_id
            steps.started(self._pipeline_node.node_info.id)
            result = super().launch()
            steps.finished(self._pipeline_node.node_info.id)
            return result

    handler = _CacheHitHandler(steps)
    logging.getLogger("absl").addHandler(handler)
    original = local_dag_runner.launcher.Launcher
    local_dag_runner.launcher.Launcher = ReportingLauncher
    try:
        yield
    finally:
        local_dag_runner.launcher.Launcher = original
        logging.getLogger("absl").removeHandler(handler)


def run_pipeline(config: PipelineConfig, steps: StepLog, stop_after: str = "all") -> None:
    """Runs the pipeline; raises what the failing component raised, after saying which."""
    pipeline = create_pipeline(config, stop_after=stop_after)
    try:
        with reporting_steps(steps):
            local_dag_runner.LocalDagRunner().run(pipeline)
    except BaseException:
        steps.failed()
        raise


def clean_killed_executions(config: PipelineConfig) -> list[str]:
    """Steps of earlier `python -m pipeline run`s that never finished (the process was killed):
    their artifact folders are removed and the executions marked CANCELED, so `runs` shows where
    the run died and nothing half-written is left. Call it holding the root's lock: then no such
    run is live. Returns the cleaned steps' node names."""
    if not os.path.exists(config.metadata_path):
        return []
    store = open_store(config)
    pipeline_context = store.get_context_by_type_and_name("pipeline", config.runtime.name)
    if pipeline_context is None:
        return []
    ours = {e.id for e in store.get_executions_by_context(pipeline_context.id)}
    # LocalDagRunner's runs only ("pipeline_run" contexts): an Airflow run on the same root may
    # be live (it takes no lock), and its unfinished steps are Airflow's to retry or fail.
    killed = [
        execution
        for run in store.get_contexts_by_type("pipeline_run")
        for execution in unfinished_executions(store, run.id)
        if execution.id in ours
    ]
    nodes = []
    for execution in killed:
        node = _node_of(store, execution.id)
        for folder in _execution_folders(config.pipeline_root, node, execution.id):
            shutil.rmtree(folder, ignore_errors=True)
        execution.last_known_state = metadata_store_pb2.Execution.CANCELED
        nodes.append(node)
    if killed:
        store.put_executions(killed)
    return nodes


def _node_of(store, execution_id: int) -> str:
    for context in store.get_contexts_by_execution(execution_id):
        if store.get_context_types_by_id([context.type_id])[0].name == "node":
            return context.name.split(".", 1)[1]
    return ""


def _execution_folders(pipeline_root: str, node: str, execution_id: int) -> list[str]:
    """What TFX wrote for one execution: <root>/<node>/<output key>/<id> and its scratch
    folder <root>/<node>/.system/executor_execution/<id>."""
    base = os.path.join(pipeline_root, node)
    if not node or not os.path.isdir(base):
        return []
    keys = [k for k in os.listdir(base) if k != ".system"]
    candidates = [os.path.join(base, key, str(execution_id)) for key in keys]
    candidates.append(os.path.join(base, ".system", "executor_execution", str(execution_id)))
    return [c for c in candidates if os.path.isdir(c)]
