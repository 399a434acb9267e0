"""GescoUNet against the official GESCO code: outputs of the tiny model, key layouts, the converter and its CLI."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import pytest
import torch

from gesco.cli import convert as convert_cli
from gesco.receiver.convert_official import (
    convert_official_state_dict,
    gesco_to_official,
    infer_official_config,
    load_official_checkpoint,
    official_layout,
)
from gesco.receiver.pipeline import DiffusionReceiver
from gesco.receiver.unet import GescoUNet, StateDictMismatchError, UNetConfig

# Parameter counts stated in shared/reference/README.md for the official models.
OFFICIAL_PARAMETERS = {"cityscapes": 674_707_206, "small64": 46_933_830}


@pytest.fixture(scope="module")
def tiny_state_dict(reference_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(reference_dir / "official-tiny-cityscapes.pt", weights_only=True, map_location="cpu")


@pytest.fixture(scope="module")
def tiny_cases(reference_dir: Path) -> list[dict[str, torch.Tensor]]:
    return torch.load(reference_dir / "official-tiny-cityscapes-io.pt", weights_only=True)["cases"]


def _official_key_list(reference_dir: Path, name: str) -> list[tuple[str, tuple[int, ...]]]:
    return [
        (key, tuple(shape))
        for key, shape in json.loads((reference_dir / f"official-state-dict-{name}.json").read_text())
    ]


def test_tiny_official_weights_reproduce_official_outputs(tiny_state_dict, tiny_cases):
    model = load_official_checkpoint(tiny_state_dict)
    assert model.config == UNetConfig.official_tiny()
    with torch.no_grad():
        for case in tiny_cases:
            out = model(case["x"], case["t"], case["y"])
            assert out.shape == case["out"].shape
            assert (out - case["out"]).abs().max().item() < 1e-5


def test_official_file_with_model_prefix_loads(reference_dir, tiny_state_dict, tiny_cases, tmp_path):
    prefixed = tmp_path / "prefixed.pt"
    torch.save({f"model.{k}": v for k, v in tiny_state_dict.items()}, prefixed)
    model = load_official_checkpoint(prefixed)
    case = tiny_cases[0]
    with torch.no_grad():
        assert torch.allclose(model(case["x"], case["t"], case["y"]), case["out"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["cityscapes", "small64"])
def test_preset_exports_exactly_the_official_keys_and_shapes(reference_dir, name):
    official = _official_key_list(reference_dir, name)
    with torch.device("meta"):
        model = GescoUNet(UNetConfig.preset(name))
    exported = [(key, tuple(tensor.shape)) for key, tensor in gesco_to_official(model).items()]
    assert exported == official
    assert sum(torch.Size(shape).numel() for _, shape in official) == OFFICIAL_PARAMETERS[name]
    unused = sum(torch.Size(shape).numel() for key, shape in official if ".spade_norm." in key)
    assert sum(p.numel() for p in model.parameters()) == OFFICIAL_PARAMETERS[name] - unused


@pytest.mark.parametrize("name", ["cityscapes", "small64"])
def test_config_is_inferred_from_official_key_list(reference_dir, name):
    meta_state = {key: torch.empty(shape, device="meta") for key, shape in _official_key_list(reference_dir, name)}
    assert infer_official_config(meta_state) == UNetConfig.preset(name)


def test_official_roundtrip_keeps_every_used_tensor(tiny_state_dict, generator):
    exported = gesco_to_official(load_official_checkpoint(tiny_state_dict), generator=generator)
    assert list(exported) == list(tiny_state_dict)
    for key, tensor in exported.items():
        assert tensor.shape == tiny_state_dict[key].shape
        if ".spade_norm." not in key:
            assert torch.equal(tensor, tiny_state_dict[key]), key
    fresh = exported["input_blocks.1.0.spade_norm.mlp_gamma.weight"]
    bound = (128 * 9) ** -0.5  # PyTorch's default conv init for 128 input channels, 3x3
    assert fresh.abs().max() <= bound and fresh.std() > bound / 3


def test_converter_reports_the_dropped_encoder_spade_norm(tiny_state_dict, caplog):
    unused = {k: v for k, v in tiny_state_dict.items() if ".spade_norm." in k}
    with caplog.at_level(logging.INFO, logger="gesco.receiver.convert_official"):
        conversion = convert_official_state_dict(tiny_state_dict)
    count = sum(v.numel() for v in unused.values())
    assert set(conversion.dropped_keys) == set(unused)
    assert conversion.dropped_parameters == count
    assert f"{count:,} parameters" in caplog.text


def test_sdm_style_checkpoint_without_spade_norm_converts(tiny_state_dict, tiny_cases):
    sdm_state = {k: v for k, v in tiny_state_dict.items() if ".spade_norm." not in k}
    model = load_official_checkpoint(sdm_state)
    case = tiny_cases[1]
    with torch.no_grad():
        assert torch.allclose(model(case["x"], case["t"], case["y"]), case["out"], atol=1e-5, rtol=0)


def test_missing_and_unexpected_official_keys_are_named(tiny_state_dict):
    broken = dict(tiny_state_dict)
    del broken["output_blocks.1.0.out_norm.mlp_beta.bias"]
    broken["output_blocks.1.0.extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"output_blocks\.1\.0\.out_norm\.mlp_beta\.bias") as info:
        convert_official_state_dict(broken, UNetConfig.official_tiny())
    assert "output_blocks.1.0.extra.weight" in str(info.value)
    assert isinstance(info.value, StateDictMismatchError)


def test_official_weights_for_another_config_are_rejected(tiny_state_dict):
    with pytest.raises(StateDictMismatchError, match="shape mismatches"):
        convert_official_state_dict(tiny_state_dict, UNetConfig.official_tiny().replace(label_channels=35))


def test_unknown_architecture_needs_an_explicit_config(generator):
    config = UNetConfig(
        base_channels=32,
        channel_mult=(1, 2),
        num_res_blocks=1,
        attention_ds=(),
        head_channels=16,
        label_channels=5,
        learn_sigma=False,
        resblock_updown=False,
    )
    official = gesco_to_official(GescoUNet(config), generator=generator)
    with pytest.raises(ValueError, match="head_channels"):
        load_official_checkpoint(official)
    assert set(official_layout(config).official_shapes) == set(official)
    model = load_official_checkpoint(official, config)
    assert model.config == config


def test_cli_writes_a_receiver_folder_that_reproduces_official_outputs(reference_dir, tiny_cases, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    convert_cli.register(parser.add_subparsers())
    args = parser.parse_args(
        [
            "convert-official",
            str(reference_dir / "official-tiny-cityscapes.pt"),
            str(tmp_path / "tiny"),
            "--config",
            "official-tiny",
            "--image-size",
            "32x64",
        ]
    )
    assert args.func(args) == 0
    assert "parameters" in capsys.readouterr().out
    receiver = DiffusionReceiver.from_pretrained(tmp_path / "tiny")
    assert receiver.config.class_table == "cityscapes" and receiver.config.edge_rule == "official"
    assert receiver.config.image_size == (32, 64)
    assert receiver.config.sampler.guidance == 2.0
    model = GescoUNet.from_pretrained(tmp_path / "tiny" / "unet")
    case = tiny_cases[2]
    with torch.no_grad():
        assert torch.allclose(model(case["x"], case["t"], case["y"]), case["out"], atol=1e-5, rtol=0)
