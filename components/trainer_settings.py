"""What the pipeline hands the Trainer and the Tuner: the training options as the command line
validated them (components.settings.TrainingConfig, the same dataclass), and the facts of the data.

TFX carries a step's settings as a JSON `custom_config`; `TrainerSettings` is what goes in and,
rebuilt and checked again, what `run_fn` and `tuner_fn` read, so a setting is a typed attribute
everywhere instead of a `cfg["..."]` look-up.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from components.options import section_problems
from components.settings import FindingsConfig, TrainingConfig, TuningConfig


@dataclass(frozen=True)
class TrainerSettings:
    training: TrainingConfig
    image_size: int  # transform.image_size: the side of the images the model takes
    class_names: list[str]  # in label order: a label is a position in this list
    raw_image_key: str  # the encoded image's feature in ExampleGen's examples
    raw_label_key: str  # the label's feature there
    tuning: TuningConfig = field(default_factory=TuningConfig)
    findings: FindingsConfig = field(default_factory=FindingsConfig)
    judged_split: str = "eval"  # the split the gate judges (test when the data has one)

    def to_custom_config(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_custom_config(
        cls, custom_config: dict[str, Any], tuned: dict[str, Any] | None = None
    ) -> TrainerSettings:
        """The settings `to_custom_config` wrote, with `tuned` (the Tuner's best values) over
        the training options; raises ValueError naming every value that is not allowed."""
        values = dict(custom_config)
        try:
            training = TrainingConfig(**values.pop("training"))
            tuning = TuningConfig(**values.pop("tuning", {}))
            findings = FindingsConfig(**values.pop("findings", {}))
            settings = cls(
                training=dataclasses.replace(training, **(tuned or {})),
                tuning=tuning,
                findings=findings,
                **values,
            )
        except (KeyError, TypeError) as error:
            raise ValueError(
                f"The step's custom_config does not hold this version's trainer settings "
                f"({error}); it was written by another version of the pipeline. Compile and run "
                "the pipeline again with this version."
            ) from None
        problems = [
            *section_problems("training", settings.training),
            *section_problems("tuning", settings.tuning),
            *section_problems("findings", settings.findings),
        ]
        if problems:
            raise ValueError("Trainer settings not allowed: " + "; ".join(problems))
        return settings
