"""Analog channels on the transmitted map: AWGN (the paper) and Rayleigh block fading."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gesco.channel.snr import resolve_sigma
from gesco.semantics.payload import Payload


@dataclass(frozen=True)
class Received:
    """What the receiver gets: the noisy payload and the noise it went through.

    Attributes:
        payload: noisy channel values in the full layout (untransmitted channels stay 0).
        sigma: float32 (B,): noise standard deviation per real value before any equalisation.
    """

    payload: Payload
    sigma: torch.Tensor


def check_finite(name: str, tensor: torch.Tensor) -> None:
    """Raise ``ValueError`` if ``tensor`` holds NaN or Inf."""
    if not torch.isfinite(tensor).all():
        nan, inf = int(torch.isnan(tensor).sum()), int(torch.isinf(tensor).sum())
        raise ValueError(f"{name} holds {nan} NaN and {inf} Inf values; it must be finite")


def sigma_per_map(batch_size: int, **quality: float | None) -> torch.Tensor:
    """(B,) noise standard deviations from one of sigma / psnr / snr_db (see ``resolve_sigma``)."""
    return torch.full((batch_size,), resolve_sigma(**quality), dtype=torch.float32)


def compact_noise(payload: Payload, generator: torch.Generator | None) -> list[torch.Tensor]:
    """One standard normal draw of shape (k, H, W) per map, in batch order.

    Drawing each map's transmitted channels as one ``torch.randn((k, H, W))`` is exactly the
    official receiver's draw, so a seeded generator (or ``torch.manual_seed`` with
    ``generator=None``) reproduces the official noisy maps bit for bit.
    """
    height, width = payload.size
    counts = payload.transmitted.sum(dim=1).tolist()
    return [torch.randn((k, height, width), generator=generator) for k in counts]


class AnalogChannel(nn.Module):
    """Base of the analog channels: checks the payload, resolves the noise level, keeps the layout.

    Call with exactly one of ``sigma``, ``psnr`` (a paper label, e.g. 10 -> sigma 0.36) or
    ``snr_db`` (peak SNR, see ``gesco.channel.snr``). Subclasses implement ``corrupt``.
    """

    def forward(
        self,
        payload: Payload,
        *,
        sigma: float | None = None,
        psnr: float | None = None,
        snr_db: float | None = None,
        generator: torch.Generator | None = None,
    ) -> Received:
        check_finite("transmitted payload", payload.values)
        sigmas = sigma_per_map(payload.batch_size, sigma=sigma, psnr=psnr, snr_db=snr_db)
        values = self.corrupt(payload, sigmas, generator)
        return Received(payload.with_values(values), sigmas)

    def corrupt(self, payload: Payload, sigmas: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """The received values (B, C, H, W); untransmitted channels stay 0."""
        raise NotImplementedError


class AWGNChannel(AnalogChannel):
    """Additive white Gaussian noise on the transmitted channels only: r = x + sigma * n.

    >>> import torch
    >>> from gesco.semantics import SemanticMap, Transmitter
    >>> payload = Transmitter()(SemanticMap(torch.tensor([[7, 26]]), "cityscapes"))
    >>> received = AWGNChannel()(payload, psnr=10, generator=torch.Generator().manual_seed(0))
    >>> float(received.sigma[0]), bool((received.payload.values[0, 0] == 0).all())
    (0.36000001430511475, True)
    """

    def corrupt(self, payload: Payload, sigmas: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        values = payload.values.clone()
        for b, noise in enumerate(compact_noise(payload, generator)):
            mask = payload.transmitted[b]
            values[b, mask] += sigmas[b].to(values.dtype) * noise.to(values.device, values.dtype)
        return values
