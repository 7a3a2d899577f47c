"""How a setting is declared: `option(default, help, ...)` makes a dataclass field that carries
its help and the values it allows, so one declaration drives `--help`, YAML and `--set`
loading, and validation wherever the setting is used. Standard library only."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import field
from typing import Any, TypeVar

S = TypeVar("S")  # a section: one of the dataclasses of components.settings


def option(
    default: Any,
    help: str,
    *,
    choices: tuple[str, ...] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    below: float | None = None,
    check: Callable[[Any], str | None] | None = None,
) -> Any:
    """A config field whose help text is shown by `python -m pipeline run --help`, with the
    values it allows: `choices`, a range (`minimum`/`maximum` inclusive, `above`/`below`
    exclusive), and `check`, a function that returns what is wrong with a value (or None)."""
    metadata = {
        "help": help,
        "choices": choices,
        "minimum": minimum,
        "maximum": maximum,
        "above": above,
        "below": below,
        "check": check,
    }
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def allowed_values(metadata: Any) -> str:
    """The values an option allows, in words (for errors and --help); '' when any value of its
    type goes."""
    if metadata.get("choices"):
        return "one of " + ", ".join(metadata["choices"])
    bounds = []
    for key, words in (
        ("minimum", ">= "),
        ("above", "> "),
        ("maximum", "<= "),
        ("below", "< "),
    ):
        if metadata.get(key) is not None:
            bounds.append(f"{words}{metadata[key]:g}")
    return " and ".join(bounds)


def option_problem(key: str, value: Any, metadata: Any) -> str | None:
    """What is wrong with one option's value, in one line that names the allowed values."""
    choices = metadata.get("choices")
    if choices and value not in choices:
        return f"{key}={value!r} is not allowed; use {allowed_values(metadata)}"
    out_of_range = (
        (metadata.get("minimum") is not None and value < metadata["minimum"])
        or (metadata.get("maximum") is not None and value > metadata["maximum"])
        or (metadata.get("above") is not None and value <= metadata["above"])
        or (metadata.get("below") is not None and value >= metadata["below"])
    )
    if out_of_range:
        return f"{key}={value!r} is out of range; allowed: {allowed_values(metadata)}"
    check = metadata.get("check")
    problem = check(value) if check else None
    return f"{key}={value!r}: {problem}" if problem else None


def section_problems(section_name: str, section: Any) -> list[str]:
    """Every option of one section (a TrainingConfig, say) whose value its declaration does not
    allow, one line each, named `section_name.option`."""
    problems = []
    for f in dataclasses.fields(section):
        problem = option_problem(f"{section_name}.{f.name}", getattr(section, f.name), f.metadata)
        if problem:
            problems.append(problem)
    return problems


def checked_section(
    section_type: type[S], section_name: str, values: dict[str, Any], error: type = ValueError
) -> S:
    """A section rebuilt from the values it was handed as (a step's JSON parameter), checked
    again where it is used: `error` names every value its declaration does not allow."""
    section = section_type(**values)
    problems = section_problems(section_name, section)
    if problems:
        raise error(f"{section_name.capitalize()} settings not allowed: " + "; ".join(problems))
    return section


def not_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


_NAMED_COLOURS = {"white": (255, 255, 255), "black": (0, 0, 0)}


def background_rgb(text: str) -> tuple[int, int, int]:
    """transform.background as (R, G, B): `white`, `black`, `#rrggbb` or `R,G,B` (0-255 each)."""
    value = text.strip().lower()
    if value in _NAMED_COLOURS:
        return _NAMED_COLOURS[value]
    if re.fullmatch(r"#[0-9a-f]{6}", value):
        return tuple(int(value[i : i + 2], 16) for i in (1, 3, 5))
    parts = [p.strip() for p in value.split(",")]
    if len(parts) == 3 and all(p.isdigit() and int(p) <= 255 for p in parts):
        return tuple(int(p) for p in parts)
    raise ValueError("use white, black, #rrggbb (e.g. #808080) or R,G,B from 0 to 255")
