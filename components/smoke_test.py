"""The push's smoke test, what TFX's InfraValidator does without a model server: load the
candidate SavedModel in a fresh process, as a server would, and call both serving signatures
on a few examples of the judged split.

    python -m components.smoke_test MODEL_DIR SAMPLE_JSON

Exit status 0 when every check passed; otherwise 1, with one line per failed check on stderr.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time

PROBABILITY_TOLERANCE = 1e-3


def check_model(model_dir: str, sample: dict) -> list[str]:
    """Every check that fails, as a sentence; an empty list when the model answered well."""
    import numpy as np
    import tensorflow as tf

    examples_signature, images_signature = sample["signatures"]  # names from components.export
    try:
        model = tf.saved_model.load(model_dir)
    except Exception as error:  # any loading failure is the finding
        return [f"the SavedModel at {model_dir} does not load: {type(error).__name__}: {error}"]
    problems = []
    missing = [s for s in (examples_signature, images_signature) if s not in model.signatures]
    if missing:
        return [f"the SavedModel has no {' or '.join(missing)} signature"]
    class_names = sample["class_names"]
    expected = np.array(sample["probabilities"])
    examples = [base64.b64decode(e) for e in sample["examples"]]
    images = [base64.b64decode(i) for i in sample["images"]]
    answers = {}
    for name, argument, values in (
        (examples_signature, "examples", examples),
        (images_signature, "images", images),
    ):
        try:
            outputs = model.signatures[name](**{argument: tf.constant(values)})
            answers[name] = outputs
        except Exception as error:
            first = (str(error).strip().splitlines() or [""])[0][:200]
            problems.append(
                f"{name} failed on {len(values)} inputs: {type(error).__name__}: {first}"
            )
            continue
        problems += _check_outputs(name, outputs, expected=expected, class_names=class_names)
    if hasattr(model, "class_names"):
        served = [n.decode() for n in model.class_names.numpy()]
        if served != class_names:
            problems.append(f"the model's class names {served} are not {class_names}")
    return problems


def _check_outputs(name: str, outputs: dict, expected, class_names: list[str]) -> list[str]:
    import numpy as np

    if "probabilities" not in outputs:
        return [f"{name} returns no probabilities (outputs: {sorted(outputs)})"]
    probabilities = outputs["probabilities"].numpy()
    if probabilities.shape != expected.shape:
        return [
            f"{name} returned probabilities of shape {probabilities.shape}, not {expected.shape}"
        ]
    problems = []
    sums = probabilities.sum(axis=1)
    if not np.all(np.isfinite(probabilities)) or np.any(abs(sums - 1) > PROBABILITY_TOLERANCE):
        problems.append(f"{name}'s probabilities do not sum to 1 (sums {np.round(sums, 4)})")
    if np.any(abs(probabilities - expected) > PROBABILITY_TOLERANCE):
        worst = float(abs(probabilities - expected).max())
        problems.append(
            f"{name} disagrees with the predictions the model was judged on (largest "
            f"difference {worst:.4f})"
        )
    if "class_name" in outputs:
        names = [n.decode() for n in outputs["class_name"].numpy()]
        wanted = [class_names[i] for i in expected.argmax(axis=1)]
        if names != wanted:
            problems.append(f"{name} names the classes {names}, expected {wanted}")
    return problems


def run_smoke_test(
    model_dir: str, sample_path: str, timeout: float = 600
) -> tuple[list[str], float]:
    """Runs the checks in a fresh Python process; returns (problems, seconds)."""
    started = time.time()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "components.smoke_test", model_dir, sample_path],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return [f"the model did not answer within {timeout:.0f} s"], time.time() - started
    problems = [line[2:] for line in result.stdout.splitlines() if line.startswith("- ")]
    if result.returncode != 0 and not problems:
        tail = result.stderr.strip().splitlines()[-1:] or ["no output"]
        problems = [f"the smoke-test process failed (status {result.returncode}): {tail[0]}"]
    return problems, time.time() - started


def main(argv: list[str]) -> int:
    import tensorflow as tf

    model_dir, sample_path = argv
    with tf.io.gfile.GFile(sample_path) as f:
        sample = json.load(f)
    problems = check_model(model_dir, sample)
    for problem in problems:
        print(f"- {problem}")
    return 1 if problems else 0


def _skip_keras() -> None:
    """Keeps `import tensorflow` from loading Keras, which is not part of the check.

    TensorFlow's __init__ eagerly imports Keras's optimizers (tf_keras, or Keras 3 without
    TF_USE_LEGACY_KERAS) only so that tf.saved_model.load revives saved optimizers as Keras
    objects, and passes on an ImportError; with these entries it gets one at once. That is about
    1.5 s of the fresh process's 7 s. The signatures need no Keras, as a model server has none:
    the exported model loads and answers the same without it.
    """
    for name in ("tf_keras.src.optimizers", "keras.src.optimizers"):
        sys.modules.setdefault(name, None)


if __name__ == "__main__":
    _skip_keras()
    status = main(sys.argv[1:])
    # The verdict is on stdout and nothing is left to write; skip the interpreter's shutdown with
    # TensorFlow loaded (tearing down its modules: about 1 s), which is not part of the check.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
