import json

import numpy as np
import pytest
import torch
from PIL import Image

from gesco.cli.main import main
from gesco.receiver.pipeline import DiffusionReceiver, ReceiverConfig
from gesco.receiver.sampling import SamplerConfig
from gesco.receiver.unet import GescoUNet
from helpers import TINY_UNET


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    config = ReceiverConfig(image_size=(16, 32), sampler=SamplerConfig(sampler="dpmpp", steps=2, guidance=1.5))
    return DiffusionReceiver(GescoUNet(TINY_UNET), config).save_pretrained(tmp_path_factory.mktemp("model"))


def test_transmit_writes_pictures_and_record(model_dir, tmp_path, capsys):
    out = tmp_path / "tx"
    assert main(["transmit", "--model", str(model_dir), "--synthetic", "7", "--psnr", "5", "--out", str(out)]) == 0
    for name in ("original", "map", "received", "condition-fds", "regenerated", "figure"):
        assert (out / f"{name}.png").stat().st_size > 0
    record = json.loads((out / "record.json").read_text())
    assert record["quality"] == {"kind": "psnr_label", "value": 5} and record["sigma"] == pytest.approx(0.6)
    assert record["sampler"]["steps"] == 2 and record["sampler"]["sampler"] == "dpmpp" and record["seconds"] > 0
    assert record["map_denoiser"] == "fds" and record["channel"] == "awgn"
    sizes = record["payload_sizes"]
    real_values = (len(record["present_classes"]) + 1) * 16 * 32
    assert sizes["analog_real_values"] == real_values
    assert sizes["analog_complex_channel_uses"] == record["complex_channel_uses"] == real_values // 2
    assert sizes["png_image_bits"] > sizes["lossless_map_bits"] > 0
    assert "complex channel uses per pixel" in capsys.readouterr().out


@pytest.mark.parametrize(
    "options",
    [
        ["--channel", "rayleigh", "--peak-snr-db", "10", "--coherence-symbols", "64"],
        ["--channel", "unit-power", "--fading", "rayleigh", "--esn0-db", "3"],
    ],
)
def test_transmit_over_other_channels(model_dir, tmp_path, options):
    out = tmp_path / "tx"
    assert (
        main(
            [
                "transmit",
                "--model",
                str(model_dir),
                "--synthetic",
                "7",
                "--out",
                str(out),
                "--map-denoiser",
                "none",
                *options,
            ]
        )
        == 0
    )
    record = json.loads((out / "record.json").read_text())
    assert record["channel"] == options[1] and record["map_denoiser"] == "none" and record["sigma"] > 0


def test_a_quality_the_channel_cannot_read_is_a_clear_error(model_dir, tmp_path, capsys):
    assert (
        main(
            ["transmit", "--model", str(model_dir), "--synthetic", "1", "--esn0-db", "3", "--out", str(tmp_path / "o")]
        )
        == 2
    )
    assert "AWGNChannel takes" in capsys.readouterr().err


def test_sample_over_a_cityscapes_folder(model_dir, tmp_path):
    data = tmp_path / "cs"
    assert (
        main(
            [
                "data",
                "synth",
                "--layout",
                "cityscapes",
                "--out",
                str(data),
                "--n",
                "3",
                "--size",
                "16x32",
                "--split",
                "val",
            ]
        )
        == 0
    )
    out = tmp_path / "samples"
    assert (
        main(
            [
                "sample",
                "--model",
                str(model_dir),
                "--labels",
                str(data / "gtFine"),
                "--peak-snr-db",
                "3",
                "--sampler",
                "ddim",
                "--steps",
                "2",
                "--batch-size",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    images = sorted(p.name for p in out.glob("*.png"))
    assert len(images) == 3 and not any("labelIds" in name for name in images)
    record = json.loads((out / "record.json").read_text())
    assert record["quality"] == {"kind": "peak_snr_db", "value": 3} and record["images"] == 3
    assert record["sampler"]["sampler"] == "ddim" and record["mean_sigma"] == pytest.approx(10 ** (-3 / 20), rel=1e-6)


def test_unknown_psnr_label_is_a_clear_error(model_dir, tmp_path, capsys):
    code = main(["transmit", "--model", str(model_dir), "--synthetic", "1", "--psnr", "12", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown PSNR label 12" in err and "peak SNR" in err


def test_model_folder_errors(tmp_path, model_dir, capsys):
    assert (
        main(["transmit", "--model", str(tmp_path), "--synthetic", "1", "--psnr", "10", "--out", str(tmp_path / "o")])
        == 2
    )
    assert "not a gesco receiver folder" in capsys.readouterr().err
    broken = tmp_path / "broken"
    DiffusionReceiver.from_pretrained(model_dir).save_pretrained(broken)
    weights = broken / "unet" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    assert (
        main(["transmit", "--model", str(broken), "--synthetic", "1", "--psnr", "10", "--out", str(tmp_path / "o")])
        == 2
    )
    assert "truncated" in capsys.readouterr().err


def test_label_map_outside_the_model_table(model_dir, tmp_path, capsys):
    import numpy as np
    from PIL import Image

    labels = np.full((16, 32), 7, dtype=np.uint8)
    labels[0, 0] = 40  # not a Cityscapes label id
    Image.fromarray(labels).save(tmp_path / "map.png")
    code = main(
        [
            "transmit",
            "--model",
            str(model_dir),
            "--labels",
            str(tmp_path / "map.png"),
            "--psnr",
            "10",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2 and "[40]" in capsys.readouterr().err


def test_transmit_over_ofdm_records_the_link(model_dir, tmp_path):
    pytest.importorskip("sionna")
    out = tmp_path / "tx"
    options = ["--ofdm-model", "tdl-c", "--speed", "30", "--csi", "perfect", "--delay-spread", "300"]
    argv = ["transmit", "--model", str(model_dir), "--synthetic", "7", "--out", str(out), "--channel", "ofdm"]
    assert main([*argv, *options, "--esn0-db", "5", "--map-denoiser", "none"]) == 0
    record = json.loads((out / "record.json").read_text())
    settings = record["channel_settings"]
    assert record["channel"] == "ofdm" and record["sigma"] > 0
    assert (settings["model"], settings["speed_kmh"], settings["csi"], settings["delay_spread_ns"]) == (
        "tdl-c",
        30.0,
        "perfect",
        300.0,
    )


def test_transmit_over_the_official_ofdm_bit_channel(model_dir, tmp_path):
    out = tmp_path / "tx"
    argv = ["transmit", "--model", str(model_dir), "--synthetic", "7", "--out", str(out), "--channel", "ofdm-official"]
    assert main([*argv, "--esn0-db", "8"]) == 0
    record = json.loads((out / "record.json").read_text())
    assert record["channel"] == "ofdm-official" and record["sigma"] == 0 and record["channel_settings"] is None


def test_ofdm_options_on_another_channel_are_refused_by_name(model_dir, tmp_path, capsys):
    argv = ["transmit", "--model", str(model_dir), "--synthetic", "1", "--out", str(tmp_path / "o")]
    assert main([*argv, "--psnr", "10", "--speed", "30"]) == 2
    assert "takes no option ['speed_kmh']" in capsys.readouterr().err


def test_transmit_through_a_learned_map_denoiser_named_by_its_folder(model_dir, tmp_path):
    from gesco.receiver.learned_denoiser import LearnedMapDenoiser, MapDenoiserConfig

    torch.manual_seed(0)
    config = MapDenoiserConfig(hidden_channels=8, dilations=(1,), skip="received", output="one_hot")
    folder = LearnedMapDenoiser(config).save_pretrained(tmp_path / "denoiser")
    out = tmp_path / "tx"
    argv = ["transmit", "--model", str(model_dir), "--synthetic", "7", "--psnr", "100", "--out", str(out)]
    assert main([*argv, "--map-denoiser", str(folder)]) == 0
    assert json.loads((out / "record.json").read_text())["map_denoiser"] == str(folder)
    # an untrained received-skip denoiser on a clean map is the plain argmax: the transmitted map exactly
    denoised = np.asarray(Image.open(out / "condition-learned.png"))
    assert np.array_equal(denoised, np.asarray(Image.open(out / "map.png")))
