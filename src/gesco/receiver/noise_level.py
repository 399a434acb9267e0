"""The channel's noise level at the receiver: handing sigma to a noise-conditioned network, and estimating it
blindly from the received map when the channel does not say.

Blind estimate. A transmitted channel of a semantic map is piecewise constant (0 or 1 over regions), so the
difference of two neighbouring received values is, away from region borders, the difference of two noise
draws: N(0, 2 sigma^2). Borders are a small fraction of the pixel pairs, so the median absolute difference
ignores them, and

.. math::  \\hat\\sigma = \\operatorname{median}(|r_{i} - r_{i+1}|) / (\\sqrt 2 \\, \\Phi^{-1}(3/4))

over the horizontal and vertical neighbour pairs of the transmitted channels (the classic MAD estimator of a
Gaussian's scale, 0.6745 = Phi^-1(3/4)). It reads nothing but the received map (no side information).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gesco.channel.base import Received, check_finite

#: Phi^-1(3/4): the median of |N(0, 1)|.
_MEDIAN_ABS_NORMAL = 0.6744897501960817


def estimate_sigma(values: torch.Tensor, transmitted: torch.Tensor) -> torch.Tensor:
    """Blind noise estimate of each received map: float32 (B,), from the map alone (see the module docstring).

    Args:
        values: float (B, C, H, W) received map (before any map denoiser).
        transmitted: bool (B, C) channels that crossed the link.
    """
    if values.dim() != 4 or transmitted.shape != values.shape[:2]:
        raise ValueError(
            f"estimate_sigma takes a (B, C, H, W) map and a (B, C) mask, got {tuple(values.shape)} "
            f"and {tuple(transmitted.shape)}"
        )
    check_finite("received map", values)
    estimates = []
    for b in range(values.shape[0]):
        sent = values[b, transmitted[b]].float()
        differences = torch.cat(
            [(sent[:, :, 1:] - sent[:, :, :-1]).flatten(), (sent[:, 1:, :] - sent[:, :-1, :]).flatten()]
        )
        if differences.numel() == 0:
            raise ValueError(f"map {b}: no neighbouring values to estimate the noise from")
        estimates.append(differences.abs().median() / (math.sqrt(2) * _MEDIAN_ABS_NORMAL))
    return torch.stack(estimates).float()


def received_sigma(received: Received, source: str) -> torch.Tensor:
    """sigma (B,) of a received batch: as the channel reports it (``"channel"``) or estimated (``"blind"``)."""
    if source == "channel":
        return received.sigma
    if source == "blind":
        return estimate_sigma(received.payload.values, received.payload.transmitted)
    raise ValueError(f"sigma source must be 'channel' or 'blind', got {source!r}")


class NoiseConditioned(nn.Module):
    """A noise-conditioned network seen through the ``model(x, t, y)`` denoiser protocol of the samplers.

    Guidance runs the conditional and unconditional passes as one batch of 2B (or as two of B), so ``sigma``
    (B,) is tiled to whatever multiple of B the sampler sends.
    """

    def __init__(self, network: nn.Module, sigma: torch.Tensor):
        super().__init__()
        self.network = network
        self.sigma = sigma

    @property
    def guidance_distilled(self) -> bool:
        """The wrapped network's (a guidance-distilled one takes ``guidance`` as well, passed through)."""
        return bool(getattr(self.network, "guidance_distilled", False))

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor, **options: torch.Tensor) -> torch.Tensor:
        repeats, remainder = divmod(x.shape[0], self.sigma.shape[0])
        if remainder:
            raise ValueError(f"a batch of {x.shape[0]} samples for {self.sigma.shape[0]} noise levels")
        return self.network(x, t, y, sigma=self.sigma.to(x.device).repeat(repeats), **options)
