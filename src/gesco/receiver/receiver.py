"""The receiver block: received payload -> map denoiser -> conditioning map -> image generator -> image."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

import torch
from torch import nn

from gesco.channel.base import Received, check_finite
from gesco.receiver.map_denoisers import build_map_denoiser
from gesco.receiver.noise_level import received_sigma

#: Where the receiver takes the noise level it hands to the image generator.
SIGMA_SOURCES = ("channel", "blind")

if TYPE_CHECKING:
    from gesco.receiver.sampling import SamplerConfig


class ImageGenerator(Protocol):
    """Anything that turns a conditioning map into images, e.g. :class:`gesco.receiver.pipeline.DiffusionReceiver`."""

    def __call__(
        self,
        condition: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        x_T: torch.Tensor | None = None,
        sampler: SamplerConfig | None = None,
        progress: bool = False,
    ) -> torch.Tensor:
        """condition: float (B, C, H, W) -> images float (B, 3, H, W) in [-1, 1]; ``sampler`` overrides the
        generator's default sampler for this call, ``x_T`` its starting noise."""
        ...


@dataclass(frozen=True)
class ReceiverOutput:
    """Attributes:
    condition: float (B, C, H, W): the map that conditions the generator (the map denoiser's output),
        untransmitted channels 0.
    images: float (B, 3, H, W) in [-1, 1], or None when the receiver has no image generator.
    """

    condition: torch.Tensor
    images: torch.Tensor | None


class Receiver(nn.Module):
    """A map denoiser followed by an image generator.

    Args:
        image_generator: turns the conditioning map into images; ``None`` stops after the map denoiser.
        map_denoiser: ``"fds"`` (the paper's fast denoising, default), ``"none"``, or any module
            ``received -> condition`` (see ``gesco.receiver.map_denoisers``).
        sigma_source: the noise level handed to the map denoiser and the image generator: ``"channel"``
            (``Received.sigma``, what the channel reports) or ``"blind"`` (estimated from the received map alone,
            ``gesco.receiver.noise_level.estimate_sigma``).

    ``Receiver.from_pretrained(folder)`` builds one from a trained receiver folder with its own map denoiser.
    """

    def __init__(
        self,
        image_generator: ImageGenerator | None = None,
        *,
        map_denoiser: str | nn.Module = "fds",
        sigma_source: str = "channel",
    ):
        super().__init__()
        if sigma_source not in SIGMA_SOURCES:
            raise ValueError(f"sigma_source must be one of {list(SIGMA_SOURCES)}, got {sigma_source!r}")
        self.image_generator = image_generator
        self.map_denoiser = build_map_denoiser(map_denoiser)
        self.sigma_source = sigma_source

    @classmethod
    def from_pretrained(cls, directory, *, map_denoiser: str | nn.Module | None = None) -> Receiver:
        """The receiver of a folder from ``gesco train`` / ``convert-official`` (a shipped model's folder is
        ``gesco.pretrained.resolve(name)``), with the map denoiser its ``receiver.json`` names unless
        ``map_denoiser`` is given."""
        from gesco.receiver.pipeline import DiffusionReceiver

        generator = DiffusionReceiver.from_pretrained(directory)
        return cls(generator, map_denoiser=map_denoiser or generator.config.map_denoiser)

    def forward(
        self,
        received: Received,
        *,
        generator: torch.Generator | None = None,
        x_T: torch.Tensor | None = None,
        sampler: SamplerConfig | None = None,
        progress: bool = False,
    ) -> ReceiverOutput:
        if not isinstance(received, Received):
            raise TypeError(f"a Receiver takes what a channel returns (a Received), got {type(received).__name__}")
        # a NaN here would be hidden by the map denoiser's argmax, and images made of it would look plausible
        check_finite("the received map", received.payload.values)
        if self.sigma_source != "channel":
            # a blind receiver knows nothing the channel did not leave in the map: the learned map denoiser
            # reads this estimate too, not the channel's sigma
            received = replace(received, sigma=received_sigma(received, self.sigma_source))
        condition = self.map_denoiser(received)
        if self.image_generator is None:
            return ReceiverOutput(condition, None)
        images = self.image_generator(
            condition, generator=generator, x_T=x_T, sampler=sampler, sigma=received.sigma, progress=progress
        )
        return ReceiverOutput(condition, images)
