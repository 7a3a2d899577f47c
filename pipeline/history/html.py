"""The run's page: one self-contained HTML file rendered from the run record and the page data.
Charts are PNGs inlined as data: URLs and the CSS is inline; a Content-Security-Policy forbids
every fetch, so the file opens the same offline and mailed."""

from __future__ import annotations

import base64
import html
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from pipeline.history.charts import (
    plot_confusion_matrix,
    plot_examples_per_class,
    plot_image_sizes,
    plot_per_class,
    plot_step_times,
    plot_training_curves,
)
from pipeline.history.console import accuracy_text
from pipeline.history.page_data import SIZE_FEATURES, ReportData, SizeHistogram
from pipeline.history.record import RunRecord

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1100px;
       padding: 0 24px 48px; color: #1d232a; }
h1 { font-size: 24px; margin: 24px 0 4px; } h2 { border-bottom: 2px solid #dde3ea;
     padding-bottom: 4px; margin-top: 36px; } h3 { font-size: 16px; margin: 20px 0 6px; }
.meta { color: #59636e; margin: 0 0 12px; } nav a { margin-right: 14px; }
.verdict { display: inline-block; padding: 6px 14px; border-radius: 6px; font-weight: 600; }
.good { background: #dcf5e3; color: #11632b; } .bad { background: #fde2e1; color: #9b1c1c; }
.neutral { background: #eef1f4; color: #39424b; }
.warning { background: #fff4d6; border-left: 4px solid #e0a100; padding: 8px 12px; }
table { border-collapse: collapse; margin: 8px 0 12px; }
th, td { border-bottom: 1px solid #e4e8ec; padding: 4px 12px 4px 0; text-align: left;
         vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #11632b; font-weight: 600; } .fail { color: #9b1c1c; font-weight: 600; }
.na { color: #6b7580; } figure { margin: 12px 0; } figcaption { color: #59636e; font-size: 13px; }
img { max-width: 100%; height: auto; } code { font-size: 13px; word-break: break-all; }
pre { background: #f6f8fa; padding: 10px; overflow-x: auto; white-space: pre-wrap; }
.thumb { width: 120px; margin: 0; } .thumb img { image-rendering: pixelated; }
.thumb figcaption { font-size: 12px; }
.row { display: flex; flex-wrap: wrap; gap: 8px 32px; align-items: flex-start; }
"""


# --- HTML ---------------------------------------------------------------------------------------


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def figure(chart_id: str, png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode()
    return (
        f'<figure id="{esc(chart_id)}"><img src="data:image/png;base64,{data}" '
        f'alt="{esc(caption)}"><figcaption>{esc(caption)}</figcaption></figure>'
    )


def table(header: list[str], rows: list[list[Any]], numeric: set[int] = frozenset()) -> str:
    """Header text is escaped here; cells are HTML already (escape what goes in)."""

    def cell(tag: str, i: int, value: Any) -> str:
        css = ' class="num"' if i in numeric else ""
        return f"<{tag}{css}>{value}</{tag}>"

    head = "".join(cell("th", i, esc(h)) for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _number(value: float | None, digits: int = 4) -> str:
    return "&ndash;" if value is None or np.isnan(value) else f"{value:.{digits}f}"


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds)) if seconds else "unknown"


def _not_reached(what: str) -> str:
    return f'<p class="na">{esc(what)}: not reached in this run.</p>'


def _chart(chart_id: str, plot: Callable[[], bytes], caption: str) -> str:
    """A chart, or a line saying why it could not be drawn: one bad artifact must not cost
    the whole page."""
    try:
        return figure(chart_id, plot(), caption)
    except Exception as error:
        why = f"{type(error).__name__}: {error}"
        return f'<p class="na">{esc(caption)}: not drawn ({esc(why)})</p>'


def steps_section(data: ReportData) -> str:
    r = data.record
    rows = [[esc(s.name), esc(s.state), _number(s.seconds, 1)] for s in r.steps]
    parts = [
        "<h2>Steps</h2>",
        f"<p>{len(rows)} component(s), {r.seconds:.0f} s from start to end.</p>",
        '<div class="row">',
        table(["component", "state", "seconds"], rows, numeric={2}),
        _chart("chart-step-times", lambda: plot_step_times(r.steps), "Time per component"),
        "</div>",
    ]
    return '<section id="steps">' + "".join(parts) + "</section>"


def data_section(data: ReportData) -> str:
    s = data.record
    parts = ["<h2>Data</h2>"]
    report = s.ingestion
    if report:
        splits = ", ".join(f"{esc(k)} {v}" for k, v in report["examples_per_split"].items())
        parts.append(
            f"<p>{esc(report['examples'])} examples ({splits}) in {len(report['classes'])} "
            f"classes, from {esc(report['image_files'])} image files.</p>"
        )
        parts.append(
            _chart(
                "chart-examples-per-class",
                lambda: plot_examples_per_class(report),
                "Examples per class and split (ingestion report)",
            )
        )
    elif s.imported:
        counts = s.imported
        splits = ", ".join(f"{esc(k)} {v}" for k, v in counts["examples_per_split"].items())
        parts.append(
            f"<p>{esc(counts['examples'])} imported examples ({splits}) in "
            f"{len(counts['classes'])} classes, counted by StatisticsGen.</p>"
        )
        if counts["examples_per_split_and_class"]:
            parts.append(
                _chart(
                    "chart-examples-per-class",
                    lambda: plot_examples_per_class(counts),
                    "Examples per class and split (StatisticsGen)",
                )
            )
    else:
        parts.append(_not_reached("Ingestion report (image folders only)"))
    if data.image_sizes:
        parts.append(image_sizes_html(data.image_sizes))
    parts.append(quarantine_html(report))
    parts.append("<h3>Schema anomalies</h3>")
    parts.append(anomalies_html(data))
    return '<section id="data">' + "".join(parts) + "</section>"


def image_sizes_html(sizes: dict[str, dict[str, SizeHistogram]]) -> str:
    splits = list(dict.fromkeys(split for per_split in sizes.values() for split in per_split))

    def span(feature: str, split: str) -> str:
        h = sizes.get(feature, {}).get(split)
        return "&ndash;" if h is None else f"{h.min:g} / {h.median:g} / {h.max:g}"

    rows = [[esc(split)] + [span(f, split) for f in SIZE_FEATURES] for split in splits]
    header = ["split"] + [f"{f} min / median / max" for f in SIZE_FEATURES]
    return (
        '<div class="row">'
        + table(header, rows, {1, 2})
        + _chart(
            "chart-image-sizes",
            lambda: plot_image_sizes(sizes),
            "Image height and width in pixels, splits stacked (StatisticsGen)",
        )
        + "</div>"
    )


def anomalies_html(data: ReportData) -> str:
    anomalies = data.record.anomalies
    note = ""
    if anomalies is None and data.validator_anomalies is not None:
        anomalies = data.validator_anomalies
        note = (
            "<p>DataGate stopped the run; ExampleValidator found these (the label-drift "
            "check's findings are in the error below or the run's log).</p>"
        )
    if anomalies is None:
        return _not_reached("Data validation")
    if not anomalies:
        return f'{note}<p id="anomalies">none</p>'
    items = "".join(f"<li>{esc(a)}</li>" for a in anomalies)
    return f'{note}<ul id="anomalies">{items}</ul>'


def quarantine_html(report: dict[str, Any] | None) -> str:
    if not report:
        return ""
    parts = [f"<h3>Quarantined files: {len(report['quarantined'])}</h3>"]
    if report["quarantined"]:
        rows = [[f"<code>{esc(q['path'])}</code>", esc(q["reason"])] for q in report["quarantined"]]
        parts.append(table(["file", "reason"], rows))
    skipped = report["skipped"]
    if isinstance(skipped, dict):  # reports written before the paths were listed: counts
        skipped = [{"path": f"({n} files)", "reason": reason} for reason, n in skipped.items()]
    if skipped:
        parts.append(f"<h3>Not read: {len(skipped)}</h3>")
        rows = [[f"<code>{esc(s['path'])}</code>", esc(s["reason"])] for s in skipped]
        parts.append(table(["file or folder", "reason"], rows))
    duplicates = report.get("duplicates")
    if duplicates:
        parts.append(
            f"<h3>Duplicates (same pixels)</h3><p>{len(duplicates['across_classes'])} under two "
            f"classes, {len(duplicates['across_splits'])} across splits, "
            f"{duplicates['within_split_extra_copies']} extra copies within a split.</p>"
        )
        rows = [
            [
                kind,
                "<br>".join(
                    f"<code>{esc(f['path'])}</code> ({esc(f['class'])}, {esc(f['split'])})"
                    for f in group["files"]
                ),
            ]
            for kind in ("across_classes", "across_splits")
            for group in duplicates[kind]
        ]
        if rows:
            parts.append(table(["kind", "files"], rows))
    if report.get("path"):
        parts.append(f"<p>Ingestion report: <code>{esc(report['path'])}</code></p>")
    return "".join(parts)


def training_section(data: ReportData) -> str:
    t = data.record.training
    parts = ["<h2>Training</h2>"]
    if not t:
        return '<section id="training">' + "".join(parts) + _not_reached("Training") + "</section>"
    parts.append(f"<p>Base: VGG16, {esc(t['base_weights'])}.</p>")
    if t.get("weights_warning"):
        parts.append(f'<p class="warning">{esc(t["weights_warning"])}</p>')
    if data.record.tuned_hyperparameters:
        tuned = ", ".join(f"{k} {v}" for k, v in sorted(data.record.tuned_hyperparameters.items()))
        parts.append(f'<p id="tuned">Tuned: {esc(tuned)}.</p>')
    rows = []
    for p in data.record.phases:
        if not p.epochs:
            rows.append(
                [esc(p.phase), "&ndash;", "&ndash;", "&ndash;", "&ndash;", _number(p.seconds, 1)]
            )
            continue
        rows.append(
            [
                esc(p.phase),
                str(p.epochs),
                esc(", ".join(f"{r:.2g}" for r in p.learning_rates)),
                esc(accuracy_text(p.best_val_accuracy)),
                _number(p.last_loss, 3),
                _number(p.seconds, 1),
            ]
        )
    header = ["phase", "epochs", "learning rate", "best val accuracy", "last loss", "seconds"]
    parts.append(table(header, rows, numeric={1, 3, 4, 5}))
    if any("epoch" in e for e in t["history"]):
        parts.append(
            _chart(
                "chart-training-curves",
                lambda: plot_training_curves(t["history"]),
                "Loss and accuracy per epoch (history.json); dotted line: phase 2 begins",
            )
        )
    return '<section id="training">' + "".join(parts) + "</section>"


def evaluation_section(data: ReportData) -> str:
    s = data.record
    parts = ["<h2>Evaluation</h2>"]
    if not s.metrics:
        return '<section id="evaluation">' + parts[0] + _not_reached("Evaluation") + "</section>"
    candidate, baseline = s.metrics.get("candidate", {}), s.metrics.get("baseline", {})
    on = f" on the {esc(data.record.eval_split)} split" if data.record.eval_split else ""
    count = candidate.get("example_count")
    examples = f" ({count:g} examples)" if count is not None else ""
    parts.append(f"<p>Measured by TFMA{on}{examples}, with 95% confidence intervals.</p>")
    if not baseline:
        parts.append(f"<p>Baseline: {esc(s.baseline_text() or 'none')}.</p>")
    overall = sorted(n for n in candidate if "/class_" not in n)
    rows = [
        [
            esc(n),
            _number(candidate[n]),
            _number(baseline.get(n)),
            _signed(candidate[n] - baseline[n] if n in baseline else None),
        ]
        for n in overall
    ]
    parts.append("<h3>Candidate against baseline</h3>")
    parts.append(table(["metric", "candidate", "baseline", "difference"], rows, {1, 2, 3}))
    parts.append(per_class_html(data, candidate))
    if data.confusion is not None:
        parts.append(
            _chart(
                "confusion-matrix",
                lambda: plot_confusion_matrix(data.confusion, data.class_names),
                "Confusion matrix of the candidate on the evaluation split (TFMA)",
            )
        )
    parts.append(paired_html(s))
    parts.append(gate_html(data))
    parts.append(gallery_html(data.gallery))
    return '<section id="evaluation">' + "".join(parts) + "</section>"


def _thumbnails(entries: list[dict[str, Any]]) -> str:
    cells = []
    for e in entries:
        caption = f"true {e['true']}, predicted {e['predicted']} {e['probability']:.0%}"
        cells.append(
            f'<figure class="thumb"><img src="data:image/png;base64,{e["png"]}" width="96" '
            f'height="96" alt="{esc(caption)}"><figcaption>{esc(caption)}</figcaption></figure>'
        )
    return '<div class="row">' + "".join(cells) + "</div>"


def gallery_html(gallery: dict[str, list[dict[str, Any]]]) -> str:
    """The judged split's most confident mistakes, and per class its most confident correct
    predictions, as the model saw them (after the Transform graph)."""
    if not gallery:
        return ""
    mistakes, correct = gallery.get("mistakes", []), gallery.get("correct", [])
    parts = [f'<h3 id="mistakes">Most confident mistakes ({len(mistakes)})</h3>']
    parts.append(_thumbnails(mistakes) if mistakes else '<p class="na">No mistakes.</p>')
    if correct:
        parts.append('<h3 id="correct">Confident correct predictions, per class</h3>')
        parts.append(_thumbnails(correct))
    return "".join(parts)


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


def _signed(value: float | None) -> str:
    return "&ndash;" if value is None or np.isnan(value) else f"{value:+.4f}"


def top1_per_class(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(precision, recall) per class of the most probable class, the prediction that accuracy
    counts, from the confusion matrix; NaN where a class was never predicted or never seen."""
    hits = np.diag(matrix)
    with np.errstate(divide="ignore", invalid="ignore"):
        return hits / matrix.sum(axis=0), hits / matrix.sum(axis=1)


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
        + [_number(values[row], 0 if key == "examples" else 3) for key, values in columns.items()]
        for row, (i, name) in enumerate(zip(ids, names, strict=True))
    ]
    header = ["id", "class", *columns]
    bars = (columns["precision"], columns["recall"])
    note = "<p>Top-1: the most probable class is the prediction, as for accuracy.</p>"
    chart = _chart("chart-per-class", lambda: plot_per_class(*bars, names), caption)
    return (
        '<h3>Per class (candidate)</h3><div class="row">'
        + table(header, rows, set(range(2, len(header))))
        + chart
        + "</div>"
        + note
    )


def decision_text(data: ReportData) -> tuple[str, str]:
    """(css class, one sentence): the verdict, and what happened to serving."""
    s = data.record
    if s.blessed is None:
        failed = [step.name for step in s.steps if step.state == "failed"]
        if failed or data.error:
            where = f" at {failed[0]}" if failed else ""
            return "bad", f"No decision: the run failed{where} before the Evaluator judged a model."
        if s.status == "incomplete":
            return "bad", "No decision: the run stopped (killed, or still running)."
        return "neutral", "No decision: this run stopped before evaluation (--stop-after)."
    if s.blessed:
        verdict = "BLESSED: the candidate passed every rule of the gate."
    else:
        verdict = "NOT BLESSED: " + "; ".join(s.failures or ["a rule failed"]) + "."
    if s.random_weights == "fallback":
        verdict += " This model was trained from RANDOM weights (ImageNet weights unavailable)."
    elif s.random_weights == "chosen":
        verdict += " This model was trained from random weights (training.weights=none)."
    if s.already_served and not s.push_cached:
        serving = f" Nothing pushed: {s.baseline_text()}, already served."
    elif s.pushed_version and s.push_cached:
        serving = f" Serving version {s.pushed_version} (pushed by an earlier run; nothing new)."
    elif s.pushed_version:
        serving = f" Pushed as version {s.pushed_version}."
    elif s.blessed is False:
        serving = " Nothing pushed; the serving location is unchanged."
    else:
        serving = ""
    return ("good" if s.blessed else "bad"), verdict + serving


def decision_section(data: ReportData) -> str:
    s = data.record
    css, text = decision_text(data)
    parts = ["<h2>Decision</h2>", f'<p id="decision-text" class="verdict {css}">{esc(text)}</p>']
    if s.pushed_version:
        parts.append(
            f"<p>Version <strong>{esc(s.pushed_version)}</strong> at "
            f"<code>{esc(s.pushed_path)}</code></p>"
        )
    if data.error:
        parts.append(f"<h3>Error</h3><pre>{esc(data.error)}</pre>")
    elif s.status == "failed":
        parts.append("<p>The error is in the run's log, under the pipeline root's logs/.</p>")
    return '<section id="decision">' + "".join(parts) + "</section>"


def render(data: ReportData) -> str:
    s = run = data.record
    css, text = decision_text(data)
    sections = [
        steps_section(data),
        data_section(data),
        training_section(data),
        evaluation_section(data),
        decision_section(data),
    ]
    cached = (
        '<p class="meta">Nothing changed since the last run: every step was cached.</p>'
        if s.all_cached
        else ""
    )
    nav = " ".join(
        f'<a href="#{i}">{i.capitalize()}</a>'
        for i in ("steps", "data", "training", "evaluation", "decision")
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Run {esc(run.run_id)} &middot; {esc(data.pipeline_name)}</title>"
        f"<style>{_CSS}</style></head><body>"
        f'<header><h1>Run {esc(run.run_id)}</h1><p class="meta">Pipeline '
        f"{esc(data.pipeline_name)} &middot; started {esc(_when(run.started))} &middot; "
        f'status <span id="run-status">{esc(s.status)}</span></p>{cached}'
        f'<p id="verdict" class="verdict {css}">{esc(text)}</p><nav>{nav}</nav></header>'
        + "".join(sections)
        + "</body></html>"
    )
