"""The record on the console: the end-of-run summary, the `runs` table (and its --json rows)
and `show`. Renders a RunRecord only; nothing here reads an artifact."""

from __future__ import annotations

from typing import Any

from components.contract import ACCURACY, MODEL_CARD_FILES
from pipeline.history.record import RunRecord
from pipeline.history.store import iso_time

COLUMNS = [
    ("run_id", "RUN"),
    ("started", "STARTED"),
    ("status", "STATUS"),
    ("examples", "EXAMPLES"),
    ("candidate_accuracy", "CANDIDATE ACC"),
    ("baseline_accuracy", "BASELINE ACC"),
    ("blessed", "BLESSED"),
    ("pushed_version", "PUSHED"),
]


def estimate_text(estimate: dict[str, Any]) -> str:
    """A components.gate.Estimate's fields as "0.619 (95% CI 0.41 to 0.80, n = 21)"."""
    return (
        f"{estimate['value']:.3f} (95% CI {estimate['lower']:.2f} to {estimate['upper']:.2f}, "
        f"n = {estimate['n']})"
    )


def accuracy_text(value: float | None) -> str:
    """A best validation accuracy: '-' when no epoch recorded one."""
    return "-" if value is None else f"{value:.3f}"


def summary_text(r: RunRecord) -> str:
    lines = ["", f"Run {r.run_id}"]
    if r.all_cached:
        lines.append(
            "  Nothing changed since the last run: every step was cached, nothing new ran."
        )
    if r.ingestion:
        data = _ingestion_lines(r.ingestion)
        lines += [data[0], *class_count_lines(r.ingestion), *data[1:]]
    elif r.imported:
        counts = r.imported
        splits = ", ".join(f"{s} {n}" for s, n in counts["examples_per_split"].items())
        lines.append(
            f"  Data:       {counts['examples']} imported examples ({splits}), "
            f"{len(counts['classes'])} classes"
        )
        lines += class_count_lines(counts)
    if r.anomalies is not None:
        lines.append(f"  Anomalies:  {len(r.anomalies) or 'none'}")
        lines += [f"      {a}" for a in r.anomalies]
    if r.training:
        lines += _training_lines(r)
    if r.metrics:
        lines += _metric_lines(r)
    if r.blessed is not None:
        lines += _decision_lines(r)
    if r.already_served and not r.push_cached:
        lines.append(
            f"  Pushed:     nothing; the candidate is already served as version {r.already_served}"
        )
    elif r.pushed_version and r.push_cached:
        lines.append(
            f"  Serving:    version {r.pushed_version} at {r.pushed_path} "
            "(pushed by an earlier run; nothing new pushed)"
        )
    elif r.pushed_version:
        lines.append(f"  Pushed:     version {r.pushed_version} to {r.pushed_path}")
        lines.append(f"  Model card: {r.pushed_path}/{MODEL_CARD_FILES[0]} (and .html)")
        lines += tflite_lines(r.tflite)
    elif r.blessed is False:
        lines.append("  Pushed:     nothing; the serving location is unchanged")
    return "\n".join(lines)


def _ingestion_lines(report: dict[str, Any]) -> list[str]:
    splits = ", ".join(f"{s} {n}" for s, n in report["examples_per_split"].items())
    lines = [
        f"  Data:       {report['examples']} examples ({splits}), {len(report['classes'])} classes",
        f"  Quarantined: {len(report['quarantined'])} file(s); {len(report['skipped'])} other "
        "file(s) or folder(s) not read",
    ]
    for q in report["quarantined"][:10]:
        lines.append(f"      {q['path']}: {q['reason']}")
    if len(report["quarantined"]) > 10:
        lines.append(f"      ... {len(report['quarantined']) - 10} more in the ingestion report")
    duplicates = report.get("duplicates")
    if duplicates:
        lines.append(
            f"  Duplicates: {len(duplicates['across_classes'])} under two classes, "
            f"{len(duplicates['across_splits'])} across splits, "
            f"{duplicates['within_split_extra_copies']} extra copies within a split"
        )
    if report.get("path"):
        lines.append(f"  Ingestion report: {report['path']}")
    return lines


def class_count_lines(data: dict[str, Any]) -> list[str]:
    """Examples of each class in each split, and how far the largest class outnumbers the
    smallest: what `training.class_weight=balanced` and the gate's per-class rules are for."""
    lines = []
    for split, counts in (data.get("examples_per_split_and_class") or {}).items():
        classes = data.get("classes") or list(counts)
        values = [counts.get(name, 0) for name in classes]
        if not values:
            continue
        smallest = min(values)
        spread = (
            f"largest {max(values) / smallest:.1f}x the smallest"
            if smallest
            else "a class has none"
        )
        listed = ", ".join(f"{name} {n}" for name, n in zip(classes, values, strict=True))
        label = "  Classes:" if not lines else ""
        lines.append(f"{label:<14}{split}: {listed} ({spread})")
    return lines


def _training_lines(r: RunRecord) -> list[str]:
    t = r.training
    lines = [f"  Base:       VGG16, {t['base_weights']}"]
    if t.get("weights_warning"):
        lines.append(f"  !!! {t['weights_warning']}")
    if r.tuned_hyperparameters:
        tuned = ", ".join(f"{k} {v}" for k, v in sorted(r.tuned_hyperparameters.items()))
        lines.append(f"  Tuned:      {tuned}")
    started = t.get("warm_start") or {}
    if started.get("why"):
        lines.append(f"  Warm start: none ({started['why']}): from the base weights")
    elif started.get("from", "base_weights") != "base_weights":
        lines.append(f"  Warm start: from the last blessed model, {started['from']}")
    lines += findings_lines(t.get("findings") or {})
    for p in r.phases:
        if p.epochs:
            last_loss = "-" if p.last_loss is None else f"{p.last_loss:.3f}"
            lines.append(
                f"  {p.phase.capitalize()}:     {p.epochs} epoch(s), best val accuracy "
                f"{accuracy_text(p.best_val_accuracy)}, last loss {last_loss}"
            )
    return lines


def findings_lines(findings: dict[str, Any]) -> list[str]:
    """The Trainer's data findings (history.json's `findings`): suspected label errors and
    near-copies, a leak into the judged split loudest."""
    lines = []
    issues = findings.get("label_issues")
    if issues and issues.get("not_computed"):
        lines.append(f"  Label issues: not looked for: {issues['not_computed']}")
    elif issues:
        shares = sorted(issues["share_per_class"].items(), key=lambda kv: -kv[1])
        worst = ", ".join(f"{share:.0%} of {name}" for name, share in shares[:3] if share > 0)
        lines.append(
            f"  Label issues: {issues['suspects']} suspected of {issues['examined']} "
            f"{'+'.join(issues['splits'])} images" + (f" ({worst})" if worst else "")
        )
        if issues["suspects"]:
            lines.append(
                f"      judged by heads {issues['out_of_fold_accuracy']:.0%} right out of fold; "
                "`python -m pipeline findings` lists them"
            )
    copies = findings.get("near_duplicates")
    if copies and copies.get("not_computed"):
        lines.append(f"  Near-copies: not looked for: {copies['not_computed']}")
    elif copies:
        judged = copies["judged_split"]
        lines.append(
            f"  Near-copies: {copies['pairs_found']} pair(s) (similarity >= "
            f"{copies['threshold']:g}), {copies['across_splits']} across splits, "
            f"{copies['leaks'] or 'no'} leak(s) into the judged split ({judged})"
        )
        if copies.get("truncated"):
            lines.append(
                f"  !!! {copies['pairs_found']} pairs reach the similarity threshold: the images "
                "are alike at this threshold; only the most similar were kept and counted for "
                "leaks. Raise findings.near_duplicate_similarity."
            )
        if copies["leaks"]:
            lines.append(
                f"  !!! LEAK: {copies['leaks']} image(s) of the judged split ({judged}) have a "
                "near-copy in train: its accuracy counts images the model trained on "
                "(`python -m pipeline findings` lists them)"
            )
    return lines


def _metric_lines(r: RunRecord) -> list[str]:
    candidate, baseline = r.overall_metrics("candidate"), r.overall_metrics("baseline")
    lines = ["  Metrics:    candidate" + ("   baseline" if baseline else "")]
    evidence = (r.judgement or {}).get("evidence", {})
    judged = r.metric_estimates()
    for name in ("example_count", ACCURACY, "macro_auc"):
        if name in candidate:
            value = f"{candidate[name]:.4f}"
            if judged.get(name):  # the Judge's value with its interval (components/intervals)
                value = estimate_text(judged[name])
            base = f"   {baseline[name]:.4f}" if name in baseline else ""
            lines.append(f"    {name:<28} {value}{base}")
    names, recalls = evidence.get("class_names", []), evidence.get("recall", [])
    for name, recall in zip(names, recalls, strict=True):
        lines.append(f"    {'recall ' + name:<28} {estimate_text(recall)}")
    lines += calibration_lines(evidence.get("calibration"), r.eval_split)
    if r.judgement is not None:
        lines.append(f"  Baseline:   {r.baseline_text()}")
    paired = evidence.get("paired")
    if paired:
        verdict = r.judgement["judgement"]["comparison"]
        lines.append(
            f"  Paired:     fixed {paired['fixed']}, broken {paired['broken']}, both right "
            f"{paired['both_right']}, both wrong {paired['both_wrong']}; accuracy "
            f"difference {paired['difference']:+.3f} (95% CI {paired['lower']:+.2f} to "
            f"{paired['upper']:+.2f}): {verdict}"
        )
    return lines


def calibration_lines(found: dict[str, Any] | None, split: str) -> list[str]:
    """The temperature the Trainer fitted (or why none was), and the expected calibration error
    on the judged split: before and after the temperature, and the baseline's."""
    if not found:
        return []
    trained = found.get("trained") or {}
    on = f" on {split}" if split else ""
    ece = f"ECE{on} {found['candidate']['ece']:.3f}"
    if "candidate_before_temperature" in found:
        before = found["candidate_before_temperature"]["ece"]
        ece = f"ECE{on} {before:.3f} before, {found['candidate']['ece']:.3f} after"
    if "baseline" in found:
        ece += f" (baseline {found['baseline']['ece']:.3f})"
    if trained.get("not_fitted"):
        return [f"  Calibration: no temperature fitted ({trained['not_fitted']}); {ece}"]
    if "temperature" in trained:
        fitted = (
            f"temperature {trained['temperature']:.3g} fitted on {trained['fitted_on']} "
            f"({trained['images']} images)"
        )
        return [f"  Calibration: {fitted}; {ece}"]
    return [f"  Calibration: {ece}"]


def tflite_lines(report: dict[str, Any] | None) -> list[str]:
    """Each TensorFlow Lite variant's check against the SavedModel, the refused ones named."""
    if not report or report.get("skipped") or not report.get("variants"):
        return []
    checked = f"{report['checked_images']} {report['judged_split']} images"
    lines = [f"  TFLite:     checked against the SavedModel on {checked} (tflite/report.json)"]
    for name, v in report["variants"].items():
        figures = (
            f"agreement {v['agreement']:.1%}, largest probability difference "
            f"{v['max_probability_difference']:.3f}, {v['bytes'] / 1e6:.1f} MB, "
            f"{v['latency_ms']:.1f} ms per image"
        )
        if v["published"]:
            lines.append(f"      {name:<13} published: {figures}")
        else:
            lines.append(
                f"      {name:<13} NOT published: {figures}; below "
                f"export.tflite_min_agreement={report['min_agreement']:g}"
            )
    return lines


def _decision_lines(r: RunRecord) -> list[str]:
    word = "BLESSED" if r.blessed else "NOT BLESSED"
    if r.random_weights == "fallback":
        word += " (RANDOM weights: ImageNet weights were unavailable)"
    elif r.random_weights == "chosen":
        word += " (random weights: training.weights=none)"
    return [f"  Decision:   {word}"] + [f"      {f}" for f in r.failures]


# --- `runs` ---------------------------------------------------------------------------------


def run_row(r: RunRecord) -> dict[str, Any]:
    """One run as plain values (the `runs --json` record)."""
    return {
        "run_id": r.run_id,
        "started": iso_time(r.started),
        "seconds": round(r.seconds, 1),
        "status": r.status,
        "stopped_in": r.stopped_in or None,  # an incomplete run's step
        "examples": r.examples,
        "candidate_accuracy": r.metrics.get("candidate", {}).get(ACCURACY),
        "baseline_accuracy": r.metrics.get("baseline", {}).get(ACCURACY),
        "blessed": r.blessed,
        "accuracy_interval": r.accuracy_interval,  # [lower, upper], 95%
        "random_weights": r.random_weights or None,  # 'fallback' or 'chosen'
        "already_served": r.already_served or None,  # the candidate's existing version
        "pushed_version": r.pushed_version or None,
        "push_cached": r.push_cached,  # the version was pushed by an earlier run
        "record": not r.from_store_only,  # false: no saved record; figures from the store only
    }


def _cell(key: str, row: dict[str, Any]) -> str:
    value = row[key]
    if key == "pushed_version" and row.get("already_served"):
        return f"{row['already_served']} (already served)"
    if value is None:
        return "?" if not row["record"] and key in ("examples", "candidate_accuracy") else "-"
    if key == "status" and row.get("stopped_in"):
        return f"{value} ({row['stopped_in']})"
    if key == "blessed":
        random = {"fallback": " (RANDOM weights)", "chosen": " (random weights)"}
        return ("yes" if value else "no") + random.get(row.get("random_weights") or "", "")
    if key.endswith("accuracy"):
        return f"{value:.4f}"
    if key == "started":
        return value.replace("T", " ")
    if key == "pushed_version" and row["push_cached"]:
        return f"{value} (earlier)"
    return str(value)


def format_rows(rows: list[dict[str, Any]]) -> str:
    """An aligned table, one run a line, numbers right-aligned; a footnote for runs without a
    saved record."""
    table = [[title for _, title in COLUMNS]]
    table += [[_cell(key, row) for key, _ in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    numeric = {"examples", "candidate_accuracy", "baseline_accuracy"}
    lines = []
    for line in table:
        cells = [
            cell.rjust(width) if key in numeric else cell.ljust(width)
            for (key, _), cell, width in zip(COLUMNS, line, widths, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    if any(not row["record"] for row in rows):
        lines.append(
            "? : no saved record for that run (made by another runner, or before records were "
            "saved); `python -m pipeline report RUN` reads its artifacts and saves one."
        )
    return "\n".join(lines)


# --- `show` ---------------------------------------------------------------------------------


def show_lines(r: RunRecord) -> list[str]:
    """The summary, the run's timing and its steps."""
    took = (
        "did not finish (killed, or still running)"
        if r.status == "incomplete"
        else f"took {r.seconds:.0f} s"
    )
    lines = [
        summary_text(r),
        f"  Started:    {iso_time(r.started).replace('T', ' ')}, {took}, status {r.status}",
    ]
    if r.from_store_only:
        lines.append(
            "  Record:     none saved for this run (made by another runner, or before records "
            "were saved): data, training and metrics unread; `python -m pipeline report "
            f"{r.run_id}` reads them and saves one"
        )
    if r.failure:
        lines.append(f"  Error:      {r.failure.get('error', '')}")
    lines.append("  Steps:")
    lines += [f"      {s.name:<34} {s.state:<8} {s.seconds:6.1f} s" for s in r.steps]
    return lines
