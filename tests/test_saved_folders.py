"""Save/load contract of every kind of saved model folder: receiver, UNet, segmenter, Deep JSCC.

Each kind saves, loads back the same config, the same state dict values and the same output on a fixed input;
float16 weights (as shipped) load as float32; a folder missing its weights, with a truncated weights file, or
with weights of another architecture fails with a clear error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from gesco.baselines.deep_jscc import DeepJSCC, DeepJSCCConfig
from gesco.config import Config
from gesco.evaluation.segmenter import GescoSegmenter, SegmenterConfig
from gesco.io import load_tensors, save_tensors
from gesco.receiver.pipeline import DiffusionReceiver, ReceiverConfig
from gesco.receiver.sampling import SamplerConfig
from gesco.receiver.unet import GescoUNet, StateDictMismatchError
from gesco.weights_folder import WEIGHTS_NAME
from helpers import TINY_UNET

SIZE = (16, 32)
TINY_RECEIVER = ReceiverConfig(image_size=SIZE, sampler=SamplerConfig(sampler="ddim", steps=2, guidance=1.5))
TINY_SEGMENTER = SegmenterConfig(widths=(4, 8))
TINY_DEEP_JSCC = DeepJSCCConfig(image_size=SIZE, hidden_channels=(4, 4, 4, 4), latent_channels=6)


def _inputs(seed: int, *shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _unet_output(unet: GescoUNet) -> torch.Tensor:
    labels = torch.randint(0, 36, (2, *SIZE), generator=torch.Generator().manual_seed(2))
    y = nn.functional.one_hot(labels, 36).permute(0, 3, 1, 2).float()
    return unet(_inputs(1, 2, 3, *SIZE), torch.tensor([10, 900]), y)


def _receiver_output(receiver: DiffusionReceiver) -> torch.Tensor:
    condition = nn.functional.one_hot(torch.arange(2 * 16 * 32).reshape(2, *SIZE) % 36, 36).permute(0, 3, 1, 2)
    return receiver(condition.float(), generator=torch.Generator().manual_seed(3))


@dataclass(frozen=True)
class FolderKind:
    """How one kind of model is built, saved, loaded and run, and where its files are."""

    name: str
    build: Callable[[], Any]
    load: Callable[[Path], Any]
    #: The output on a fixed input (eval mode, seeded).
    output: Callable[[Any], torch.Tensor]
    #: The module whose state dict is saved, and the configs that travel with it.
    network: Callable[[Any], nn.Module]
    configs: Callable[[Any], tuple[Config, ...]]
    #: Where the weights and their config are inside the folder.
    weights: str
    config: str
    #: The same kind of config, for another architecture.
    other_architecture: Config


KINDS = [
    FolderKind(
        "receiver",
        build=lambda: DiffusionReceiver(GescoUNet(TINY_UNET), TINY_RECEIVER),
        load=DiffusionReceiver.from_pretrained,
        output=_receiver_output,
        network=lambda receiver: receiver.unet,
        configs=lambda receiver: (receiver.config, receiver.unet.config),
        weights=f"unet/{WEIGHTS_NAME}",
        config="unet/config.json",
        other_architecture=TINY_UNET.replace(num_res_blocks=2),
    ),
    FolderKind(
        "unet",
        build=lambda: GescoUNet(TINY_UNET),
        load=GescoUNet.from_pretrained,
        output=_unet_output,
        network=lambda unet: unet,
        configs=lambda unet: (unet.config,),
        weights=WEIGHTS_NAME,
        config="config.json",
        other_architecture=TINY_UNET.replace(spade_hidden_channels=32),
    ),
    FolderKind(
        "segmenter",
        build=lambda: GescoSegmenter(TINY_SEGMENTER),
        load=GescoSegmenter.from_pretrained,
        output=lambda segmenter: segmenter(_inputs(4, 2, 3, 20, 36)),
        network=lambda segmenter: segmenter,
        configs=lambda segmenter: (segmenter.config,),
        weights=WEIGHTS_NAME,
        config="config.json",
        other_architecture=TINY_SEGMENTER.replace(widths=(4, 8, 8)),
    ),
    FolderKind(
        "deep-jscc",
        build=lambda: DeepJSCC(TINY_DEEP_JSCC),
        load=DeepJSCC.from_pretrained,
        output=lambda model: model.decode(model.encode(_inputs(5, 2, 3, *SIZE), snr_db=5.0), snr_db=5.0),
        network=lambda model: model,
        configs=lambda model: (model.config,),
        weights=WEIGHTS_NAME,
        config="config.json",
        other_architecture=TINY_DEEP_JSCC.replace(latent_channels=8),
    ),
]


@pytest.fixture(params=KINDS, ids=[kind.name for kind in KINDS])
def kind(request) -> FolderKind:
    return request.param


@pytest.fixture
def model(kind: FolderKind) -> Any:
    """A freshly built model with every floating weight and buffer moved off its initial value (zero-initialised
    output convs included), so that every tensor reaches the output and a lost one shows."""
    model = kind.build()
    network = kind.network(model).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for tensor in network.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(0.05 * torch.randn(tensor.shape, generator=generator))
    return model


def _assert_same_state(loaded: nn.Module, expected: dict[str, torch.Tensor]) -> None:
    state = loaded.state_dict()
    assert state.keys() == expected.keys()
    for name, tensor in expected.items():
        assert state[name].dtype == tensor.dtype and torch.equal(state[name], tensor), name


def test_save_load_gives_the_same_config_weights_and_output(kind, model, tmp_path):
    folder = model.save_pretrained(tmp_path / kind.name)
    assert folder == tmp_path / kind.name and (folder / kind.weights).is_file() and (folder / kind.config).is_file()
    loaded = kind.load(folder)
    assert type(loaded) is type(model) and kind.configs(loaded) == kind.configs(model)
    assert not kind.network(loaded).training
    _assert_same_state(kind.network(loaded), kind.network(model).state_dict())
    with torch.no_grad():
        assert torch.equal(kind.output(loaded), kind.output(model))


def test_float16_weights_load_as_float32(kind, model, tmp_path):
    folder = model.save_pretrained(tmp_path / kind.name)
    weights = load_tensors(folder / kind.weights)
    save_tensors(folder / kind.weights, {k: v.half() if v.is_floating_point() else v for k, v in weights.items()})
    loaded = kind.network(kind.load(folder))
    expected = {k: v.half().float() if v.is_floating_point() else v for k, v in weights.items()}
    _assert_same_state(loaded, expected)


def test_missing_weights_file_is_a_file_not_found_error(kind, model, tmp_path):
    folder = model.save_pretrained(tmp_path / kind.name)
    (folder / kind.weights).unlink()
    with pytest.raises(FileNotFoundError, match="no weights file at .*model.safetensors"):
        kind.load(folder)


def test_missing_config_is_a_file_not_found_error(kind, model, tmp_path):
    folder = model.save_pretrained(tmp_path / kind.name)
    (folder / kind.config).unlink()
    with pytest.raises(FileNotFoundError, match="config"):
        kind.load(folder)


def test_truncated_weights_file_is_a_value_error_naming_the_file(kind, model, tmp_path):
    folder = model.save_pretrained(tmp_path / kind.name)
    weights = folder / kind.weights
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"cannot read weights from .*model\.safetensors \(truncated"):
        kind.load(folder)


def test_weights_of_another_architecture_are_a_state_dict_mismatch(kind, model, tmp_path):
    folder = model.save_pretrained(tmp_path / kind.name)
    kind.other_architecture.save(folder / kind.config)
    with pytest.raises(StateDictMismatchError, match=r"model\.safetensors does not match the architecture"):
        kind.load(folder)
