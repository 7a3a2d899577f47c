"""training.warm_start=baseline: the model starts from the last blessed model's weights (TFX's
Trainer `base_model` input, which a resolver fills with the latest blessed model), for retraining
on new data, instead of from ImageNet's base and a new head."""

from __future__ import annotations

import os
from typing import Any

from components import export
from components import model as model_lib
from components.settings import TrainingConfig


class WarmStartError(ValueError):
    """training.warm_start=baseline cannot start from the last blessed model; the message says
    what differs."""


def warm_start(
    transfer: model_lib.TransferModel,
    training: TrainingConfig,
    base_model: str | None,
    class_names: list[str],
    image_size: int,
) -> dict[str, Any]:
    """training.warm_start=baseline: every weight of the model (the frozen base, the head, the
    fine-tuned blocks) set to the last blessed model's (TFX's Trainer `base_model`), with its
    folded temperature undone. Returns what training started from, for history.json."""
    if training.warm_start == "off":
        return {"from": "base_weights"}
    if base_model is None:
        return {"from": "base_weights", "why": "no model blessed yet"}
    baseline = export.read_model_metadata(base_model)
    ours = {"class_names": class_names, "image_size": image_size, "head": training.head}
    theirs = {
        "class_names": baseline.get("class_names"),
        "image_size": baseline.get("image_size"),
        "head": baseline.get("training_config", {}).get("head"),
    }
    if training.head == "flatten":
        ours["head_units"] = training.head_units
        theirs["head_units"] = baseline.get("training_config", {}).get("head_units")
    differ = [
        f"{key} {theirs[key]!r} there, {ours[key]!r} here"
        for key in ours
        if ours[key] != theirs[key]
    ]
    if differ:
        raise WarmStartError(
            f"training.warm_start=baseline: the last blessed model ({base_model}) is not this "
            f"model: {'; '.join(differ)}. Its weights cannot be this model's starting point; "
            "set training.warm_start=off to train this one from ImageNet."
        )
    status = transfer.model.load_weights(os.path.join(base_model, "variables", "variables"))
    status.assert_existing_objects_matched()  # every weight of this model came from there
    temperature = (baseline.get("calibration") or {}).get("temperature")
    if temperature:
        model_lib.fold_temperature(transfer.model, 1 / temperature)
    return {"from": base_model, "temperature_undone": temperature}
