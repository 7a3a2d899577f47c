"""The console and the log file: unique log names, library output kept off the console."""

import logging
import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT

from pipeline.console import logs_to_file, unique_log_path


def test_log_names_are_unique_even_within_the_same_second(tmp_path):
    paths = {unique_log_path(str(tmp_path), "run") for _ in range(50)}
    assert len(paths) == 50 and all(os.path.exists(p) for p in paths)


def test_verbose_still_writes_the_log_it_names(tmp_path):
    path = str(tmp_path / "logs" / "run.log")
    with logs_to_file(path, verbose=True) as console:
        logging.getLogger("some.library").warning("a library's warning")
    assert console.log_path == path
    assert "a library's warning" in Path(path).read_text()


_NOISY = (
    "import os, sys, warnings\n"
    "from pipeline.console import logs_to_file\n"
    "with logs_to_file(sys.argv[1], verbose=False) as console:\n"
    "    print('library print')\n"
    "    warnings.warn('a FutureWarning', FutureWarning)\n"
    "    os.write(2, b'C++ log line\\n')\n"
    "    print('the answer', file=console.out)\n"
    "    print('the error', file=console.err)\n"
)


def test_library_output_goes_to_the_log_and_the_command_output_to_the_console(tmp_path):
    log = tmp_path / "cmd.log"
    result = subprocess.run(
        [sys.executable, "-c", _NOISY, str(log)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": REPO_ROOT},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout == "the answer\n" and result.stderr == "the error\n"
    text = log.read_text()
    assert "library print" in text and "a FutureWarning" in text and "C++ log line" in text
