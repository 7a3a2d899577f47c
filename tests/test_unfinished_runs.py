"""What the history does with steps that never recorded an end: a killed local run's are cleaned
up by the next local run, a live Airflow run's are left alone, and Airflow's failed ones are
marked failed. A metadata store written by hand in each runner's layout (no pipeline runs)."""

from ml_metadata.proto import metadata_store_pb2 as mlmd

from pipeline.config import load_config
from pipeline.history.store import load_run, mark_failed, open_store
from pipeline.local_runner import clean_killed_executions

NAME = "vgg16-image-classifier"


def add_run(store, kind: str, name: str, steps: dict[str, int]) -> None:
    """One run of the pipeline: kind "pipeline_run" (LocalDagRunner: a node context per step)
    or "run" (Airflow's launcher: the step in the execution's component_id)."""
    types = {
        k: store.put_context_type(mlmd.ContextType(name=k)) for k in ("pipeline", kind, "node")
    }
    execution_type = store.put_execution_type(
        mlmd.ExecutionType(name="Component", properties={"component_id": mlmd.STRING}),
        can_add_fields=True,
    )
    pipeline = store.get_context_by_type_and_name("pipeline", NAME)
    if pipeline is None:
        (pipeline_id,) = store.put_contexts([mlmd.Context(type_id=types["pipeline"], name=NAME)])
        pipeline = store.get_contexts_by_id([pipeline_id])[0]
    (run_id,) = store.put_contexts([mlmd.Context(type_id=types[kind], name=name)])
    run = store.get_contexts_by_id([run_id])[0]
    for step, state in steps.items():
        execution = mlmd.Execution(type_id=execution_type, last_known_state=state)
        contexts = [pipeline, run]
        if kind == "run":
            execution.properties["component_id"].string_value = step
        else:
            node = store.get_context_by_type_and_name("node", f"{NAME}.{step}")
            if node is None:
                (node_id,) = store.put_contexts(
                    [mlmd.Context(type_id=types["node"], name=f"{NAME}.{step}")]
                )
                node = store.get_contexts_by_id([node_id])[0]
            contexts.append(node)
        store.put_execution(execution, [], contexts)


def states(store, run_id: str) -> dict[str, str]:
    return load_run(store, run_id, NAME).states


def test_a_local_run_cleans_only_killed_local_runs_not_a_live_airflow_run(tmp_path):
    config = load_config(overrides=[f"runtime.root={tmp_path}"])
    store = open_store(config)
    running, done = mlmd.Execution.RUNNING, mlmd.Execution.COMPLETE
    add_run(
        store, "pipeline_run", "2026-01-01T00:00:00", {"ImageExampleGen": done, "Trainer": running}
    )
    add_run(store, "run", f"{NAME}.manual__2026-01-02", {"ImageExampleGen": running})

    assert clean_killed_executions(config) == ["Trainer"]

    assert states(store, "2026-01-01T00:00:00") == {"ImageExampleGen": "done", "Trainer": "killed"}
    assert states(store, "manual__2026-01-02") == {"ImageExampleGen": "running"}


def test_steps_airflow_saw_fail_are_marked_failed_in_that_run_only(tmp_path):
    config = load_config(overrides=[f"runtime.root={tmp_path}"])
    store = open_store(config)
    running, done = mlmd.Execution.RUNNING, mlmd.Execution.COMPLETE
    add_run(store, "run", f"{NAME}.manual__1", {"ImageExampleGen": done, "Trainer": running})
    add_run(store, "run", f"{NAME}.manual__2", {"Trainer": running})

    assert mark_failed(store, "manual__1", NAME, ["Trainer", "Evaluator"]) == ["Trainer"]

    assert states(store, "manual__1") == {"ImageExampleGen": "done", "Trainer": "failed"}
    assert states(store, "manual__2") == {"Trainer": "running"}
    assert mark_failed(store, "manual__unknown", NAME, ["Trainer"]) == []
