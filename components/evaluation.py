"""The Evaluator's EvalConfig: what is measured, with which confidence intervals, how it is
sliced. The blessing is decided by the Judge step (components/judge.py) from these metrics."""

from __future__ import annotations

import tensorflow_model_analysis as tfma

from components.export import EXAMPLES_SIGNATURE, TRANSFORM_SIGNATURE

ACCURACY = "sparse_categorical_accuracy"
TOP_1 = '"top_k": 1, "thresholds": [0.0]'  # other classes' scores become -inf under top_k


def make_eval_config(
    num_classes: int, label_key: str = "label", confidence_intervals: bool = True
) -> tfma.EvalConfig:
    """Accuracy, per-class precision and recall, AUC and the confusion matrix, each with a 95%
    confidence interval. No thresholds: TFMA 0.47 would judge the point estimate, so the Judge
    decides instead, and without thresholds the Evaluator's own blessing stays unset (never
    `blessed`), so the baseline resolver reads the Judge's alone.

    Intervals by jackknife, not bootstrap: TFMA's delete-d jackknife computes the metrics
    20 more times over partitions of the data, its Poisson bootstrap 20 more times over the
    whole data; the jackknife is the cheaper of the two for the same number of replicates.
    Either way TFMA builds 20 more Beam branches: on 2 cores the sample's 42 test examples took
    94 s instead of 6.7 s (benchmarks/gate_cost.py; evaluation.tfma_confidence_intervals)."""
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
        options=tfma.Options(
            compute_confidence_intervals={"value": confidence_intervals},
            confidence_intervals=tfma.ConfidenceIntervalOptions(
                method=tfma.ConfidenceIntervalOptions.JACKKNIFE
            ),
        ),
        metrics_specs=[
            tfma.MetricsSpec(
                metrics=[
                    tfma.MetricConfig(class_name="ExampleCount"),
                    tfma.MetricConfig(class_name="SparseCategoricalAccuracy"),
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
