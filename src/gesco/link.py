"""The whole link, read like its block diagram: transmitter -> channel -> receiver."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gesco.channel.awgn import AWGNChannel, Received
from gesco.receiver.receiver import Receiver, ReceiverOutput
from gesco.semantics.maps import SemanticMap
from gesco.semantics.payload import Payload
from gesco.semantics.transmitter import Transmitter


@dataclass(frozen=True)
class LinkOutput:
    """Every intermediate of one pass through the link."""

    payload: Payload
    received: Received
    output: ReceiverOutput

    @property
    def images(self) -> torch.Tensor | None:
        return self.output.images


class Link(nn.Module):
    """Compose the three blocks; each can be swapped without touching callers.

    >>> import torch
    >>> from gesco.semantics import SemanticMap
    >>> link = Link()
    >>> out = link(SemanticMap(torch.tensor([[7, 7, 26]]), "cityscapes"), psnr=10,
    ...            generator=torch.Generator().manual_seed(0))
    >>> out.output.condition.shape, out.images is None
    (torch.Size([1, 36, 1, 3]), True)
    """

    def __init__(
        self,
        transmitter: nn.Module | None = None,
        channel: nn.Module | None = None,
        receiver: Receiver | None = None,
    ):
        super().__init__()
        self.transmitter = transmitter or Transmitter()
        self.channel = channel or AWGNChannel()
        self.receiver = receiver or Receiver()

    def forward(
        self,
        semantic_map: SemanticMap,
        *,
        sigma: float | None = None,
        psnr: float | None = None,
        snr_db: float | None = None,
        generator: torch.Generator | None = None,
    ) -> LinkOutput:
        payload = self.transmitter(semantic_map)
        received = self.channel(payload, sigma=sigma, psnr=psnr, snr_db=snr_db, generator=generator)
        return LinkOutput(payload, received, self.receiver(received, generator=generator))
