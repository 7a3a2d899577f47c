"""What runs when and where: the pipeline's DAG, its configuration, runners and command line."""

import os

# TF 2.16's tf.keras is Keras 3 unless this is set before TensorFlow first loads Keras; TFX 1.16,
# tf.Transform and TFMA need Keras 2 (tf_keras). Setting it here covers every entry point.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
