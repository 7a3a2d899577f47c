"""What judging a model costs against training it: the Scorer, TFMA's Evaluator, the Judge and
the push's smoke test, each as a share of the Trainer's time.

One pipeline run on the data (default settings: ImageNet weights, 224 px, fine-tuning) gives the
step seconds and a trained model with its Scorer predictions. Then, alternating for --repeats
rounds in this process: TFMA's model-agnostic evaluation of those predictions with and without
its jackknife intervals (evaluation.tfma_confidence_intervals), and the smoke test (a fresh
Python process that loads the model and calls both signatures), timed from outside.

    .venv/bin/python -m benchmarks.gate_cost                     # the sample, 224 px, defaults
    .venv/bin/python -m benchmarks.gate_cost --image-size 64 --weights none --epochs 2
"""

from __future__ import annotations

import argparse
import glob
import os
import tempfile

from benchmarks import common

JUDGING_STEPS = ("Scorer", "Evaluator", "Judge", "Pusher")


def evaluate(predictions_split: str, class_count: int, intervals: bool, out: str) -> dict:
    """TFMA on the Scorer's predictions, as the pipeline's Evaluator runs it."""
    import tensorflow_model_analysis as tfma

    from components.evaluation import make_eval_config

    config = make_eval_config(class_count, confidence_intervals=intervals)
    config.model_specs.pop()  # the first run has no baseline: the Evaluator drops its spec
    tfma.run_model_analysis(
        eval_config=config,
        data_location=os.path.join(predictions_split, "*"),
        output_path=tempfile.mkdtemp(dir=out),
        file_format="tfrecords",
    )
    return {}


def settings_for(args: argparse.Namespace) -> list[str]:
    settings = [f"transform.image_size={args.image_size}", f"training.weights={args.weights}"]
    if args.epochs:
        settings.append(f"training.epochs={args.epochs}")
    if args.weights == "none":  # random weights: bless whatever trains, to reach the push
        settings += ["evaluation.min_accuracy=0", "evaluation.beat_majority_class=false"]
    return settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="data/sample", help="folder of class folders")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--weights", default="imagenet", choices=("imagenet", "none"))
    parser.add_argument("--epochs", type=int, default=0, help="0: the pipeline's default")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    from components.contract import SAMPLE_FILE
    from components.export import read_model_metadata
    from components.smoke_test import run_smoke_test

    settings = settings_for(args)
    with tempfile.TemporaryDirectory(prefix="bench-gate-") as work:
        root = os.path.join(work, "root")
        run = common.run_pipeline(root, args.images, settings)
        artifacts = os.path.join(root, "artifacts")
        (model_dir,) = glob.glob(os.path.join(artifacts, "Trainer/model/*/Format-Serving"))
        (sample,) = glob.glob(os.path.join(artifacts, "Judge/model_blessing/*", SAMPLE_FILE))
        (split,) = glob.glob(os.path.join(artifacts, "Scorer/predictions/*/Split-*"))
        classes = len(read_model_metadata(model_dir)["class_names"])
        runs = common.alternate(
            {
                "tfma_without_intervals": lambda: evaluate(split, classes, False, work),
                "tfma_with_intervals": lambda: evaluate(split, classes, True, work),
                "smoke_test": lambda: {"problems": len(run_smoke_test(model_dir, sample)[0])},
            },
            args.repeats,
        )
    steps = run["steps"]
    judging = sum(steps.get(step, 0.0) for step in JUDGING_STEPS)
    without = common.median_of(runs["tfma_without_intervals"], "seconds")
    with_ = common.median_of(runs["tfma_with_intervals"], "seconds")
    summary = {
        "pipeline wall s": run["seconds"],
        "accuracy": run["accuracy"],
        "pipeline Trainer s": steps.get("Trainer"),
        **{f"pipeline {step} s": steps.get(step) for step in JUDGING_STEPS},
        "ratio Scorer+Evaluator+Judge+Pusher/Trainer": judging / steps["Trainer"],
        "TFMA evaluation s without its intervals (median)": without,
        "TFMA evaluation s with its jackknife intervals (median)": with_,
        "jackknife adds s": with_ - without,
        "smoke test s (median)": common.median_of(runs["smoke_test"], "seconds"),
    }
    for key, value in summary.items():
        print(f"{key}: {common.fmt(value)}")
    common.save(
        "gate_cost",
        {
            "images": args.images,
            "image_size": args.image_size,
            "weights": args.weights,
            "epochs": args.epochs or "default",
            "settings": settings,
        },
        runs,
        summary,
        notes="Issue 23: each model predicts each judged example once (the Scorer); TFMA reads "
        "the predictions without its jackknife; the Judge computes the intervals.",
    )


if __name__ == "__main__":
    main()
