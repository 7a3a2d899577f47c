"""Compiles the pipeline for Kubeflow Pipelines v2 / Vertex AI Pipelines (KubeflowV2DagRunner)."""

from __future__ import annotations

import os
import re

from kfp.pipeline_spec import pipeline_spec_pb2
from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

from pipeline.config import ConfigError, KubeflowConfig, PipelineConfig
from pipeline.pipeline import create_pipeline

ResourceSpec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec

# Kubernetes quantity suffixes in bytes; KFP's PipelineSpec counts memory in GB (10^9 bytes),
# as the KFP SDK's set_memory_limit does.
_MEMORY_UNITS = {
    "": 1,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def memory_gb(quantity: str) -> float:
    """'32G' -> 32.0, '30Gi' -> 32.21..., in the GB the PipelineSpec's memory_limit uses."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]i?)?", quantity.strip())
    if not match:
        raise ConfigError(
            f"kubeflow.trainer_memory {quantity!r} is not a memory size; use e.g. 32G or 30Gi"
        )
    return float(match.group(1)) * _MEMORY_UNITS[match.group(2) or ""] / 10**9


def trainer_resources(kubeflow: KubeflowConfig) -> ResourceSpec | None:
    """The Trainer container's CPU, memory and GPU limits; None when none is configured."""
    spec = ResourceSpec()
    if kubeflow.trainer_cpu:
        spec.cpu_limit = kubeflow.trainer_cpu
    if kubeflow.trainer_memory:
        spec.memory_limit = memory_gb(kubeflow.trainer_memory)
    if kubeflow.trainer_gpus:
        if not kubeflow.trainer_gpu_type:
            raise ConfigError(
                "kubeflow.trainer_gpus is set but kubeflow.trainer_gpu_type is not (e.g. "
                "NVIDIA_TESLA_T4 on Vertex AI, nvidia.com/gpu on Kubeflow Pipelines)"
            )
        spec.accelerator.type = kubeflow.trainer_gpu_type
        spec.accelerator.count = kubeflow.trainer_gpus
    return spec if spec.ListFields() else None


def check_config(config: PipelineConfig) -> None:
    missing = [
        f"kubeflow.{name}"
        for name in ("image", "pipeline_root")
        if not getattr(config.kubeflow, name)
    ]
    if missing:
        raise ConfigError(f"Compiling for Kubeflow needs {' and '.join(missing)}.")


def compile_pipeline(config: PipelineConfig, out: str) -> str:
    """Writes the pipeline to `out`: a .json file holds a PipelineJob (what Vertex AI's
    aiplatform.PipelineJob takes), a .yaml file the bare PipelineSpec (what the kfp client
    and the Kubeflow Pipelines UI take). Returns the path written."""
    check_config(config)
    pipeline = create_pipeline(config, target="kubeflow")
    resources = trainer_resources(config.kubeflow)
    if resources is not None:
        # TFX's v2 compiler copies a ResourceSpec platform config into the executor
        # container's `resources` (step_builder._build_container_spec).
        trainer = next(c for c in pipeline.components if c.id == "Trainer")
        trainer.with_platform_config(resources)
    runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
        config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
            default_image=config.kubeflow.image
        ),
        output_dir=os.path.dirname(os.path.abspath(out)),
        output_filename=os.path.basename(out),
    )
    runner.run(pipeline)
    return out
