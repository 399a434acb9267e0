import json

import pytest
import torch

from gesco.cli.main import main
from gesco.receiver.pipeline import DiffusionReceiver, ReceiverConfig
from gesco.receiver.sampling import SamplerConfig
from gesco.receiver.unet import GescoUNet, UNetConfig

TINY = UNetConfig(base_channels=32, channel_mult=(1, 2), num_res_blocks=1, attention_ds=(2,), head_channels=32,
                  label_channels=36, spade_hidden_channels=16)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    config = ReceiverConfig(image_size=(16, 32), sampler=SamplerConfig(sampler="dpmpp", steps=2, guidance=1.5))
    return DiffusionReceiver(GescoUNet(TINY), config).save_pretrained(tmp_path_factory.mktemp("model"))


def test_transmit_writes_pictures_and_record(model_dir, tmp_path, capsys):
    out = tmp_path / "tx"
    assert main(["transmit", "--model", str(model_dir), "--synthetic", "7", "--psnr", "5", "--out", str(out)]) == 0
    for name in ("original", "map", "received", "fds", "regenerated", "figure"):
        assert (out / f"{name}.png").stat().st_size > 0
    record = json.loads((out / "record.json").read_text())
    assert record["psnr"] == 5 and record["sigma"] == pytest.approx(0.6)
    assert record["steps"] == 2 and record["sampler"] == "dpmpp" and record["seconds"] > 0
    bits = record["payload_bits"]
    assert bits["analog_channel_uses"] == (len(record["present_classes"]) + 1) * 16 * 32
    assert bits["png_image_bits"] > bits["lossless_map_bits"] > 0
    assert "channel uses/pixel" in capsys.readouterr().out


def test_sample_over_a_cityscapes_folder(model_dir, tmp_path):
    data = tmp_path / "cs"
    assert main(["data", "synth", "--layout", "cityscapes", "--out", str(data), "--n", "3", "--size", "16x32",
                 "--split", "val"]) == 0
    out = tmp_path / "samples"
    assert main(["sample", "--model", str(model_dir), "--labels", str(data / "gtFine"), "--snr-db", "3",
                 "--sampler", "ddim", "--steps", "2", "--batch-size", "2", "--out", str(out)]) == 0
    images = sorted(p.name for p in out.glob("*.png"))
    assert len(images) == 3 and not any("labelIds" in name for name in images)
    record = json.loads((out / "record.json").read_text())
    assert record["snr_db"] == 3 and record["sampler"]["sampler"] == "ddim" and record["images"] == 3


def test_unknown_psnr_label_is_a_clear_error(model_dir, tmp_path, capsys):
    code = main(["transmit", "--model", str(model_dir), "--synthetic", "1", "--psnr", "12", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown PSNR label 12" in err and "--snr-db" in err


def test_model_folder_errors(tmp_path, model_dir, capsys):
    assert main(["transmit", "--model", str(tmp_path), "--synthetic", "1", "--out", str(tmp_path / "o")]) == 2
    assert "not a gesco receiver folder" in capsys.readouterr().err
    broken = tmp_path / "broken"
    DiffusionReceiver.from_pretrained(model_dir).save_pretrained(broken)
    weights = broken / "unet" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    assert main(["transmit", "--model", str(broken), "--synthetic", "1", "--out", str(tmp_path / "o")]) == 2
    assert "truncated" in capsys.readouterr().err


def test_label_map_outside_the_model_table(model_dir, tmp_path, capsys):
    import numpy as np
    from PIL import Image

    labels = np.full((16, 32), 7, dtype=np.uint8)
    labels[0, 0] = 40  # not a Cityscapes label id
    Image.fromarray(labels).save(tmp_path / "map.png")
    code = main(["transmit", "--model", str(model_dir), "--labels", str(tmp_path / "map.png"), "--out",
                 str(tmp_path / "o")])
    assert code == 2 and "[40]" in capsys.readouterr().err
