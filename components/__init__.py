"""What each step does: image ingestion, data gate, preprocessing, model, training, evaluation."""

import os

# The one place this is set. TF 2.16's tf.keras is Keras 3 unless TF_USE_LEGACY_KERAS is set
# before TensorFlow first loads Keras; TFX 1.16, tf.Transform and TFMA need Keras 2 (tf_keras).
# Every entry point imports this package before TensorFlow: `python -m pipeline` and the Airflow
# DAG through pipeline/__init__.py, the steps' code (components.x) directly, the tests through
# conftest.py, the benchmarks through benchmarks/__init__.py. Processes they start inherit it.
# (A KFP container starts in TFX's launcher, which loads TensorFlow first: the Dockerfile sets it.)
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
