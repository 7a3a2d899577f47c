"""What each step does: image ingestion, data gate, preprocessing, model, training, evaluation."""

import os

# See pipeline/__init__.py: one Keras (tf_keras) for every module, set before TensorFlow loads.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

# Custom artifact types by their TYPE_NAME (`components.Name`): KFP v2 containers import the class
# by that path. Loaded on first use, so `import components.x` stays light.
_ARTIFACT_MODULES = {
    "IngestionReport": "components.image_example_gen",
    "DataGateResult": "components.data_gate",
}


def __getattr__(name: str):
    if name in _ARTIFACT_MODULES:
        import importlib

        return getattr(importlib.import_module(_ARTIFACT_MODULES[name]), name)
    raise AttributeError(f"module 'components' has no attribute {name!r}")
