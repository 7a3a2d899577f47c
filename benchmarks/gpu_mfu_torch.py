"""GPU reference: VGG16 full fine-tuning images/s and MFU in PyTorch, where TensorFlow can't run.

Why it exists: the GPU machines lent to this project's sessions carry PyTorch but not
TensorFlow, and TensorFlow 2.16 (1.7 GB installed) with its CUDA 12 libraries cannot be
carried there (64 MiB a call). `gpu_mfu` measures the project's own Trainer code and needs
TensorFlow; this script measures the same network and training step in PyTorch, so the 45 % MFU
target can be judged against what the hardware reaches with this model at all.

The network is the Trainer's default: VGG16's convolution base (random weights),
then the seed's head (Flatten, Dense 1024 relu, Dropout 0.5, Dense 10), every layer trainable,
Adam at 1e-5, softmax cross-entropy, the VGG16 mean subtraction inside the step. Mixed precision
by autocast (`bf16`, or `fp16` with a loss scaler as Keras's `mixed_float16`). Synthetic uint8
batches stay on the GPU, so no input pipeline is timed. Modes: `eager` (channels-last, cuDNN
autotuning) and `compile` (the same, through `torch.compile`). MFU as in `gpu_mfu`:
images/s x training FLOPs per image (`common.training_flops_per_image`) / peak.
Runs where `python3` has torch with CUDA: `python3 -m benchmarks.gpu_mfu_torch`.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from benchmarks import common

NUM_CLASSES = 10
VGG16_MEAN_RGB = (123.68, 116.779, 103.939)  # what keras' vgg16.preprocess_input subtracts
# VGG16's convolution base, as keras.applications.VGG16(include_top=False) builds it: output
# channels of each 3x3 convolution (relu), "M" a 2x2 max pooling.
VGG16_LAYERS = [
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    "M",
]


def build_model(size: int) -> nn.Module:
    layers: list[nn.Module] = []
    channels = 3
    for spec in VGG16_LAYERS:
        if spec == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(channels, spec, 3, padding=1), nn.ReLU()]
            channels = spec
    base = nn.Sequential(*layers)
    head = nn.Sequential(
        nn.Flatten(),
        nn.Linear(512 * (size // 32) ** 2, 1024),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(1024, NUM_CLASSES),
    )
    return nn.Sequential(base, head)


def measure(
    mode: str, size: int, batch: int, warmup: int, steps: int, windows: int, dtype, device: str
) -> dict:
    """Seconds of each window of `steps` training steps, after `warmup` untimed steps."""
    torch.manual_seed(0)
    gpu = device == "cuda"
    model = build_model(size).to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
    scaler = torch.amp.GradScaler(device, enabled=gpu and dtype == torch.float16)
    forward = torch.compile(model) if mode == "compile" else model
    loss_fn = nn.CrossEntropyLoss()
    pixels = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=device)
    labels = torch.randint(0, NUM_CLASSES, (batch,), device=device)
    mean = torch.tensor(VGG16_MEAN_RGB, device=device).view(1, 3, 1, 1)

    def step() -> None:
        inputs = (pixels.float() - mean).contiguous(memory_format=torch.channels_last)
        with torch.autocast(device, dtype=dtype):
            loss = loss_fn(forward(inputs), labels)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    def synchronize() -> None:
        if gpu:
            torch.cuda.synchronize()

    if gpu:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(warmup):
        step()
    synchronize()
    warmup_seconds = time.perf_counter() - start
    seconds = []
    for _ in range(windows):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        synchronize()
        seconds.append(time.perf_counter() - start)
    return {
        "warmup_seconds": warmup_seconds,
        "window_seconds": seconds,
        "window_images_per_s": [batch * steps / s for s in seconds],
        "peak_gpu_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if gpu else 0.0,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common.add_gpu_timing_arguments(parser)
    parser.add_argument("--precision", default="bf16", choices=["bf16", "fp16"])
    parser.add_argument("--modes", nargs="+", default=["eager", "compile"])
    args = parser.parse_args(argv)
    common.shrink_for_dry_run(args)
    if not args.dry_run and not torch.cuda.is_available():
        parser.error("no CUDA GPU visible to PyTorch; use --dry-run to check the script on a CPU")
    device = "cpu" if args.dry_run else "cuda"
    torch.backends.cudnn.benchmark = True
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float16
    flops = common.training_flops_per_image(args.image_size)
    runs, summary = {}, {}
    for mode in args.modes:
        result = measure(
            mode,
            args.image_size,
            args.batch_size,
            args.warmup_steps,
            args.steps,
            args.windows,
            dtype,
            device,
        )
        runs[mode] = result
        rate = statistics.median(result["window_images_per_s"])
        summary[f"{mode} images/s (median window)"] = rate
        summary[f"{mode} achieved TFLOP/s"] = rate * flops / 1e12
        summary[f"{mode} MFU"] = rate * flops / (args.peak_tflops * 1e12)
        summary[f"{mode} peak GPU memory GiB"] = result["peak_gpu_memory_gib"]
        print(f"{mode}: {rate:.1f} images/s, MFU {summary[f'{mode} MFU']:.3f}", flush=True)
    summary["training GFLOPs per image"] = flops / 1e9
    summary["peak TFLOP/s (given)"] = args.peak_tflops
    setup = {
        "data": "synthetic uint8 images on the GPU",
        "framework": f"torch {torch.__version__}",
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "steps": f"{args.warmup_steps} warm-up + {args.windows} x {args.steps} timed",
        "epochs": "n/a (steps)",
        "precision": args.precision,
        "gpu_name": torch.cuda.get_device_name(0) if device == "cuda" else "none",
        "dry_run": args.dry_run,
    }
    notes = (
        "A reference, not the project's Trainer: the same network and step in PyTorch, because "
        "the lent GPU machines have no TensorFlow. Run gpu_mfu for the Trainer itself."
    )
    if args.dry_run:
        notes = "Dry run on CPU: checks the script only, the figures mean nothing."
    common.save(
        "gpu_mfu_torch_dry_run" if args.dry_run else "gpu_mfu_torch", setup, runs, summary, notes
    )


if __name__ == "__main__":
    main()
