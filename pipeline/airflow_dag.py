"""The pipeline as an Airflow DAG: point Airflow's dags folder at a file that imports DAG from here.

The configuration is the YAML file named by $VGG16_PIPELINE_CONFIG (defaults without it); its
`airflow:` section sets the schedule, start date, catch-up and retries. The DAG's id is the
pipeline name (runtime.name). Each component is one Airflow task, run by TFX's AirflowDagRunner
with the same SQLite metadata store and artifact folders as `python -m pipeline run`; a
`preflight` task first makes the checks `run` makes before it starts, and a `run_report` task
last writes the run's record and page.
"""

from __future__ import annotations

import datetime
import os

# pipeline/__init__.py, imported first, has set TF_USE_LEGACY_KERAS (components/__init__.py).
from airflow import models
from airflow.operators.python import PythonOperator
from tfx.orchestration.airflow.airflow_dag_runner import AirflowDagRunner, AirflowPipelineConfig

from pipeline.config import AirflowConfig, PipelineConfig, load_config
from pipeline.pipeline import create_pipeline

CONFIG_ENV = "VGG16_PIPELINE_CONFIG"
PREFLIGHT_TASK = "preflight"
REPORT_TASK = "run_report"


def dag_config(airflow: AirflowConfig) -> dict:
    """Keyword arguments of airflow.models.DAG from the `airflow:` section."""
    return {
        "schedule": airflow.schedule or None,
        "start_date": datetime.datetime.fromisoformat(airflow.start_date).replace(
            tzinfo=datetime.timezone.utc
        ),
        "catchup": airflow.catchup,
        "default_args": {
            "retries": airflow.retries,
            "retry_delay": datetime.timedelta(minutes=airflow.retry_delay_minutes),
        },
    }


def check_before_run(config_file: str | None) -> None:
    """What `python -m pipeline run` checks before its first step (pipeline/preflight.py), on
    the worker that runs the DAG: a problem fails this task, saying what to fix, and no step
    runs."""
    from components.base_weights import resolve_base_weights
    from pipeline.preflight import check_run

    config = load_config(config_file)
    check_run(config)
    # As `run` does: the base weights found or provisioned before any step, not in the Trainer.
    training = config.training
    resolve_base_weights(training.weights, training.allow_random_weights_fallback, say=print)


def write_run_report(run_id: str, config_file: str | None, dag_run=None) -> None:
    """The run's record and HTML page, as `python -m pipeline run` writes them at its end. A
    step that failed is marked so in the metadata store first (Airflow's TFX launcher leaves it
    "running") and named in the record, so `runs`, `show` and the page say the run failed."""
    from pipeline.history.report import record_failure, write_report
    from pipeline.history.store import RunLookupError, mark_failed, open_store

    config = load_config(config_file)
    failed_tasks = [
        task.task_id
        for task in (dag_run.get_task_instances() if dag_run is not None else [])
        if task.state == "failed" and task.task_id not in (PREFLIGHT_TASK, REPORT_TASK)
    ]
    if failed_tasks:
        failed = mark_failed(open_store(config), run_id, config.runtime.name, failed_tasks)
        record_failure(
            config,
            run_id,
            f"The pipeline failed in {', '.join(failed or failed_tasks)}: the reason is in the "
            "Airflow task's log.",
            exit_status=1,
        )
    try:
        print(f"Wrote {write_report(config, run_id)}")
    except RunLookupError:
        # Nothing of the run reached the metadata store: the preflight task stopped it, and its
        # log says why.
        print(f"No step of run {run_id} ran, so it has no record or page.")


def create_dag(config: PipelineConfig, config_file: str | None = None) -> models.DAG:
    """TFX's DAG of the pipeline, with a preflight task before its first steps and a report
    task after its last ones."""
    config.validate()
    runner = AirflowDagRunner(AirflowPipelineConfig(airflow_dag_config=dag_config(config.airflow)))
    dag = runner.run(create_pipeline(config))
    first = [task for task in dag.tasks if not task.upstream_list]
    last = [task for task in dag.tasks if not task.downstream_list]
    preflight = PythonOperator(
        task_id=PREFLIGHT_TASK,
        python_callable=check_before_run,
        op_kwargs={"config_file": config_file},
        retries=0,  # what it finds needs a person, not another try
        dag=dag,
    )
    # A teardown task: it runs whether the steps succeeded or failed (a failed run gets its page
    # too), and its own state does not decide the DAG run's, so a run whose step failed is
    # "failed" in Airflow, not "success" because its page was written.
    report = PythonOperator(
        task_id=REPORT_TASK,
        python_callable=write_run_report,
        op_kwargs={"run_id": "{{ run_id }}", "config_file": config_file},
        dag=dag,
    ).as_teardown()
    for task in first:
        preflight >> task
    for task in last:
        task >> report
    return dag


DAG = create_dag(load_config(os.environ.get(CONFIG_ENV)), os.environ.get(CONFIG_ENV))
