"""The Trainer's look at the data before it trains (components/data_findings.py says what is
looked for): the judged split's features when it is not eval, the findings' files in the
Trainer's model_run artifact, the thumbnails of what they name, and the stop.

label_issues.json and near_duplicates.json sit beside history.json, which carries their
counts for the summary; findings_gallery.json holds the thumbnails (the images as the model
sees them, after the Transform graph) the report shows beside them.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable
from typing import Any

import tensorflow as tf

from components import data_findings as findings_lib
from components.contract import FINDINGS_GALLERY_FILE, LABEL_ISSUES_FILE, NEAR_DUPLICATES_FILE
from components.data_findings import DataFindingsError, FeatureTable
from components.scorer import write_json
from components.trainer_settings import TrainerSettings

THUMBNAIL_SIZE = 96  # pixels per side in the report
GALLERY_SUSPECTS = 24  # label-issue suspects with a thumbnail, worst first
GALLERY_PAIRS = 12  # near-duplicate pairs with thumbnails, leaks first


def split_files(train_files: list[str], split: str) -> list[str]:
    """The file pattern of another split of the Trainer's examples: TFX hands the Trainer
    `<examples>/Split-train/*` (io_utils.all_files_pattern of artifact_utils.get_split_uri)
    and no way to the others."""
    return [
        os.path.join(os.path.dirname(os.path.dirname(p)), f"Split-{split}", "*")
        for p in train_files
    ]


def make_inspector(
    settings: TrainerSettings,
    *,
    class_names: list[str],
    files: dict[str, list[str]],
    read: Callable[..., tf.data.Dataset],
    judged_table: Callable[[], FeatureTable],
    model_run_dir: str,
    summary: dict[str, Any],
    random_weights: bool = False,
) -> Callable[[list[FeatureTable]], None] | None:
    """The `inspect` the Trainer's train() calls with train's and eval's features, or None when
    findings.label_issues and findings.near_duplicates are both off. `files`: each split's file
    patterns; `read(files, split=..., only_paths=...)`: those images, decoded as for training;
    `judged_table()`: the judged split's features (a pass of the base), called only when the
    judged split is neither train nor eval. What it found goes into `summary` (history.json).
    With `random_weights` (training.weights=none, or the fallback) nothing is looked for, and
    both files say why."""
    found = settings.findings
    if found.label_issues == "off" and found.near_duplicates == "off":
        return None
    if random_weights:
        # The features would not be ImageNet's: no label is judged by them, and the
        # near-copy threshold was calibrated on ImageNet's.
        why = {
            "not_computed": "the base has random weights, not ImageNet's: its features say "
            "nothing about what the images show"
        }
        for key, name, setting in (
            ("label_issues", LABEL_ISSUES_FILE, found.label_issues),
            ("near_duplicates", NEAR_DUPLICATES_FILE, found.near_duplicates),
        ):
            if setting != "off":
                write_json(model_run_dir, name, why)
                summary[key] = why
        return None

    def inspect(tables: list[FeatureTable]) -> None:
        reasons = []
        suspects, pairs = [], []
        seconds = summary.setdefault("seconds", {})  # what each part cost, for the benchmark
        clock = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal clock
            seconds[name] = round(time.perf_counter() - clock, 3)
            clock = time.perf_counter()

        if found.label_issues != "off":
            issues = findings_lib.label_issues(
                tables, class_names, found, seed=settings.training.seed
            )
            lap("label_issues")
            write_json(model_run_dir, LABEL_ISSUES_FILE, issues)
            summary["label_issues"] = {
                key: issues[key]
                for key in ("examined", "share_per_class", "not_computed", "splits")
            } | {
                "suspects": len(issues["suspects"]),
                "out_of_fold_accuracy": issues.get("out_of_fold_accuracy"),
            }
            suspects = issues["suspects"][:GALLERY_SUSPECTS]
            reasons.append(findings_lib.label_issue_stop_reason(issues, found))
        if found.near_duplicates != "off":
            judged = settings.judged_split
            all_tables = list(tables)
            if judged not in {t.split for t in tables}:
                all_tables.append(judged_table())
                lap("judged_split_features")
            copies = findings_lib.near_duplicates(
                all_tables, class_names, found.near_duplicate_similarity, judged
            )
            lap("near_duplicates")
            write_json(model_run_dir, NEAR_DUPLICATES_FILE, copies)
            summary["near_duplicates"] = {
                key: copies[key]
                for key in (
                    "pairs_found",
                    "leaks",
                    "across_splits",
                    "threshold",
                    "judged_split",
                    "truncated",
                )
            }
            pairs = copies["pairs"][:GALLERY_PAIRS]
            reasons.append(findings_lib.leak_stop_reason(copies, found))
        wanted: dict[str, set[str]] = {}
        for item in [*suspects, *(side for p in pairs for side in (p["a"], p["b"]))]:
            wanted.setdefault(item["split"], set()).add(item["path"])
        write_json(model_run_dir, FINDINGS_GALLERY_FILE, thumbnails(wanted, files, read))
        lap("thumbnails")
        reasons = [r for r in reasons if r]
        if reasons:
            raise DataFindingsError(
                "; ".join(reasons)
                + f". Nothing was trained. The lists: {model_run_dir}/{LABEL_ISSUES_FILE} and "
                f"{NEAR_DUPLICATES_FILE}. Fix the labels or remove the copies (README, Data "
                "findings), or set findings.label_issues / findings.near_duplicates to report."
            )

    return inspect


def thumbnails(
    wanted: dict[str, set[str]], files: dict[str, list[str]], read: Callable[..., tf.data.Dataset]
) -> dict[str, str]:
    """{'<split>/<path>': base64 PNG} of the wanted images: one read of each split that
    decodes only them."""
    found = {}
    for split, paths in wanted.items():
        images = read(files[split], split=split, only_paths=sorted(paths))
        for pixels, _, path in images.batch(32):
            small = tf.cast(
                tf.image.resize(pixels, [THUMBNAIL_SIZE, THUMBNAIL_SIZE], antialias=True), tf.uint8
            )
            for image, name in zip(small, path.numpy(), strict=True):
                png = tf.io.encode_png(image).numpy()
                found[f"{split}/{name.decode()}"] = base64.b64encode(png).decode()
    return found
