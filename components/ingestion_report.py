"""The ingestion report: what ImageExampleGen read, quarantined, skipped and found twice, and
the rules that stop a run on it (enforce_report). Built from the events the ingestion's Beam
steps write; written into the IngestionReport artifact, and copied beside it because TFX deletes
a failed step's outputs, which is exactly when the report is needed.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections import Counter, defaultdict
from typing import Any

import tensorflow as tf

REPORT_FILE = "ingestion_report.json"
HASHES_FILE = "image_hashes.tsv"
# Copies of the report outside the artifact folder, which TFX deletes when the step fails:
# <pipeline root>/<node>/ingestion_reports/ingestion_report-<run id>.json
REPORTS_FOLDER = "ingestion_reports"
NODE_ID = "ImageExampleGen"


class IngestionError(RuntimeError):
    """The image folder cannot produce a data set worth training on; the message says why."""


def _read_events(events_dir: str) -> list[dict[str, Any]]:
    events = []
    for path in sorted(tf.io.gfile.glob(posixpath.join(events_dir, "*"))):
        with tf.io.gfile.GFile(path) as f:
            events.extend(json.loads(line) for line in f if line.strip())
    return events


def build_report(
    classes: list[str],
    events_dir: str,
    splits: list[str] = (),
    not_read: list[dict[str, str]] = (),
) -> dict[str, Any]:
    """`splits`: the output split names, so a split no example reached is counted, as 0s.
    `not_read`: entries beside the class folders (entries_outside_classes), listed as skipped."""
    events = _read_events(events_dir)
    per_split: dict[str, dict[str, int]] = {s: {c: 0 for c in classes} for s in splits}
    for e in (e for e in events if e["kind"] == "count"):
        per_split.setdefault(e["split"], {c: 0 for c in classes})[classes[e["label"]]] = e["n"]
    quarantined = sorted(
        (
            {"path": e["path"], "class": e.get("class", ""), "reason": e["reason"]}
            for e in events
            if e["kind"] == "quarantined"
        ),
        key=lambda e: e["path"],
    )
    skipped = sorted(
        [*({"path": e["path"], "reason": e["reason"]} for e in events if e["kind"] == "skipped")]
        + list(not_read),
        key=lambda e: e["path"],
    )
    examples = sum(sum(c.values()) for c in per_split.values())
    per_class = {c: sum(counts.get(c, 0) for counts in per_split.values()) for c in classes}
    bad_per_class = Counter(q["class"] for q in quarantined)
    return {
        "classes": classes,
        "examples": examples,
        "examples_per_split": {s: sum(c.values()) for s, c in sorted(per_split.items())},
        "examples_per_split_and_class": dict(sorted(per_split.items())),
        "image_files": examples + len(quarantined),
        "image_files_per_class": {c: per_class[c] + bad_per_class[c] for c in classes},
        "quarantined": quarantined,
        "quarantined_per_class": {c: bad_per_class[c] for c in classes},
        "skipped": skipped,
        "duplicates": find_duplicates([e for e in events if e["kind"] == "image"]),
    }


def find_duplicates(images: list[dict[str, str]]) -> dict[str, Any]:
    """Groups images with the same decoded pixels (which includes identical files). A group
    under two classes is a labelling error; one in two splits leaks the judged data into
    training; copies within one class and split only weigh that image more."""
    groups = defaultdict(list)
    for image in images:
        groups[image["pixels_sha256"]].append(image)
    across_classes, across_splits, within = [], [], []
    for digest, members in sorted(groups.items()):
        if len(members) < 2:
            continue
        group = {
            "pixels_sha256": digest,
            "same_bytes": len({m["sha256"] for m in members}) == 1,
            "files": sorted(
                ({"path": m["path"], "class": m["class"], "split": m["split"]} for m in members),
                key=lambda f: f["path"],
            ),
        }
        if len({m["class"] for m in members}) > 1:
            across_classes.append(group)
        elif len({m["split"] for m in members}) > 1:
            across_splits.append(group)
        else:
            within.append(group)
    return {
        "across_classes": across_classes,
        "across_splits": across_splits,
        "within_split": within,
        "within_split_extra_copies": sum(len(g["files"]) - 1 for g in within),
    }


def summarize_report(report: dict[str, Any]) -> str:
    splits = ", ".join(f"{s} {n}" for s, n in report["examples_per_split"].items())
    duplicates = report["duplicates"]
    return (
        f"{report['examples']} examples ({splits}) in {len(report['classes'])} classes; "
        f"{len(report['quarantined'])} quarantined, {len(report['skipped'])} skipped; "
        f"duplicates: {len(duplicates['across_classes'])} under two classes, "
        f"{len(duplicates['across_splits'])} across splits, "
        f"{duplicates['within_split_extra_copies']} extra copies within a split"
    )


def _describe_group(group: dict[str, Any]) -> str:
    return " = ".join(f"{f['path']} ({f['class']}, {f['split']})" for f in group["files"])


def _listing(lines: list[str], limit: int = 20) -> str:
    more = [f"... and {len(lines) - limit} more"] if len(lines) > limit else []
    return "\n".join(f"    {line}" for line in lines[:limit] + more)


def enforce_report(
    report: dict[str, Any], max_bad_fraction: float, duplicates: str = "fail"
) -> None:
    """Fails the run on data not worth training on, naming what is wrong and what to do.
    `duplicates` (validation.duplicates): 'fail' stops on an image in two splits, 'warn' only
    reports it. The same image under two classes always stops the run."""
    problems = []
    files, bad = report["image_files"], len(report["quarantined"])
    if files and bad / files > max_bad_fraction:
        listing = _listing([f"{q['path']}: {q['reason']}" for q in report["quarantined"]])
        problems.append(
            f"{bad} of {files} image files ({bad / files:.1%}) were quarantined, more than "
            f"ingestion.max_bad_fraction={max_bad_fraction:.1%}:\n{listing}\n"
            "  Fix or remove those files (the report lists all), or raise the limit."
        )
    for name, class_bad in report.get("quarantined_per_class", {}).items():
        class_files = report["image_files_per_class"][name]
        if class_files and class_bad / class_files > max_bad_fraction:
            problems.append(
                f"Class '{name}': {class_bad} of its {class_files} image files "
                f"({class_bad / class_files:.1%}) were quarantined, more than "
                f"ingestion.max_bad_fraction={max_bad_fraction:.1%}. Fix or remove them, or "
                "raise the limit."
            )
    for split, counts in report["examples_per_split_and_class"].items():
        empty = [c for c, n in counts.items() if n == 0]
        if empty:
            problems.append(
                f"Split '{split}' has no usable image of class(es) {empty}. Every class of the "
                "schema needs images in every split: add images to those class folders (a hash "
                "split needs a few images per class to fill every split), or remove the class "
                "from the schema."
            )
    if not report["examples"]:
        problems.append("No usable image at all was found.")
    found = report.get("duplicates", {})
    if found.get("across_classes"):
        listing = _listing([_describe_group(g) for g in found["across_classes"]])
        problems.append(
            f"{len(found['across_classes'])} image(s) are in two or more classes (same "
            f"pixels):\n{listing}\n  Keep each image in its one right class."
        )
    if found.get("across_splits") and duplicates == "fail":
        listing = _listing([_describe_group(g) for g in found["across_splits"]])
        problems.append(
            f"{len(found['across_splits'])} image(s) are in two or more splits (same pixels), "
            f"so the judged split holds training images:\n{listing}\n  Remove the extra "
            "copies, or set validation.duplicates=warn to only report them."
        )
    if problems:
        where = f"\nIngestion report: {report['path']}" if report.get("path") else ""
        raise IngestionError("Ingestion failed:\n- " + "\n- ".join(problems) + where)


def report_name(run_id: str) -> str:
    return "ingestion_report-" + re.sub(r"[^A-Za-z0-9._-]", "-", run_id) + ".json"


def write_report(report: dict[str, Any], report_artifact_uri: str) -> None:
    """Into the artifact, and a copy to report['path'], which outlives a failed step."""
    text = json.dumps(report, indent=2)
    for path in (posixpath.join(report_artifact_uri, REPORT_FILE), report.get("path")):
        if path:
            tf.io.gfile.makedirs(posixpath.dirname(path))
            with tf.io.gfile.GFile(path, "w") as f:
                f.write(text)


def write_image_hashes(events_dir: str, path: str) -> None:
    """One line per ingested image: path, class, split, sha256 of the bytes, of the pixels."""
    images = sorted(
        (e for e in _read_events(events_dir) if e["kind"] == "image"), key=lambda e: e["path"]
    )
    with tf.io.gfile.GFile(path, "w") as f:
        f.write("path\tclass\tsplit\tsha256\tpixels_sha256\n")
        for e in images:
            f.write(
                f"{e['path']}\t{e['class']}\t{e['split']}\t{e['sha256']}\t{e['pixels_sha256']}\n"
            )


def read_report(report_artifact_uri: str) -> dict[str, Any]:
    with tf.io.gfile.GFile(posixpath.join(report_artifact_uri, REPORT_FILE)) as f:
        return json.load(f)


def read_failed_run_report(pipeline_root: str, run_id: str) -> dict[str, Any] | None:
    """The report a run's ingestion wrote before it stopped the run, or None."""
    path = posixpath.join(pipeline_root, NODE_ID, REPORTS_FOLDER, report_name(run_id))
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)
