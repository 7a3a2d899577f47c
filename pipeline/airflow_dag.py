"""The pipeline as an Airflow DAG: point Airflow's dags folder at a file that imports DAG from here.

The configuration is the YAML file named by $VGG16_PIPELINE_CONFIG (defaults without it); its
`airflow:` section sets the schedule, start date, catch-up and retries. The DAG's id is the
pipeline name (runtime.name). Each component is one Airflow task, run by TFX's AirflowDagRunner
with the same SQLite metadata store and artifact folders as `python -m pipeline run`.
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


def write_run_report(run_id: str, config_file: str | None) -> None:
    """The run's record and HTML page, as `python -m pipeline run` writes them at its end."""
    from pipeline.history.report import write_report

    print(f"Wrote {write_report(load_config(config_file), run_id)}")


def create_dag(config: PipelineConfig, config_file: str | None = None) -> models.DAG:
    config.validate()
    runner = AirflowDagRunner(AirflowPipelineConfig(airflow_dag_config=dag_config(config.airflow)))
    dag = runner.run(create_pipeline(config))
    last = [task for task in dag.tasks if not task.downstream_list]
    report = PythonOperator(
        task_id=REPORT_TASK,
        python_callable=write_run_report,
        op_kwargs={"run_id": "{{ run_id }}", "config_file": config_file},
        trigger_rule="all_done",  # a failed run gets its page too
        dag=dag,
    )
    for task in last:
        task >> report
    return dag


DAG = create_dag(load_config(os.environ.get(CONFIG_ENV)), os.environ.get(CONFIG_ENV))
