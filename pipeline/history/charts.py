"""The page's charts as PNG bytes (matplotlib, no window)."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt
import numpy as np

from pipeline.history.page_data import SIZE_FEATURES, SizeHistogram
from pipeline.history.record import Step

SPLIT_COLOURS = {"train": "#4c72b0", "eval": "#dd8452", "test": "#55a868", "all": "#8172b3"}
_STATE_COLOURS = {"cached": "#b0b7bf", "failed": "#c44e52"}

# --- Charts -------------------------------------------------------------------------------------


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def plot_examples_per_class(ingestion: dict[str, Any]) -> bytes:
    """Grouped bars: examples of each class, one bar per split."""
    classes = ingestion["classes"]
    per_split = ingestion["examples_per_split_and_class"]
    fig, ax = plt.subplots(figsize=(min(4 + 0.6 * len(classes), 14), 3.4))
    width = 0.8 / max(len(per_split), 1)
    x = np.arange(len(classes))
    for i, (split, counts) in enumerate(per_split.items()):
        ax.bar(
            x + i * width - 0.4 + width / 2,
            [counts.get(c, 0) for c in classes],
            width,
            label=f"{split} ({sum(counts.values())})",
            color=SPLIT_COLOURS.get(split),
        )
    _class_ticks(ax, x, classes)
    ax.set_ylabel("examples")
    ax.set_title("Examples per class and split")
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def _class_ticks(ax, x: np.ndarray, names: list[str]) -> None:
    """Class names under the bars, slanted when they would run into each other."""
    slanted = len(names) > 6 or max((len(n) for n in names), default=0) > 9
    ax.set_xticks(x, names, rotation=30 if slanted else 0, ha="right" if slanted else "center")


def rebin(buckets: list[tuple[float, float, float]], edges: np.ndarray) -> np.ndarray:
    """TFDV's buckets (their edges differ per split) spread over common bins in proportion to
    their overlap; a bucket of a single value goes whole to its bin."""
    counts = np.zeros(len(edges) - 1)
    for low, high, count in buckets:
        if high <= low:
            index = np.searchsorted(edges, low, side="right") - 1
            counts[min(max(index, 0), len(counts) - 1)] += count
            continue
        overlap = np.clip(np.minimum(edges[1:], high) - np.maximum(edges[:-1], low), 0, None)
        counts += count * overlap / (high - low)
    return counts


def plot_image_sizes(sizes: dict[str, dict[str, SizeHistogram]]) -> bytes:
    """Histograms of image height and width (pixels) as ingested, splits stacked."""
    fig, axes = plt.subplots(1, len(SIZE_FEATURES), figsize=(10, 3), sharey=True)
    for ax, feature in zip(axes, SIZE_FEATURES, strict=True):
        per_split = sizes.get(feature, {})
        if not per_split:
            continue
        low = min(h.min for h in per_split.values())
        high = max(h.max for h in per_split.values())
        bins = int(min(20, max(1, high - low)))
        edges = np.linspace(low, high, bins + 1) if high > low else np.array([low - 1, low + 1])
        bottom = np.zeros(len(edges) - 1)
        for split, histogram in per_split.items():
            counts = rebin(histogram.buckets, edges)
            ax.bar(
                edges[:-1],
                counts,
                np.diff(edges),
                bottom=bottom,
                align="edge",
                label=split,
                color=SPLIT_COLOURS.get(split),
                edgecolor="white",
            )
            bottom += counts
        ax.set_xlabel(f"{feature} (pixels)")
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].set_ylabel("images")
    axes[0].legend(frameon=False)
    fig.suptitle("Image sizes")
    return _png(fig)


def plot_training_curves(history: list[dict[str, Any]]) -> bytes:
    """Loss and accuracy per epoch, training and validation, both phases on one epoch axis."""
    epochs = [e for e in history if "epoch" in e]
    x = np.arange(1, len(epochs) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for key, style in ((metric, "-o"), (f"val_{metric}", "--s")):
            values = [e.get(key, np.nan) for e in epochs]
            ax.plot(x, values, style, markersize=3, label="validation" if "val" in key else "train")
        phases = [e["phase"] for e in epochs]
        for i in range(1, len(phases)):
            if phases[i] != phases[i - 1]:
                ax.axvline(i + 0.5, color="#999", linestyle=":")
        for phase in dict.fromkeys(phases):
            first = phases.index(phase) + 1
            ax.annotate(
                phase,
                (first, 1.0),
                xycoords=("data", "axes fraction"),
                va="top",
                fontsize=9,
                color="#555",
            )
        ax.set_xlabel("epoch (both phases)")
        ax.set_title(metric)
        ax.spines[["top", "right"]].set_visible(False)
    axes[1].legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _png(fig)


def plot_step_times(steps: list[Step]) -> bytes:
    """Seconds per component (from MLMD's execution times); cached steps in grey."""
    nodes = [s.name for s in steps]
    seconds = [s.seconds for s in steps]
    colours = [_STATE_COLOURS.get(s.state, "#4c72b0") for s in steps]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(nodes) + 0.8))
    ax.barh(nodes, seconds, color=colours)
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.set_title("Time per component (grey: cached)")
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def plot_per_class(precision: list[float], recall: list[float], class_names: list[str]) -> bytes:
    """Grouped bars; a missing value (no prediction of the class: no precision) is no bar."""
    x = np.arange(len(class_names))
    fig, ax = plt.subplots(figsize=(min(4 + 0.6 * len(class_names), 14), 3.2))
    ax.bar(x - 0.2, precision, 0.4, label="precision", color="#4c72b0")
    ax.bar(x + 0.2, recall, 0.4, label="recall", color="#dd8452")
    _class_ticks(ax, x, class_names)
    ax.set_ylim(0, 1.2)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_title("Candidate: precision and recall per class (top-1)")
    ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def plot_confusion_matrix(matrix: np.ndarray, class_names: list[str]) -> bytes:
    """Heat map of counts, actual classes down, predicted across."""
    n = matrix.shape[0]
    names = (class_names + [str(i) for i in range(len(class_names), n)])[:n]
    side = min(2.5 + 0.45 * n, 12)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    image = ax.imshow(matrix, cmap="Blues")
    if n <= 30:  # beyond that the numbers are unreadable; the colours still tell
        for (i, j), count in np.ndenumerate(matrix):
            colour = "white" if count > matrix.max() / 2 else "black"
            ax.text(j, i, f"{count:g}", ha="center", va="center", color=colour, fontsize=9)
    ax.set_xticks(range(n), names, rotation=45 if n > 4 else 0, ha="right" if n > 4 else "center")
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("actual class")
    ax.set_title("Confusion matrix (candidate, judged split)")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return _png(fig)


def plot_reliability(found: dict[str, Any]) -> bytes:
    """Reliability diagram: per confidence bin, accuracy against mean confidence (on the
    diagonal: confidence means what it says), for each model the Judge measured."""
    fig, ax = plt.subplots(figsize=(4.6, 4.0))
    ax.plot([0, 1], [0, 1], color="#b0b7bf", linestyle=":", label="perfectly calibrated")
    styles = {
        "candidate_before_temperature": ("candidate before its temperature", "#dd8452", "--"),
        "candidate": ("candidate", "#4c72b0", "-"),
        "baseline": ("baseline", "#55a868", "-."),
    }
    for key, (label, colour, line) in styles.items():
        if key not in found:
            continue
        bins = found[key]["bins"]
        ax.plot(
            [b["confidence"] for b in bins],
            [b["accuracy"] for b in bins],
            marker="o",
            color=colour,
            linestyle=line,
            label=f"{label} (ECE {found[key]['ece']:.3f})",
        )
    ax.set_xlabel("mean confidence (top-1 probability)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, loc="upper left")
    return _png(fig)
