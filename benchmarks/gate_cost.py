"""What the gate adds to a run: TFMA's confidence intervals, the Judge, the push's smoke test.

One pipeline run on the data (TFMA's intervals on) gives a trained model, its judged split, the
Judge's and the Pusher's step seconds and the smoke test's own seconds (recorded on the pushed
model). Then, alternating for --repeats rounds, in this process: TFMA's evaluation of that model
on that split with and without intervals, and the smoke test (a fresh Python process that loads
the model and calls both signatures), timed from outside.
"""

from __future__ import annotations

import argparse
import glob
import os
import tempfile

from benchmarks import common  # noqa: E402


def evaluate(model_dir: str, split_pattern: str, intervals: bool, out: str) -> dict:
    import tensorflow_model_analysis as tfma

    from components.evaluation import make_eval_config

    config = make_eval_config(len(_classes(model_dir)), confidence_intervals=intervals)
    shared = tfma.default_eval_shared_model(eval_saved_model_path=model_dir, eval_config=config)
    tfma.run_model_analysis(
        eval_shared_model=shared,
        eval_config=config,
        data_location=split_pattern,
        output_path=tempfile.mkdtemp(dir=out),
        file_format="tfrecords",
    )
    return {}


def _classes(model_dir: str) -> list[str]:
    from components.export import read_model_metadata

    return read_model_metadata(model_dir)["class_names"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="data/sample", help="folder of class folders")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from components.smoke_test import SAMPLE_FILE, run_smoke_test

    settings = [
        *common.pipeline_settings(args.image_size, args.epochs),
        "evaluation.tfma_confidence_intervals=true",
        "evaluation.min_accuracy=0",  # random weights: bless whatever trains, to reach the push
        "evaluation.judge_on=point",
    ]
    with tempfile.TemporaryDirectory(prefix="bench-gate-") as work:
        root = os.path.join(work, "root")
        run = common.run_pipeline(root, args.images, settings)
        artifacts = os.path.join(root, "artifacts")
        (model_dir,) = glob.glob(os.path.join(artifacts, "Trainer/model/*/Format-Serving"))
        (sample,) = glob.glob(os.path.join(artifacts, "Judge/model_blessing/*", SAMPLE_FILE))
        (split,) = glob.glob(os.path.join(artifacts, "ImageExampleGen/examples/*/Split-test"))
        split_pattern = os.path.join(split, "*")
        runs = common.alternate(
            {
                "tfma_without_intervals": lambda: evaluate(model_dir, split_pattern, False, work),
                "tfma_with_intervals": lambda: evaluate(model_dir, split_pattern, True, work),
                "smoke_test": lambda: {"problems": len(run_smoke_test(model_dir, sample)[0])},
            },
            args.repeats,
        )
    without = common.median_of(runs["tfma_without_intervals"], "seconds")
    with_ = common.median_of(runs["tfma_with_intervals"], "seconds")
    summary = {
        "pipeline Evaluator s (intervals on)": run["steps"].get("Evaluator"),
        "pipeline Judge s": run["steps"].get("Judge"),
        "pipeline Pusher s (smoke test and publish)": run["steps"].get("Pusher"),
        "TFMA evaluation s without intervals (median)": without,
        "TFMA evaluation s with intervals (median)": with_,
        "intervals add s": with_ - without,
        "smoke test s (median)": common.median_of(runs["smoke_test"], "seconds"),
    }
    for key, value in summary.items():
        print(f"{key}: {common.fmt(value)}")
    common.save(
        "gate_cost",
        {
            "images": args.images,
            "image_size": args.image_size,
            "epochs": args.epochs,
            "settings": settings,
        },
        runs,
        summary,
        notes="Target of issue 13: the smoke test adds under 10 s to a run on the sample data "
        "on 2 cores.",
    )


if __name__ == "__main__":
    main()
