"""The whole link, read like its block diagram: transmitter -> channel -> receiver.

Every command and the training's channel mode run maps through :class:`Link`, so what is trained on, sampled
from and scored is made by the same transmitter, channel and map-denoiser code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from gesco.channel.awgn import AWGNChannel
from gesco.channel.base import Channel, Generators, Received
from gesco.channel.quality import ChannelQuality
from gesco.receiver.receiver import Receiver, ReceiverOutput
from gesco.semantics.maps import SemanticMap
from gesco.semantics.payload import Payload
from gesco.semantics.transmitter import Transmitter

if TYPE_CHECKING:
    from gesco.receiver.sampling import SamplerConfig


@dataclass(frozen=True)
class LinkOutput:
    """Every intermediate of one pass through the link."""

    payload: Payload
    received: Received
    output: ReceiverOutput

    @property
    def condition(self) -> torch.Tensor:
        """float (B, C, H, W): the map denoiser's output, which conditions the image generator."""
        return self.output.condition

    @property
    def images(self) -> torch.Tensor | None:
        """float (B, 3, H, W) in [-1, 1], or None for a receiver without an image generator."""
        return self.output.images


class Link(nn.Module):
    """Compose the three blocks; each can be swapped without touching callers.

    Args:
        transmitter: label map -> payload (default :class:`Transmitter`).
        channel: any :class:`~gesco.channel.base.Channel` (default the paper's :class:`AWGNChannel`).
        receiver: map denoiser + image generator (default FDS and no generator: the link stops at the map).

    >>> import torch
    >>> from gesco.channel import ChannelQuality
    >>> from gesco.semantics import SemanticMap
    >>> out = Link()(SemanticMap(torch.tensor([[7, 7, 26]]), "cityscapes"), ChannelQuality.psnr_label(10),
    ...              generator=torch.Generator().manual_seed(0))
    >>> out.condition.shape, out.images is None
    (torch.Size([1, 36, 1, 3]), True)
    """

    def __init__(
        self, transmitter: nn.Module | None = None, channel: Channel | None = None, receiver: Receiver | None = None
    ):
        super().__init__()
        if channel is not None and not isinstance(channel, Channel):
            raise TypeError(
                f"the link's channel must implement gesco.channel.base.Channel, got {type(channel).__name__}"
            )
        # an object that is no module would only fail at the first call, with "'str' object is not callable"
        for name, block in (("transmitter", transmitter), ("receiver", receiver)):
            if block is not None and not isinstance(block, nn.Module):
                raise TypeError(f"the link's {name} must be a torch.nn.Module, got {type(block).__name__}")
        self.transmitter = transmitter or Transmitter()
        self.channel = channel or AWGNChannel()
        self.receiver = receiver or Receiver()

    def forward(
        self,
        semantic_map: SemanticMap,
        quality: ChannelQuality,
        *,
        generator: Generators = None,
        receiver_generator: torch.Generator | None = None,
        x_T: torch.Tensor | None = None,
        sampler: SamplerConfig | None = None,
        progress: bool = False,
    ) -> LinkOutput:
        """Send ``semantic_map`` at ``quality`` and regenerate it.

        Args:
            generator: the channel's randomness: one generator, one per map, or None (global).
            receiver_generator: the image generator's randomness; default ``generator`` when that is a single
                generator (one seed drives the whole link), else the global generator.
            x_T: float (B, 3, H, W) starting noise of the image generator.
            sampler: overrides the image generator's default sampler for this call.
        """
        if not isinstance(semantic_map, SemanticMap):
            raise TypeError(f"a link sends a SemanticMap, got {type(semantic_map).__name__}")
        payload = self.transmitter(semantic_map)
        received = self.channel(payload, quality, generator=generator)
        if receiver_generator is None and isinstance(generator, torch.Generator):
            receiver_generator = generator
        output = self.receiver(received, generator=receiver_generator, x_T=x_T, sampler=sampler, progress=progress)
        return LinkOutput(payload, received, output)
