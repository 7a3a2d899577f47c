"""What the data findings cost against phase 1 of training: the Trainer's feature cache (one pass
of the frozen base over train and eval) and its head epochs.

One pipeline run up to the Trainer (`--stop-after train`, default settings: ImageNet weights,
224 px) on the data; the Trainer's history.json holds each part's seconds: the label issues
(K-fold logistic-regression heads and cleanlab), the judged split's features (a pass of the
base over the test split, which training does not read), the near-copy search and the
thumbnails. What they found is printed too.

    .venv/bin/python -m benchmarks.findings_cost                       # the sample, 224 px
    .venv/bin/python -m benchmarks.findings_cost --images build/bench-fmnist-1000-200
    .venv/bin/python -m benchmarks.findings_cost --scale 10000 --images ''   # features only

`--scale N` also times the label-issue search alone on N synthetic feature rows (10 classes,
512 features, 3% of the labels flipped), without TensorFlow: how it grows to 10,000 images,
and how many of the flips it finds when the heads are good.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import tempfile
import time

from benchmarks import common


def synthetic_label_issues(rows: int, classes: int = 10) -> dict:
    """label_issues on `rows` synthetic feature rows with 3% flipped labels: seconds, peak
    memory, and the share of flips found (recall) and of suspects that are flips
    (precision)."""
    import resource

    import numpy as np

    from components.data_findings import FeatureTable, label_issues
    from components.settings import FindingsConfig

    rng = np.random.default_rng(0)
    centres = np.abs(rng.normal(size=(classes, 512))) * 2
    labels = rng.integers(0, classes, rows)
    features = np.abs(centres[labels] + rng.normal(size=(rows, 512)) * 1.5).astype(np.float32)
    flipped = rng.choice(rows, rows * 3 // 100, replace=False)
    given = labels.copy()
    given[flipped] = (labels[flipped] + 1) % classes
    table = FeatureTable("train", features, given, [str(i) for i in range(rows)])
    start = time.perf_counter()
    found = label_issues([table], [str(k) for k in range(classes)], FindingsConfig())
    seconds = time.perf_counter() - start
    suspects = {int(s["path"]) for s in found["suspects"]}
    hits = len(suspects & set(flipped.tolist()))
    return {
        f"synthetic {rows} rows: label issues s": seconds,
        f"synthetic {rows} rows: peak RSS MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        / 1024,
        f"synthetic {rows} rows: recall of the flips": hits / len(flipped),
        f"synthetic {rows} rows: precision": hits / max(1, len(suspects)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="data/sample", help="folder of class folders")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=0, help="0: the pipeline's default")
    parser.add_argument("--scale", type=int, default=0, help="N synthetic rows (0: none)")
    args = parser.parse_args(argv)
    scaled = synthetic_label_issues(args.scale) if args.scale else {}
    if not args.images:
        for key, value in scaled.items():
            print(f"{key}: {common.fmt(value)}")
        return
    settings = [f"transform.image_size={args.image_size}", "training.fine_tune=false"]
    if args.epochs:
        settings.append(f"training.epochs={args.epochs}")
    with tempfile.TemporaryDirectory(prefix="bench-findings-") as work:
        root = os.path.join(work, "root")
        command = common.pipeline_command(root, args.images, settings) + ["--stop-after", "train"]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=common.REPO, capture_output=True, text=True)
        run = {"seconds": time.perf_counter() - start}
        if done.returncode != 0:
            raise RuntimeError(f"pipeline run failed ({done.returncode}):\n{done.stdout}")
        (history_file,) = glob.glob(
            os.path.join(root, "artifacts/Trainer/model_run/*/history.json")
        )
        with open(history_file) as f:
            history = json.load(f)
    entries = history["history"]
    cache = sum(e["seconds"] for e in entries if e["phase"] == "feature_cache")
    epochs = sum(e["seconds"] for e in entries if e["phase"] == "phase1")
    phase1 = cache + epochs
    found = history["findings"]
    parts = found.get("seconds", {})
    issues, copies = found.get("label_issues", {}), found.get("near_duplicates", {})
    summary = {
        "pipeline wall s": run["seconds"],
        "phase 1 s (feature cache + head epochs)": phase1,
        "feature cache s": cache,
        "head epochs s": epochs,
        **{f"findings {part} s": value for part, value in parts.items()},
        "ratio label issues/phase 1": parts.get("label_issues", 0.0) / phase1,
        "ratio all findings/phase 1": sum(parts.values()) / phase1,
        "images examined for label issues": issues.get("examined"),
        "suspected label errors": issues.get("suspects"),
        "heads' out-of-fold accuracy": issues.get("out_of_fold_accuracy"),
        "near-copy pairs": copies.get("pairs_found"),
        "near-copy leaks into the judged split": copies.get("leaks"),
        **scaled,
    }
    for key, value in summary.items():
        print(f"{key}: {common.fmt(value)}")
    common.save(
        "findings_cost",
        {"images": args.images, "image_size": args.image_size, "settings": settings},
        {"pipeline": [run]},
        summary,
        notes="Issue 25: the findings read the feature cache phase 1 computes; they add no pass "
        "of the base over train or eval.",
    )


if __name__ == "__main__":
    main()
