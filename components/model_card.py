"""The model card of a candidate (Mitchell et al., 2019): what it was trained on, how, how it did,
what the gate decided, and what it should not be used for, written by the Judge from the run's
own records (none of it typed by hand) and published by the Pusher in every served version as
model_card.md and model_card.html.

TFX's model-card generator is deprecated (model-card-toolkit is archived and pins TFMA < 0.42),
so the card is built here from the same files the report reads: the DataGate's counts, the
ingestion report, the Trainer's history.json (phases, findings, calibration) and the Judge's
evidence and rules.
"""

from __future__ import annotations

from typing import Any

from components.intervals import Estimate

FEW_EXAMPLES = 10  # a class judged on fewer test images than this gets a limitation line
POOR_CALIBRATION = 0.05  # ECE above this: confidences are called out as unreliable


def _estimate(e: dict[str, Any] | None) -> str:
    """A saved Estimate's fields as its text, '-' when there is none."""
    return Estimate(**e).text() if e else "-"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def data_lines(
    source: str,
    counts: dict[str, Any] | None,
    ingestion: dict[str, Any] | None,
    findings: dict[str, Any],
) -> list[str]:
    lines = ["## Data", "", f"- Source: `{source}`"]
    if counts:
        classes = counts["classes"]
        per_split = counts["examples_per_split_and_class"]
        lines.append(
            f"- {counts['examples']} examples in {len(classes)} classes, split "
            + ", ".join(f"{s} {n}" for s, n in counts["examples_per_split"].items())
        )
        lines += [
            "",
            *_table(
                ["class", *per_split],
                [[name, *(per_split[s].get(name, 0) for s in per_split)] for name in classes],
            ),
            "",
        ]
    if ingestion:
        quarantined = ingestion.get("quarantined", [])
        lines.append(f"- Quarantined files (not trained on): {len(quarantined)}")
        lines += [f"  - `{q['path']}`: {q['reason']}" for q in quarantined[:10]]
        duplicates = ingestion.get("duplicates") or {}
        if duplicates:
            lines.append(
                f"- Exact duplicates: {len(duplicates.get('across_classes', []))} under two "
                f"classes, {len(duplicates.get('across_splits', []))} across splits"
            )
    issues = findings.get("label_issues") or {}
    if issues.get("not_computed"):
        lines.append(f"- Suspected label errors: not looked for ({issues['not_computed']})")
    elif issues:
        lines.append(
            f"- Suspected label errors: {issues['suspects']} of {issues['examined']} train and "
            f"eval images (confident learning; the heads judging them were right "
            f"{issues['out_of_fold_accuracy']:.0%} of the time out of fold)"
        )
    copies = findings.get("near_duplicates") or {}
    if copies.get("not_computed"):
        lines.append(f"- Near-copies: not looked for ({copies['not_computed']})")
    elif copies:
        lines.append(
            f"- Near-copies (base-feature cosine similarity >= {copies['threshold']:g}): "
            f"{copies['pairs_found']} pairs, {copies['across_splits']} across splits, "
            f"{copies['leaks']} between the judged split ({copies['judged_split']}) and train"
        )
    return [*lines, ""]


def training_lines(training: dict[str, Any]) -> list[str]:
    config = training.get("training_config", {})
    lines = [
        "## Model and training",
        "",
        f"- Base: VGG16 without its top, {training.get('base_weights', '?')}",
        f"- Head: `{config.get('head', '?')}`; images resized to {training.get('image_size')} px",
        f"- Classes, in label order: {', '.join(training.get('class_names', []))}",
    ]
    for phase in ("phase1", "phase2"):
        epochs = [e for e in training.get("history", []) if e.get("phase") == phase]
        if epochs:
            best = max((e.get("val_accuracy", 0.0) for e in epochs), default=0.0)
            seconds = sum(e.get("seconds", 0.0) for e in epochs)
            what = "head on the frozen base" if phase == "phase1" else "top block(s) unfrozen"
            lines.append(
                f"- {phase} ({what}): {len(epochs)} epoch(s), best validation accuracy "
                f"{best:.3f}, {seconds:.0f} s"
            )
    keys = ("epochs", "learning_rate", "fine_tune_epochs", "fine_tune_learning_rate",
            "batch_size", "augment", "class_weight", "seed")  # fmt: skip
    lines.append("- Settings: " + ", ".join(f"{k} {config[k]}" for k in keys if k in config))
    calibrated = training.get("calibration") or {}
    if "temperature" in calibrated:
        lines.append(
            f"- Calibration: temperature {calibrated['temperature']:.3g} fitted on "
            f"{calibrated['fitted_on']} ({calibrated['images']} images), folded into the output"
        )
    elif calibrated:
        lines.append(f"- Calibration: none ({calibrated['not_fitted']})")
    return [*lines, ""]


def evaluation_lines(judgement: dict[str, Any]) -> list[str]:
    evidence, split = judgement["evidence"], judgement.get("split", "")
    lines = [
        "## Evaluation",
        "",
        f"On the {split} split, which training never read (95% intervals: Wilson for "
        "proportions, bootstrap for AUC).",
        "",
        f"- Accuracy: {_estimate(evidence['accuracy'])}",
        f"- Macro AUC: {_estimate(evidence.get('auc'))}",
    ]
    found = evidence.get("calibration") or {}
    if found:
        ece = f"- Expected calibration error: {found['candidate']['ece']:.3f}"
        if "candidate_before_temperature" in found:
            ece += (
                f" (before temperature scaling {found['candidate_before_temperature']['ece']:.3f})"
            )
        lines.append(ece)
    names = evidence["class_names"]
    rows = [
        [name, _estimate(r), _estimate(p) if p else "-"]
        for name, r, p in zip(
            names,
            evidence["recall"],
            evidence.get("precision") or [None] * len(names),
            strict=True,
        )
    ]
    lines += ["", *_table(["class", "recall", "precision"], rows), ""]
    lines.append(f"- Baseline: {evidence.get('baseline') or 'none'}")
    paired = evidence.get("paired")
    if paired:
        lines.append(
            f"- Against the baseline, same images: accuracy difference {paired['difference']:+.3f} "
            f"(95% CI {paired['lower']:+.2f} to {paired['upper']:+.2f}); fixed "
            f"{paired['fixed']}, broken {paired['broken']}"
        )
    verdict = judgement["judgement"]
    lines += ["", "## Decision", ""]
    lines.append("**Blessed**" if verdict["blessed"] else "**Not blessed**")
    lines.append("")
    rules = verdict.get("rules") or []
    if rules:
        result = {True: "pass", False: "FAIL", None: "not applied"}
        lines += _table(
            ["rule", "option", "value", "result"],
            [[r["rule"], f"`{r['option']}`", r["value"], result[r["passed"]]] for r in rules],
        )
    return [*lines, ""]


def limitation_lines(
    judgement: dict[str, Any], training: dict[str, Any], findings: dict[str, Any]
) -> list[str]:
    """Intended use and limitations, each from a measurement."""
    evidence = judgement["evidence"]
    names = evidence["class_names"]
    lines = [
        "## Intended use and limitations",
        "",
        f"- Classifies an image into one of {len(names)} classes ({', '.join(names)}). It "
        "answers one of them for any image, including images of none: it has no 'other' class.",
        f"- Input: encoded JPEG, PNG, GIF or BMP images; the model decodes and resizes them to "
        f"{training.get('image_size')} px itself (signatures in assets.extra/model_metadata.json).",
        "- TensorFlow Lite variants, where published, are in tflite/ with each one's agreement "
        "with this model on the judged split (tflite/report.json); they take decoded pixels.",
    ]
    for name, count, recall in zip(
        names, evidence["examples_per_class"], evidence["recall"], strict=True
    ):
        if count < FEW_EXAMPLES:
            lines.append(
                f"- `{name}` was judged on only {count} image(s): its recall, "
                f"{_estimate(recall)}, is known only roughly."
            )
    worst = min(zip(evidence["recall"], names, strict=True), key=lambda r: r[0]["value"])
    lines.append(f"- Weakest class: `{worst[1]}`, recall {_estimate(worst[0])}.")
    found = evidence.get("calibration") or {}
    if found and found["candidate"]["ece"] > POOR_CALIBRATION:
        lines.append(
            f"- Its confidences are off by {found['candidate']['ece']:.2f} on average (ECE): do "
            "not read a probability as how often it is right."
        )
    copies = findings.get("near_duplicates") or {}
    if copies.get("leaks"):
        lines.append(
            f"- {copies['leaks']} image(s) of the judged split have a near-copy in train: the "
            "accuracy above may be optimistic."
        )
    issues = findings.get("label_issues") or {}
    if issues.get("suspects"):
        share = issues["suspects"] / max(issues["examined"], 1)
        lines.append(
            f"- {share:.0%} of the train and eval images have a suspected wrong label "
            "(most may be only hard images): the model may have learnt some wrong labels."
        )
    if evidence.get("weights_warning"):
        lines.append(f"- {evidence['weights_warning']}")
    return [*lines, ""]


def model_card_markdown(
    *,
    title: str,
    model_id: int,
    judgement: dict[str, Any],
    training: dict[str, Any],
    data_source: str,
    counts: dict[str, Any] | None,
    ingestion: dict[str, Any] | None,
) -> str:
    findings = training.get("findings") or {}
    lines = [
        f"# Model card: {title}",
        "",
        f"Model artifact {model_id}, fingerprint `{judgement.get('fingerprint', '')[:16]}`. "
        "Written by the pipeline from this run's records; nothing here was typed by hand.",
        "",
        *training_lines(training),
        *data_lines(data_source, counts, ingestion, findings),
        *evaluation_lines(judgement),
        *limitation_lines(judgement, training, findings),
    ]
    return "\n".join(lines)


def to_html(markdown_text: str, title: str) -> str:
    """The card as one self-contained HTML page (Python-Markdown, with tables)."""
    import html

    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables"])
    style = (
        "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;"
        "line-height:1.45}table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;"
        "padding:3px 10px 3px 0;text-align:left}code{font-size:90%}"
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>'
        f"{html.escape(title)}</title><style>{style}</style></head><body>{body}</body></html>"
    )
