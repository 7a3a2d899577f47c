"""What runs when and where: the pipeline's DAG, its configuration, runners and command line."""

import components  # noqa: F401  first: sets TF_USE_LEGACY_KERAS before TensorFlow loads
