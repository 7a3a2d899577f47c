"""Runs the pipeline with LocalDagRunner, reporting each component's start and end."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from absl import logging as absl_logging
from tfx.orchestration.local import local_dag_runner
from tfx.orchestration.portable import launcher

from pipeline.config import PipelineConfig
from pipeline.console import StepLog
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
