"""Near-duplicate images: calibrating findings.near_duplicate_similarity, and its cost at scale.

(1) Calibration. Every image of --images (the originals) and five near-copies of each, the kind
users have (the same picture saved again): `resized_75` (75% of its sides, bilinear),
`jpeg_q50` (re-encoded as JPEG quality 50), `crop_90` (central crop keeping 90% of each side),
`brightened` (+25 on every channel, clipped) and `combined` (central crop 95%, resized to 80%,
JPEG quality 60). Lossless copies are stored as PNG, so each kind changes only what it names.
Each file goes through the pipeline's own code: the Transform's decode and resize
(`components.preprocessing`, transform.resize and transform.background at their defaults), the
frozen ImageNet VGG16 base (`components.model.build_transfer_model`) and the findings' pooling
(`components.base_features.base_feature_table`: averaged over positions). Similarities are those
`components.data_findings.similar_pairs` returns (threshold -1: every pair). Positives:
(original, its copy); negatives: every pair of distinct originals of one class. Per threshold:
the false-negative rate per kind (copies below it) and the false-positive rate (distinct
same-class pairs at or above it). The recommendation is the threshold with the lowest FPR among
those that keep every mild kind's FNR (all but `combined`) at or under --max-fnr. The most
similar "distinct" pairs are listed with their paths: some are copies of one drawing, to judge
by eye.

(2) Scale. Random non-negative features [n, 512] with planted near-copies (1% noise), for each n
of --scale: similar_pairs at --scale-threshold (default: the pipeline's) with block_rows=1024,
each n in a fresh process without TensorFlow, started before this one loads it: the median
seconds of --repeats calls, tracemalloc's peak during one call, the process's peak RSS
(getrusage, and /proc's VmHWM reset first) before and after its first call, whether every
planted pair was found, against the n x n float32 matrix a one-shot product would need.

    .venv/bin/python -m benchmarks.near_duplicates              # 224 and 64 px, n = 1,000 and
                                                                # 10,000: about 7 min, 2 cores
    .venv/bin/python -m benchmarks.near_duplicates --image-size 64 --scale 1000   # quick check

Writes results/near_duplicates.json (with BENCHMARK_RESULT_SUFFIX, results/near_duplicates<suffix>
.json) and rebuilds RESULTS.md, unless --no-results-md.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import resource
import statistics
import subprocess
import time
import tracemalloc
from pathlib import Path

import numpy as np

from benchmarks import common
from components.data_findings import BLOCK_ROWS, similar_pairs
from components.settings import FindingsConfig

NAME = "near_duplicates"
THRESHOLDS = (0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.95, 0.96)
MILD_KINDS = ("resized_75", "jpeg_q50", "crop_90", "brightened")
KINDS = (*MILD_KINDS, "combined")
TOP_PAIRS = 10
MB = 1e6  # decimal megabytes: 10,000 x 10,000 float32 = 400 MB


# --- (1) Calibration ----------------------------------------------------------------------------


def _png(image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _jpeg(image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def _scaled(image, factor: float):
    from PIL import Image

    width, height = image.size
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return image.resize(size, Image.BILINEAR)


def _central_crop(image, keep: float):
    width, height = image.size
    cut_width, cut_height = max(1, round(width * keep)), max(1, round(height * keep))
    left, top = (width - cut_width) // 2, (height - cut_height) // 2
    return image.crop((left, top, left + cut_width, top + cut_height))


def near_copies(data: bytes) -> dict[str, bytes]:
    """The encoded near-copies of one encoded image, by kind (KINDS)."""
    from PIL import Image

    image = Image.open(io.BytesIO(data)).convert("RGB")
    brighter = np.clip(np.asarray(image, np.int16) + 25, 0, 255).astype(np.uint8)
    return {
        "resized_75": _png(_scaled(image, 0.75)),
        "jpeg_q50": _jpeg(image, 50),
        "crop_90": _png(_central_crop(image, 0.90)),
        "brightened": _png(Image.fromarray(brighter)),
        "combined": _jpeg(_scaled(_central_crop(image, 0.95), 0.80), 60),
    }


def base_features(blobs: list[bytes], labels: list[int], size: int, batch_size: int) -> dict:
    """The pooled frozen-base features of encoded images, as the pipeline computes them for its
    findings: the Transform's decode + resize, the ImageNet VGG16 base, averaged over positions."""
    import tensorflow as tf

    from components import base_weights
    from components import model as model_lib
    from components.base_features import base_feature_table
    from components.options import background_rgb
    from components.preprocessing import decode_image, resize_image
    from components.settings import TransformConfig

    transform = TransformConfig()
    background = background_rgb(transform.background)
    weights = base_weights.resolve_base_weights("imagenet", False, say=print)
    start = time.perf_counter()
    transfer = model_lib.build_transfer_model(size, 5, weights)
    build_seconds = time.perf_counter() - start
    images = tf.data.Dataset.from_tensor_slices(
        (
            tf.constant(blobs, tf.string),
            tf.constant(labels, tf.int64),
            tf.constant([str(i) for i in range(len(blobs))]),
        )
    ).map(
        lambda data, label, path: (
            resize_image(decode_image(data, background), size, transform.resize, background),
            label,
            path,
        )
    )
    start = time.perf_counter()
    table = base_feature_table(transfer.feature_extractor, images, batch_size, "calibration")
    seconds = time.perf_counter() - start
    if [int(p) for p in table.paths] != list(range(len(blobs))):
        raise RuntimeError("the features came back in another order than the images")
    return {
        "features": table.features,
        "weights": weights.description,
        "build_seconds": build_seconds,
        "seconds": seconds,
        "images_per_second": len(blobs) / seconds,
    }


def all_similarities(features: np.ndarray, rows: np.ndarray) -> dict[tuple[int, int], float]:
    """Every pair's similarity among `rows` (global indices, i < j), from similar_pairs."""
    return {
        (int(rows[i]), int(rows[j])) if rows[i] < rows[j] else (int(rows[j]), int(rows[i])): s
        for i, j, s in similar_pairs(features[rows], -1.0)
    }


def calibrate(
    originals: list[str],
    classes: list[str],
    folder: str,
    size: int,
    thresholds: list[float],
    max_fnr: float,
    batch_size: int,
) -> dict:
    """The calibration at one image size: tables, extremes, the most similar distinct pairs and
    the recommended threshold."""
    n = len(originals)
    class_of = np.array(classes)
    names = sorted(set(classes))
    labels = [names.index(c) for c in classes]
    start = time.perf_counter()
    blobs = [Path(p).read_bytes() for p in originals]
    copies = [near_copies(b) for b in blobs]
    copy_seconds = time.perf_counter() - start
    # Rows: the n originals, then n copies of each kind in KINDS order.
    all_blobs = blobs + [c[kind] for kind in KINDS for c in copies]
    print(f"{size} px: features of {len(all_blobs)} images ({n} originals + {len(KINDS)} copies)")
    extracted = base_features(all_blobs, labels * (1 + len(KINDS)), size, batch_size)
    features = extracted["features"]
    print(
        f"{size} px: {extracted['seconds']:.1f} s, {extracted['images_per_second']:.1f} images/s "
        f"(model built in {extracted['build_seconds']:.1f} s)"
    )

    positives = {kind: np.zeros(n) for kind in KINDS}
    negatives: list[tuple[float, int, int]] = []  # (similarity, i, j): distinct, same class
    start = time.perf_counter()
    for name in names:
        members = np.flatnonzero(class_of == name)
        rows = np.concatenate([members + n * k for k in range(1 + len(KINDS))])
        similarity = all_similarities(features, rows)
        for i in members:
            for k, kind in enumerate(KINDS, start=1):
                positives[kind][i] = similarity[(int(i), int(i + n * k))]
        negatives += [(similarity[(i, j)], i, j) for i, j in _pairs(members)]
    originals_only = all_similarities(features, np.arange(n))  # every pair of originals
    across = list(originals_only.values())
    cross_class = [(s, i, j) for (i, j), s in originals_only.items() if classes[i] != classes[j]]
    similarity_seconds = time.perf_counter() - start
    negative_values = np.array([s for s, _, _ in negatives])
    across_values = np.array(across)

    table = []
    for threshold in thresholds:
        fnr = {kind: float(np.mean(positives[kind] < threshold)) for kind in KINDS}
        false_positives = int(np.sum(negative_values >= threshold))
        table.append(
            {
                "threshold": threshold,
                "fnr": fnr,
                "max_mild_fnr": max(fnr[kind] for kind in MILD_KINDS),
                "fpr": false_positives / len(negative_values),
                "false_positives": false_positives,
                "distinct_pairs_any_class_at_or_above": int(np.sum(across_values >= threshold)),
            }
        )
    recommended, why = recommend(table, max_fnr)

    def rel(i: int) -> str:
        return os.path.relpath(originals[i], folder)

    top = sorted(negatives, reverse=True)[:TOP_PAIRS]
    top_cross = max(cross_class) if cross_class else None
    return {
        "image_size": size,
        "originals": n,
        "copies_per_kind": n,
        "negatives_same_class": len(negative_values),
        "distinct_pairs_any_class": len(across_values),
        "weights": extracted["weights"],
        "feature_seconds": extracted["seconds"],
        "feature_images_per_second": extracted["images_per_second"],
        "copy_making_seconds": copy_seconds,
        "similarity_seconds": similarity_seconds,
        "positive_similarity": {
            kind: {
                "min": float(v.min()),
                "p05": float(np.quantile(v, 0.05)),
                "median": float(np.median(v)),
            }
            for kind, v in positives.items()
        },
        "negative_similarity": {
            "median": float(np.median(negative_values)),
            "p99": float(np.quantile(negative_values, 0.99)),
            "p999": float(np.quantile(negative_values, 0.999)),
            "max": float(negative_values.max()),
        },
        "table": table,
        "recommended_threshold": recommended,
        "recommendation": why,
        "most_similar_distinct_same_class": [
            {"a": rel(i), "b": rel(j), "similarity": round(float(s), 4)} for s, i, j in top
        ],
        "most_similar_cross_class": (
            {"a": rel(top_cross[1]), "b": rel(top_cross[2]), "similarity": float(top_cross[0])}
            if top_cross
            else None
        ),
        "weakest_copies": {
            kind: [
                {"original": rel(int(i)), "similarity": round(float(positives[kind][i]), 4)}
                for i in np.argsort(positives[kind])[:3]
            ]
            for kind in KINDS
        },
    }


def _pairs(members: np.ndarray):
    for a, i in enumerate(members):
        for j in members[a + 1 :]:
            yield int(i), int(j)


def recommend(table: list[dict], max_fnr: float) -> tuple[float | None, str]:
    """The threshold with the lowest FPR among those whose mild kinds all miss at most max_fnr
    (ties: the lower mild FNR, then the lower threshold)."""
    fits = [row for row in table if row["max_mild_fnr"] <= max_fnr + 1e-12]
    if not fits:
        best = min(table, key=lambda row: (row["max_mild_fnr"], row["fpr"]))
        return None, (
            f"no threshold keeps every mild kind's FNR at or under {max_fnr:.0%}; the lowest "
            f"worst mild FNR is {best['max_mild_fnr']:.1%} at {best['threshold']:g}"
        )
    best = min(fits, key=lambda row: (row["fpr"], row["max_mild_fnr"], row["threshold"]))
    why = (
        f"{best['threshold']:g}: worst mild FNR {best['max_mild_fnr']:.1%} (<= {max_fnr:.0%}), "
        f"FPR {best['fpr']:.2%} ({best['false_positives']} distinct same-class pairs), combined "
        f"FNR {best['fnr']['combined']:.1%}"
    )
    if best["threshold"] == max(row["threshold"] for row in table):
        why += "; the highest threshold tried: a higher one may fit too"
    return best["threshold"], why


def print_calibration(result: dict) -> None:
    size = result["image_size"]
    print(
        f"\n== Calibration at {size} px: {result['originals']} originals, "
        f"{result['negatives_same_class']} distinct same-class pairs =="
    )
    header = (
        f"{'threshold':>9} | "
        + " ".join(f"{kind:>10}" for kind in KINDS)
        + f" | {'max mild':>8} | {'FPR':>7} {'count':>6} | {'any class':>9}"
    )
    print("FNR per copy kind (share of copies below the threshold); FPR: distinct same-class")
    print("pairs at or above it; any class: distinct pairs of originals at or above it")
    print(header)
    print("-" * len(header))
    for row in result["table"]:
        print(
            f"{row['threshold']:>9.2f} | "
            + " ".join(f"{row['fnr'][kind]:>10.1%}" for kind in KINDS)
            + f" | {row['max_mild_fnr']:>8.1%} | {row['fpr']:>7.2%} {row['false_positives']:>6}"
            + f" | {row['distinct_pairs_any_class_at_or_above']:>9}"
        )
    print("copies' similarity (min / 5th percentile / median):")
    for kind, stats in result["positive_similarity"].items():
        print(f"  {kind:>10}: {stats['min']:.4f} / {stats['p05']:.4f} / {stats['median']:.4f}")
    neg = result["negative_similarity"]
    print(
        f"distinct same-class pairs' similarity: median {neg['median']:.4f}, 99th percentile "
        f"{neg['p99']:.4f}, 99.9th {neg['p999']:.4f}, max {neg['max']:.4f}"
    )
    print(f"the {TOP_PAIRS} most similar distinct same-class pairs (judge by eye):")
    for pair in result["most_similar_distinct_same_class"]:
        print(f"  {pair['similarity']:.4f}  {pair['a']}  {pair['b']}")
    cross = result["most_similar_cross_class"]
    if cross:
        print(
            f"most similar pair across classes: {cross['similarity']:.4f}  {cross['a']}  "
            f"{cross['b']}"
        )
    print("weakest copies per kind:")
    for kind, weakest in result["weakest_copies"].items():
        print(
            f"  {kind:>10}: " + ", ".join(f"{w['original']} {w['similarity']:.4f}" for w in weakest)
        )
    print(f"recommended at {size} px: {result['recommendation']}")


# --- (2) Scale ----------------------------------------------------------------------------------


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _hwm_kb() -> int:
    """VmHWM: this process's own peak RSS since the last reset (ru_maxrss also keeps the peak
    of the process this one was started from)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _reset_hwm() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def _peak_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux


def scale_run(n: int, dim: int, planted: int, threshold: float, repeats: int, seed: int) -> dict:
    """similar_pairs on n random rows with `planted` near-copies: seconds, memory, recall. Run
    in a fresh process (the RSS high-water mark is the process's)."""
    rng = np.random.default_rng(seed)
    features = np.empty((n, dim), np.float32)
    for start in range(0, n, 1024):  # in chunks, so making them sets no high-water mark
        chunk = rng.standard_normal((min(1024, n - start), dim), dtype=np.float32)
        features[start : start + len(chunk)] = np.abs(chunk, out=chunk)
    chosen = rng.choice(n, 2 * planted, replace=False)
    sources, copies = chosen[:planted], chosen[planted:]
    for source, copy in zip(sources, copies, strict=True):
        row = features[source]
        noise = 0.01 * np.sqrt(np.mean(row**2)) * rng.standard_normal(dim, dtype=np.float32)
        features[copy] = np.maximum(row + noise, 0)
    expected = {(int(min(a, b)), int(max(a, b))) for a, b in zip(sources, copies, strict=True)}
    gc.collect()

    reset = _reset_hwm()
    rss_before, peak_before, hwm_before = _rss_kb(), _peak_rss_kb(), _hwm_kb()
    start = time.perf_counter()
    found = similar_pairs(features, threshold, block_rows=BLOCK_ROWS)
    first_seconds = time.perf_counter() - start
    peak_after, hwm_after = _peak_rss_kb(), _hwm_kb()
    found_set = {(i, j) for i, j, _ in found}
    del found
    gc.collect()

    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    similar_pairs(features, threshold, block_rows=BLOCK_ROWS)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        similar_pairs(features, threshold, block_rows=BLOCK_ROWS)
        seconds.append(time.perf_counter() - start)
    return {
        "n": n,
        "dim": dim,
        "threshold": threshold,
        "block_rows": BLOCK_ROWS,
        "planted_pairs": planted,
        "planted_found": len(expected & found_set),
        "all_planted_found": expected <= found_set,
        "other_pairs_found": len(found_set - expected),
        "seconds": seconds,
        "seconds_median": statistics.median(seconds),
        "first_call_seconds": first_seconds,
        "tracemalloc_peak_mb": (peak - before) / MB,
        "rss_before_mb": rss_before * 1024 / MB,
        "peak_rss_before_mb": peak_before * 1024 / MB,
        "peak_rss_after_mb": peak_after * 1024 / MB,
        "peak_rss_delta_mb": (peak_after - peak_before) * 1024 / MB,
        "peak_rss_over_rss_before_mb": (peak_after - rss_before) * 1024 / MB,
        "call_set_the_peak": peak_after > peak_before,
        "vmhwm_delta_mb": (hwm_after - hwm_before) * 1024 / MB if reset else None,
        "features_mb": features.nbytes / MB,
        "full_matrix_mb": n * n * 4 / MB,
        "one_block_mb": min(n, BLOCK_ROWS) * n * 4 / MB,
    }


def scale_in_child(n: int, args: argparse.Namespace) -> dict:
    command = [
        common.PYTHON,
        "-m",
        f"benchmarks.{NAME}",
        "--scale-child",
        str(n),
        "--scale-threshold",
        str(args.scale_threshold),
        "--planted",
        str(args.planted),
        "--repeats",
        str(args.repeats),
    ]
    out = subprocess.run(command, cwd=common.REPO, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"scale run at n={n} failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def print_scale(result: dict) -> None:
    print(
        f"n={result['n']:,}: similar_pairs {result['seconds_median']:.3f} s (median of "
        f"{len(result['seconds'])}; first call {result['first_call_seconds']:.3f} s), "
        f"tracemalloc peak {result['tracemalloc_peak_mb']:.1f} MB, peak RSS "
        f"+{result['peak_rss_delta_mb']:.1f} MB (high-water {result['peak_rss_before_mb']:.1f} "
        f"-> {result['peak_rss_after_mb']:.1f} MB; RSS before the call "
        f"{result['rss_before_mb']:.1f} MB; own VmHWM +{result['vmhwm_delta_mb'] or 0:.1f} MB), "
        f"vs a full n x n float32 matrix "
        f"{result['full_matrix_mb']:.0f} MB (one {result['block_rows']}-row block "
        f"{result['one_block_mb']:.0f} MB); planted pairs found {result['planted_found']}/"
        f"{result['planted_pairs']}, other pairs {result['other_pairs_found']} "
        f"(threshold {result['threshold']:g})"
    )


# --- Main ---------------------------------------------------------------------------------------


def save_record(setup: dict, runs: dict, summary: dict, notes: str) -> Path:
    """common.save without rebuilding RESULTS.md."""
    name = NAME + os.environ.get(common.RESULT_SUFFIX_ENV, "")
    record = {
        "benchmark": name,
        "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": common.command_line(),
        "machine": common.machine(),
        "setup": setup,
        "summary": summary,
        "target": common.TARGETS.get(common.base_name(name), ""),
        "notes": notes,
        "runs": runs,
    }
    common.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = common.RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"wrote {path.relative_to(common.REPO)}")
    return path


def summarise(calibrations: list[dict], scales: list[dict], current: float) -> dict:
    summary: dict = {}
    for result in calibrations:
        size = result["image_size"]
        summary[f"{size}px recommended threshold"] = result["recommended_threshold"]
        by_threshold = {row["threshold"]: row for row in result["table"]}
        for threshold in sorted({result["recommended_threshold"], current} - {None}):
            row = by_threshold.get(threshold)
            if row:
                summary[f"{size}px at {threshold:g} worst mild FNR"] = row["max_mild_fnr"]
                summary[f"{size}px at {threshold:g} combined FNR"] = row["fnr"]["combined"]
                summary[f"{size}px at {threshold:g} FPR"] = row["fpr"]
                summary[f"{size}px at {threshold:g} false positives"] = row["false_positives"]
        summary[f"{size}px feature images/s"] = result["feature_images_per_second"]
    for result in scales:
        n = result["n"]
        summary[f"{n} similar_pairs s (median)"] = result["seconds_median"]
        summary[f"{n} tracemalloc peak MB"] = result["tracemalloc_peak_mb"]
        summary[f"{n} peak RSS delta MB"] = result["peak_rss_delta_mb"]
        summary[f"{n} peak RSS over RSS before the call MB"] = result["peak_rss_over_rss_before_mb"]
        summary[f"{n} full n x n float32 MB"] = result["full_matrix_mb"]
        summary[f"{n} planted pairs found"] = f"{result['planted_found']}/{result['planted_pairs']}"
    return summary


def main(argv: list[str] | None = None) -> None:
    current = FindingsConfig().near_duplicate_similarity
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default="data/sample", help="folder of class folders")
    parser.add_argument(
        "--image-size",
        type=int,
        nargs="*",
        default=[224, 64],
        help="image sizes to calibrate at (none: skip the calibration)",
    )
    parser.add_argument(
        "--thresholds", type=float, nargs="+", default=list(THRESHOLDS), help="to tabulate"
    )
    parser.add_argument(
        "--max-fnr",
        type=float,
        default=0.05,
        help="the most each mild kind's FNR may be at the recommended threshold",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--scale",
        type=int,
        nargs="*",
        default=[1000, 10000],
        help="feature rows to time similar_pairs on (none: skip the scale part)",
    )
    parser.add_argument(
        "--scale-threshold",
        type=float,
        default=current,
        help=f"similar_pairs' threshold in the scale part (default: the pipeline's, {current:g})",
    )
    parser.add_argument("--planted", type=int, default=20, help="near-copies planted per n")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per n (median)")
    parser.add_argument(
        "--no-results-md", action="store_true", help="write the JSON only, not RESULTS.md"
    )
    parser.add_argument("--scale-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.scale_child:
        n, threshold = args.scale_child, args.scale_threshold
        result = scale_run(n, 512, args.planted, threshold, args.repeats, seed=0)
        print(json.dumps(result))
        return

    scales = []
    if args.scale:
        print(f"== Scale: similar_pairs, block_rows={BLOCK_ROWS}, 512 features ==")
    for n in args.scale:
        result = scale_in_child(n, args)
        print_scale(result)
        scales.append(result)

    originals = common.list_images(args.images)
    classes = [Path(p).parent.name for p in originals]
    calibrations = []  # after the scale part: its processes must not start from TensorFlow's RSS
    for size in args.image_size:
        result = calibrate(
            originals,
            classes,
            args.images,
            size,
            args.thresholds,
            args.max_fnr,
            args.batch_size,
        )
        print_calibration(result)
        calibrations.append(result)

    summary = summarise(calibrations, scales, current)
    print()
    for key, value in summary.items():
        print(f"{key}: {common.fmt(value)}")
    setup = {
        "images": args.images,
        "originals": len(originals),
        "image_sizes": args.image_size,
        "kinds": list(KINDS),
        "mild_kinds": list(MILD_KINDS),
        "thresholds": args.thresholds,
        "max_fnr": args.max_fnr,
        "pipeline_threshold": current,
        "scale": args.scale,
        "scale_threshold": args.scale_threshold,
        "planted": args.planted,
        "repeats": args.repeats,
        "block_rows": BLOCK_ROWS,
    }
    runs = {
        "calibration": {str(r["image_size"]): r for r in calibrations},
        "scale": {str(r["n"]): r for r in scales},
    }
    notes = (
        "Positives: (original, copy) pairs; negatives: distinct originals of one class, some of "
        "which are copies of one drawing in the sample (see most_similar_distinct_same_class). "
        "Scale: random |normal| features, each n in a fresh process."
    )
    if args.no_results_md:
        save_record(setup, runs, summary, notes)
    else:
        common.save(NAME, setup, runs, summary, notes=notes)


if __name__ == "__main__":
    main()
