"""What a person sees: one line per step, while TensorFlow's, Beam's and TFX's logs go to a file.

TensorFlow, Beam and TFX log thousands of lines; they go to a log file in the run folder
(shown with --verbose), and the console gets one line per component as it starts and ends.
Nothing here imports TensorFlow, so the redirection is in place before it loads.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass
class StepLog:
    """What the console saw of each component: status and seconds."""

    out: object = sys.stdout
    steps: dict[str, dict] = field(default_factory=dict)
    current: str | None = None

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


@contextlib.contextmanager
def logs_to_file(log_path: str, verbose: bool) -> Iterator[object]:
    """Sends everything written to stderr (Python and C++ logs) to log_path unless verbose;
    yields a stream that still reaches the person's terminal."""
    console = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    if verbose:
        yield console
        return
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    saved_out, saved_err = os.dup(1), os.dup(2)
    with open(log_path, "a") as log:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield console
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved_out, 1)
            os.dup2(saved_err, 2)
            os.close(saved_out)
            os.close(saved_err)
