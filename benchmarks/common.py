"""Shared harness: machine description, alternating repeats, medians, JSON and RESULTS.md."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
RESULTS_MD = BENCH_DIR / "RESULTS.md"
PYTHON = sys.executable

# What each benchmark is judged against (reported, never asserted).
TARGETS = {
    "seed_vs_pipeline": "pipeline <= 0.5x the seed's time at 224 px, >= 1,000 images, 5 epochs, "
    "accuracy >= the seed's; with ImageNet weights, the pipeline's default settings as accurate "
    "as the seed in <= 0.30x its time",
    "transfer_accuracy": "ImageNet beats random weights beyond both 95% intervals; fine-tuning "
    "never worse than frozen beyond the paired interval",
    "trainer_throughput": "Trainer >= 0.9x the bare Keras loop",
    "transform_throughput": "Transform >= 0.5x the plain decode loop per core",
    "cache_rerun": "unchanged re-run <= 10% of the first run",
    "scale": "peak memory <= 4 GiB at 1,000 + 200 and at 10,000 images",
    "gpu_mfu": "MFU >= 45% (full fine-tuning, 224 px, mixed precision)",
    "gpu_mfu_torch": "reference for gpu_mfu: MFU >= 45% (the same network in PyTorch)",
    "config_rejection": "a bad configuration refused in <= 2 s and <= 0.1x importing TensorFlow",
    "tuning_cost": "20 trials at 224 px on 1,000 images <= 1.5x one frozen-base forward pass",
    "bulk_inference": "predict --images >= 0.8x a bare batched call of serving_default",
    "ingestion_hashing": "ImageExampleGen with content hashes <= 1.2x its seconds before them, "
    "on the 10,000-image benchmark",
    "history_speed": "runs, runs --json and show < 1 s with 50 runs in the store (2 cores); "
    "report < 5 s",
    "gate_cost": "Scorer + Evaluator + Judge + Pusher <= 0.25x the Trainer's time on the sample "
    "at 224 px with default settings",
    "tflite_variants": "every published variant agrees with the SavedModel on >= 99% of the "
    "judged images; conversion time and latency per variant reported",
    "warm_start": "retraining warm from the last blessed model reaches the cold run's best "
    "validation accuracy in less time",
    "findings_cost": "label issues < 0.2x the Trainer's phase 1 (feature cache + head epochs)",
    "near_duplicates": "near-copy search at 10,000 images without an n x n matrix (memory "
    "measured)",
}


# VGG16's convolution base, forward, at 224 px: 15.35 G multiply-adds = 30.7 GFLOPs. Training is
# about 3x forward (forward, then the gradients of inputs and of weights). The head's share is
# under 0.2 % and left out.
VGG16_FORWARD_MACS_224 = 15.35e9


def training_flops_per_image(size: int) -> float:
    """Training FLOPs of one VGG16 image at size x size (the convolutions scale with the area)."""
    return 3 * 2 * VGG16_FORWARD_MACS_224 * (size / 224) ** 2


def add_gpu_timing_arguments(parser: argparse.ArgumentParser) -> None:
    """What `gpu_mfu` and its PyTorch reference `gpu_mfu_torch` share, so both time the same
    work: image size, batch, warm-up and timed windows, the GPU's peak, and a CPU dry run."""
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--warmup-steps", type=int, default=20)
    parser.add_argument("--steps", type=int, default=30, help="steps per timed window")
    parser.add_argument("--windows", type=int, default=3, help="timed windows (median taken)")
    parser.add_argument(
        "--peak-tflops",
        type=float,
        default=989.0,
        help="dense fp16/bf16 peak of the GPU (default: H100 and H200 SXM, 989)",
    )
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes, runs on a CPU")


def shrink_for_dry_run(args: argparse.Namespace) -> None:
    """A dry run checks the script on a CPU: tiny images, batch and windows."""
    if args.dry_run:
        args.image_size, args.batch_size, args.warmup_steps, args.steps = 32, 4, 1, 2


def machine() -> dict:
    """CPU model, cores and GPU (if any) of this machine."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = "none"
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        if out.returncode == 0 and out.stdout.strip():
            gpu = out.stdout.strip().replace("\n", "; ")
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "gpu": gpu,
        "python": platform.python_version(),
        "host": platform.node(),
    }


def alternate(contenders: dict[str, Callable[[], dict]], repeats: int) -> dict[str, list[dict]]:
    """Runs every contender once per round, in turn, for `repeats` rounds. Each callable returns
    a dict of measurements; `seconds` is added when it does not give its own."""
    runs: dict[str, list[dict]] = {name: [] for name in contenders}
    for round_ in range(repeats):
        for name, fn in contenders.items():
            start = time.perf_counter()
            result = fn()
            result.setdefault("seconds", time.perf_counter() - start)
            runs[name].append(result)
            print(f"  round {round_ + 1}/{repeats} {name}: {short(result)}", flush=True)
    return runs


def short(result: dict) -> str:
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in result.items()
        if isinstance(v, (int, float, str))
    )


def median_of(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
    return statistics.median(values) if values else None


# Set by `run_all` (`make benchmarks`), so its small-scale runs are saved beside the target-scale
# results (results/<name>_small.json) instead of replacing them.
RESULT_SUFFIX_ENV = "BENCHMARK_RESULT_SUFFIX"


def base_name(name: str) -> str:
    """The benchmark a result file belongs to, the longest known name it starts with:
    `gpu_mfu_dry_run_small` -> `gpu_mfu`, `gpu_mfu_torch_b256` -> `gpu_mfu_torch`."""
    known = [key for key in TARGETS if name == key or name.startswith(key + "_")]
    return max(known, key=len, default=name)


def command_line() -> str:
    """How this result was made, as it can be typed again: the module that ran (not the result's
    name, which may carry a suffix) with its arguments, and the suffix variable when set."""
    module = Path(sys.argv[0]).stem
    suffix = os.environ.get(RESULT_SUFFIX_ENV)
    prefix = f"{RESULT_SUFFIX_ENV}={suffix} " if suffix else ""
    return prefix + " ".join([Path(PYTHON).name, "-m", f"benchmarks.{module}", *sys.argv[1:]])


def save(name: str, setup: dict, runs: dict, summary: dict, notes: str = "") -> Path:
    """Writes results/<name>.json and rebuilds RESULTS.md from every JSON there."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    name += os.environ.get(RESULT_SUFFIX_ENV, "")
    record = {
        "benchmark": name,
        "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command_line(),
        "machine": machine(),
        "setup": setup,
        "summary": summary,
        "target": TARGETS.get(base_name(name), ""),
        "notes": notes,
        "runs": runs,
    }
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    write_results_md()
    print(f"wrote {path.relative_to(REPO)} and {RESULTS_MD.relative_to(REPO)}")
    return path


# (summary key fragment, "max" or "min", threshold): how each figure compares with its target.
TARGET_CHECKS = {
    "findings_cost": [("ratio label issues/phase 1", "max", 0.2)],
    "seed_vs_pipeline": [
        ("ratio pipeline/seed", "max", 0.5),
        ("ratio re-run/first", "max", 0.10),
        ("ratio pipeline defaults/seed", "max", 0.30),
    ],
    "trainer_throughput": [("ratio", "min", 0.9)],
    "transform_throughput": [("ratio", "min", 0.5)],
    "cache_rerun": [("ratio re-run/first", "max", 0.10)],
    "scale": [("1000 train peak RSS GiB", "max", 4.0), ("10000 train peak RSS GiB", "max", 4.0)],
    "gpu_mfu": [("MFU", "min", 0.45)],
    "gpu_mfu_torch": [("MFU", "min", 0.45)],
    "tuning_cost": [("ratio tuning/forward", "max", 1.5)],
    "bulk_inference": [("ratio bulk/bare", "min", 0.8)],
    "ingestion_hashing": [("ratio now/before", "max", 1.2)],
    "config_rejection": [
        ("reject bad configuration s", "max", 2.0),
        ("ratio reject/import", "max", 0.1),
    ],
    "gate_cost": [("ratio Scorer+Evaluator+Judge+Pusher/Trainer", "max", 0.25)],
    "history_speed": [
        ("runs s", "max", 1.0),
        ("runs --json s", "max", 1.0),
        ("show s", "max", 1.0),
        ("report s", "max", 5.0),
    ],
}


def against_target(name: str, summary: dict) -> list[str]:
    """One line per figure that has a target: value, target, met or not (never asserted)."""
    if "_dry_run" in name:
        return []  # a dry run checks the script; its figures mean nothing
    lines = []
    for fragment, kind, threshold in TARGET_CHECKS.get(base_name(name), []):
        for key, value in summary.items():
            if fragment in key and isinstance(value, (int, float)):
                met = value <= threshold if kind == "max" else value >= threshold
                sign = "<=" if kind == "max" else ">="
                verdict = "met" if met else "NOT met"
                lines.append(f"  - {key} = {value:.3g} (target {sign} {threshold}): {verdict}")
    seed = summary.get("seed accuracy (median)")
    for label, key in (("pipeline", "pipeline"), ("pipeline defaults", "pipeline defaults")):
        pipeline = summary.get(f"{key} accuracy (median)")
        if base_name(name) == "seed_vs_pipeline" and seed is not None and pipeline is not None:
            verdict = "met" if pipeline >= seed else "NOT met"
            lines.append(f"  - accuracy: {label} {pipeline:.3g} vs seed {seed:.3g} (>=): {verdict}")
    if base_name(name) == "transfer_accuracy":
        for head in ("flatten", "gap"):
            tuned = summary.get(f"imagenet_{head}_finetuned 95% CI (seed 1)")
            random_ = summary.get(f"random_{head} 95% CI (seed 1)")
            if tuned and random_:
                low, high = float(tuned.split(" to ")[0]), float(random_.split(" to ")[1])
                verdict = "met" if low > high else "NOT met"
                lines.append(
                    f"  - {head}: ImageNet fine-tuned lower bound {low:.3f} vs random upper "
                    f"bound {high:.3f} (>): {verdict}"
                )
        for key, value in summary.items():
            if "fine-tuned minus frozen" in key:
                upper = float(value.split("to ")[1].rstrip(")"))
                verdict = "met" if upper >= 0 else "NOT met"
                lines.append(f"  - {key} = {value} (never wholly below 0): {verdict}")
    return lines


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


PENDING = """## Pending runs

- **GPU MFU of the project's Trainer** (one NVIDIA GPU with TensorFlow 2.16 and CUDA 12, under
  10 minutes): `.venv/bin/python -m benchmarks.gpu_mfu --peak-tflops 989`. Only a CPU dry run
  so far: the GPU machines lent to these sessions have PyTorch but no TensorFlow, and
  TensorFlow (1.7 GB installed) with CUDA 12 is too large to carry there (64 MiB a call).
  `gpu_mfu_torch` above measured the same network and training step in PyTorch on an H200.
"""


def pipeline_ingest_vs_plain() -> list[str]:
    """The real pipeline's ImageExampleGen + Transform rate, from the largest `scale` run, against
    the plain loop of `transform_throughput`, when both ran on the same files and image size."""
    try:
        scale = json.loads((RESULTS_DIR / "scale.json").read_text())
        transform = json.loads((RESULTS_DIR / "transform_throughput.json").read_text())
    except (OSError, ValueError):
        return []
    size = scale["setup"]["image_size"]
    limit = max(scale["setup"]["limits"])
    images = limit + max(1, round(limit * scale["setup"].get("eval_fraction", 0.2)))
    plain = transform["summary"].get(f"{size}px plain_loop images/s/core")
    steps = scale["runs"][str(limit)]["step_seconds"]
    seconds = steps.get("ImageExampleGen", 0) + steps.get("Transform", 0)
    if not plain or not seconds or transform["setup"].get("files") != images:
        return []
    cores = scale["machine"]["cores"]
    pipeline = images / seconds / cores
    verdict = "met" if pipeline / plain >= 0.5 else "NOT met"
    return [
        "## Real pipeline ingestion + Transform vs the plain loop",
        "",
        f"The `scale` run's ImageExampleGen + Transform steps at {limit:,} training images "
        f"({images:,} files, {size} px, {seconds:.1f} s on {cores} cores): {pipeline:.3g} "
        f"images/s/core. The plain decode + resize loop of `transform_throughput` on the same "
        f"files ({transform['setup']['data']}): {plain:.3g} images/s/core. Ratio "
        f"{pipeline / plain:.3g} (target >= 0.5: {verdict}). The steps also check every file "
        "(Pillow header, then TF decode), write TFRecords and run Beam; the plain loop writes "
        "nothing.",
        "",
        *trainer_input_line(transform, size),
    ]


def trainer_input_line(transform: dict, size: int) -> list[str]:
    """Transform writes only its graph, so the resize runs in the Trainer's input: its rate."""
    summary = transform["summary"]
    rate = summary.get(f"{size}px trainer_input images/s/core")
    ratio = summary.get(f"{size}px ratio trainer input/plain")
    if rate is None or ratio is None:
        return []
    return [
        "Transform writes only its graph; the Trainer decodes and resizes as it reads the "
        f"examples. That input pipeline ran at {rate:.3g} images/s/core on the same files "
        f"({ratio:.3g} of the plain loop). It runs beside the model: once in phase 1's "
        "feature-cache pass, and in every epoch of phase 2 (or of phase 1 when augmenting).",
        "",
    ]


def write_results_md() -> None:
    """One section per benchmark JSON: setup, machine, medians, ratio, target."""
    lines = [
        "# Benchmark results",
        "",
        "Written by `benchmarks/common.py` from `benchmarks/results/*.json`; do not edit by hand.",
        "Every figure is a median over alternating repeats in one invocation. Targets are",
        "reported, never asserted. Each result's setup names its base weights: accuracies of",
        "ImageNet-weight runs (transfer_accuracy, seed_vs_pipeline since 2026-12-04) are transfer",
        "learning's; those of runs with `weights=none (random)` only show that training ran.",
        "",
    ]
    for path in sorted(RESULTS_DIR.glob("*.json")):
        record = json.loads(path.read_text())
        m = record["machine"]
        lines += [
            f"## {record['benchmark']}",
            "",
            f"- Run: {record['when_utc']}, `{record['command']}`",
            f"- Machine: {m['cpu']}, {m['cores']} cores, GPU: {m['gpu']}",
            "- Setup: " + ", ".join(f"{k}={fmt(v)}" for k, v in record["setup"].items()),
            f"- Target: {record['target'] or TARGETS.get(base_name(record['benchmark']), '')}",
        ]
        checks = against_target(record["benchmark"], record["summary"])
        if checks:
            lines += ["- Against the target (at this run's scale):", *checks]
        if record.get("notes"):
            lines.append(f"- Notes: {record['notes']}")
        lines += ["", "| measure | value |", "|---|---|"]
        lines += [f"| {k} | {fmt(v)} |" for k, v in record["summary"].items()]
        lines.append("")
    lines += pipeline_ingest_vs_plain()
    lines.append(PENDING)
    RESULTS_MD.write_text("\n".join(lines))


# --- Running the pipeline in a subprocess ---------------------------------------------------------

STEP_LINE = re.compile(r"^\s+(\S+)\s+(done|cached)\s+([\d.]+) s$")
ACCURACY_LINE = re.compile(r"sparse_categorical_accuracy\s+([\d.]+)")


IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".bmp"}


def list_images(folder: str) -> list[str]:
    """Every image file under folder, sorted."""
    return sorted(str(p) for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)


def pipeline_command(root: str, images: str, settings: list[str]) -> list[str]:
    command = [PYTHON, "-m", "pipeline", "run", "--root", root, "--images", images]
    for setting in settings:
        command += ["--set", setting]
    return command


def run_pipeline(root: str, images: str, settings: list[str]) -> dict:
    """`python -m pipeline run` with a given --root; wall seconds, step seconds, accuracy."""
    command = pipeline_command(root, images, settings)
    env = dict(os.environ)
    start = time.perf_counter()
    out = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"pipeline run failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    steps = {}
    for line in out.stdout.splitlines():
        match = STEP_LINE.match(line)
        if match:
            steps[match.group(1)] = float(match.group(3))
            if match.group(2) == "cached":
                steps[match.group(1) + "_cached"] = 1
    accuracy = ACCURACY_LINE.search(out.stdout)
    return {
        "seconds": seconds,
        "accuracy": float(accuracy.group(1)) if accuracy else None,
        "steps": steps,
    }


def first_and_rerun(images: str, settings: list[str], work: str) -> tuple[dict, dict]:
    """A first run on a fresh --root under work, then the same command again, unchanged."""
    root = tempfile.mkdtemp(prefix="root-", dir=work)
    try:
        first = run_pipeline(root, images, settings)
        rerun = run_pipeline(root, images, settings)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return first, rerun


def cached_steps(result: dict) -> int:
    """How many steps of a run_pipeline result came from TFX's cache."""
    return sum(1 for key in result["steps"] if key.endswith("_cached"))


# Fashion-MNIST's images are 28 x 28 (the pipeline quarantines images under 32 px by default);
# its schema was written by `python -m pipeline infer-schema` on the first 150 of each split.
FASHION_MNIST_SETTINGS = [
    "ingestion.min_side=28",
    "data.schema=benchmarks/schemas/fashion_mnist.pbtxt",
]


def pipeline_settings(image_size: int, epochs: int, weights: str = "none") -> list[str]:
    """The seed-comparable configuration: flatten head, no fine-tuning, no early stopping."""
    return [
        f"training.weights={weights}",
        f"transform.image_size={image_size}",
        f"training.epochs={epochs}",
        "training.head=flatten",
        "training.head_units=1024",
        "training.fine_tune=false",
        "training.early_stopping_patience=0",
    ]
