"""Which model the candidate is compared with: the latest blessed model other than itself."""

from __future__ import annotations

from tfx import types
from tfx.dsl.components.common import resolver

_BLESSED = "blessed"
_MODEL_ID = "current_model_id"


class LatestBlessedOtherModelStrategy(resolver.ResolverStrategy):
    """TFX's LatestBlessedModelStrategy, minus the candidate itself.

    When nothing changed, the Trainer's cached model is the model that was blessed last time.
    TFX's strategy would then compare it with itself, re-evaluate and push it again as a new
    version; leaving it out keeps the Evaluator's inputs as they were, so the whole re-run is
    cached and nothing is pushed twice.

    Inputs: `model` and `model_blessing` (all of the pipeline's), `candidate` (the Trainer's).
    """

    def resolve_artifacts(
        self, store, input_dict: dict[str, list[types.Artifact]]
    ) -> dict[str, list[types.Artifact]]:
        candidate = input_dict.get("candidate", [])
        excluded = {artifact.id for artifact in candidate}
        blessings = {
            b.get_int_custom_property(_MODEL_ID): b
            for b in input_dict.get("model_blessing", [])
            if b.get_int_custom_property(_BLESSED) == 1
        }
        for model in sorted(input_dict.get("model", []), key=lambda a: a.id, reverse=True):
            if model.id in blessings and model.id not in excluded:
                return {
                    "model": [model],
                    "model_blessing": [blessings[model.id]],
                    "candidate": candidate,
                }
        return {"model": [], "model_blessing": [], "candidate": candidate}
