"""How fast a bad configuration is refused: `python -m pipeline run` with an invalid option,
against `python -c "import tensorflow"`, both as fresh processes, alternating.

The command line checks the whole configuration and the machine before it imports TensorFlow,
so a typo costs a fraction of a second instead of the imports and the first components.
"""

from __future__ import annotations

import argparse
import os
import subprocess

from benchmarks import common

BAD_SETTINGS = ["--set", "training.batch_size=0", "--set", "training.distribution=mirorred"]


def _seconds(command: list[str], expected_status: int) -> dict:
    env = dict(os.environ)
    result = subprocess.run(command, cwd=common.REPO, env=env, capture_output=True, text=True)
    if result.returncode != expected_status:
        raise SystemExit(f"{command} exited {result.returncode}: {result.stderr[-2000:]}")
    return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    reject = [common.PYTHON, "-m", "pipeline", "run", *BAD_SETTINGS]
    import_tf = [common.PYTHON, "-c", "import tensorflow"]
    runs = common.alternate(
        {
            "reject bad configuration": lambda: _seconds(reject, 2),
            "import tensorflow": lambda: _seconds(import_tf, 0),
        },
        args.repeats,
    )
    rejected = common.median_of(runs["reject bad configuration"], "seconds")
    imported = common.median_of(runs["import tensorflow"], "seconds")
    summary = {
        "reject bad configuration s": round(rejected, 3),
        "import tensorflow s": round(imported, 3),
        "ratio reject/import": round(rejected / imported, 4),
    }
    common.save(
        "config_rejection",
        setup={
            "command": " ".join(["python -m pipeline run", *BAD_SETTINGS]),
            "repeats": args.repeats,
        },
        runs=runs,
        summary=summary,
        notes="Wall seconds of each whole process, Python start-up included; exit status 2 for "
        "the bad configuration, 0 for the import.",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
