"""The benchmarks' data and bookkeeping: the Fashion-MNIST materializer and the harness's
verdicts. (The benchmarks themselves are timed runs, not tests.)"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks import common, scale
from data import materialize_fashion_mnist as fmnist


def write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    header = magic.to_bytes(4, "big")
    header += b"".join(n.to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def idx_source(tmp_path: Path) -> Path:
    """A miniature Debian Fashion-MNIST folder: 12 training and 8 test images."""
    source = tmp_path / "source"
    source.mkdir()
    rng = np.random.default_rng(0)
    for prefix, count in (("train", 12), ("t10k", 8)):
        pixels = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = np.arange(count) % len(fmnist.CLASS_NAMES)
        write_idx(source / f"{prefix}-images-idx3-ubyte.gz", pixels, fmnist.IMAGES_MAGIC)
        write_idx(source / f"{prefix}-labels-idx1-ubyte.gz", labels, fmnist.LABELS_MAGIC)
    return source


def pngs(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.png"))


def test_materializer_limits_each_split_and_keeps_pixels(idx_source: Path, tmp_path: Path):
    out = tmp_path / "out"
    fmnist.main(
        ["--source", str(idx_source), "--out", str(out), "--limit", "5", "--eval-limit", "3"]
    )

    assert len(pngs(out / "train")) == 5
    assert len(pngs(out / "eval")) == 3
    assert sorted(p.name for p in (out / "train").iterdir()) == sorted(fmnist.CLASS_NAMES)
    # Image 0 has label 0 and keeps its exact greyscale pixels.
    first = out / "train" / fmnist.CLASS_NAMES[0] / "00000.png"
    expected = fmnist.read_idx(idx_source / "train-images-idx3-ubyte.gz", fmnist.IMAGES_MAGIC)[0]
    np.testing.assert_array_equal(np.asarray(Image.open(first)), expected)


def test_materializer_eval_limit_defaults_to_limit(idx_source: Path, tmp_path: Path):
    out = tmp_path / "out"
    fmnist.main(["--source", str(idx_source), "--out", str(out), "--limit", "4"])
    assert (len(pngs(out / "train")), len(pngs(out / "eval"))) == (4, 4)


def test_materializer_refuses_a_non_empty_folder_and_overwrites_only_splits(
    idx_source: Path, tmp_path: Path
):
    out = tmp_path / "out"
    out.mkdir()
    keep = out / "notes.txt"
    keep.write_text("mine")
    args = ["--source", str(idx_source), "--out", str(out), "--limit", "2"]
    with pytest.raises(SystemExit, match="not empty"):
        fmnist.main(args)
    fmnist.main([*args, "--overwrite"])
    assert keep.read_text() == "mine"
    assert len(pngs(out / "train")) == 2


def test_materializer_rejects_a_file_that_is_not_idx(idx_source: Path, tmp_path: Path):
    labels = idx_source / "t10k-labels-idx1-ubyte.gz"
    write_idx(labels, np.zeros((8, 2)), fmnist.IMAGES_MAGIC)  # images where labels belong
    with pytest.raises(SystemExit, match="magic number"):
        fmnist.main(["--source", str(idx_source), "--out", str(tmp_path / "out")])


def test_targets_are_judged_in_the_right_direction():
    lines = common.against_target(
        "seed_vs_pipeline",
        {
            "ratio pipeline/seed": 0.42,
            "ratio re-run/first": 0.2,
            "seed accuracy (median)": 0.5,
            "pipeline accuracy (median)": 0.4,
        },
    )
    assert lines == [
        "  - ratio pipeline/seed = 0.42 (target <= 0.5): met",
        "  - ratio re-run/first = 0.2 (target <= 0.1): NOT met",
        "  - accuracy: pipeline 0.4 vs seed 0.5 (>=): NOT met",
    ]
    assert common.against_target("trainer_throughput", {"64px ratio phase2": 0.95}) == [
        "  - 64px ratio phase2 = 0.95 (target >= 0.9): met"
    ]


def test_scale_growth_compares_largest_with_smallest_run():
    runs = {
        "1000": {
            "seconds": 100.0,
            "peak_rss_gib": 2.0,
            "step_seconds": {"Trainer": 50.0, "Pusher": 0.1},
            "step_peak_rss_gib": {"Trainer": 2.0},
        },
        "10000": {
            "seconds": 800.0,
            "peak_rss_gib": 2.5,
            "step_seconds": {"Trainer": 500.0, "Pusher": 0.2},
            "step_peak_rss_gib": {"Trainer": 2.5},
        },
    }
    lines = scale.growth_lines(1000, 10000, runs)
    assert lines["growth 1000 -> 10000: data"] == "x10"
    assert lines["growth 1000 -> 10000: wall s"] == "x8"
    assert lines["growth 1000 -> 10000: peak RSS"] == "x1.25"
    assert lines["growth 1000 -> 10000: Trainer"] == "seconds x10, peak RSS x1.25"
    assert not any("Pusher" in key for key in lines)  # under a second: noise, not growth


def test_small_runs_are_saved_beside_target_scale_results(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "REPO", tmp_path)
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(common, "RESULTS_MD", tmp_path / "RESULTS.md")
    summary = {"ratio pipeline/seed": 0.4}
    common.save("seed_vs_pipeline", {"image_size": 224}, {}, summary)
    monkeypatch.setenv(common.RESULT_SUFFIX_ENV, "_small")
    common.save("seed_vs_pipeline", {"image_size": 64}, {}, {"ratio pipeline/seed": 1.9})

    saved = sorted(p.name for p in (tmp_path / "results").iterdir())
    assert saved == ["seed_vs_pipeline.json", "seed_vs_pipeline_small.json"]
    results_md = (tmp_path / "RESULTS.md").read_text()
    assert "ratio pipeline/seed = 0.4 (target <= 0.5): met" in results_md
    assert "ratio pipeline/seed = 1.9 (target <= 0.5): NOT met" in results_md


def test_variants_are_judged_as_their_benchmark_and_record_a_runnable_command(
    tmp_path, monkeypatch
):
    assert common.base_name("gpu_mfu_dry_run_small") == "gpu_mfu"
    assert common.base_name("gpu_mfu_torch_b256") == "gpu_mfu_torch"
    assert common.base_name("gpu_mfux") == "gpu_mfux"  # not a variant of gpu_mfu
    assert common.against_target("gpu_mfu_torch_fp16", {"compile MFU": 0.46}) == [
        "  - compile MFU = 0.46 (target >= 0.45): met"
    ]

    monkeypatch.setattr(common, "REPO", tmp_path)
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(common, "RESULTS_MD", tmp_path / "RESULTS.md")
    monkeypatch.setattr("sys.argv", ["/repo/benchmarks/gpu_mfu_torch.py", "--batch-size", "256"])
    monkeypatch.setenv(common.RESULT_SUFFIX_ENV, "_b256")
    path = common.save("gpu_mfu_torch", {}, {}, {"compile MFU": 0.44})

    record = json.loads(path.read_text())
    assert path.name == "gpu_mfu_torch_b256.json"
    python = Path(common.PYTHON).name
    assert record["command"] == (
        f"BENCHMARK_RESULT_SUFFIX=_b256 {python} -m benchmarks.gpu_mfu_torch --batch-size 256"
    )
