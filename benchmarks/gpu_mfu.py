"""GPU: Trainer images/s and model FLOPs utilization for full VGG16 fine-tuning in mixed precision.

Builds the project's model (`components.model.build_transfer_model`, random weights), unfreezes
the whole base, sets mixed precision the way the Trainer does (`trainer.use_mixed_precision`),
compiles with `model.compile_model` and fits on synthetic uint8 images batched by
`trainer.training_batches`. After warm-up steps, it times `--windows` windows of `--steps`
steps each and reports the median. MFU = images/s x training FLOPs per image / peak FLOP/s,
with training FLOPs = 3 x forward (VGG16 forward: 15.35 G multiply-adds = 30.7 GFLOPs at
224 px, scaled by (size/224)^2; the head's share is under 0.2 % and left out).
Designed to finish in well under 10 minutes on one H100. `--dry-run`: tiny sizes on CPU.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import tensorflow as tf
import tf_keras as keras

from benchmarks import common
from components import model as model_lib
from components import trainer

NUM_CLASSES = 10


class StepTimer(keras.callbacks.Callback):
    """Wall time of each window of `steps` batches, after `warmup` batches."""

    def __init__(self, warmup: int, steps: int):
        super().__init__()
        self.warmup, self.steps = warmup, steps
        self.windows: list[float] = []
        self._start = 0.0

    def on_train_batch_end(self, batch, logs=None):
        done = batch + 1
        if done >= self.warmup and (done - self.warmup) % self.steps == 0:
            now = time.perf_counter()
            if done > self.warmup:
                self.windows.append(now - self._start)
            self._start = now


def measure(size: int, batch: int, warmup: int, steps: int, windows: int, mixed: str) -> dict:
    mixed_on = trainer.use_mixed_precision(mixed)
    transfer = model_lib.build_transfer_model(size, NUM_CLASSES, model_lib.BaseWeights(None, "x"))
    transfer.base.trainable = True  # full fine-tuning: every layer learns
    model_lib.compile_model(transfer.model, 1e-5)
    rng = np.random.default_rng(0)
    count = batch * 8
    pixels = rng.integers(0, 256, size=(count, size, size, 3), dtype=np.uint8)
    labels = rng.integers(0, NUM_CLASSES, size=(count,), dtype=np.int64)
    images = tf.data.Dataset.from_tensor_slices((pixels, labels)).cache().repeat()
    batches = trainer.training_batches(images, batch, 0, augment_images=False)
    timer = StepTimer(warmup, steps)
    total = warmup + steps * windows
    transfer.model.fit(batches, steps_per_epoch=total, epochs=1, callbacks=[timer], verbose=0)
    rates = [batch * steps / seconds for seconds in timer.windows]
    return {"mixed_precision": mixed_on, "window_images_per_s": rates}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_gpu_timing_arguments(parser)
    parser.add_argument("--mixed-precision", default="on", choices=["on", "off", "auto"])
    parser.add_argument("--xla", action="store_true", help="XLA auto-clustering (not the default)")
    args = parser.parse_args(argv)
    common.shrink_for_dry_run(args)
    if args.dry_run:
        args.mixed_precision = "off"
    if args.xla:
        tf.config.optimizer.set_jit(True)
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and not args.dry_run:
        parser.error("no GPU visible to TensorFlow; use --dry-run to check the script on a CPU")
    result = measure(
        args.image_size,
        args.batch_size,
        args.warmup_steps,
        args.steps,
        args.windows,
        args.mixed_precision,
    )
    rate = statistics.median(result["window_images_per_s"])
    flops = common.training_flops_per_image(args.image_size)
    summary = {
        "images/s (median window)": rate,
        "training GFLOPs per image": flops / 1e9,
        "achieved TFLOP/s": rate * flops / 1e12,
        "peak TFLOP/s (given)": args.peak_tflops,
        "MFU": rate * flops / (args.peak_tflops * 1e12),
    }
    for key, value in summary.items():
        print(f"{key}: {value:.4g}")
    setup = {
        "data": "synthetic uint8 images",
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "steps": f"{args.warmup_steps} warm-up + {args.windows} x {args.steps} timed",
        "epochs": "n/a (steps)",
        "mixed_precision": result["mixed_precision"],
        "xla": args.xla,
        "dry_run": args.dry_run,
        "gpus": len(gpus),
    }
    notes = "Dry run on CPU: checks the script only, the figures mean nothing." * args.dry_run
    common.save("gpu_mfu_dry_run" if args.dry_run else "gpu_mfu", setup, result, summary, notes)


if __name__ == "__main__":
    main()
