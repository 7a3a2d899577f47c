"""Unchanged re-run vs first run: two `python -m pipeline run` with the same fresh --root.

Each round makes a new --root, runs the pipeline (every step executes), then runs it again
unchanged (every step should come from TFX's cache). Wall seconds are the whole subprocess,
Python and TFX start-up included. The first runs' step seconds also give the ingestion and
Transform throughput of the real pipeline (ImageExampleGen + Transform, Beam in-process).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

from benchmarks import common


def step_total(runs: list[dict]) -> float:
    """Median over rounds of the summed step seconds (the pipeline's work, no start-up)."""
    return statistics.median(
        sum(v for k, v in r["steps"].items() if not k.endswith("_cached")) for r in runs
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="data/sample", help="folder of class folders")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    settings = common.pipeline_settings(args.image_size, args.epochs)
    runs: dict[str, list[dict]] = {"first_run": [], "unchanged_rerun": []}
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as work:
        for round_ in range(args.repeats):
            first, rerun = common.first_and_rerun(args.images, settings, work)
            runs["first_run"].append(first)
            runs["unchanged_rerun"].append(rerun)
            cached = common.cached_steps(rerun)
            print(
                f"  round {round_ + 1}/{args.repeats}: first {first['seconds']:.1f} s, "
                f"rerun {rerun['seconds']:.1f} s ({cached} steps cached)",
                flush=True,
            )
    first_s = common.median_of(runs["first_run"], "seconds")
    rerun_s = common.median_of(runs["unchanged_rerun"], "seconds")
    images = len(common.list_images(args.images))
    cores = os.cpu_count() or 1
    ingest = statistics.median(
        r["steps"].get("ImageExampleGen", 0) + r["steps"].get("Transform", 0)
        for r in runs["first_run"]
    )
    summary = {
        "first run s": first_s,
        "unchanged re-run s": rerun_s,
        "ratio re-run/first": rerun_s / first_s,
        "steps cached in re-run (last round)": sum(
            1 for k in runs["unchanged_rerun"][-1]["steps"] if k.endswith("_cached")
        ),
        "steps in re-run (last round)": sum(
            1 for k in runs["unchanged_rerun"][-1]["steps"] if not k.endswith("_cached")
        ),
        "first run: sum of step s": step_total(runs["first_run"]),
        "re-run: sum of step s": step_total(runs["unchanged_rerun"]),
        "first run ImageExampleGen+Transform s": ingest,
        "pipeline ingest+transform images/s/core": images / ingest / cores if ingest else None,
    }
    for step in runs["first_run"][0]["steps"]:
        if not step.endswith("_cached"):
            summary[f"first run step {step} s"] = common.median_of(
                [r["steps"] for r in runs["first_run"]], step
            )
    setup = {
        "data": args.images,
        "images": images,
        "image_size": args.image_size,
        "epochs": args.epochs,
        "weights": "none (random)",
        "settings": " ".join(settings),
    }
    notes = (
        "Wall seconds of the whole `python -m pipeline run` subprocess. The ingest+transform "
        "rate counts every image of the data folder (all splits) over the ImageExampleGen and "
        "Transform step seconds, divided by all the machine's cores."
    )
    common.save("cache_rerun", setup, runs, summary, notes)


if __name__ == "__main__":
    main()
