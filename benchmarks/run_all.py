"""Runs the CPU benchmarks one after another at the small scale this project's machines allow.

Never two at once: they would share the cores and slow each other. Target-scale runs (seed vs
pipeline at 224 px, scale at 10,000 images, GPU MFU) are separate commands: see README.md.
These small runs are saved as results/<name>_small.json, beside the target-scale results.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from benchmarks import common

SMALL_DATA = "build/bench-fmnist-150"


def small_runs() -> dict[str, list[str]]:
    return {
        "trainer_throughput": ["--sizes", "64", "96", "--images", "256", "--epochs", "2"],
        "cache_rerun": ["--images", "data/sample", "--image-size", "64", "--epochs", "2"],
        "transform_throughput": ["--images", "data/sample", "--sizes", "224", "64"],
        "seed_vs_pipeline": ["--images", SMALL_DATA, "--image-size", "64", "--epochs", "2"],
        "gpu_mfu": ["--dry-run"],
        "config_rejection": ["--repeats", "5"],
    }


def run(module: str, args: list[str]) -> None:
    command = [common.PYTHON, "-m", f"benchmarks.{module}", *args]
    print("$", " ".join(command), flush=True)
    env = {**os.environ, common.RESULT_SUFFIX_ENV: "_small"}
    subprocess.run(command, cwd=common.REPO, env=env, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(small_runs()), help="run only these")
    args = parser.parse_args(argv)
    chosen = args.only or list(small_runs())
    if "seed_vs_pipeline" in chosen:
        materialize = [common.PYTHON, "-m", "data.materialize_fashion_mnist", "--out", SMALL_DATA]
        subprocess.run([*materialize, "--limit", "150", "--overwrite"], cwd=common.REPO, check=True)
    for name in chosen:
        run(name, small_runs()[name])
    return 0


if __name__ == "__main__":
    sys.exit(main())
