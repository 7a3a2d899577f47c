"""Seed recipe (plain Keras script) vs the full pipeline: wall time and accuracy, alternating.

Both run as subprocesses on the same `train/` + `eval/` folders, image size, weights, head and
epochs; the pipeline with fine-tuning and early stopping off and a fresh --root each time, so
nothing is cached. The pipeline also runs statistics, validation, TFMA evaluation and export,
which the seed script does not. Accuracy: the seed's `model.evaluate` on eval/, the pipeline's
Evaluator on eval/ (no test/ split in these folders).

After each fresh pipeline run, the same command runs again on the same --root: the unchanged
re-run of the cache benchmark, measured here at the target scale for a few seconds more.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time

from benchmarks import common


def run_seed(images: str, size: int, epochs: int, weights: str) -> dict:
    command = [
        common.PYTHON,
        "-m",
        "benchmarks.seed_recipe",
        "--images",
        images,
        "--image-size",
        str(size),
        "--epochs",
        str(epochs),
        "--weights",
        weights,
    ]
    env = dict(os.environ)
    start = time.perf_counter()
    out = subprocess.run(command, cwd=common.REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"seed recipe failed:\n{out.stdout}\n{out.stderr}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {"seconds": seconds, "accuracy": result["accuracy"], "script_seconds": result["seconds"]}


def run_fresh_pipeline(images: str, settings: list[str], work: str) -> dict:
    """A first run on a fresh --root, then the unchanged re-run's seconds."""
    first, rerun = common.first_and_rerun(images, settings, work)
    cached = common.cached_steps(rerun)
    return {**first, "rerun_seconds": rerun["seconds"], "rerun_steps_cached": cached}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", required=True, help="folder with train/ and eval/ splits")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--weights",
        default="imagenet",
        choices=("imagenet", "none"),
        help="base weights of every contender (default: %(default)s)",
    )
    parser.add_argument(
        "--defaults",
        action="store_true",
        help="also run the pipeline with its default training settings (fine-tuning, early "
        "stopping, its head), beside the seed-comparable ones",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=list(common.FASHION_MNIST_SETTINGS),
        metavar="KEY=VALUE",
        help="extra pipeline option (default: %(default)s, for 28 px Fashion-MNIST)",
    )
    args = parser.parse_args(argv)
    settings = common.pipeline_settings(args.image_size, args.epochs, args.weights) + args.set
    defaults = [f"transform.image_size={args.image_size}", f"training.weights={args.weights}"]
    defaults += args.set
    with tempfile.TemporaryDirectory(prefix="bench-seed-") as work:
        contenders = {
            "seed_recipe": lambda: run_seed(
                args.images, args.image_size, args.epochs, args.weights
            ),
            "pipeline": lambda: run_fresh_pipeline(args.images, settings, work),
        }
        if args.defaults:
            contenders["pipeline_defaults"] = lambda: common.run_pipeline(
                tempfile.mkdtemp(prefix="root-", dir=work), args.images, defaults
            )
        runs = common.alternate(contenders, args.repeats)
    seed_s = common.median_of(runs["seed_recipe"], "seconds")
    pipe_s = common.median_of(runs["pipeline"], "seconds")
    rerun_s = common.median_of(runs["pipeline"], "rerun_seconds")
    summary = {
        "seed wall s": seed_s,
        "pipeline wall s": pipe_s,
        "ratio pipeline/seed": pipe_s / seed_s,
        "seed accuracy (median)": common.median_of(runs["seed_recipe"], "accuracy"),
        "pipeline accuracy (median)": common.median_of(runs["pipeline"], "accuracy"),
        "pipeline unchanged re-run s": rerun_s,
        "ratio re-run/first": rerun_s / pipe_s,
        "steps cached in re-run (last round)": runs["pipeline"][-1]["rerun_steps_cached"],
    }
    if args.defaults:
        defaults_s = common.median_of(runs["pipeline_defaults"], "seconds")
        summary["pipeline defaults wall s"] = defaults_s
        summary["ratio pipeline defaults/seed"] = defaults_s / seed_s
        summary["pipeline defaults accuracy (median)"] = common.median_of(
            runs["pipeline_defaults"], "accuracy"
        )
    steps = [r["steps"] for r in runs["pipeline"]]
    for step in (key for key in steps[-1] if not key.endswith("_cached")):
        summary[f"pipeline step {step} s (median)"] = common.median_of(steps, step)
    setup = {
        "data": args.images,
        "train_images": len(common.list_images(os.path.join(args.images, "train"))),
        "eval_images": len(common.list_images(os.path.join(args.images, "eval"))),
        "image_size": args.image_size,
        "epochs": args.epochs,
        "weights": args.weights,
        "head": "flatten, Dense(1024)",
        "pipeline settings": " ".join(settings),
    }
    notes = (
        "Wall seconds of each subprocess, start-up included. Every contender is seeded, so the "
        "repeats give the same accuracy. A difference of a few evaluation images is inside the "
        "sampling noise (on 200 images the 95% interval of an accuracy near 0.85 is about "
        "+-0.05)."
    )
    common.save("seed_vs_pipeline", setup, runs, summary, notes)


if __name__ == "__main__":
    main()
