"""The run report in a real headless Chromium, and the run history (`runs`, `show`), on one real
pipeline run of small generated data (three colour classes, 32 px, random VGG16 weights).

The browser is Debian's Chromium (/usr/bin/chromium, installed by .ci/run), driven by
Playwright for Python; Playwright's own browser downloads are never used.
"""

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import SMALL_RUN, make_colour_classes, schema_for_classes

from pipeline.__main__ import main

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # we run as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# With TFMA's own jackknife intervals (evaluation.tfma_confidence_intervals, off by default): the
# option stays tested, and the Judge's intervals are compared with it.
SETTINGS = [*SMALL_RUN, "evaluation.tfma_confidence_intervals=true"]
SECTIONS = ["steps", "data", "findings", "training", "evaluation", "decision"]
CHARTS = [
    "chart-step-times",
    "chart-examples-per-class",
    "chart-image-sizes",
    "chart-training-curves",
    "chart-per-class",
    "confusion-matrix",
]


def run_captured(argv: list[str]) -> tuple[int, str]:
    """main(argv) and what it printed; module fixtures cannot use capfd. `run` prints through
    a duplicate of sys.stdout's descriptor, so sys.stdout must be a real file."""
    with tempfile.TemporaryFile("w+") as out:
        with contextlib.redirect_stdout(out):
            code = main(argv)
        out.flush()
        out.seek(0)
        return code, out.read()


def run_args(images: Path, schema: Path, root: Path) -> list[str]:
    args = ["run", "--images", str(images), "--root", str(root), "--set", f"data.schema={schema}"]
    for setting in SETTINGS:
        args += ["--set", setting]
    return args


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("report")
    classes = make_colour_classes(folder / "images", per_class=30)
    schema = schema_for_classes(classes, folder / "schema.pbtxt")
    root = folder / "runs"
    code, out = run_captured(run_args(folder / "images", schema, root))
    assert code == 0, out
    return {"root": root, "images": folder / "images", "schema": schema, "out": out}


def report_line(out: str) -> Path:
    (path,) = re.findall(r"^  Report:     (\S+)$", out, flags=re.MULTILINE)
    return Path(path)


def open_in_chromium(path: Path, profile: Path) -> dict:
    """Loads the file in headless Chromium; returns every request, failed request and console
    error, and what the page shows."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run installs it in CI)")
    from playwright.sync_api import sync_playwright

    seen: dict = {"requests": [], "failed": [], "errors": []}
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = context.new_page()
            page.on("request", lambda r: seen["requests"].append(r.url))
            page.on("requestfailed", lambda r: seen["failed"].append(r.url))
            page.on("console", lambda m: m.type == "error" and seen["errors"].append(m.text))
            page.goto(path.resolve().as_uri(), wait_until="load")
            seen["url"] = page.url
            seen["sections"] = page.eval_on_selector_all("body > section", "s => s.map(e => e.id)")
            seen["images"] = page.eval_on_selector_all(
                "figure img",
                "imgs => imgs.map(i => [i.closest('figure').id, i.complete, i.naturalWidth])",
            )
            seen["decision"] = page.inner_text("#decision-text")
            seen["thresholds"] = page.inner_text("#evaluation")
            seen["anomalies"] = page.inner_text("#anomalies")
        finally:
            context.close()
    return seen


def test_run_writes_the_report_and_prints_its_path(pipeline_run):
    path = report_line(pipeline_run["out"])
    assert path.parent == pipeline_run["root"] / "reports"
    assert re.fullmatch(r"run-[0-9T.-]+\.html", path.name), path.name  # no ':' in the name
    text = path.read_text()
    assert "http://" not in text and "https://" not in text  # nothing to fetch
    assert "<script" not in text


def test_report_shows_the_gate_the_intervals_and_the_images(pipeline_run):
    text = report_line(pipeline_run["out"]).read_text()
    assert "accuracy (95% lower bound) &gt;= 0.5" in text
    assert re.search(r"\d\.\d{3} \(95% CI \d\.\d\d to \d\.\d\d, n = \d+\)", text)
    assert "evaluation.min_examples_per_class" in text
    assert "trained from random weights (training.weights=none)" in text  # the banner says so
    # The judged split's images as the model saw them: up to 3 confident correct per class.
    thumbnails = re.findall(r'<figure class="thumb"><img src="data:image/png;base64,', text)
    assert 3 <= len(thumbnails) <= 9 + 24
    assert 'id="mistakes"' in text and 'id="correct"' in text


def test_the_judges_intervals_agree_with_the_old_ones_from_tfmas_jackknife(pipeline_run):
    """The gate used to take the wider of TFMA's jackknife interval and Wilson's; it now takes
    Wilson's, from the Scorer's predictions. On this real run (TFMA's jackknife still on, as
    evaluation.tfma_confidence_intervals=true asks), the accuracy interval is inside the old
    one and no bound moved by more than 0.10: at a few dozen examples the jackknife's 20
    partitions estimate the spread roughly, and collapse to a point at 0 or 1."""
    import tensorflow_model_analysis as tfma

    (evaluation,) = (pipeline_run["root"] / "artifacts" / "Evaluator" / "evaluation").iterdir()
    overall = next(m for m in tfma.load_metrics(str(evaluation)) if not m.slice_key.ListFields())
    (kv,) = [
        kv
        for kv in overall.metric_keys_and_values
        if kv.key.name == "sparse_categorical_accuracy" and not kv.key.is_diff
    ]
    assert kv.HasField("confidence_interval")  # the option still gives TFMA's intervals
    bounds = kv.confidence_interval
    jackknife = (bounds.lower_bound.double_value.value, bounds.upper_bound.double_value.value)
    (judgement,) = (pipeline_run["root"] / "artifacts" / "Judge" / "model_blessing").glob(
        "*/judgement.json"
    )
    new = json.loads(judgement.read_text())["evidence"]["accuracy"]
    assert new["value"] == pytest.approx(kv.value.double_value.value)  # the same predictions
    old = (max(0.0, min(jackknife[0], new["lower"])), min(1.0, max(jackknife[1], new["upper"])))
    assert old[0] <= new["lower"] <= new["upper"] <= old[1]
    assert new["lower"] - old[0] <= 0.10 and old[1] - new["upper"] <= 0.10, (old, new)


def test_report_renders_in_chromium_without_any_request(pipeline_run, tmp_path):
    path = report_line(pipeline_run["out"])
    seen = open_in_chromium(path, tmp_path / "profile")

    # data: URLs are not requests; anything else (even a favicon) would be one.
    assert [u for u in seen["requests"] if not u.startswith("data:")] == [seen["url"]]
    assert seen["failed"] == [] and seen["errors"] == []
    assert seen["sections"] == SECTIONS
    charts = {figure_id: (complete, width) for figure_id, complete, width in seen["images"]}
    for chart in CHARTS:
        assert chart in charts, f"{chart} missing; figures: {sorted(charts)}"
        assert charts[chart][0] and charts[chart][1] > 0, f"{chart} did not decode: {charts}"
    (version,) = [p.name for p in (pipeline_run["root"] / "serving").iterdir()]
    assert seen["decision"].startswith("BLESSED")
    assert f"version {version}" in seen["decision"]
    assert "sparse_categorical_accuracy" in seen["thresholds"]
    assert "accuracy (95% lower bound) >= 0.5" in seen["thresholds"]
    assert "pass" in seen["thresholds"]
    assert "not applied" in seen["thresholds"]  # the first model has no baseline
    assert seen["anomalies"] == "none"


def test_report_command_writes_the_same_page_again(pipeline_run, capfd):
    written = report_line(pipeline_run["out"])
    before = written.read_text()
    written.unlink()
    assert main(["report", "--root", str(pipeline_run["root"])]) == 0  # default: the latest
    assert capfd.readouterr().out.strip() == f"Wrote {written}"
    assert written.read_text() == before


def test_a_run_without_saved_page_data_gets_its_page_from_the_artifacts(pipeline_run, tmp_path):
    """A run made before page data was saved (or whose end could not save it): `report` reads
    the artifacts, writes the same page, and saves the page data for the next `report`."""
    page_data = _saved(pipeline_run, ".page.json")
    saved = page_data.read_text()
    page_data.unlink()
    out = tmp_path / "page.html"
    run_id = _record(pipeline_run)["run_id"]
    try:
        assert (
            main(["report", run_id[:16], "--root", str(pipeline_run["root"]), "--out", str(out)])
            == 0
        )
        assert out.read_bytes() == report_line(pipeline_run["out"]).read_bytes()
        assert page_data.read_text() == saved  # saved again, as the run's end saved it
    finally:
        if not page_data.exists():
            page_data.write_text(saved)


def test_runs_json_lists_the_run(pipeline_run, capfd):
    assert main(["runs", "--root", str(pipeline_run["root"]), "--json"]) == 0
    (row,) = json.loads(capfd.readouterr().out)
    versions = [p.name for p in (pipeline_run["root"] / "serving").iterdir()]
    assert row["run_id"] in pipeline_run["out"]
    assert row["status"] == "complete"
    assert row["examples"] == 90
    assert 0.5 <= row["candidate_accuracy"] <= 1.0
    assert row["baseline_accuracy"] is None
    assert row["blessed"] is True
    assert row["random_weights"] == "chosen"  # training.weights=none
    low, high = row["accuracy_interval"]
    assert 0 <= low <= row["candidate_accuracy"] <= high <= 1
    assert row["pushed_version"] in versions and row["push_cached"] is False
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", row["started"])


def test_runs_prints_a_table(pipeline_run, capfd):
    assert main(["runs", "--root", str(pipeline_run["root"])]) == 0
    header, line = capfd.readouterr().out.strip().splitlines()
    assert header.split()[:3] == ["RUN", "STARTED", "STATUS"]
    assert " complete " in line and " yes (random weights) " in line and " 90 " in line


def test_show_into_a_closed_pipe_stops_quietly(pipeline_run):
    """`show | head` whose reader has gone: no traceback, no error line, status 1."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "show", "--root", str(pipeline_run["root"])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    process.stdout.close()  # the reader goes away before the command writes anything
    stderr = process.stderr.read()
    assert process.wait(timeout=60) == 1
    assert stderr == ""


def test_show_prints_the_lineage(pipeline_run, capfd):
    root = pipeline_run["root"]
    assert main(["show", "--root", str(root)]) == 0
    out = capfd.readouterr().out
    (version,) = [p.name for p in (root / "serving").iterdir()]
    assert f"  Data:        {pipeline_run['images']} (ImageExampleGen input_base)" in out
    assert "  Fingerprint: split:all,num_files:90," in out
    assert re.search(r"  Examples:    artifact \d+ at .*/ImageExampleGen/examples/", out)
    assert f"  Schema:      {pipeline_run['schema']}, imported as artifact" in out
    assert re.search(r"  Model:       artifact \d+ at .*/Trainer/model/", out)
    assert "  Baseline:    none (no baseline: no model blessed before" in out
    assert f"  Pushed:      version {version} to {root / 'serving' / version}" in out
    assert "files intact (checked against its push record)" in out
    assert f"  Report:      {report_line(pipeline_run['out'])}" in out


def test_show_names_a_run_by_the_start_of_its_id(pipeline_run, capfd):
    assert main(["runs", "--root", str(pipeline_run["root"]), "--json"]) == 0
    run_id = json.loads(capfd.readouterr().out)[0]["run_id"]
    assert main(["show", run_id[:16], "--root", str(pipeline_run["root"])]) == 0
    assert f"Run {run_id}" in capfd.readouterr().out


def test_unknown_run_id_is_a_clear_error(pipeline_run, capfd):
    root = str(pipeline_run["root"])
    assert main(["show", "1999-01-01", "--root", root]) == 2
    assert "No run has the id '1999-01-01'" in capfd.readouterr().err
    assert main(["report", "1999-01-01", "--root", root]) == 2
    assert "`python -m pipeline runs` lists them" in capfd.readouterr().err


def test_a_root_without_a_metadata_store_is_a_clear_error(tmp_path, capfd):
    for command in (["runs"], ["show"], ["report"]):
        assert main([*command, "--root", str(tmp_path / "nothing")]) == 2
        err = capfd.readouterr().err
        assert f"No metadata store at {tmp_path / 'nothing' / 'metadata.sqlite'}" in err
    assert not (tmp_path / "nothing").exists()  # looking created nothing


def test_a_failed_run_gets_a_report_of_what_exists(pipeline_run, tmp_path):
    """The schema allows PNG files only and the images are JPEGs: ExampleValidator finds the
    anomaly and DataGate stops the run after ingestion and statistics."""
    schema = schema_for_classes(["blue", "green", "red"], tmp_path / "schema.pbtxt")
    text = schema.read_text()
    formats = re.search(r'string_domain \{\s*name: "image_format_values"[^}]*\}', text).group(0)
    schema.write_text(text.replace(formats, formats.split("value:")[0] + 'value: "png"\n}'))
    code, out = run_captured(run_args(pipeline_run["images"], schema, tmp_path / "runs"))
    assert code == 4  # data validation stopped the run
    seen = open_in_chromium(report_line(out), tmp_path / "profile")
    assert [u for u in seen["requests"] if not u.startswith("data:")] == [seen["url"]]
    assert "failed at DataGate" in seen["decision"]
    assert "image_format" in seen["anomalies"]
    assert "jpeg" in seen["anomalies"]
    charts = {figure_id for figure_id, _, width in seen["images"] if width > 0}
    assert {"chart-step-times", "chart-examples-per-class"} <= charts
    # `report` renders the same page from what the failed run saved, its error included.
    page = report_line(out)
    assert "<h3>Error</h3><pre>Data validation stopped the run: " in page.read_text()
    assert page.with_suffix(".page.json").exists()
    again = tmp_path / "again.html"
    assert main(["report", "--root", str(tmp_path / "runs"), "--out", str(again)]) == 0
    assert again.read_bytes() == page.read_bytes()


def _saved(pipeline_run, suffix: str = ".json") -> Path:
    """The run's saved record (.json) or page data (.page.json)."""
    paths = (pipeline_run["root"] / "reports").glob("run-*.json")
    (path,) = [p for p in paths if p.name.endswith(".page.json") == (suffix == ".page.json")]
    return path


def _record(pipeline_run) -> dict:
    return json.loads(_saved(pipeline_run).read_text())


def test_the_console_summary_the_page_runs_and_show_agree_with_the_run_record(pipeline_run, capfd):
    root = str(pipeline_run["root"])
    record = _record(pipeline_run)
    console = pipeline_run["out"]
    page = report_line(console).read_text()
    assert main(["runs", "--root", root, "--json"]) == 0
    (row,) = json.loads(capfd.readouterr().out)
    assert main(["show", "--root", root]) == 0
    show = capfd.readouterr().out

    evidence = record["judgement"]["evidence"]["accuracy"]
    accuracy = f"{evidence['value']:.3f} (95% CI {evidence['lower']:.2f} to {evidence['upper']:.2f}"
    for text in (console, page, show):
        assert accuracy in text
    assert row["accuracy_interval"] == [evidence["lower"], evidence["upper"]]
    candidate = record["metrics"]["candidate"]["sparse_categorical_accuracy"]
    assert row["candidate_accuracy"] == candidate
    assert f'<td class="num">{candidate:.4f}</td>' in page

    examples = record["ingestion"]["examples"]
    assert row["examples"] == examples == 90
    for text in (console, show):
        assert f"  Data:       {examples} examples (" in text
    assert f"<p>{examples} examples (" in page

    assert record["blessed"] is True and row["blessed"] is True
    for text in (console, show):
        assert "  Decision:   BLESSED" in text
    assert "BLESSED: the candidate passed every rule" in page
    version = record["pushed_version"]
    assert version and row["pushed_version"] == version
    for text in (console, show):
        assert f"  Pushed:     version {version} to " in text
    assert f"Pushed as version {version}." in page

    # One definition of a phase's best validation accuracy, shown alike everywhere.
    trained = [p for p in record["phases"] if p["epochs"]]  # feature_cache has no epochs
    assert [p["phase"] for p in trained] == ["phase1", "phase2"]
    for p in trained:
        best = f"{p['best_val_accuracy']:.3f}"
        line = f"  {p['phase'].capitalize()}:     {p['epochs']} epoch(s), best val accuracy {best}"
        assert line in console and line in show
        assert re.search(
            rf"<td>{p['phase']}</td><td class=\"num\">{p['epochs']}</td>.*?"
            rf"<td class=\"num\">{best}</td>",
            page,
        )

    steps = [(s["name"], s["state"]) for s in record["steps"]]
    assert len(steps) >= 10 and all(state == "done" for _, state in steps)
    for name, state in steps:
        assert re.search(rf"^      {name} +{state} +[\d.]+ s$", show, flags=re.MULTILINE)
        assert f"<td>{name}</td><td>{state}</td>" in page
    assert row["status"] == "complete" and f"status {row['status']}" in show


HISTORY_COMMANDS = [["runs"], ["runs", "--json"], ["show"]]


def main_in_a_fresh_python(argv: list[str]) -> tuple[dict, subprocess.CompletedProcess]:
    """main(argv) in a new interpreter: its exit status and the heavy modules it imported."""
    script = (
        "import json, sys\n"
        "from pipeline.__main__ import main\n"
        f"code = main({argv!r})\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'tfx', 'tensorflow_model_analysis', 'keras', 'tf_keras'))\n"
        "print(json.dumps({'code': code, 'heavy': heavy}), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    return json.loads(done.stderr.strip().splitlines()[-1]), done


@pytest.mark.parametrize("command", HISTORY_COMMANDS, ids=" ".join)
def test_history_commands_import_no_tensorflow_tfx_or_tfma(pipeline_run, command):
    result, done = main_in_a_fresh_python([*command, "--root", str(pipeline_run["root"])])
    assert result == {"code": 0, "heavy": []}, done.stderr
    assert _record(pipeline_run)["run_id"] in done.stdout


def test_report_renders_the_saved_page_data_without_tensorflow_tfx_or_tfma(pipeline_run, tmp_path):
    """The run saved its record and page data when it ended; `report RUN` renders its page from
    them alone, the same bytes as the page the run wrote."""
    assert _saved(pipeline_run, ".page.json").exists()
    run_id = _record(pipeline_run)["run_id"]
    out = tmp_path / "page.html"
    argv = ["report", run_id, "--root", str(pipeline_run["root"]), "--out", str(out)]
    result, done = main_in_a_fresh_python(argv)
    assert result == {"code": 0, "heavy": []}, done.stderr
    assert out.read_bytes() == report_line(pipeline_run["out"]).read_bytes()


def test_a_run_without_a_saved_record_is_listed_from_the_store(pipeline_run, capfd, tmp_path):
    """A run made by another runner (or before records were saved) still shows what the store
    holds: its status, decision and push; the rest is marked unread."""
    root = pipeline_run["root"]
    path = _saved(pipeline_run)
    kept = tmp_path / path.name
    path.rename(kept)
    try:
        assert main(["runs", "--root", str(root), "--json"]) == 0
        (row,) = json.loads(capfd.readouterr().out)
        assert row["record"] is False and row["status"] == "complete"
        assert row["blessed"] is True and row["pushed_version"]
        assert row["examples"] is None and row["candidate_accuracy"] is None
        assert main(["show", "--root", str(root)]) == 0
        assert "Record:     none saved for this run" in capfd.readouterr().out
    finally:
        kept.rename(path)
