"""``gesco convert-official`` never guesses the image size, and refuses sizes the UNet cannot take."""

from __future__ import annotations

from pathlib import Path

import pytest

from gesco.cli.main import main
from gesco.receiver import convert_official
from gesco.receiver.convert_official import check_image_size, convert_official_checkpoint
from gesco.receiver.pipeline import DiffusionReceiver
from gesco.receiver.unet import UNetConfig


@pytest.fixture
def tiny_checkpoint(reference_dir: Path) -> Path:
    return reference_dir / "official-tiny-cityscapes.pt"


def test_a_size_from_neither_config_nor_option_is_an_error(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "tiny"
    assert main(["convert-official", str(tiny_checkpoint), str(out), "--config", "official-tiny"]) == 2
    assert "--image-size HEIGHTxWIDTH" in capsys.readouterr().err
    assert not out.exists()


def test_the_missing_size_is_reported_before_the_checkpoint_is_read(tmp_path, capsys):
    assert main(["convert-official", str(tmp_path / "no-such.pt"), str(tmp_path / "out")]) == 2
    assert "does not store the image size" in capsys.readouterr().err


def test_the_given_size_is_written(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "tiny"
    assert main(["convert-official", str(tiny_checkpoint), str(out), "--image-size", "32x64"]) == 0
    assert "32x64 images" in capsys.readouterr().out
    assert DiffusionReceiver.from_pretrained(out).config.image_size == (32, 64)


def test_a_paper_preset_gives_its_size(tiny_checkpoint, tmp_path, monkeypatch):
    # The paper presets' checkpoints are gigabytes; the tiny one stands in as if it were a sized preset.
    monkeypatch.setitem(convert_official.PRESET_IMAGE_SIZES, "official_tiny", (64, 128))
    converted = convert_official_checkpoint(tiny_checkpoint, tmp_path / "a", config="official-tiny")
    assert converted.receiver.config.image_size == (64, 128)
    explicit = convert_official_checkpoint(tiny_checkpoint, tmp_path / "b", config="official-tiny", image_size=(32, 32))
    assert explicit.receiver.config.image_size == (32, 32)


def test_the_paper_presets_carry_the_paper_sizes():
    assert convert_official.PRESET_IMAGE_SIZES == {
        "cityscapes": (256, 512),
        "coco_stuff": (256, 256),
        "ade20k": (256, 256),
    }
    for name, size in convert_official.PRESET_IMAGE_SIZES.items():
        assert check_image_size(size, UNetConfig.preset(name)) == size


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--config", "official-tiny", "--image-size", "15x31"], "must be a multiple of 2 (e.g. 16x32)"),
        (["--image-size", "15x31"], "must be a multiple of 2 (e.g. 16x32)"),
    ],
)
def test_a_size_the_unet_cannot_take_fails_at_conversion(tiny_checkpoint, tmp_path, capsys, argv, message):
    out = tmp_path / "tiny"
    assert main(["convert-official", str(tiny_checkpoint), str(out), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_the_paper_unet_needs_multiples_of_32():
    with pytest.raises(ValueError, match="multiple of 32 \\(e.g. 256x512\\)"):
        check_image_size((250, 500), UNetConfig.cityscapes())


@pytest.mark.parametrize("size", ["0x64", "64", "64by128"])
def test_a_malformed_size_is_a_usage_error(tmp_path, capsys, size):
    with pytest.raises(SystemExit) as stopped:
        main(["convert-official", str(tmp_path / "x.pt"), str(tmp_path / "out"), "--image-size", size])
    assert stopped.value.code == 2
    assert "--image-size" in capsys.readouterr().err
