"""TensorFlow Lite variants at the pipeline's defaults: each variant's conversion time, file
size, single-image CPU latency and agreement with the SavedModel, and what the LiteExporter
step adds to a run.

One pipeline run (default settings: ImageNet weights, 224 px, all four variants) on the data;
the published version's tflite/report.json holds each variant's check.

    .venv/bin/python -m benchmarks.tflite_variants                  # the sample, 224 px
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import tempfile

from benchmarks import common


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="data/sample", help="folder of class folders")
    parser.add_argument("--image-size", type=int, default=224)
    args = parser.parse_args(argv)
    settings = [f"transform.image_size={args.image_size}"]
    with tempfile.TemporaryDirectory(prefix="bench-tflite-") as work:
        root = os.path.join(work, "root")
        run = common.run_pipeline(root, args.images, settings)
        (report_file,) = glob.glob(os.path.join(root, "serving/*/tflite/report.json"))
        with open(report_file) as f:
            report = json.load(f)
    summary = {
        "pipeline wall s": run["seconds"],
        "LiteExporter s": run["steps"].get("LiteExporter"),
        "Trainer s": run["steps"].get("Trainer"),
        "ratio LiteExporter/Trainer": run["steps"].get("LiteExporter", 0) / run["steps"]["Trainer"],
        "checked images": report["checked_images"],
    }
    for name, v in report["variants"].items():
        summary.update(
            {
                f"{name}: convert s": v["convert_seconds"],
                f"{name}: MB": v["bytes"] / 1e6,
                f"{name}: latency ms (median of 10, one image)": v["latency_ms"],
                f"{name}: top-1 agreement": v["agreement"],
                f"{name}: largest probability difference": v["max_probability_difference"],
                f"{name}: published": int(v["published"]),
            }
        )
    for key, value in summary.items():
        print(f"{key}: {common.fmt(value)}")
    common.save(
        "tflite_variants",
        {"images": args.images, "image_size": args.image_size, "settings": settings},
        {"pipeline": [run]},
        summary,
        notes="Issue 26: each variant checked against the SavedModel on the judged split.",
    )


if __name__ == "__main__":
    main()
