"""The Trainer's run_fn end to end under distribution strategies, without a GPU: the CPU split
into two logical devices for MirroredStrategy (phase 1 on cached features and on the full
model, phase 2, mixed precision), and MultiWorkerMirroredStrategy with a one-worker TF_CONFIG.
Each runs in a process of its own (tests/trainer_in_subprocess.py): devices and collective ops
are fixed when TensorFlow first starts in a process."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from test_export import transform_graph_and_examples

pytestmark = pytest.mark.slow

HELPER = Path(__file__).resolve().parent / "trainer_in_subprocess.py"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[str, str]:
    """A real Transform graph and 3 raw examples (GZIP TFRecords, as ExampleGen writes them)."""
    work = tmp_path_factory.mktemp("distributed")
    _, records = transform_graph_and_examples(work)
    return str(work / "transform_graph"), records


def run_trainer(data, out: Path, devices: int, runs: list[dict], env: dict | None = None):
    completed = subprocess.run(
        [sys.executable, str(HELPER), str(out), *data, str(devices), json.dumps(runs)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=900,
    )
    results = [
        json.loads(line.removeprefix("RESULT "))
        for line in completed.stdout.splitlines()
        if line.startswith("RESULT ")
    ]
    assert completed.returncode == 0 and len(results) == len(runs), completed.stderr[-4000:]
    return results


def test_mirrored_strategy_over_two_devices_trains_every_phase(data, tmp_path):
    cached, full_model = run_trainer(
        data,
        tmp_path,
        devices=2,
        runs=[
            # phase 1 on cached features, then phase 2, in mixed precision
            {"distribution": "mirrored", "mixed_precision": "on"},
            {"distribution": "mirrored", "cache_features": False, "fine_tune": False},
        ],
    )

    assert cached["phases"] == ["feature_cache", "phase1", "phase2"]
    assert full_model["phases"] == ["phase1"]
    for result in (cached, full_model):
        assert result["metadata"]["replicas"] == 2  # num_replicas_in_sync
    assert cached["metadata"]["mixed_precision"] is True


def test_multiworker_strategy_with_a_one_worker_cluster_trains(data, tmp_path):
    with socket.socket() as free:
        free.bind(("localhost", 0))
        port = free.getsockname()[1]
    tf_config = {
        "cluster": {"worker": [f"localhost:{port}"]},
        "task": {"type": "worker", "index": 0},
    }

    (result,) = run_trainer(
        data,
        tmp_path,
        devices=1,
        runs=[{"distribution": "multiworker", "cache_features": False}],
        env={"TF_CONFIG": json.dumps(tf_config)},
    )

    assert result["phases"] == ["phase1", "phase2"]
    assert result["metadata"]["replicas"] == 1  # one worker with one device
    assert result["metadata"]["training_config"]["distribution"] == "multiworker"
