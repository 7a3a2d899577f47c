"""Scale: wall seconds and peak memory per component at 1,000 and 10,000 images (Fashion-MNIST).

For each --limits N, writes the first N training images and the first N x --eval-fraction
evaluation images of Fashion-MNIST (`data.materialize_fashion_mnist --limit N --eval-limit M`),
then runs `python -m pipeline run` with a fresh --root. The pipeline prints one line per
component as it starts and ends; a sampler reads the resident memory of the pipeline process
and all its children every 0.2 s and charges each sample to the component running at that
moment, so the peak memory per component is the peak of the whole process tree while it ran
(memory held over from earlier components included).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

import psutil

from benchmarks import common

RUNNING = re.compile(r"^\s+(\S+)\s+running$")
FINISHED = re.compile(r"^\s+(\S+)\s+(done|cached|FAILED)\s+([\d.]+) s$")
GIB = 1024**3


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for p in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def run_with_memory(command: list[str]) -> dict:
    """Runs the pipeline; per component: seconds and peak RSS of the process tree."""
    env = dict(os.environ)
    start = time.perf_counter()
    proc = subprocess.Popen(
        command,
        cwd=common.REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    handle = psutil.Process(proc.pid)
    state = {"current": "startup", "peaks": {}, "overall": 0}

    def sample() -> None:
        while proc.poll() is None:
            rss = tree_rss(handle)
            name = state["current"]
            state["peaks"][name] = max(state["peaks"].get(name, 0), rss)
            state["overall"] = max(state["overall"], rss)
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    seconds: dict[str, float] = {}
    printed = []
    for line in proc.stdout:
        printed.append(line)
        if match := RUNNING.match(line):
            state["current"] = match.group(1)
        elif match := FINISHED.match(line):
            seconds[match.group(1)] = float(match.group(3))
            state["current"] = "between steps"
    proc.wait()
    sampler.join()
    if proc.returncode != 0:
        tail = "".join(printed[-30:])
        raise RuntimeError(f"pipeline run failed with status {proc.returncode}:\n{tail}")
    return {
        "seconds": time.perf_counter() - start,
        "step_seconds": seconds,
        "step_peak_rss_gib": {k: v / GIB for k, v in state["peaks"].items()},
        "peak_rss_gib": state["overall"] / GIB,
    }


def step_lines(limit: int, result: dict) -> dict[str, str]:
    """`seconds, peak` per component; steps shorter than one 0.2 s sample have no peak."""
    lines = {}
    for step, secs in result["step_seconds"].items():
        peak = result["step_peak_rss_gib"].get(step)
        memory = f"peak {peak:.2f} GiB" if peak else "too short to sample"
        lines[f"{limit} train {step}"] = f"{secs:.1f} s, {memory}"
    return lines


def growth_lines(small: int, large: int, runs: dict) -> dict[str, str]:
    """How wall seconds and peak memory grew from the smallest to the largest size, per step,
    against the growth of the data (x10 data, x10 seconds is linear)."""
    a, b = runs[str(small)], runs[str(large)]
    lines = {
        f"growth {small} -> {large}: data": f"x{large / small:.3g}",
        f"growth {small} -> {large}: wall s": f"x{b['seconds'] / a['seconds']:.3g}",
        f"growth {small} -> {large}: peak RSS": f"x{b['peak_rss_gib'] / a['peak_rss_gib']:.3g}",
    }
    for step, secs in b["step_seconds"].items():
        before = a["step_seconds"].get(step)
        if not before or secs < 1:
            continue
        text = f"seconds x{secs / before:.3g}"
        peak_a, peak_b = a["step_peak_rss_gib"].get(step), b["step_peak_rss_gib"].get(step)
        if peak_a and peak_b:
            text += f", peak RSS x{peak_b / peak_a:.3g}"
        lines[f"growth {small} -> {large}: {step}"] = text
    return lines


def materialize(limit: int, eval_limit: int, out: str) -> None:
    command = [common.PYTHON, "-m", "data.materialize_fashion_mnist", "--out", out]
    command += ["--limit", str(limit), "--eval-limit", str(eval_limit), "--overwrite"]
    subprocess.run(command, cwd=common.REPO, check=True, stdout=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limits", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument(
        "--eval-fraction",
        type=float,
        default=0.2,
        help="evaluation images per training image (default: %(default)s)",
    )
    parser.add_argument("--data-dir", default="build", help="where the image folders go")
    parser.add_argument("--weights", default="imagenet", choices=("imagenet", "none"))
    args = parser.parse_args(argv)
    settings = common.pipeline_settings(args.image_size, args.epochs, args.weights)
    settings += common.FASHION_MNIST_SETTINGS
    runs, summary = {}, {}
    for limit in args.limits:
        eval_limit = max(1, round(limit * args.eval_fraction))
        images = os.path.join(args.data_dir, f"bench-fmnist-{limit}-{eval_limit}")
        materialize(limit, eval_limit, images)
        root = tempfile.mkdtemp(prefix="bench-scale-")
        command = common.pipeline_command(root, images, settings)
        try:
            result = run_with_memory(command)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        runs[str(limit)] = result
        summary[f"{limit} train wall s"] = result["seconds"]
        summary[f"{limit} train peak RSS GiB"] = result["peak_rss_gib"]
        summary.update(step_lines(limit, result))
        print(f"  {limit} train: {result['seconds']:.1f} s, {result['peak_rss_gib']:.2f} GiB")
    if len(args.limits) > 1:
        summary.update(growth_lines(min(args.limits), max(args.limits), runs))
    setup = {
        "data": f"Fashion-MNIST, first N of train and N x {args.eval_fraction} of eval",
        "limits": args.limits,
        "eval_fraction": args.eval_fraction,
        "image_size": args.image_size,
        "epochs": args.epochs,
        "weights": args.weights,
        "repeats": 1,
    }
    notes = "One run per size (minutes to hours each): no repeats, no medians."
    common.save("scale", setup, runs, summary, notes)


if __name__ == "__main__":
    main()
