"""The channel contract: every channel maps ``payload (+ quality) -> Received`` with one call shape.

.. code-block:: python

    received = channel(payload, ChannelQuality.psnr_label(10), generator=torch.Generator().manual_seed(0))

- ``payload``: the transmitter's :class:`~gesco.semantics.payload.Payload` (B maps, full channel layout).
- ``quality``: a :class:`~gesco.channel.quality.ChannelQuality`; the channel's ``accepts`` names the kinds it
  interprets, any other kind raises :class:`~gesco.channel.quality.UnsupportedQualityError`.
- ``generator``: one ``torch.Generator`` for the batch (maps drawn in batch order), one per map (common
  random numbers: map b's noise does not depend on its batch), or None (the global generator).

A new channel subclasses :class:`Channel`, sets ``accepts`` and implements ``transmit``; registering it by name
in ``gesco.channel.registry`` makes it available to the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from gesco.channel.quality import QUALITY_NAMES, ChannelQuality, UnsupportedQualityError
from gesco.channel.symbols import complex_channel_uses
from gesco.semantics.payload import Payload

Generators = torch.Generator | Sequence[torch.Generator] | None


@dataclass(frozen=True)
class Received:
    """What the receiver gets.

    Attributes:
        payload: the received values in the full layout (untransmitted channels stay 0); its
            ``transmitted`` mask is what the receiver knows was sent (the side information).
        sigma: float32 (B,): noise standard deviation per real value on the map's 0/1 scale, before any
            equalisation (0 for a digital link, whose decoded parts are exact).
        quality: the quality the channel was run at.
        complex_channel_uses: int64 (B,): complex channel uses spent on each map.
        known: bool (B, H, W) pixels the receiver has values for, or None when it has all of them.
    """

    payload: Payload
    sigma: torch.Tensor
    quality: ChannelQuality
    complex_channel_uses: torch.Tensor
    known: torch.Tensor | None = None

    def __post_init__(self) -> None:
        # a wrong shape here fails deep inside a map denoiser, and a NaN sigma turns into plausible images
        if not isinstance(self.payload, Payload):
            raise TypeError(f"Received.payload must be a Payload, got {type(self.payload).__name__}")
        batch = (self.payload.batch_size,)
        for name in ("sigma", "complex_channel_uses"):
            value = getattr(self, name)
            if not isinstance(value, torch.Tensor) or tuple(value.shape) != batch:
                shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise ValueError(f"Received.{name} must be a tensor of shape {batch}, one per map; got {shape}")
        check_finite("Received.sigma", self.sigma)


def check_finite(name: str, tensor: torch.Tensor) -> None:
    """Raise ``ValueError`` if ``tensor`` holds NaN or Inf."""
    if not torch.isfinite(tensor).all():
        nan, inf = int(torch.isnan(tensor).sum()), int(torch.isinf(tensor).sum())
        raise ValueError(f"{name} holds {nan} NaN and {inf} Inf values; it must be finite")


def map_generators(generator: Generators, batch_size: int) -> list[torch.Generator | None]:
    """One generator per map: the given one repeated (drawn in batch order), or the per-map list checked."""
    if generator is None or isinstance(generator, torch.Generator):
        return [generator] * batch_size
    generators = list(generator)
    if len(generators) != batch_size or not all(isinstance(g, torch.Generator) for g in generators):
        raise ValueError(
            f"give one torch.Generator, or a list of one per map ({batch_size}); got {len(generators)} items"
        )
    return generators


def analog_channel_uses(payload: Payload) -> torch.Tensor:
    """int64 (B,): complex channel uses of each map sent as analog values (two real values per use)."""
    return torch.tensor([complex_channel_uses(int(n)) for n in payload.real_values], dtype=torch.int64)


class Channel(nn.Module):
    """Base of every channel: checks the call, then ``transmit`` does the physics.

    Subclasses set ``accepts`` (the quality kinds they interpret) and implement ``transmit``.
    """

    accepts: ClassVar[tuple[str, ...]] = ()

    def forward(self, payload: Payload, quality: ChannelQuality, *, generator: Generators = None) -> Received:
        if not isinstance(payload, Payload):
            raise TypeError(f"a channel takes a Payload (from the Transmitter), got {type(payload).__name__}")
        if not isinstance(quality, ChannelQuality):
            raise TypeError(
                f"a channel takes its quality as a ChannelQuality, got {type(quality).__name__} {quality!r}; e.g. "
                "ChannelQuality.psnr_label(10), ChannelQuality.peak_snr_db(5), ChannelQuality.esn0_db(0)"
            )
        if quality.kind not in self.accepts:
            raise UnsupportedQualityError(
                f"{type(self).__name__} takes {' or '.join(QUALITY_NAMES[k] for k in self.accepts)}, not "
                f"{QUALITY_NAMES[quality.kind]}" + self.quality_hint()
            )
        if payload.batch_size == 0 or 0 in payload.size:
            raise ValueError(f"the payload is empty: {payload.batch_size} maps of {payload.size[0]}x{payload.size[1]}")
        check_finite("transmitted payload", payload.values)
        quality.per_map(payload.batch_size)
        return self.transmit(payload, quality, map_generators(generator, payload.batch_size))

    def quality_hint(self) -> str:
        """Appended to the error for an unsupported quality: where to go instead."""
        return ""

    def transmit(self, payload: Payload, quality: ChannelQuality, generators: list[torch.Generator | None]) -> Received:
        """The received maps; ``generators`` holds one generator (or None) per map."""
        raise NotImplementedError
