"""What each step does: image ingestion, data gate, preprocessing, model, training, evaluation."""

import os

# See pipeline/__init__.py: one Keras (tf_keras) for every module, set before TensorFlow loads.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
