"""The receiver block: received payload -> FDS -> conditioning map -> regenerated image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from gesco.channel.awgn import Received
from gesco.receiver.fds import fast_denoise


class ImageGenerator(Protocol):
    """Anything that turns a conditioning map into images, e.g. a diffusion sampler."""

    def __call__(self, condition: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """condition: float (B, C, H, W) -> images float (B, 3, H, W) in [-1, 1]."""
        ...


@dataclass(frozen=True)
class ReceiverOutput:
    """Attributes:
    condition: float (B, C, H, W): the map that conditions the generator (FDS output, or the
        received map when FDS is off), absent channels 0.
    images: float (B, 3, H, W) in [-1, 1], or None when the receiver has no generator.
    """

    condition: torch.Tensor
    images: torch.Tensor | None


class Receiver(nn.Module):
    """FDS (optional) followed by an image generator (optional).

    Args:
        image_generator: turns the conditioning map into images; ``None`` stops after FDS.
        use_fds: apply the fast denoising of the paper (3x3 mean then 3x3 max).
    """

    def __init__(self, image_generator: ImageGenerator | None = None, *, use_fds: bool = True):
        super().__init__()
        self.image_generator = image_generator
        self.use_fds = use_fds

    def forward(self, received: Received, *, generator: torch.Generator | None = None) -> ReceiverOutput:
        payload = received.payload
        if self.use_fds:
            condition = fast_denoise(payload.values, payload.transmitted)
        else:
            condition = payload.values * payload.transmitted[:, :, None, None].to(payload.values.dtype)
        images = None if self.image_generator is None else self.image_generator(condition, generator=generator)
        return ReceiverOutput(condition, images)
