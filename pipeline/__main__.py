"""The command line: `python -m pipeline COMMAND` (run, infer-schema, predict, compile, report,
runs, show; see --help)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before anything loads TensorFlow
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from pipeline.config import ConfigError, PipelineConfig, iter_options, load_config  # noqa: E402
from pipeline.console import StepLog, logs_to_file  # noqa: E402


def _options_help() -> str:
    lines = ["configuration options (set with --set KEY=VALUE or in a --config YAML file):"]
    for key, default, help_text in iter_options():
        lines.append(f"  {key} (default: {default!r})")
        lines += textwrap.wrap(help_text, 90, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines)


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML file of options, by section (see below)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one option, e.g. --set training.epochs=3 (repeatable)",
    )
    parser.add_argument("--images", help="shortcut for --set data.images=PATH")
    parser.add_argument("--tfrecords", help="shortcut for --set data.tfrecords=PATH")
    parser.add_argument("--root", help="shortcut for --set runtime.root=PATH")


def _config_from(args: argparse.Namespace) -> PipelineConfig:
    overrides = list(args.set)
    for flag, key in (
        ("images", "data.images"),
        ("tfrecords", "data.tfrecords"),
        ("root", "runtime.root"),
    ):
        if getattr(args, flag, None):
            overrides.append(f"{key}={getattr(args, flag)}")
    if getattr(args, "no_cache", False):
        overrides.append("runtime.enable_cache=false")
    if getattr(args, "allow_random_weights", False):
        overrides.append("training.allow_random_weights_fallback=true")
    if getattr(args, "fail_on_unblessed", False):
        overrides.append("runtime.fail_on_unblessed=true")
    return load_config(args.config, overrides)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="Train, validate, evaluate and ship a VGG16 image classifier with TFX.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run",
        help="run the whole pipeline locally (LocalDagRunner, SQLite metadata)",
        description="Ingest and validate the images, train, evaluate against the last blessed "
        "model, and push a blessed model to the serving folder.",
        epilog=_options_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_config_arguments(run)
    run.add_argument(
        "--no-cache", action="store_true", help="rerun every step, even unchanged ones"
    )
    run.add_argument("--verbose", action="store_true", help="show TensorFlow/Beam/TFX logs")
    run.add_argument(
        "--allow-random-weights",
        action="store_true",
        help="if ImageNet weights cannot be downloaded, train from random weights (demo only)",
    )
    run.add_argument(
        "--fail-on-unblessed",
        action="store_true",
        help="exit with status 3 when the model is not blessed (for CI/CD)",
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
    _add_config_arguments(infer)
    infer.add_argument("--out", required=True, help="where to write schema.pbtxt")

    predict = commands.add_parser(
        "predict",
        help="classify image files with a pushed model",
        description="Runs the model's raw-image signature (the training preprocessing is "
        "inside the model) and prints the top classes of each image.",
    )
    _add_config_arguments(predict)
    predict.add_argument(
        "--model",
        help="a model version folder, or a serving folder (its newest version is used); "
        "default: the configured serving folder (runtime.serving_dir)",
    )
    predict.add_argument("--top", type=int, default=3, help="how many classes to show (default 3)")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files to classify")

    compile_ = commands.add_parser(
        "compile",
        help="write the pipeline for an orchestrator (Kubeflow Pipelines v2 / Vertex AI)",
        description="Compiles the same pipeline for KubeflowV2DagRunner. Set kubeflow.image and "
        "kubeflow.pipeline_root (and the kubeflow.trainer_* resources) in the configuration.",
        epilog=_options_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_config_arguments(compile_)
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
    _add_config_arguments(report)
    report.add_argument("run", nargs="?", metavar="RUN", help="run id, or its unique start")
    report.add_argument("--out", help="where to write it (default: <root>/reports/run-<id>.html)")

    runs = commands.add_parser(
        "runs",
        help="list past runs: status, examples, accuracy, blessed, pushed version",
    )
    _add_config_arguments(runs)
    runs.add_argument("--json", action="store_true", help="one JSON list, for scripts")

    show = commands.add_parser(
        "show",
        help="one run's details and lineage: data, schema, baseline, push",
    )
    _add_config_arguments(show)
    show.add_argument("run", nargs="?", metavar="RUN", help="run id, or its unique start")
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    config = _config_from(args)
    config.validate()
    log_path = os.path.join(config.runtime.root, "logs", time.strftime("run-%Y%m%d-%H%M%S.log"))
    if not args.verbose:
        print(f"Pipeline {config.runtime.name}: logs in {log_path}")
    with logs_to_file(log_path, args.verbose) as console:
        from components.model import WeightsUnavailableError, resolve_base_weights
        from pipeline.local_runner import run_pipeline
        from pipeline.summary import run_summary

        steps = StepLog(out=console)
        started = time.time()
        try:
            if args.stop_after != "data":
                # Fail fast: before minutes of ingestion, make sure the base weights can be had.
                resolve_base_weights(
                    config.training.weights, config.training.allow_random_weights_fallback
                )
            run_pipeline(config, steps, stop_after=args.stop_after)
        except WeightsUnavailableError as error:
            print(f"\n{error}", file=console)
            return 1
        except Exception as error:
            print(f"\nThe pipeline failed: {type(error).__name__}: {error}", file=console)
            _print_report(
                config, console, error=f"{type(error).__name__}: {error}", started_after=started
            )
            print(f"Full log: {log_path}", file=console)
            return 1
        summary = run_summary(config, steps)
        print(summary.text(), file=console)
        _print_report(config, console, run_id=summary.run_id)
    if config.runtime.fail_on_unblessed and summary.blessed is False:
        return 3
    return 0


def cmd_infer_schema(args: argparse.Namespace) -> int:
    from pipeline.infer_schema import infer_schema

    config = _config_from(args)
    path = infer_schema(config, args.out)
    print(f"Wrote {path}. Review it, commit it, and set data.schema={path}.")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from pipeline.predict import PredictError, predict

    config = _config_from(args)
    try:
        model_dir, predictions = predict(
            args.model or config.serving_dir, args.images, args.top, config.ingestion.max_pixels
        )
    except PredictError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Model: {model_dir}")
    for prediction in predictions:
        ranked = ", ".join(f"{name} {p:.1%}" for name, p in prediction.top)
        print(f"{prediction.path}: {ranked}")
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    from pipeline.kubeflow import compile_pipeline

    config = _config_from(args)
    config.validate()
    out = compile_pipeline(config, args.out or f"{config.runtime.name}.json")
    print(f"Wrote {out} for Kubeflow Pipelines v2, image {config.kubeflow.image}.")
    return 0


def _print_report(config: PipelineConfig, console, **kwargs) -> None:
    """Writes the run's HTML report and says where; a report that cannot be written is told,
    but never changes the run's exit status."""
    from pipeline.report import write_report

    try:
        path = write_report(config, **kwargs)
    except Exception as error:
        print(f"  Report:     not written ({type(error).__name__}: {error})", file=console)
        return
    if path:
        print(f"  Report:     {path}", file=console)


def cmd_report(args: argparse.Namespace) -> int:
    from pipeline.report import write_report
    from pipeline.summary import RunLookupError

    config = _config_from(args)
    try:
        path = write_report(config, args.run, out=args.out)
    except RunLookupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Wrote {path}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from pipeline.runs import format_rows, run_rows
    from pipeline.summary import RunLookupError

    config = _config_from(args)
    try:
        rows = run_rows(config)
    except RunLookupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(rows, indent=2) if args.json else format_rows(rows))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from pipeline.runs import show_text
    from pipeline.summary import RunLookupError

    config = _config_from(args)
    try:
        print(show_text(config, args.run))
    except RunLookupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


COMMANDS = {
    "run": cmd_run,
    "infer-schema": cmd_infer_schema,
    "predict": cmd_predict,
    "compile": cmd_compile,
    "report": cmd_report,
    "runs": cmd_runs,
    "show": cmd_show,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
