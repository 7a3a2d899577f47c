"""How fast the history commands answer: `runs`, `runs --json` and `show` on a metadata store
holding 50 runs, and optionally `report` on a real run, against `python -c "import tensorflow"`,
each a fresh process, alternating.

The 50 runs are written straight into a fresh SQLite store the way LocalDagRunner records them
(a "pipeline" context, one "pipeline_run" context per run, a "node" context per step of
create_pipeline's DAG, one execution per step with its output artifact), each with a saved run
record beside its report.
`report` needs a real run: pass the root of one (--report-root). It renders the run's page from
the record and page data the run saved when it ended, without TensorFlow; a run without them
(made before they were saved) gets them built once, before the timing, as its end would have.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time

from benchmarks import common


def make_store(root: str, runs: int) -> None:
    """A store of `runs` complete runs of the pipeline's DAG, each with a saved record."""
    from ml_metadata.proto import metadata_store_pb2 as mlmd

    from pipeline.config import load_config
    from pipeline.history.record import RunRecord, Step, save_record
    from pipeline.history.store import open_store
    from pipeline.pipeline import create_pipeline

    config = load_config(overrides=[f"runtime.root={root}"])
    steps = [component.id for component in create_pipeline(config).components]
    os.makedirs(root, exist_ok=True)
    store = open_store(config)
    type_ids = {
        name: store.put_context_type(mlmd.ContextType(name=name))
        for name in ("pipeline", "pipeline_run", "node")
    }
    execution_type = store.put_execution_type(mlmd.ExecutionType(name="Component"))
    artifact_type = store.put_artifact_type(mlmd.ArtifactType(name="Output"))
    name = config.runtime.name
    (pipeline,) = store.put_contexts([mlmd.Context(type_id=type_ids["pipeline"], name=name)])
    nodes = dict(
        zip(
            steps,
            store.put_contexts(
                [mlmd.Context(type_id=type_ids["node"], name=f"{name}.{s}") for s in steps]
            ),
            strict=True,
        )
    )
    for i in range(runs):
        run_id = f"2026-01-01T{i // 60:02d}:{i % 60:02d}:00.000000"
        (run,) = store.put_contexts([mlmd.Context(type_id=type_ids["pipeline_run"], name=run_id)])
        for step in steps:
            execution = mlmd.Execution(
                type_id=execution_type, last_known_state=mlmd.Execution.COMPLETE
            )
            artifact = mlmd.Artifact(type_id=artifact_type, uri=f"{root}/artifacts/{step}/{i}")
            event = mlmd.Event(type=mlmd.Event.OUTPUT)
            event.path.steps.add().key = "output"
            store.put_execution(
                execution,
                [(artifact, event)],
                store.get_contexts_by_id([pipeline, run, nodes[step]]),
            )
        record = RunRecord(
            run_id=run_id,
            started=time.time(),
            seconds=60.0,
            steps=[Step(s, "done", 5.0) for s in steps],
            imported={"examples": 900, "examples_per_split": {"train": 600}, "classes": ["a"]},
            metrics={"candidate": {"sparse_categorical_accuracy": 0.9, "example_count": 300}},
            blessed=True,
        )
        save_record(config, record)


def _seconds(command: list[str]) -> dict:
    env = dict(os.environ)
    result = subprocess.run(command, cwd=common.REPO, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{command} exited {result.returncode}: {result.stderr[-2000:]}")
    return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="runs in the store")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--report-root", help="root of a real run, to time `report` too")
    args = parser.parse_args(argv)

    root = tempfile.mkdtemp(prefix="history-speed-")
    make_store(root, args.runs)
    cli = [common.PYTHON, "-m", "pipeline"]
    contenders = {
        "runs": lambda: _seconds([*cli, "runs", "--root", root]),
        "runs --json": lambda: _seconds([*cli, "runs", "--json", "--root", root]),
        "show": lambda: _seconds([*cli, "show", "--root", root]),
        "import tensorflow": lambda: _seconds([common.PYTHON, "-c", "import tensorflow"]),
    }
    if args.report_root:
        out = os.path.join(root, "report.html")
        report = [*cli, "report", "--root", args.report_root, "--out", out]
        _seconds(report)  # saves the page data if the run has none: what is timed is rendering
        contenders["report"] = lambda: _seconds(report)
    try:
        runs = common.alternate(contenders, args.repeats)
    finally:
        shutil.rmtree(root)
    imported = common.median_of(runs["import tensorflow"], "seconds")
    summary = {"import tensorflow s": round(imported, 3)}
    for name in contenders:
        if name != "import tensorflow":
            seconds = common.median_of(runs[name], "seconds")
            summary[f"{name} s"] = round(seconds, 3)
            summary[f"ratio {name}/import"] = round(seconds / imported, 4)
    common.save(
        "history_speed",
        setup={
            "runs in the store": args.runs,
            "repeats": args.repeats,
            "report root": args.report_root or "not timed",
        },
        runs=runs,
        summary=summary,
        notes="Wall seconds of each whole process, Python start-up included (medians). The store "
        "is synthetic (LocalDagRunner's context layout, a saved record per run); `report` renders "
        "a real run's page from its saved record and page data (reports/run-<id>.page.json: saved "
        "when a run ends, or by the first `report` of an older run, untimed here), importing no "
        "TensorFlow, TFX or TFMA.",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
