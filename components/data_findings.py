"""What is wrong with the data, found from the frozen base's features before the model is trained:
suspected label errors and near-duplicate images (across splits, a leak when the copy is in the
judged split and in train).

The Trainer computes the frozen ImageNet base's output once for every training and evaluation
image (its feature cache) and hands this module each image's features averaged over positions
(512 numbers: `FeatureTable`). Nothing here runs the network again.

- **Label issues** (confident learning): K linear heads (logistic regression, K-fold) give each
  image a predicted probability from a head that never saw it; cleanlab's `find_label_issues`
  flags the images whose given label the data does not support, ranked by self-confidence (the
  out-of-fold probability of the given label: lowest first).
- **Near-duplicates**: pairs of images whose features' cosine similarity (of their square roots)
  reaches
  findings.near_duplicate_similarity (calibrated in benchmarks/near_duplicates.py on resized,
  re-encoded, cropped and brightened copies against distinct images of one class), in blocks of
  rows so 10,000 images never need a 10,000 x 10,000 matrix.

numpy, scikit-learn and cleanlab only: the tests and benchmarks call it without TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from components.settings import FindingsConfig

MAX_PAIRS_SAVED = 1000  # near-duplicate pairs kept in the file (leaks first); the count is exact
MAX_PAIRS_KEPT = 100_000  # pairs held while searching: more means the threshold is too low
BLOCK_ROWS = 1024  # rows of the similarity matrix computed at a time


class DataFindingsError(RuntimeError):
    """findings.label_issues=stop or findings.near_duplicates=stop found too much; the message
    says what, where the list is, and how to go on."""


@dataclass
class FeatureTable:
    """One split's images as the frozen base sees them: features [n, d] (averaged over
    positions), labels [n] (positions in the class list), and each image's path (the file under
    the data folder, as the ingestion report names it, or `<split>#<n>` for imported records
    without one)."""

    split: str
    features: np.ndarray
    labels: np.ndarray
    paths: list[str]

    def __post_init__(self) -> None:
        if not len(self.features) == len(self.labels) == len(self.paths):
            raise ValueError(
                f"split {self.split}: {len(self.features)} feature rows, {len(self.labels)} "
                f"labels and {len(self.paths)} paths: they must be one per image"
            )


# --- Label issues -------------------------------------------------------------------------------


def out_of_fold_probabilities(
    features: np.ndarray, labels: np.ndarray, num_classes: int, folds: int, seed: int
) -> np.ndarray:
    """[n, num_classes]: each image's class probabilities from a logistic-regression head fitted
    on the other folds (stratified), on L2-normalised features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    x = _unit_rows(features)
    probabilities = np.zeros((len(labels), num_classes))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fit_rows, held_out in splitter.split(x, labels):
        head = LogisticRegression(C=1.0, max_iter=2000)
        head.fit(x[fit_rows], labels[fit_rows])
        # A class absent from a fold's training rows gets probability 0 there.
        probabilities[np.ix_(held_out, head.classes_)] = head.predict_proba(x[held_out])
    return probabilities


def label_issues(
    tables: list[FeatureTable], class_names: list[str], settings: FindingsConfig, seed: int = 0
) -> dict:
    """label_issues.json: the suspects, worst first, with their share per class; or, where the
    data cannot support the finding (a class with fewer images than folds), why it was not
    computed."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    labels = np.concatenate([t.labels for t in tables]).astype(np.int64)
    counts = np.bincount(labels, minlength=len(class_names))
    result = {
        "method": "confident learning (cleanlab.filter.find_label_issues) on out-of-fold "
        f"probabilities of {settings.label_issue_folds} logistic-regression heads over the "
        "frozen ImageNet base's features; ranked by self-confidence",
        "splits": [t.split for t in tables],
        "examined": int(len(labels)),
        "examined_per_class": {n: int(c) for n, c in zip(class_names, counts, strict=True)},
        "folds": settings.label_issue_folds,
        "suspects": [],
        "share_per_class": {},
        "not_computed": "",
    }
    too_few = [
        n for n, c in zip(class_names, counts, strict=True) if c < settings.label_issue_folds
    ]
    if too_few:
        result["not_computed"] = (
            f"classes {too_few} have fewer than findings.label_issue_folds="
            f"{settings.label_issue_folds} images in {' + '.join(result['splits'])}: a held-out "
            "fold would have none of them to judge by"
        )
        return result
    probabilities = out_of_fold_probabilities(
        np.concatenate([t.features for t in tables]),
        labels,
        len(class_names),
        settings.label_issue_folds,
        seed,
    )
    ranked = find_label_issues(labels, probabilities, return_indices_ranked_by="self_confidence")
    scores = get_label_quality_scores(labels, probabilities, method="self_confidence")
    where = [(t.split, p) for t in tables for p in t.paths]
    suspects = []
    for i in ranked:
        split, path = where[i]
        suggested = int(probabilities[i].argmax())
        suspects.append(
            {
                "path": path,
                "split": split,
                "given": class_names[labels[i]],
                "suggested": class_names[suggested],
                "score": round(float(scores[i]), 4),
                "suggested_probability": round(float(probabilities[i, suggested]), 4),
            }
        )
    result["suspects"] = suspects
    flagged = np.bincount(labels[ranked], minlength=len(class_names)) if len(ranked) else counts * 0
    result["share_per_class"] = {
        n: round(float(f / c), 4) for n, f, c in zip(class_names, flagged, counts, strict=True)
    }
    result["out_of_fold_accuracy"] = round(float((probabilities.argmax(1) == labels).mean()), 4)
    return result


def label_issue_stop_reason(result: dict, settings: FindingsConfig) -> str:
    """Why findings.label_issues=stop stops the run, or '' (it does not, or the share is within
    findings.max_label_issue_share)."""
    if settings.label_issues != "stop" or not result["examined"]:
        return ""
    share = len(result["suspects"]) / result["examined"]
    if share <= settings.max_label_issue_share:
        return ""
    return (
        f"{len(result['suspects'])} of {result['examined']} images ({share:.1%}) have suspected "
        f"label errors, more than findings.max_label_issue_share="
        f"{settings.max_label_issue_share:g}; worst classes: {worst_classes_text(result)}"
    )


def worst_classes_text(result: dict, limit: int = 3) -> str:
    shares = sorted(result["share_per_class"].items(), key=lambda kv: -kv[1])
    return ", ".join(f"{share:.0%} of {name}" for name, share in shares[:limit] if share > 0)


# --- Near-duplicates ----------------------------------------------------------------------------


class SimilarPairs(list):
    """similar_pairs' answer: (i, j, similarity) tuples, most similar first, and `total`, how
    many pairs reached the threshold (more than the list holds when max_pairs cut it)."""

    total: int = 0


def similar_pairs(
    features: np.ndarray,
    threshold: float,
    block_rows: int = BLOCK_ROWS,
    max_pairs: int = MAX_PAIRS_KEPT,
) -> SimilarPairs:
    """(i, j, cosine similarity) for every pair i < j at or above threshold, most similar first,
    of the features' square roots (power normalisation, as image retrieval does: no few large
    activations dominate, which separated copies from distinct images better in the
    calibration). Computed block_rows rows at a time: memory is block_rows x n floats, not
    n x n. At most max_pairs are kept (the most similar); `total` counts them all."""
    x = _unit_rows(np.sqrt(np.maximum(features, 0)))
    kept = [np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)]
    total = 0
    for start in range(0, len(x), block_rows):
        block = x[start : start + block_rows] @ x.T
        rows, cols = np.nonzero(block >= threshold)
        keep = cols > rows + start  # each pair once, no image with itself
        rows, cols = rows[keep], cols[keep]
        total += len(rows)
        kept = [
            np.concatenate([kept[0], rows + start]),
            np.concatenate([kept[1], cols]),
            np.concatenate([kept[2], block[rows, cols]]),
        ]
        if len(kept[2]) > 2 * max_pairs:  # keep memory bounded on data that is all alike
            top = np.argpartition(-kept[2], max_pairs)[:max_pairs]
            kept = [k[top] for k in kept]
    order = np.argsort(-kept[2], kind="stable")[:max_pairs]
    pairs = SimilarPairs(
        (int(i), int(j), float(s)) for i, j, s in zip(*(k[order] for k in kept), strict=True)
    )
    pairs.total = total
    return pairs


def near_duplicates(
    tables: list[FeatureTable], class_names: list[str], threshold: float, judged_split: str
) -> dict:
    """near_duplicates.json: the pairs (both paths, splits, classes, similarity), the leaks
    (one image in the judged split, the other in train) first."""
    where = [
        (t.split, p, int(label)) for t in tables for p, label in zip(t.paths, t.labels, strict=True)
    ]
    pairs = []
    found = similar_pairs(np.concatenate([t.features for t in tables]), threshold)
    for i, j, similarity in found:
        (split_a, path_a, label_a), (split_b, path_b, label_b) = where[i], where[j]
        pairs.append(
            {
                "a": {"path": path_a, "split": split_a, "class": class_names[label_a]},
                "b": {"path": path_b, "split": split_b, "class": class_names[label_b]},
                "similarity": round(similarity, 4),
                "leak": {split_a, split_b} == {judged_split, "train"} and judged_split != "train",
                "across_splits": split_a != split_b,
            }
        )
    pairs.sort(key=lambda p: (not p["leak"], not p["across_splits"], -p["similarity"]))
    return {
        "method": "cosine similarity of the frozen ImageNet base's features (averaged over "
        "positions)",
        "threshold": threshold,
        "judged_split": judged_split,
        "examined": int(sum(len(t.labels) for t in tables)),
        "examined_per_split": {t.split: int(len(t.labels)) for t in tables},
        "pairs_found": found.total,
        # Counted among the pairs kept: all of them unless more than MAX_PAIRS_KEPT were found.
        "leaks": sum(p["leak"] for p in pairs),
        "across_splits": sum(p["across_splits"] for p in pairs),
        "truncated": found.total > len(found),
        "pairs": pairs[:MAX_PAIRS_SAVED],
    }


def leak_stop_reason(result: dict, settings: FindingsConfig) -> str:
    if settings.near_duplicates != "stop" or not result["leaks"]:
        return ""
    first = result["pairs"][0]
    return (
        f"{result['leaks']} near-cop{'y' if result['leaks'] == 1 else 'ies'} across the judged "
        f"split ({result['judged_split']}) and train (similarity >= {result['threshold']:g}), "
        f"e.g. {first['a']['path']} ({first['a']['split']}) and {first['b']['path']} "
        f"({first['b']['split']}): the judged accuracy would count images the model trained on"
    )


def _unit_rows(features: np.ndarray) -> np.ndarray:
    x = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)
