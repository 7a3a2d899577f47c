"""The page's data findings (components/data_findings.py): the suspected label errors as a
gallery (the image, its given and suggested class), the near-copy pairs side by side with a leak
into the judged split first and loudest."""

from __future__ import annotations

from typing import Any

from pipeline.history.html_blocks import esc, not_reached
from pipeline.history.page_data import ReportData


def findings_section(data: ReportData) -> str:
    found = data.findings
    parts = ["<h2>Data findings</h2>"]
    if not found:
        return '<section id="findings">' + parts[0] + not_reached("The Trainer") + "</section>"
    thumbnails = found.get("thumbnails", {})
    parts.append(_label_issues_html(found.get("label_issues"), thumbnails))
    parts.append(_near_copies_html(found.get("near_duplicates"), thumbnails))
    return '<section id="findings">' + "".join(parts) + "</section>"


def _label_issues_html(issues: dict[str, Any] | None, thumbnails: dict[str, str]) -> str:
    parts = ['<h3 id="label-issues">Suspected label errors</h3>']
    if issues is None:
        return parts[0] + '<p class="na">Not looked for (findings.label_issues=off).</p>'
    if issues.get("not_computed"):
        return parts[0] + f'<p class="na">Not looked for: {esc(issues["not_computed"])}.</p>'
    total = issues.get("suspect_count", len(issues["suspects"]))
    parts.append(
        f"<p>{total} of {issues['examined']} {esc(' + '.join(issues['splits']))} images have a "
        "label the data does not support: heads fitted on the other images "
        f"({issues['folds']} folds over the frozen ImageNet base's features, right "
        f"{issues.get('out_of_fold_accuracy', 0):.0%} of the time) give their class a low "
        "probability (confident learning). Worst first; check each image and fix its label, "
        "or leave it when the image is only hard. <code>python -m pipeline findings</code> "
        "lists them all.</p>"
    )
    cells = []
    for s in issues["suspects"]:
        key = f"{s['split']}/{s['path']}"
        caption = (
            f"{s['path']} ({s['split']}): labelled {s['given']} \u2192 looks like {s['suggested']}"
        )
        cells.append(_thumbnail(thumbnails.get(key), caption, s["score"]))
    return "".join(parts) + '<div class="row">' + "".join(cells) + "</div>"


def _near_copies_html(copies: dict[str, Any] | None, thumbnails: dict[str, str]) -> str:
    parts = ['<h3 id="near-copies">Near-copies</h3>']
    if copies is None:
        return parts[0] + '<p class="na">Not looked for (findings.near_duplicates=off).</p>'
    if copies.get("not_computed"):
        return parts[0] + f'<p class="na">Not looked for: {esc(copies["not_computed"])}.</p>'
    judged = esc(copies["judged_split"])
    parts.append(
        f"<p>{copies['pairs_found']} pair(s) of images whose base features are nearly the same "
        f"(cosine similarity at least {copies['threshold']:g}), {copies['across_splits']} "
        "across splits. Remove one image of each pair, or keep both in one split.</p>"
    )
    if copies["leaks"]:
        parts.append(
            f'<p class="warning" id="leak">Leak: {copies["leaks"]} image(s) of the judged split '
            f"({judged}) have a near-copy in train, so the judged accuracy counts images the "
            "model trained on.</p>"
        )
    rows = []
    for pair in copies["pairs"]:
        sides = []
        for side in (pair["a"], pair["b"]):
            key = f"{side['split']}/{side['path']}"
            caption = f"{side['path']} ({side['split']}, {side['class']})"
            sides.append(_thumbnail(thumbnails.get(key), caption))
        tag = "leak, " if pair["leak"] else ""
        rows.append(
            '<div class="row pair">'
            + "".join(sides)
            + f"<p>{esc(tag)}similarity {pair['similarity']:.4f}</p></div>"
        )
    return "".join(parts) + "".join(rows)


def _thumbnail(png: str | None, caption: str, score: float | None = None) -> str:
    text = caption if score is None else f"{caption} (score {score:.3f})"
    image = (
        f'<img src="data:image/png;base64,{png}" width="96" height="96" alt="{esc(text)}">'
        if png
        else ""
    )
    return f'<figure class="thumb">{image}<figcaption>{esc(text)}</figcaption></figure>'
