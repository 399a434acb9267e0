"""The paper's channel: additive white Gaussian noise on the transmitted map values."""

from __future__ import annotations

import torch

from gesco.channel.base import Channel, Generators, Received, analog_channel_uses
from gesco.channel.quality import ChannelQuality
from gesco.semantics.payload import Payload

#: The quality kinds of the analog channels on the map's own scale.
MAP_SCALE_QUALITIES = ("psnr_label", "peak_snr_db", "noise_std")


def compact_noise(payload: Payload, generators: list[torch.Generator | None]) -> list[torch.Tensor]:
    """One standard normal draw of shape (k, H, W) per map, in batch order.

    Drawing each map's transmitted channels as one ``torch.randn((k, H, W))`` is exactly the
    official receiver's draw, so a seeded generator (or ``torch.manual_seed`` with
    ``generator=None``) reproduces the official noisy maps bit for bit.
    """
    height, width = payload.size
    counts = payload.transmitted.sum(dim=1).tolist()
    return [torch.randn((k, height, width), generator=g) for k, g in zip(counts, generators, strict=True)]


class AWGNChannel(Channel):
    """Additive white Gaussian noise on the transmitted channels only: r = x + sigma * n.

    Quality: a paper PSNR label, a peak SNR in dB, or sigma itself (``MAP_SCALE_QUALITIES``). For an
    Es/N0 the map must first be normalised to unit-power symbols: use ``UnitPowerAnalogChannel``.

    >>> import torch
    >>> from gesco.semantics import SemanticMap, Transmitter
    >>> payload = Transmitter()(SemanticMap(torch.tensor([[7, 26]]), "cityscapes"))
    >>> received = AWGNChannel()(payload, ChannelQuality.psnr_label(10), generator=torch.Generator().manual_seed(0))
    >>> float(received.sigma[0]), bool((received.payload.values[0, 0] == 0).all())
    (0.36000001430511475, True)
    """

    accepts = MAP_SCALE_QUALITIES

    def quality_hint(self) -> str:
        return "; for an Es/N0 use UnitPowerAnalogChannel (unit-power symbols)"

    def transmit(self, payload: Payload, quality: ChannelQuality, generators: list[torch.Generator | None]) -> Received:
        sigmas = quality.sigmas(payload.batch_size)
        values = payload.values.clone()
        for b, noise in enumerate(compact_noise(payload, generators)):
            mask = payload.transmitted[b]
            values[b, mask] += sigmas[b].to(values.dtype) * noise.to(values.device, values.dtype)
        return Received(payload.with_values(values), sigmas, quality, analog_channel_uses(payload))


__all__ = ["MAP_SCALE_QUALITIES", "AWGNChannel", "Generators", "compact_noise"]
