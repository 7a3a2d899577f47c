"""The class folders of an image folder, split by split: which classes it holds, that they are
the schema's, and what lies beside them that is not read. ImageExampleGen checks these before
any file is read (the splits themselves: components/splits.py)."""

from __future__ import annotations

import posixpath

import tensorflow as tf

from components import image_checks
from components.ingestion_report import IngestionError


def split_folder(input_base: str, pattern: str) -> str:
    """The folder holding the class folders of a split pattern ('train/*/*' or '*/*')."""
    return posixpath.join(input_base, pattern[: -len("*/*")]).rstrip("/")


def split_label(pattern: str) -> str:
    return pattern.split("/")[0] if pattern != "*/*" else "all"


def _class_folders(folder: str) -> list[str]:
    if not tf.io.gfile.isdir(folder):
        raise IngestionError(f"Data folder {folder} does not exist or is not a folder.")
    return sorted(
        name.rstrip("/")
        for name in tf.io.gfile.listdir(folder)
        if not name.startswith(".") and tf.io.gfile.isdir(posixpath.join(folder, name))
    )


def discover_classes(input_base: str, patterns: list[str]) -> list[str]:
    """The sorted class folder names, which must be the same in every split folder: the class
    list of a data set that has no schema yet (infer-schema writes it into one)."""
    per_split = {p: _class_folders(split_folder(input_base, p)) for p in patterns}
    classes = next(iter(per_split.values()))
    for pattern, names in per_split.items():
        if names != classes:
            missing = sorted(set(classes) ^ set(names))
            raise IngestionError(
                f"Split folders disagree on the classes: {split_folder(input_base, pattern)} "
                f"lacks or adds {missing}. Every split needs the same class folders."
            )
    _require_two(classes, input_base)
    return classes


def check_class_folders(input_base: str, patterns: list[str], classes: list[str]) -> None:
    """Every class folder must be a class of the schema: an unknown folder stops ingestion here.
    A class of the schema without a folder is not an error yet: it has no example, which the
    report's checks name with the split (enforce_report)."""
    _require_two(classes, input_base)
    for pattern in patterns:
        folder = split_folder(input_base, pattern)
        unknown = sorted(set(_class_folders(folder)) - set(classes))
        if unknown:
            raise IngestionError(
                f"{folder} has folder(s) {unknown} that are not classes of the schema "
                f"(its class_name domain: {classes}). Move them out of the data folder, or add "
                "the class to the schema (`python -m pipeline infer-schema` writes one for this "
                "data; labels are the classes' positions in that list)."
            )


def _require_two(classes: list[str], input_base: str) -> None:
    if len(classes) < 2:
        raise IngestionError(
            f"Found {len(classes)} class folder(s) ({classes}) in {input_base}; a classifier "
            "needs at least 2. Put each class's images in a sub-folder named after the class."
        )


def entries_outside_classes(input_base: str, patterns: list[str]) -> list[dict[str, str]]:
    """The files and hidden folders beside the class folders, which are not read: listed in the
    report with why. (Folders that are classes, and split folders, are read.)"""
    entries = []
    for pattern in patterns:
        folder = split_folder(input_base, pattern)
        for name in sorted(tf.io.gfile.listdir(folder)):
            name = name.rstrip("/")
            path = posixpath.join(folder, name)
            is_dir = tf.io.gfile.isdir(path)
            if is_dir and name.startswith("."):
                reason = "hidden folder: not read as a class"
            elif not is_dir:
                reason = "file outside the class folders: not read; move it into its class's folder"
            else:
                continue
            entries.append({"path": image_checks.relative_id(path, input_base), "reason": reason})
    return entries
