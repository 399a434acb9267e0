"""Pieces shared by test modules in several folders; imported as ``helpers`` (``pythonpath = ["tests"]`` in
pyproject's pytest options). Fixtures stay in the conftest files."""

from pathlib import Path

import torch

from gesco.receiver.unet import GescoUNet, UNetConfig

#: Two levels, one res-block each: about 1M parameters, a forward in milliseconds on a CPU.
TINY_UNET = UNetConfig(
    base_channels=32,
    channel_mult=(1, 2),
    num_res_blocks=1,
    attention_ds=(2,),
    head_channels=32,
    label_channels=36,
    spade_hidden_channels=16,
)


def tiny_train_config(out: Path) -> dict:
    """A ``gesco train`` config (as JSON data) of two steps of the tiny UNet on eight synthetic scenes."""
    return {
        "output_dir": str(out),
        "data": {"kind": "synthetic", "size": [16, 32], "num_scenes": 8},
        "model": TINY_UNET.to_dict(),
        "batch_size": 2,
        "max_steps": 2,
        "checkpoint_every": 1,
    }


#: The image size of the exported-backend tests' tiny UNets.
BACKEND_TEST_SIZE = (16, 32)


def tiny_unet(config: UNetConfig = TINY_UNET) -> GescoUNet:
    """A tiny UNet whose zero-initialised layers (output conv, noise and guidance embeddings) carry weights too,
    so that every input reaches the output."""
    torch.manual_seed(0)
    unet = GescoUNet(config).eval()
    with torch.no_grad():
        for parameter in unet.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return unet


def label_map(batch: int, seed: int, size: tuple[int, int] = BACKEND_TEST_SIZE) -> torch.Tensor:
    """A random one-hot map of 35 classes plus the edge channel: float (batch, 36, H, W)."""
    labels = torch.randint(0, 35, (batch, *size), generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.one_hot(labels, 36).permute(0, 3, 1, 2).float()
