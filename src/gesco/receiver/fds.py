"""Fast denoising of the received semantic map (FDS), as the official receiver does it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gesco.channel.awgn import check_finite


def fast_denoise(values: torch.Tensor, transmitted: torch.Tensor) -> torch.Tensor:
    """3x3 mean filter (zero padding counted), then 3x3 max filter, on transmitted channels.

    Args:
        values: float (B, C, H, W) received map.
        transmitted: bool (B, C): channels that crossed the link; the others come out 0.

    Returns:
        float (B, C, H, W), same dtype; no clipping or thresholding.
    """
    if values.dim() != 4:
        raise ValueError(f"FDS takes a (B, C, H, W) map, got shape {tuple(values.shape)}")
    if transmitted.shape != values.shape[:2]:
        raise ValueError(f"transmitted mask shape {tuple(transmitted.shape)} does not match map {tuple(values.shape[:2])}")
    check_finite("received map", values)
    mean = F.avg_pool2d(values, 3, stride=1, padding=1, count_include_pad=True)
    peak = F.max_pool2d(mean, 3, stride=1, padding=1)
    return peak * transmitted[:, :, None, None].to(peak.dtype)


class FastDenoiser(nn.Module):
    """FDS as a link block: ``FastDenoiser()(payload) -> payload`` with filtered values."""

    def forward(self, payload):
        return payload.with_values(fast_denoise(payload.values, payload.transmitted))
