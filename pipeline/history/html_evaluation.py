"""The page's evaluation: the candidate's metrics against the baseline, per class, the
confusion matrix, the paired counts, the gate's rules and the thumbnails of its mistakes."""

from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.history.charts import plot_confusion_matrix, plot_per_class, plot_reliability
from pipeline.history.html_blocks import chart, esc, not_reached, number, table
from pipeline.history.page_data import ReportData
from pipeline.history.record import RunRecord


def evaluation_section(data: ReportData) -> str:
    s = data.record
    parts = ["<h2>Evaluation</h2>"]
    if not s.metrics:
        return '<section id="evaluation">' + parts[0] + not_reached("Evaluation") + "</section>"
    candidate, baseline = s.overall_metrics("candidate"), s.overall_metrics("baseline")
    on = f" on the {esc(data.record.eval_split)} split" if data.record.eval_split else ""
    count = candidate.get("example_count")
    examples = f" ({count:g} examples)" if count is not None else ""
    parts.append(
        f"<p>Measured by TFMA{on}{examples}, from the predictions the Scorer made once per "
        "model. The 95% intervals are the Judge's, from the same predictions: Wilson score "
        "intervals for accuracy, precision and recall, a bootstrap over examples for AUC. AUC "
        "is the exact (rank) one-vs-rest AUC from those predictions, not TFMA's, which buckets "
        "probabilities into 10,000 thresholds. The gate judges accuracy and per-class recall "
        "with the intervals (its rules are below).</p>"
    )
    if not baseline:
        parts.append(f"<p>Baseline: {esc(s.baseline_text() or 'none')}.</p>")
    overall = sorted(n for n in candidate if "/class_" not in n)
    intervals = s.metric_estimates()
    rows = [
        [
            esc(n),
            number(candidate[n]),
            interval_text(intervals.get(n)),
            number(baseline.get(n)),
            _signed(candidate[n] - baseline[n] if n in baseline else None),
        ]
        for n in overall
    ]
    header = ["metric", "candidate", "candidate 95% CI", "baseline", "difference"]
    parts.append("<h3>Candidate against baseline</h3>")
    parts.append(table(header, rows, {1, 3, 4}))
    parts.append(per_class_html(data, candidate))
    if data.confusion is not None:
        parts.append(
            chart(
                "confusion-matrix",
                lambda: plot_confusion_matrix(data.confusion, data.class_names),
                "Confusion matrix of the candidate on the judged split (TFMA)",
            )
        )
    parts.append(calibration_html(s))
    parts.append(paired_html(s))
    parts.append(gate_html(data))
    parts.append(gallery_html(data.gallery))
    return '<section id="evaluation">' + "".join(parts) + "</section>"


def calibration_html(record: RunRecord) -> str:
    """The reliability diagram and expected calibration error on the judged split, with the
    temperature the Trainer fitted (or why none was)."""
    found = ((record.judgement or {}).get("evidence") or {}).get("calibration")
    if not found:
        return ""
    trained = found.get("trained") or {}
    if "temperature" in trained:
        how = (
            f"The Trainer fitted a temperature of {trained['temperature']:.3g} on the "
            f"{esc(trained['fitted_on'])} split ({trained['images']} images; there its ECE went "
            f"from {trained['ece_before']:.3f} to {trained['ece_after']:.3f}) and folded it into "
            "the exported model: every serving path returns the calibrated probabilities."
        )
    else:
        how = f"No temperature was fitted: {esc(trained.get('not_fitted', 'an older model'))}."
    parts = [
        '<h3 id="calibration">Calibration</h3>',
        f"<p>{how} Expected calibration error (ECE): the mean gap between the top "
        "probability and how often it is right, over 15 confidence bins weighted by their "
        "images; 0 is perfect.</p>",
        chart(
            "chart-reliability",
            lambda: plot_reliability(found),
            "Reliability on the judged split: accuracy against confidence, per bin",
        ),
    ]
    return "".join(parts)


def per_class_html(data: ReportData, candidate: dict[str, float]) -> str:
    """Per-class precision and recall, a class counting as predicted when it is the top-1 class
    (as for accuracy): TFMA's binarized metrics (components/evaluation.py), or the confusion
    matrix for evaluations that lack them."""
    ids = sorted(
        {int(n.rsplit("_", 1)[1]) for n in candidate if n.startswith(("precision/", "recall/"))}
    )
    if data.confusion is not None:
        ids = sorted(set(ids) | set(range(data.confusion.shape[0])))
    if not ids:
        return ""
    names = [data.class_names[i] if i < len(data.class_names) else str(i) for i in ids]
    columns: dict[str, list[float]] = {}
    if data.confusion is not None:
        columns["examples"] = [data.confusion[i].sum() for i in ids]
    if any(n.startswith("precision/") for n in candidate):
        columns["precision"] = [candidate.get(f"precision/class_{i}", np.nan) for i in ids]
        columns["recall"] = [candidate.get(f"recall/class_{i}", np.nan) for i in ids]
        caption = "Top-1 precision and recall per class (TFMA)"
    else:
        precision, recall = top1_per_class(data.confusion)
        columns["precision"] = [precision[i] for i in ids]
        columns["recall"] = [recall[i] for i in ids]
        caption = "Top-1 precision and recall per class (from the confusion matrix)"
    rows = [
        [str(i), esc(name)]
        + [number(values[row], 0 if key == "examples" else 3) for key, values in columns.items()]
        for row, (i, name) in enumerate(zip(ids, names, strict=True))
    ]
    header = ["id", "class", *columns]
    evidence = (data.record.judgement or {}).get("evidence", {})
    for key in ("precision", "recall"):  # the Judge's intervals, where it saved them
        estimates = evidence.get(key) or []
        if len(estimates) == len(data.class_names):
            header.append(f"{key} 95% CI")
            for row, i in zip(rows, ids, strict=True):
                row.append(interval_text(estimates[i] if i < len(estimates) else None))
    bars = (columns["precision"], columns["recall"])
    numeric = set(range(2, 2 + len(columns)))
    note = "<p>Top-1: the most probable class is the prediction, as for accuracy.</p>"
    bars_chart = chart("chart-per-class", lambda: plot_per_class(*bars, names), caption)
    return (
        '<h3>Per class (candidate)</h3><div class="row">'
        + table(header, rows, numeric)
        + bars_chart
        + "</div>"
        + note
    )


def interval_text(estimate: dict[str, Any] | None) -> str:
    """An Estimate's interval as "0.41 to 0.79"; '' where none was computed, '-' where the
    estimate saw no example (a class never predicted has no precision)."""
    if not estimate:
        return ""
    if not estimate["n"]:
        return "-"
    return f"{estimate['lower']:.2f} to {estimate['upper']:.2f}"


def top1_per_class(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(precision, recall) per class of the most probable class, the prediction that accuracy
    counts, from the confusion matrix; NaN where a class was never predicted or never seen."""
    hits = np.diag(matrix)
    with np.errstate(divide="ignore", invalid="ignore"):
        return hits / matrix.sum(axis=0), hits / matrix.sum(axis=1)


def paired_html(s: RunRecord) -> str:
    """Candidate and baseline on the same examples: the four outcome counts."""
    paired = (s.judgement or {}).get("evidence", {}).get("paired")
    if not paired:
        return ""
    rows = [
        ["fixed (baseline wrong, candidate right)", str(paired["fixed"])],
        ["broken (baseline right, candidate wrong)", str(paired["broken"])],
        ["both right", str(paired["both_right"])],
        ["both wrong", str(paired["both_wrong"])],
    ]
    return (
        f"<h3>Paired with the baseline ({esc(s.baseline_text())})</h3>"
        + table(["examples", "count"], rows, {1})
        + f"<p>Accuracy difference {paired['difference']:+.3f} (95% CI {paired['lower']:+.2f} "
        f"to {paired['upper']:+.2f}, paired bootstrap over the examples): "
        f"<strong>{esc(s.judgement['judgement']['comparison'])}</strong>.</p>"
    )


def gate_html(data: ReportData) -> str:
    rows = []
    for rule in data.gate:
        result = {True: "pass", False: "fail", None: "not applied"}[rule["result"]]
        css = {"pass": "pass", "fail": "fail"}.get(result, "na")
        rows.append(
            [
                esc(rule["rule"]),
                f"<code>{esc(rule['option'])}</code>",
                esc(rule["value"]),
                f'<span class="{css}">{esc(result)}</span>',
            ]
        )
    if not rows:
        return '<h3>Gate</h3><p class="na">The Judge did not run.</p>'
    return "<h3>Gate</h3>" + table(["rule", "option", "value", "result"], rows)


def gallery_html(gallery: dict[str, Any]) -> str:
    """The judged split's most confident mistakes, and per class its most confident correct
    predictions, as the model saw them (after the Transform graph)."""
    if not gallery:
        return ""
    mistakes, correct = gallery.get("mistakes", []), gallery.get("correct", [])
    parts = [f'<h3 id="mistakes">Most confident mistakes ({len(mistakes)})</h3>']
    if any("gradcam_png" in e for e in mistakes):
        parts.append(
            "<p>Beside each mistake, where the last convolution block looked when the model "
            "chose its class (Grad-CAM of block5_conv3: red most, blue least), computed by the "
            "exported model's gradcam signature on the pixels serving sees.</p>"
        )
    if gallery.get("gradcam_note"):
        parts.append(f'<p class="na">{esc(gallery["gradcam_note"])}.</p>')
    parts.append(_thumbnails(mistakes) if mistakes else '<p class="na">No mistakes.</p>')
    if correct:
        parts.append('<h3 id="correct">Confident correct predictions, per class</h3>')
        parts.append(_thumbnails(correct))
    return "".join(parts)


def _thumbnails(entries: list[dict[str, Any]]) -> str:
    cells = []
    for e in entries:
        caption = f"true {e['true']}, predicted {e['predicted']} {e['probability']:.0%}"
        overlay = (
            f'<img class="gradcam" src="data:image/png;base64,{e["gradcam_png"]}" width="96" '
            f'height="96" alt="{esc("Grad-CAM: " + caption)}">'
            if e.get("gradcam_png")
            else ""
        )
        cells.append(
            f'<figure class="thumb"><img src="data:image/png;base64,{e["png"]}" width="96" '
            f'height="96" alt="{esc(caption)}">{overlay}<figcaption>{esc(caption)}</figcaption>'
            "</figure>"
        )
    return '<div class="row">' + "".join(cells) + "</div>"


def _signed(value: float | None) -> str:
    return "&ndash;" if value is None or np.isnan(value) else f"{value:+.4f}"
