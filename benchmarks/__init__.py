"""Benchmarks: `python -m benchmarks.NAME` (README.md says which, and what they measure)."""

import components  # noqa: F401  sets TF_USE_LEGACY_KERAS before a benchmark loads TensorFlow
