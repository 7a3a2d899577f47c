"""One run per pipeline root: an OS lock (fcntl.flock) on <root>/.run.lock, held while a run
writes there, so two runs never interleave their metadata, artifacts, logs or reports.

The kernel releases the lock when the process ends, however it ends (even SIGKILL), so a killed
run never leaves the root locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from typing import TextIO

LOCK_FILE = ".run.lock"


class RootInUseError(RuntimeError):
    """Another run holds the root and the caller would not wait."""


def _holder(lock_file: TextIO) -> str:
    lock_file.seek(0)
    return lock_file.read().strip() or "another process"


@contextlib.contextmanager
def root_lock(root: str, wait: bool, out: TextIO) -> Iterator[None]:
    """Holds the root's lock for the block. When another run holds it: with wait, say so on
    `out` and wait for it; without, raise RootInUseError naming the holder."""
    path = os.path.join(root, LOCK_FILE)
    with open(path, "a+") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(lock_file)
            if not wait:
                raise RootInUseError(
                    f"runtime.root={root} is in use by a run ({holder}); wait for it to finish "
                    "(run without --no-wait), or set --root to another folder"
                ) from None
            print(f"Waiting for the run in progress on {root} ({holder}) to finish...", file=out)
            fcntl.flock(lock_file, fcntl.LOCK_EX)
        lock_file.seek(0)
        lock_file.truncate()
        lock_file.write(f"pid {os.getpid()}")
        lock_file.flush()
        try:
            yield
        finally:
            lock_file.seek(0)
            lock_file.truncate()
            fcntl.flock(lock_file, fcntl.LOCK_UN)
