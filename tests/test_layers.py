"""The layers: `components/` (what each step does) never imports `pipeline/` (what runs when and
where); the settings any step, command or report reads import nothing heavy; and the command
line's options are what they were before the settings moved below the steps."""

import ast
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("tensorflow", "tfx", "apache_beam", "tensorflow_model_analysis", "keras", "tf_keras")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_no_module_under_components_imports_pipeline():
    upward = {
        str(path.relative_to(REPO_ROOT)): sorted(
            n for n in imported_modules(path) if n == "pipeline" or n.startswith("pipeline.")
        )
        for path in sorted((REPO_ROOT / "components").glob("*.py"))
    }
    assert {path: names for path, names in upward.items() if names} == {}


def test_the_step_settings_load_without_tensorflow_tfx_or_beam():
    code = (
        f"import sys, components.settings\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_run_help_prints_the_options_defaults_and_help_it_printed_before():
    """tests/data/run_help.txt was saved before the step settings moved to components/."""
    env = {**os.environ, "COLUMNS": "100"}
    out = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert out.stdout == (REPO_ROOT / "tests" / "data" / "run_help.txt").read_text()


def test_no_module_of_the_pipeline_or_its_steps_is_over_500_lines():
    long = {
        str(path.relative_to(REPO_ROOT)): n
        for folder in ("pipeline", "components")
        for path in sorted((REPO_ROOT / folder).rglob("*.py"))
        if (n := len(path.read_text().splitlines())) > 500
    }
    assert long == {}
