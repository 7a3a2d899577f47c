"""ImageExampleGen with content hashes and duplicate checks vs the ImageExampleGen before them.

Both contenders run the real component alone (TFX LocalDagRunner, Beam in-process) on the same
folder, each in a fresh Python process, alternating; the seconds are those of the pipeline run
only (imports excluded). The "before" contender is the project's code at --baseline-ref (by
default the commit before the hashes were added), unpacked with `git archive` into a scratch
folder, so nothing in this checkout changes. "now" passes validation.duplicates=warn, so a data
set with copies (Fashion-MNIST has some) is measured rather than stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path

from benchmarks import common

BASELINE_REF = "d19e632"  # the last commit before ingestion hashed images

# Runs in the contender's source tree (cwd), so `components` is that tree's.
CHILD = """
import json, os, sys, time
from tfx.orchestration import metadata, pipeline as tfx_pipeline
from tfx.orchestration.local.local_dag_runner import LocalDagRunner
import inspect
from components.image_example_gen import ImageExampleGen
images, work, min_side, extra = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
kwargs = {"input_base": images, "split_buckets": {"train": 8, "eval": 1, "test": 1}}
if "ingestion" in inspect.signature(ImageExampleGen.__init__).parameters:
    from components.settings import IngestionConfig
    kwargs.update(ingestion=IngestionConfig(min_side=min_side, max_bad_fraction=0.05),
                  duplicates="fail", background="white")
else:  # a tree from before ImageExampleGen took the ingestion section whole
    kwargs.update(min_side=min_side, max_bad_fraction=0.05)
kwargs.update(extra)
component = ImageExampleGen(**kwargs)
pipeline = tfx_pipeline.Pipeline(
    pipeline_name="bench-ingestion", pipeline_root=os.path.join(work, "root"),
    components=[component], enable_cache=False,
    metadata_connection_config=metadata.sqlite_metadata_connection_config(
        os.path.join(work, "metadata.sqlite")),
    beam_pipeline_args=["--direct_running_mode=in_memory", "--direct_num_workers=1"],
)
start = time.perf_counter()
LocalDagRunner().run(pipeline)
print("SECONDS", time.perf_counter() - start)
"""


def unpack(ref: str, into: Path) -> Path:
    """The project's `components` and `pipeline` at a git ref, as plain files."""
    archive = subprocess.run(
        ["git", "archive", ref, "components", "pipeline"],
        cwd=common.REPO,
        capture_output=True,
        check=True,
    ).stdout
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def ingest(tree: Path, images: str, min_side: int, extra: dict) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as work:
        out = subprocess.run(
            [common.PYTHON, "-c", CHILD, images, work, str(min_side), json.dumps(extra)],
            cwd=tree,
            env=dict(os.environ),
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            raise RuntimeError(
                f"ingestion failed in {tree}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
            )
        seconds = float(out.stdout.split("SECONDS")[-1].split()[0])
        result = {"seconds": seconds}
        reports = list(Path(work, "root").glob("ImageExampleGen/report/*/ingestion_report.json"))
        if reports:
            report = json.loads(reports[0].read_text())
            result["examples"] = report["examples"]
            duplicates = report.get("duplicates")
            if duplicates:
                result["duplicate groups across splits"] = len(duplicates["across_splits"])
                result["duplicate groups across classes"] = len(duplicates["across_classes"])
                result["extra copies within a split"] = duplicates["within_split_extra_copies"]
        return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="build/bench-fmnist-10000-2000")
    parser.add_argument("--baseline-ref", default=BASELINE_REF)
    parser.add_argument("--min-side", type=int, default=28, help="Fashion-MNIST is 28 px")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    images = os.path.abspath(args.images)
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as scratch:
        before = unpack(args.baseline_ref, Path(scratch) / "tree")
        runs = common.alternate(
            {
                "before": lambda: ingest(before, images, args.min_side, {}),
                "now": lambda: ingest(common.REPO, images, args.min_side, {"duplicates": "warn"}),
            },
            args.repeats,
        )
    before_s = common.median_of(runs["before"], "seconds")
    now_s = common.median_of(runs["now"], "seconds")
    last = runs["now"][-1]
    summary = {
        "images": len(common.list_images(images)),
        "before s (median)": before_s,
        "now s (median)": now_s,
        "ratio now/before": now_s / before_s,
        **{k: v for k, v in last.items() if k != "seconds"},
    }
    common.save(
        "ingestion_hashing",
        {
            "images": args.images,
            "baseline_ref": args.baseline_ref,
            "min_side": args.min_side,
            "repeats": args.repeats,
            "splits": "the folder's train/ and eval/",
        },
        runs,
        summary,
        notes="Seconds of LocalDagRunner.run with ImageExampleGen alone (imports excluded). "
        "'now' hashes each file's bytes and decoded pixels (sha256), composites PNG alpha in "
        "its decode check, finds duplicates and writes image_hashes.tsv.",
    )


if __name__ == "__main__":
    main()
