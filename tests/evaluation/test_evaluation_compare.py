"""gesco compare: rate choice, crossovers, channel-use accounting and the run end to end (mechanics, tiny models)."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from gesco.baselines.deep_jscc import DeepJSCC, DeepJSCCConfig
from gesco.channel.digital.config import DigitalConfig
from gesco.evaluation.compare import (
    CLASSICAL,
    CODE_RATE_LADDER,
    DEEP_JSCC,
    GESCO_ANALOG,
    GESCO_ANALOG_AWARE,
    GESCO_DIGITAL,
    CompareCell,
    CompareResult,
    Comparison,
    most_robust_config,
)
from gesco.evaluation.compare_report import crossovers
from gesco.evaluation.metrics import SegmentationScores
from gesco.evaluation.report import MetricColumn
from gesco.evaluation.scoring import SetScores


def test_gesco_digital_takes_the_most_robust_rate_that_fits():
    base = DigitalConfig(block_bits=1024)  # QPSK: 1024 / rate / 2 symbols per block
    assert most_robust_config(base, 3, 3 * 2560).code_rate == CODE_RATE_LADDER[0] == 0.2
    assert most_robust_config(base, 3, 3 * 2559).code_rate == 0.25  # 2048 symbols per block
    assert most_robust_config(base, 3, 3 * 1024).code_rate == 0.5
    assert most_robust_config(base, 3, 3 * 600) is None  # not even at 5/6


def miou_scores(value):
    return SetScores(segmentation=SegmentationScores(value, value, {}, 1))


def test_crossovers_are_interpolated_and_say_who_wins_above():
    snrs = [-5.0, 0.0, 5.0, 10.0]
    curves = {
        CLASSICAL: [0.05, 0.05, 0.9, 0.9],
        GESCO_ANALOG: [0.6, 0.7, 0.75, 0.8],
        GESCO_DIGITAL: [0.1, 0.75, 0.8, 0.8],
    }
    cells = [
        CompareCell(m, f"{s:g}", miou_scores(v), 1.0, None)
        for m, values in curves.items()
        for s, v in zip(snrs, values)
    ]
    result = CompareResult(list(curves), snrs, "awgn", 3, 1.0, cells, miou_scores(0.9), (), {})
    miou = MetricColumn("miou", "mIoU", True, lambda s: s.segmentation.miou)
    found = {(x.method, x.snr_db, x.better_above) for x in crossovers(result, miou)}
    # analog: +0.65 at 0 dB, -0.15 at 5 dB -> 0 + 5 * 0.65 / 0.8; digital: +0.70 at 0, -0.10 at 5 -> 0 + 5 * 0.7 / 0.8
    assert found == {
        (GESCO_ANALOG, round(5 * 0.65 / 0.8, 2), CLASSICAL),
        (GESCO_DIGITAL, round(5 * 0.7 / 0.8, 2), CLASSICAL),
    }
    lower = MetricColumn("fid", "FID", False, lambda s: -s.segmentation.miou)  # the same curves, lower is better
    assert {x.snr_db for x in crossovers(result, lower)} == {x[1] for x in found}


@pytest.fixture(scope="module")
def compared(assets, tmp_path_factory):
    pytest.importorskip("sionna")
    from gesco.cli.main import main

    root = tmp_path_factory.mktemp("compare")
    torch.manual_seed(2)
    DeepJSCC(DeepJSCCConfig(image_size=(32, 64), hidden_channels=(4, 4, 4, 4))).save_pretrained(root / "djscc")
    args = [
        "compare",
        "--model",
        str(assets / "gesco"),
        "--aware-model",
        str(assets / "gesco"),
        "--deep-jscc",
        str(root / "djscc"),
        "--n",
        "2",
        "--snr",
        "-10",
        "20",
        "30",
        "--segmenter",
        str(assets / "segmenter"),
        "--inception",
        str(assets / "features.pt"),
        "--kid-subsets",
        "2",
        "--batch-size",
        "2",
        "--block-bits",
        "512",
        "--examples",
        "1",
        "--out",
        str(root / "out"),
        "--no-progress",
    ]
    assert main(args) == 0
    return root / "out", args


def test_compare_writes_the_table_plots_and_figures(compared):
    out, _ = compared
    for name in (
        "report.md",
        "results.json",
        "results.csv",
        "plots/miou.png",
        "plots/ssim.png",
        "plots/fid.png",
        "figures/examples_synthetic_1000000.png",
    ):
        assert (out / name).is_file(), name
    report = (out / "report.md").read_text()
    assert "Crossovers with the classical link" in report and "| Deep JSCC |" in report
    data = json.loads((out / "results.json").read_text())
    assert {r["method"] for r in data["results"]} == {
        CLASSICAL,
        DEEP_JSCC,
        GESCO_ANALOG,
        GESCO_DIGITAL,
        GESCO_ANALOG_AWARE,
    }
    # the channel-aware receiver regenerates from the same received maps as the paper's, at the same channel uses
    for snr in (-10, 20, 30):
        paper, aware = (
            json.loads((out / "images" / m / f"snr{snr}" / "records.json").read_text())
            for m in (GESCO_ANALOG, GESCO_ANALOG_AWARE)
        )
        assert paper == aware
    assert {r["snr_db"] for r in data["results"]} == {-10.0, 20.0, 30.0}
    assert all(r["miou"] is not None and r["ssim"] is not None for r in data["results"])


def test_channel_use_accounting_of_every_method(compared, assets):
    out, _ = compared
    data = json.loads((out / "results.json").read_text())
    budget = data["budget_complex_channel_uses_per_pixel"]
    assert budget == 6.0  # the Deep JSCC model's: 192 real values per 4 x 4 pixels
    for snr in (-10, 20, 30):
        records = {
            m: json.loads((out / "images" / m / f"snr{snr}" / "records.json").read_text())
            for m in (CLASSICAL, DEEP_JSCC, GESCO_ANALOG, GESCO_DIGITAL)
        }
        pixels = 32 * 64
        assert all(r["complex_channel_uses"] == 6 * pixels for r in records[DEEP_JSCC])
        # JPEG and GESCO-digital: whole codewords within the budget
        for method in (CLASSICAL, GESCO_DIGITAL):
            assert all(0 < r["complex_channel_uses"] <= 6 * pixels for r in records[method])
        # GESCO-analog: (present classes + edge) real values per pixel, two per channel use
        from gesco.datasets import SyntheticStreetsDataset
        from gesco.semantics import SemanticMap, Transmitter

        dataset = SyntheticStreetsDataset(2, 1_000_000, height=32, width=64)
        for i, record in enumerate(records[GESCO_ANALOG]):
            item = dataset[i]
            payload = Transmitter()(SemanticMap(item.labels[None], "cityscapes", item.instances[None]))
            assert record["complex_channel_uses"] == math.ceil(int(payload.transmitted[0].sum()) * pixels / 2)
    # everything fits the budget here, so no cell is flagged
    assert not any(r["over_budget"] for r in data["results"])
    assert "over budget" not in (out / "report.md").read_text()


def test_a_method_over_the_budget_is_flagged_in_the_report():
    from gesco.evaluation.compare import CompareCell, CompareResult
    from gesco.evaluation.compare_report import markdown_report
    from gesco.evaluation.scoring import SetScores

    cells = [
        CompareCell(DEEP_JSCC, "0", SetScores(), 1.5, None),
        CompareCell(GESCO_ANALOG, "0", SetScores(), 5.5, None, over_budget=True),
    ]
    result = CompareResult(
        methods=[DEEP_JSCC, GESCO_ANALOG],
        snrs=[0.0],
        channel="awgn",
        count=1,
        budget_per_pixel=1.5,
        cells=cells,
        real=SetScores(),
        class_names=(),
        settings={},
    )
    report = markdown_report(result)
    assert "5.500 ⚠ over budget" in report and "1.500 |" in report
    assert "not at equal bandwidth" in report and "GESCO-analog" in report.split("not at equal bandwidth")[0]


def test_the_cliff_and_the_lossless_map(compared):
    out, _ = compared
    cells = {(r["method"], r["snr_db"]): r for r in json.loads((out / "results.json").read_text())["results"]}
    # the classical link delivers every image at 20 dB and none at -10 dB, where the receiver shows mid-grey
    assert cells[CLASSICAL, 20.0]["delivered"] == 1.0 and cells[CLASSICAL, -10.0]["delivered"] == 0.0
    grey = np.asarray(Image.open(out / "images" / CLASSICAL / "snr-10" / "synthetic_1000000.png"))
    assert (grey == 128).all()
    # GESCO-digital: every pixel known at 20 and 30 dB (the exact map, regenerated once), none at -10 dB
    assert cells[GESCO_DIGITAL, 20.0]["delivered"] == cells[GESCO_DIGITAL, 30.0]["delivered"] == 1.0
    assert cells[GESCO_DIGITAL, -10.0]["delivered"] == 0.0
    for name in ("synthetic_1000000.png", "synthetic_1000001.png"):
        assert (out / "images" / GESCO_DIGITAL / "snr20" / name).read_bytes() == (
            out / "images" / GESCO_DIGITAL / "snr30" / name
        ).read_bytes()


def test_a_rerun_keeps_finished_sets(compared):
    from gesco.cli.main import main

    out, args = compared
    image = out / "images" / GESCO_ANALOG / "snr20" / "synthetic_1000000.png"
    before = image.stat().st_mtime_ns
    assert main(args) == 0
    assert image.stat().st_mtime_ns == before


def test_bad_arguments_are_named(assets, tmp_path, capsys):
    from gesco.cli.main import main

    small = tmp_path / "djscc"
    DeepJSCC(DeepJSCCConfig(image_size=(16, 32), hidden_channels=(4, 4, 4, 4))).save_pretrained(small)
    base = [
        "compare",
        "--model",
        str(assets / "gesco"),
        "--aware-model",
        "none",
        "--no-fid",
        "--out",
        str(tmp_path / "o"),
        "--no-progress",
    ]
    assert main([*base, "--deep-jscc", str(small), "--n", "1"]) == 2
    assert "Deep JSCC model codes (16, 32) images, the receiver makes (32, 64)" in capsys.readouterr().err
    assert main([*base, "--n", "0"]) == 2
    assert "--n must be positive" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_the_channel_aware_receiver_meets_the_same_channel_through_its_own_map_denoiser(assets, tmp_path):
    from gesco.datasets import SyntheticStreetsDataset
    from gesco.receiver.learned_denoiser import LearnedMapDenoiser, MapDenoiserConfig
    from gesco.receiver.map_denoisers import fast_denoise
    from gesco.receiver.pipeline import DiffusionReceiver

    torch.manual_seed(0)
    config = MapDenoiserConfig(hidden_channels=8, dilations=(1,), skip="received", output="one_hot")
    denoiser = LearnedMapDenoiser(config)
    folder = denoiser.save_pretrained(tmp_path / "denoiser")
    paper = DiffusionReceiver.from_pretrained(assets / "gesco")
    two_stage = DiffusionReceiver(paper.unet, paper.config.replace(map_denoiser=str(folder)))
    comparison = Comparison(
        paper,
        DeepJSCC(DeepJSCCConfig(image_size=(32, 64), hidden_channels=(4, 4, 4, 4))),
        SyntheticStreetsDataset(1, height=32, width=64),
        count=1,
        channel="awgn",
        digital=DigitalConfig(block_bits=512),
        sampler=paper.config.sampler,
        aware=two_stage,
    )
    fds, _, _, sigma = comparison._gesco_analog(0, 5.0)
    learned, _, _, same_sigma = comparison._gesco_analog(0, 5.0, aware=True)
    assert sigma == same_sigma > 0
    # one channel draw, two map denoisers: FDS's output for the paper's receiver, the learned one's for the other
    out = comparison._send(comparison.analog_link, 0, 5.0)
    received = out.received.payload
    torch.testing.assert_close(fds, fast_denoise(received.values, received.transmitted)[0])
    torch.testing.assert_close(learned, denoiser(out.received)[0])
