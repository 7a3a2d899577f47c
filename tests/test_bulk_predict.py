"""`predict --images DIR --out FILE`: every file under a folder scored on Beam with RunInference,
or listed with the reason it was not, and the same answers as `predict` on single files."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from test_export import CLASS_NAMES, IMAGES, SIZE, transform_graph_and_examples

from components import export
from components import model as model_lib
from components.image_checks import skip_reason
from pipeline import bulk_predict, predict


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> str:
    work = tmp_path_factory.mktemp("bulk")
    tft_output, _ = transform_graph_and_examples(work)
    keras.utils.set_random_seed(1)
    transfer = model_lib.build_transfer_model(
        SIZE, len(CLASS_NAMES), model_lib.BaseWeights(None, "random")
    )
    export_dir = str(work / "serving" / "7")
    metadata = {"class_names": CLASS_NAMES, "image_size": SIZE}
    export.export_model(
        transfer.model, tft_output, CLASS_NAMES, SIZE, export_dir, metadata, "image"
    )
    return str(work / "serving")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Good images at two depths, and files that cannot be scored."""
    images = tmp_path / "to_score"
    (images / "nested" / "deeper").mkdir(parents=True)
    (images / "a.png").write_bytes(IMAGES[0])
    (images / "b.jpg").write_bytes(IMAGES[1])
    (images / "nested" / "deeper" / "c.png").write_bytes(IMAGES[2])
    (images / "broken.png").write_bytes(IMAGES[0][: len(IMAGES[0]) // 2])
    (images / "notes.txt").write_text("not an image")
    (images / ".DS_Store").write_bytes(b"\0\1")
    return images


GOOD = ["a.png", "b.jpg", "nested/deeper/c.png"]
BAD = ["broken.png", "notes.txt", ".DS_Store"]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_scores_every_image_and_lists_every_other_file_with_why(model_dir, folder, suffix):
    out = folder.parent / f"predictions{suffix}"

    result = bulk_predict.score_folder(model_dir, str(folder), str(out), top_k=2)

    assert result.model_dir.endswith("/7")
    assert (result.scored, result.not_scored) == (3, 3)
    rows = {row["path"]: row for row in bulk_predict.read_rows(str(out))}
    assert sorted(rows) == sorted(GOOD + BAD)
    for name in BAD:
        assert rows[name]["error"], name
    assert "truncated or corrupt" in rows["broken.png"]["error"]
    assert rows["notes.txt"]["error"] == skip_reason("notes.txt")  # ingestion's words

    # The same answers as `predict` on the single files.
    _, singles = predict.predict(model_dir, [str(folder / name) for name in GOOD], top_k=2)
    for name, single in zip(GOOD, singles, strict=True):
        row = rows[name]
        assert row["class"] == single.top[0][0]
        np.testing.assert_allclose(row["probability"], single.top[0][1], rtol=1e-5)
        if suffix == ".jsonl":
            assert [t["class"] for t in row["top"]] == [c for c, _ in single.top]


def test_progress_is_reported_while_scoring_and_at_the_end(model_dir, folder):
    seen = []
    out = folder.parent / "progress.jsonl"
    bulk_predict.score_folder(
        model_dir,
        str(folder),
        str(out),
        progress=lambda scored, total: seen.append((scored, total)),
        progress_seconds=0.01,
    )
    assert seen and seen[-1] == (3, 4)  # 3 scored of the 4 image candidates (one is broken)
    assert [scored for scored, _ in seen] == sorted({scored for scored, _ in seen})


def test_an_unknown_output_format_is_refused_before_any_work(model_dir, folder):
    with pytest.raises(predict.PredictError, match=r"\.jsonl or \.csv"):
        bulk_predict.score_folder(model_dir, str(folder), str(folder.parent / "out.txt"))


def test_the_jsonl_rows_are_json_with_the_top_k(model_dir, folder):
    out = folder.parent / "p.jsonl"
    bulk_predict.score_folder(model_dir, str(folder), str(out), top_k=3)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    scored = [row for row in lines if "error" not in row]
    assert len(scored) == 3
    for row in scored:
        assert len(row["top"]) == 3
        assert sum(t["probability"] for t in row["top"]) == pytest.approx(1.0, abs=1e-4)
        assert row["class"] in CLASS_NAMES
    assert tf.io.gfile.exists(str(out))


def test_the_command_scores_a_folder_and_refuses_a_half_given_one(model_dir, folder, capfd):
    from pipeline.__main__ import main

    out = folder.parent / "cli.csv"
    assert main(["predict", "--model", model_dir, "--images", str(folder), "--out", str(out)]) == 0
    printed = capfd.readouterr().out
    assert f"Wrote {out}: 3 image(s) scored, 3 file(s) not scored" in printed
    assert len(bulk_predict.read_rows(str(out))) == 6

    assert main(["predict", "--model", model_dir, "--images", str(folder)]) == 2  # no --out
    assert main(["predict", "--model", model_dir]) == 2  # nothing to score
    assert "--images DIR --out" in capfd.readouterr().err
