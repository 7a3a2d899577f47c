"""What a person sees: one line per step, while TensorFlow's, Beam's and TFX's logs go to a file.

TensorFlow, Beam and TFX log thousands of lines; they go to a log file in the run folder
(shown with --verbose), and the console gets one line per component as it starts and ends.
Nothing here imports TensorFlow, so the redirection is in place before it loads.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class StepLog:
    """What the console saw of each component: status and seconds."""

    out: object = sys.stdout
    steps: dict[str, dict] = field(default_factory=dict)
    current: str | None = None
    run_id: str | None = None  # LocalDagRunner's pipeline run id, once the first step starts

    def started(self, node: str) -> None:
        self.current = node
        self.steps[node] = {"status": "running", "start": time.perf_counter()}
        print(f"  {node:<34} running", file=self.out, flush=True)

    def cached(self) -> None:
        if self.current:
            self.steps[self.current]["cached"] = True

    def finished(self, node: str) -> None:
        step = self.steps[node]
        step["seconds"] = time.perf_counter() - step["start"]
        step["status"] = "cached" if step.get("cached") else "done"
        print(
            f"  {node:<34} {step['status']:<8} {step['seconds']:6.1f} s", file=self.out, flush=True
        )
        self.current = None

    def failed(self) -> str | None:
        if self.current:
            step = self.steps[self.current]
            step["seconds"] = time.perf_counter() - step["start"]
            step["status"] = "FAILED"
            print(
                f"  {self.current:<34} FAILED   {step['seconds']:6.1f} s", file=self.out, flush=True
            )
        return self.current


@dataclass
class Console:
    """The person's terminal while library output goes to the log: `out` for results, `err`
    for errors and warnings; `log_path` is the file that holds everything else."""

    out: TextIO
    err: TextIO
    log_path: str


def unique_log_path(folder: str, command: str) -> str:
    """<folder>/<command>-YYYYmmdd-HHMMSS-ffffff.log, created here so that two commands started
    in the same second never share a file."""
    os.makedirs(folder, exist_ok=True)
    while True:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        path = os.path.join(folder, f"{command}-{stamp}.log")
        try:
            with open(path, "x"):
                return path
        except FileExistsError:
            continue


def _has_file_descriptors() -> bool:
    """False where sys.stdout or sys.stderr is no real file (an in-memory capture)."""
    try:
        sys.stdout.fileno()
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


@contextlib.contextmanager
def logs_to_file(log_path: str, verbose: bool) -> Iterator[Console]:
    """Sends everything written to stdout and stderr (Python and C++ logs, warnings) to
    log_path, and yields the person's terminal. With verbose, library output stays on the
    terminal and Python's log records are copied to log_path, so the file exists either way."""
    os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
    if verbose or not _has_file_descriptors():
        handler = logging.FileHandler(log_path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logging.getLogger().addHandler(handler)
        try:
            yield Console(sys.stdout, sys.stderr, log_path)
        finally:
            logging.getLogger().removeHandler(handler)
            handler.close()
        return
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    err = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1)
    saved_out, saved_err = os.dup(1), os.dup(2)
    with open(log_path, "a") as log:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield Console(out, err, log_path)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved_out, 1)
            os.dup2(saved_err, 2)
            os.close(saved_out)
            os.close(saved_err)
            out.close()
            err.close()
