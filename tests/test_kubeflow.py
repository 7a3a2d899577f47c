"""`python -m pipeline compile --target kubeflow`: the KFP v2 pipeline matches the local DAG, and
the Dockerfile builds the image it names."""

import json
import re
from pathlib import Path

import pytest
import yaml
from conftest import REPO_ROOT, schema_for_classes
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from pipeline.__main__ import main
from pipeline.config import ConfigError, KubeflowConfig, load_config
from pipeline.kubeflow import memory_gb
from pipeline.pipeline import create_pipeline

IMAGE = "us-docker.pkg.dev/my-project/pipelines/vgg16-tfx-pipeline:1.0"
BEAM_ARGS = ["--runner=DataflowRunner", "--project=my-project", "--region=us-central1"]
KUBEFLOW = {
    "image": IMAGE,
    "pipeline_root": "gs://my-bucket/root",
    "trainer_cpu": 8,
    "trainer_memory": "30Gi",
    "trainer_gpus": 2,
    "trainer_gpu_type": "NVIDIA_TESLA_T4",
}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict:
    """The pipeline for images in a bucket this machine cannot read (data.splits=hash)."""
    tmp = tmp_path_factory.mktemp("kubeflow")
    config_file = tmp / "kubeflow.yaml"
    config_file.write_text(
        yaml.safe_dump(
            {
                "data": {
                    "images": "gs://my-bucket/images",
                    "splits": "hash",
                    "schema": str(schema_for_classes(["cat", "dog"], tmp / "schema.pbtxt")),
                },
                "runtime": {"beam_args": BEAM_ARGS},
                "kubeflow": KUBEFLOW,
            }
        )
    )
    out = tmp / "pipeline.json"
    assert (
        main(["compile", "--target", "kubeflow", "--config", str(config_file), "--out", str(out)])
        == 0
    )
    job = json_format.Parse(out.read_text(), pipeline_spec_pb2.PipelineJob())
    spec = pipeline_spec_pb2.PipelineSpec()
    json_format.Parse(
        json.dumps(json_format.MessageToDict(job.pipeline_spec)), spec, ignore_unknown_fields=False
    )
    local = create_pipeline(load_config(str(config_file)), target="kubeflow")
    return {"job": job, "spec": json_format.MessageToDict(spec), "local": local}


def component_of(task: str, component_ids: set[str]) -> str:
    """The local component a KFP task comes from: TFX compiles the baseline Resolver into two
    tasks, `<id>-model-blessing-resolver` and `<id>-model-resolver`."""
    return next(c for c in component_ids if task == c or task.startswith(f"{c}-"))


def test_every_component_is_a_task_with_the_local_dependencies(compiled):
    tasks = compiled["spec"]["root"]["dag"]["tasks"]
    components = {c.id: c for c in compiled["local"].components}
    assert {component_of(t, set(components)) for t in tasks} == set(components)
    for name, task in tasks.items():
        component = components[component_of(name, set(components))]
        depends_on = {component_of(t, set(components)) for t in task.get("dependentTasks", [])}
        assert depends_on == {u.id for u in component.upstream_nodes}, name
        producers = {
            component_of(a["taskOutputArtifact"]["producerTask"], set(components))
            for a in task.get("inputs", {}).get("artifacts", {}).values()
        }
        assert producers - {component.id} <= depends_on, name


def test_pusher_takes_the_judges_blessing(compiled):
    """TFX 1.16 compiles no trigger condition for the Pusher: the Pusher's executor reads the
    Judge's ModelBlessing artifact and pushes only a blessed model."""
    spec = compiled["spec"]
    pusher = spec["root"]["dag"]["tasks"]["Pusher"]
    assert pusher["inputs"]["artifacts"]["model_blessing"]["taskOutputArtifact"] == {
        "producerTask": "Judge",
        "outputArtifactKey": "model_blessing",
    }
    assert "Judge" in pusher["dependentTasks"]
    definition = spec["components"][pusher["componentRef"]["name"]]["inputDefinitions"]
    assert definition["artifacts"]["model_blessing"]["artifactType"]["instanceSchema"].startswith(
        "title: tfx.ModelBlessing"
    )
    container = spec["deploymentSpec"]["executors"]["Pusher_executor"]["container"]
    assert container["args"][:2] == ["--executor_class_path", "components.pusher.Executor"]


def test_image_resources_paths_and_beam_args_are_the_configured_ones(compiled):
    spec, job = compiled["spec"], compiled["job"]
    containers = {
        name: executor["container"]
        for name, executor in spec["deploymentSpec"]["executors"].items()
        if "container" in executor
    }
    assert len(containers) == 12  # every component but the resolver, which is a metadata query
    assert {c["image"] for c in containers.values()} == {IMAGE}
    assert all(c["args"][-len(BEAM_ARGS) :] == BEAM_ARGS for c in containers.values())

    assert containers["Trainer_executor"]["resources"] == {
        "cpuLimit": 8.0,
        "memoryLimit": pytest.approx(30 * 2**30 / 1e9),
        "accelerator": {"type": "NVIDIA_TESLA_T4", "count": "2"},
    }
    assert all("resources" not in c for n, c in containers.items() if n != "Trainer_executor")

    assert job.runtime_config.gcs_output_directory == "gs://my-bucket/root"
    params = spec["root"]["dag"]["tasks"]["ImageExampleGen"]["inputs"]["parameters"]
    assert params["input_base"]["runtimeValue"]["constantValue"]["stringValue"] == (
        "gs://my-bucket/images"
    )
    pusher = spec["root"]["dag"]["tasks"]["Pusher"]["inputs"]["parameters"]
    destination = json.loads(
        pusher["push_destination"]["runtimeValue"]["constantValue"]["stringValue"]
    )
    assert destination["filesystem"]["base_directory"] == "gs://my-bucket/root/serving"


def test_yaml_for_kubeflow_pipelines_has_image_paths_and_no_resolver(tmp_path, monkeypatch):
    """The bundled sample data and schema, by relative path: the image holds them under
    kubeflow.project_dir. With kubeflow.baseline=false there is no resolver task, which the
    open-source KFP backend would reject."""
    monkeypatch.chdir(REPO_ROOT)
    out = tmp_path / "pipeline.yaml"
    overrides = [
        f"kubeflow.image={KUBEFLOW['image']}",
        f"kubeflow.pipeline_root={KUBEFLOW['pipeline_root']}",
        "kubeflow.baseline=false",
    ]
    args = ["compile", "--target", "kubeflow", "--out", str(out)]
    assert main([*args, *[a for o in overrides for a in ("--set", o)]]) == 0

    # The kfp client reads a .yaml package as a bare PipelineSpec.
    spec = json_format.ParseDict(yaml.safe_load(out.read_text()), pipeline_spec_pb2.PipelineSpec())
    tasks = spec.root.dag.tasks

    def parameter(task: str, name: str) -> str:
        return tasks[task].inputs.parameters[name].runtime_value.constant_value.string_value

    assert parameter("ImageExampleGen", "input_base") == "/pipeline/data/sample"
    assert parameter("ImportSchemaGen", "schema_file") == "/pipeline/data/sample_schema.pbtxt"
    executors = spec.deployment_spec["executors"]
    assert "resources" not in executors["Trainer_executor"]["container"]  # none configured
    assert all("container" in executor for executor in executors.values())
    assert not [name for name in tasks if "resolver" in name]
    # TFMA reads the Scorer's predictions and loads no model (model-agnostic evaluation).
    evaluated = tasks["Evaluator"].inputs.artifacts
    assert set(evaluated) == {"examples"}
    assert evaluated["examples"].task_output_artifact.producer_task == "Scorer"


def test_compile_without_image_or_root_says_what_to_set(capsys, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    assert main(["compile", "--target", "kubeflow"]) == 2
    err = capsys.readouterr().err
    assert "kubeflow.image" in err and "kubeflow.pipeline_root" in err


@pytest.mark.parametrize(
    "quantity, gb", [("32G", 32.0), ("30Gi", 32.21225472), ("512Mi", 0.536870912), ("1.5T", 1500)]
)
def test_memory_quantities_become_the_gb_kfp_counts_in(quantity, gb):
    assert memory_gb(quantity) == pytest.approx(gb)


def test_memory_quantity_that_is_not_one_is_rejected():
    with pytest.raises(ConfigError, match="kubeflow.trainer_memory"):
        memory_gb("lots")


def test_dockerfile_builds_the_pinned_tfx_image_with_the_project():
    dockerfile = (Path(REPO_ROOT) / "Dockerfile").read_text()
    lock = (Path(REPO_ROOT) / "requirements.lock").read_text()
    (tfx_version,) = re.findall(r"^tfx==(\S+)$", lock, re.MULTILINE)
    instructions = [
        line.strip() for line in dockerfile.splitlines() if line.strip() and line[0] != "#"
    ]
    assert instructions[0] == f"FROM tensorflow/tfx:{tfx_version}"
    assert "ENV TF_USE_LEGACY_KERAS=1" in instructions
    assert f"WORKDIR {KubeflowConfig().project_dir}" in instructions
    assert "COPY . ./" in instructions
    assert "RUN python -m pip install --no-cache-dir -r requirements.lock" in instructions
    assert "RUN python -m pip install --no-cache-dir --no-deps ." in instructions
    # ImageNet's weights are baked in, where every step looks for them, after the project.
    weights = instructions.index("RUN python -m pipeline weights")
    assert instructions.index("ENV KERAS_HOME=/opt/keras") < weights
    assert instructions.index("RUN python -m pip install --no-cache-dir --no-deps .") < weights
    # The build context leaves out what the image must not get (a 2 GB virtual environment).
    ignored = (Path(REPO_ROOT) / ".dockerignore").read_text().split()
    assert ".venv" in ignored and "runs" in ignored
