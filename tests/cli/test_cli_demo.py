"""``gesco demo`` on the shipped models (few steps: the mechanics, the files, the table, the errors)."""

import json

import pytest
import torch

from gesco.cli.main import main
from gesco.constants import EVALUATION_SEED_OFFSET
from gesco.datasets.synthetic import SyntheticStreets


@pytest.fixture(autouse=True)
def on_one_thread(one_torch_thread):
    yield


def test_demo_writes_figure_table_and_record(tmp_path, capsys):
    out = tmp_path / "demo"
    seed = EVALUATION_SEED_OFFSET + 3
    code = main(
        [
            "demo",
            "--out",
            str(out),
            "--scenes",
            "1",
            "--scene-seed",
            str(seed),
            "--psnr",
            "100",
            "1",
            "--steps",
            "3",
            "--no-progress",
        ]
    )
    assert code == 0
    assert (out / "figure.png").stat().st_size > 10_000
    printed = capsys.readouterr().out
    table = (out / "table.md").read_text()
    assert table in printed and "| 100 | 0 |" in table and "| 1 | 0.9 |" in table
    record = json.loads((out / "results.json").read_text())
    assert [row["psnr"] for row in record["rows"]] == [100, 1]
    assert record["sampler"]["sampler"] == "dpmpp-sde" and record["sampler"]["steps"] == 3
    from gesco.receiver.guidance import default_autocast_name

    assert record["sampler"]["autocast_dtype"] == default_autocast_name("cpu")
    scene = SyntheticStreets(64, 128).scene(seed)
    channels = len(set(scene.labels.ravel().tolist())) + 1  # present classes + the edge channel
    payload = record["payload_sizes"]
    assert payload["analog_real_values"] == channels * 64 * 128
    assert payload["analog_complex_channel_uses"] == channels * 64 * 128 / 2
    assert payload["png_image_bits"] > payload["jpeg_image_bits"] > payload["lossless_map_bits"] > 0
    rows = {row["psnr"]: row for row in record["rows"]}
    # The received map itself degrades with the noise; every score is a fraction.
    assert rows[100]["received_map_miou"] > rows[1]["received_map_miou"]
    for row in record["rows"]:
        for key in ("gesco_miou", "sdm_miou", "gesco_ssim", "sdm_ssim"):
            assert -1 <= row[key] <= 1
    assert all(s > 0 for s in record["seconds_per_image"].values())


def test_demo_is_reproducible_for_a_seed(tmp_path):
    records = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert (
            main(["demo", "--out", str(out), "--scenes", "1", "--psnr", "5", "--steps", "2", "--fp32", "--no-progress"])
            == 0
        )
        records.append(json.loads((out / "results.json").read_text())["rows"])
    assert records[0] == records[1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--psnr", "7"], "unknown PSNR label 7"),
        (["--scenes", "0"], "scenes must be >= 1"),
        (["--model", "no-such-model"], "neither an existing path nor a shipped model"),
    ],
)
def test_demo_bad_input_is_a_clear_error(tmp_path, capsys, argv, message):
    assert main(["demo", "--out", str(tmp_path / "o"), "--no-progress", *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o" / "figure.png").exists()


def test_demo_rejects_a_segmenter_of_another_class_table(tmp_path, capsys):
    from gesco.evaluation.segmenter import GescoSegmenter, SegmenterConfig

    torch.manual_seed(0)
    GescoSegmenter(SegmenterConfig(class_table="ade20k", class_ids=(0, 1, 2))).save_pretrained(tmp_path / "seg")
    assert main(["demo", "--out", str(tmp_path / "o"), "--segmenter", str(tmp_path / "seg"), "--no-progress"]) == 2
    assert "the segmenter predicts ade20k classes" in capsys.readouterr().err
