"""The run's page: one self-contained HTML file rendered from the run record and the page data.
Charts are PNGs inlined as data: URLs and the CSS is inline; a Content-Security-Policy forbids
every fetch, so the file opens the same offline and mailed. The evaluation section is built in
html_evaluation, from the blocks (tables, figures) of html_blocks."""

from __future__ import annotations

import time
from typing import Any

from pipeline.history.charts import (
    plot_examples_per_class,
    plot_image_sizes,
    plot_step_times,
    plot_training_curves,
)
from pipeline.history.console import accuracy_text
from pipeline.history.html_blocks import chart, esc, not_reached, number, table
from pipeline.history.html_evaluation import evaluation_section
from pipeline.history.html_findings import findings_section
from pipeline.history.page_data import SIZE_FEATURES, ReportData, SizeHistogram

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
.thumb:has(img.gradcam) { width: 200px; } .pair { gap: 8px; align-items: center; }
.thumb figcaption { font-size: 12px; overflow-wrap: anywhere; }
.row { display: flex; flex-wrap: wrap; gap: 8px 32px; align-items: flex-start; }
"""


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds)) if seconds else "unknown"


def steps_section(data: ReportData) -> str:
    r = data.record
    rows = [[esc(s.name), esc(s.state), number(s.seconds, 1)] for s in r.steps]
    parts = [
        "<h2>Steps</h2>",
        f"<p>{len(rows)} component(s), {r.seconds:.0f} s from start to end.</p>",
        '<div class="row">',
        table(["component", "state", "seconds"], rows, numeric={2}),
        chart("chart-step-times", lambda: plot_step_times(r.steps), "Time per component"),
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
            chart(
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
                chart(
                    "chart-examples-per-class",
                    lambda: plot_examples_per_class(counts),
                    "Examples per class and split (StatisticsGen)",
                )
            )
    else:
        parts.append(not_reached("Ingestion report (image folders only)"))
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
        + chart(
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
        return not_reached("Data validation")
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
        return '<section id="training">' + "".join(parts) + not_reached("Training") + "</section>"
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
                [esc(p.phase), "&ndash;", "&ndash;", "&ndash;", "&ndash;", number(p.seconds, 1)]
            )
            continue
        rows.append(
            [
                esc(p.phase),
                str(p.epochs),
                esc(", ".join(f"{r:.2g}" for r in p.learning_rates)),
                esc(accuracy_text(p.best_val_accuracy)),
                number(p.last_loss, 3),
                number(p.seconds, 1),
            ]
        )
    header = ["phase", "epochs", "learning rate", "best val accuracy", "last loss", "seconds"]
    parts.append(table(header, rows, numeric={1, 3, 4, 5}))
    if any("epoch" in e for e in t["history"]):
        parts.append(
            chart(
                "chart-training-curves",
                lambda: plot_training_curves(t["history"]),
                "Loss and accuracy per epoch (history.json); dotted line: phase 2 begins",
            )
        )
    return '<section id="training">' + "".join(parts) + "</section>"


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


def tflite_html(report: dict | None) -> str:
    """Each TensorFlow Lite variant's check against the SavedModel: published or refused."""
    if not report:
        return ""
    if report.get("skipped"):
        return (
            f'<h3 id="tflite">TensorFlow Lite</h3><p class="na">None: {esc(report["skipped"])}.</p>'
        )
    rows = [
        [
            esc(name),
            f"{v['agreement']:.1%}",
            number(v["max_probability_difference"], 3),
            f"{v['bytes'] / 1e6:.1f}",
            number(v["latency_ms"], 1),
            number(v["convert_seconds"], 1),
            '<span class="pass">published</span>'
            if v["published"]
            else f'<span class="fail">not published</span>: {esc(v.get("reason", ""))}',
        ]
        for name, v in report["variants"].items()
    ]
    header = ["variant", "top-1 agreement", "largest prob. diff.", "MB", "ms per image",
              "convert s", "result"]  # fmt: skip
    return (
        '<h3 id="tflite">TensorFlow Lite</h3>'
        f"<p>Each variant against the SavedModel on the first {report['checked_images']} images "
        f"of the {esc(report['judged_split'])} split, as the Transform graph decoded them; "
        f"published where they agree on at least {report['min_agreement']:.0%} "
        "(export.tflite_min_agreement). A variant takes decoded pixels: the version's "
        "tflite/report.json says how to make them.</p>" + table(header, rows, {1, 2, 3, 4, 5})
    )


def decision_section(data: ReportData) -> str:
    s = data.record
    css, text = decision_text(data)
    parts = ["<h2>Decision</h2>", f'<p id="decision-text" class="verdict {css}">{esc(text)}</p>']
    if s.pushed_version:
        parts.append(
            f"<p>Version <strong>{esc(s.pushed_version)}</strong> at "
            f"<code>{esc(s.pushed_path)}</code>, with its model card (model_card.html).</p>"
        )
    parts.append(tflite_html(s.tflite))
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
        findings_section(data),
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
        for i in ("steps", "data", "findings", "training", "evaluation", "decision")
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
