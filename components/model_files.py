"""A SavedModel's files as checksums: a content fingerprint that tells the same model apart
from a new one, and the push record that lets a served version be checked for damage."""

from __future__ import annotations

import hashlib
import json
import os
import types
from typing import Any

from components.contract import PUSH_RECORD_FILE

# Local folders are read with os, so `show` checks a served copy without importing TensorFlow.
_LOCAL = types.SimpleNamespace(
    walk=os.walk,
    exists=os.path.exists,
    isdir=os.path.isdir,
    listdir=os.listdir,
    makedirs=lambda path: os.makedirs(path, exist_ok=True),
    GFile=open,
)


def file_system(path: str):
    """tf.io.gfile for a URL (gs://, s3://), else the local file system."""
    if "://" not in path:
        return _LOCAL
    import tensorflow as tf

    return tf.io.gfile


def _read_errors(path: str) -> tuple[type[Exception], ...]:
    if "://" not in path:
        return (OSError,)
    import tensorflow as tf

    return (tf.errors.OpError,)


def file_checksums(model_dir: str) -> dict[str, str]:
    """{path relative to model_dir: sha256} of every file, the push record excepted."""
    checksums = {}
    fs = file_system(model_dir)
    for root, _, files in fs.walk(model_dir):
        for name in files:
            path = os.path.join(root, name)
            relative = os.path.relpath(path, model_dir)
            if relative != PUSH_RECORD_FILE:
                checksums[relative] = file_checksum(path)
    return checksums


def file_checksum(path: str) -> str:
    """The sha256 of one file's bytes."""
    digest = hashlib.sha256()
    with file_system(path).GFile(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(checksums: dict[str, str]) -> str:
    """One sha256 over the sorted file names and checksums: equal for byte-identical models."""
    text = "\n".join(f"{name} {checksums[name]}" for name in sorted(checksums))
    return hashlib.sha256(text.encode()).hexdigest()


def compare_files(expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    """What differs, one line per file: missing, changed, or unexpected."""
    problems = [f"{name}: missing" for name in sorted(set(expected) - set(actual))]
    problems += [
        f"{name}: contents changed (sha256 {actual[name][:12]}..., expected "
        f"{expected[name][:12]}...)"
        for name in sorted(set(expected) & set(actual))
        if expected[name] != actual[name]
    ]
    problems += [f"{name}: not part of the model" for name in sorted(set(actual) - set(expected))]
    return problems


def read_push_record(version_dir: str) -> dict[str, Any] | None:
    path = os.path.join(version_dir, PUSH_RECORD_FILE)
    fs = file_system(path)
    if not fs.exists(path):
        return None
    try:
        with fs.GFile(path) as f:
            return json.load(f)
    except (ValueError, *_read_errors(path)):
        return None


def write_push_record(version_dir: str, record: dict[str, Any]) -> None:
    path = os.path.join(version_dir, PUSH_RECORD_FILE)
    fs = file_system(path)
    fs.makedirs(os.path.dirname(path))
    with fs.GFile(path, "w") as f:
        json.dump(record, f, indent=2)


def served_versions(serving_dir: str) -> list[tuple[str, dict[str, Any] | None]]:
    """(version, push record or None) of each numbered folder, oldest first."""
    fs = file_system(serving_dir)
    if not fs.isdir(serving_dir):
        return []
    names = sorted(
        (n.rstrip("/") for n in fs.listdir(serving_dir) if n.rstrip("/").isdigit()),
        key=int,
    )
    return [(n, read_push_record(os.path.join(serving_dir, n))) for n in names]


def damaged_files(version_dir: str) -> list[str] | None:
    """What is wrong with a served version's files against its push record; None when it has
    no record to check against (pushed before records existed, or by another tool)."""
    record = read_push_record(version_dir)
    if record is None or "files" not in record:
        return None
    expected = {**record["files"], **record.get("documents", {})}
    return compare_files(expected, file_checksums(version_dir))


def find_served(serving_dir: str, model_id: int, model_fingerprint: str) -> dict[str, Any] | None:
    """The newest served version holding this model (same artifact or same content)."""
    for version, record in reversed(served_versions(serving_dir)):
        if record and (
            record.get("model_artifact_id") == model_id
            or record.get("fingerprint") == model_fingerprint
        ):
            return {**record, "version": version}
    return None
