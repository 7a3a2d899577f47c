"""The Evaluator's EvalConfig: what is measured, how it is sliced, and what blesses a model."""

from __future__ import annotations

import tensorflow_model_analysis as tfma

from components.export import EXAMPLES_SIGNATURE, TRANSFORM_SIGNATURE

ACCURACY = "sparse_categorical_accuracy"
TOP_1 = '"top_k": 1, "thresholds": [0.0]'  # other classes' scores become -inf under top_k


def make_eval_config(
    num_classes: int, min_accuracy: float, max_accuracy_drop: float, label_key: str = "label"
) -> tfma.EvalConfig:
    """Accuracy gates the blessing: a value threshold always, and a change threshold against
    the baseline (TFMA drops it on the first run, when there is no baseline yet)."""
    accuracy_threshold = tfma.MetricThreshold(
        value_threshold=tfma.GenericValueThreshold(lower_bound={"value": min_accuracy}),
        change_threshold=tfma.GenericChangeThreshold(
            direction=tfma.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -max_accuracy_drop},
        ),
    )
    per_class = tfma.BinarizationOptions(class_ids={"values": list(range(num_classes))})
    return tfma.EvalConfig(
        model_specs=[
            tfma.ModelSpec(
                signature_name=EXAMPLES_SIGNATURE,
                preprocessing_function_names=[TRANSFORM_SIGNATURE],
                label_key=label_key,
                prediction_key="probabilities",
            )
        ],
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[label_key])],
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(class_name="ExampleCount"),
                    tfma.MetricConfig(
                        class_name="SparseCategoricalAccuracy",
                        # The gate judges the whole split; per-class slices are for reading.
                        per_slice_thresholds=[
                            tfma.PerSliceMetricThreshold(
                                slicing_specs=[tfma.SlicingSpec()], threshold=accuracy_threshold
                            )
                        ],
                    ),
                    tfma.MetricConfig(class_name="MultiClassConfusionMatrixPlot"),
                ]
            ),
            tfma.MetricsSpec(
                # A class counts as predicted when it is the top-1 class: TFMA's default, a
                # probability of at least 0.5, says little for a model unsure among N classes.
                metrics=[
                    tfma.MetricConfig(class_name="Precision", config=TOP_1),
                    tfma.MetricConfig(class_name="Recall", config=TOP_1),
                ],
                binarize=per_class,
            ),
            tfma.MetricsSpec(
                metrics=[tfma.MetricConfig(class_name="AUC")],
                binarize=per_class,
                aggregate=tfma.AggregationOptions(
                    macro_average=True, class_weights={i: 1.0 for i in range(num_classes)}
                ),
            ),
        ],
    )
