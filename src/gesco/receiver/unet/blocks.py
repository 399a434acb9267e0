"""Building blocks of the GESCO UNet: float32 group norm, timestep embedding, res-block, resamplers.

Every block takes and returns feature maps of shape (B, C, H, W) in any memory format; under
``torch.autocast`` the convolutions run in the autocast dtype while norm statistics stay float32.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gesco.receiver.unet.config import NORM_GROUPS
from gesco.receiver.unet.spade import SPADEGroupNorm

#: Longest period of the sinusoidal timestep features (guided-diffusion's ``max_period``).
MAX_PERIOD = 10_000.0


class GroupNorm32(nn.GroupNorm):
    """GroupNorm with 32 groups whose statistics are computed in float32.

    bf16 has 8 mantissa bits, too few for a variance over thousands of values, so the input is
    normalised in float32 and the result returned in the input dtype (as guided-diffusion does).
    """

    def __init__(self, channels: int, *, affine: bool = True) -> None:
        super().__init__(NORM_GROUPS, channels, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x.float(), self.num_groups, self.weight, self.bias, self.eps).to(x.dtype)


def timestep_embedding(timesteps: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of (possibly fractional) timesteps.

    Args:
        timesteps: (B,) int or float, usually 0..999.
        dim: feature size.

    Returns:
        (B, dim) float32: ``[cos(t * f_0..f_{k-1}), sin(t * f_0..f_{k-1})]`` with ``k = dim // 2`` and
        ``f_i = MAX_PERIOD ** (-i / k)`` (cosines first, as in guided-diffusion), zero-padded if ``dim`` is odd.
    """
    half = dim // 2
    exponents = torch.arange(half, dtype=torch.float32, device=timesteps.device) / half
    frequencies = torch.exp(-math.log(MAX_PERIOD) * exponents)
    angles = timesteps.float()[:, None] * frequencies[None]
    embedding = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
    return F.pad(embedding, (0, dim % 2))


class TimestepEmbedding(nn.Module):
    """Timestep (B,) -> sinusoid (B, base) -> Linear -> SiLU -> Linear -> (B, 4 * base)."""

    def __init__(self, base_channels: int, embedding_channels: int) -> None:
        super().__init__()
        self.base_channels = base_channels
        self.linear_in = nn.Linear(base_channels, embedding_channels)
        self.linear_out = nn.Linear(embedding_channels, embedding_channels)

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        features = timestep_embedding(timesteps, self.base_channels).to(self.linear_in.weight.dtype)
        return self.linear_out(F.silu(self.linear_in(features)))


class NoiseLevelEmbedding(nn.Module):
    """Channel noise sigma (B,) -> sinusoid of 1000 sigma -> Linear -> SiLU -> zero-init Linear -> (B, 4 * base).

    Added to the timestep embedding; the zero-initialised output makes a network that gains it behave exactly
    as before until training teaches it to read sigma (so a trained receiver can be fine-tuned into it).
    """

    #: sigma is scaled so that the paper's range 0 .. 0.9 spans the sinusoid's useful positions, as t does.
    SCALE = 1000.0

    def __init__(self, base_channels: int, embedding_channels: int) -> None:
        super().__init__()
        self.base_channels = base_channels
        self.linear_in = nn.Linear(base_channels, embedding_channels)
        self.linear_out = zero_init(nn.Linear(embedding_channels, embedding_channels))

    def forward(self, sigma: torch.Tensor) -> torch.Tensor:
        features = timestep_embedding(sigma.float() * self.SCALE, self.base_channels).to(self.linear_in.weight.dtype)
        return self.linear_out(F.silu(self.linear_in(features)))


class GuidanceScaleEmbedding(NoiseLevelEmbedding):
    """Guidance scale s (B,) -> sinusoid of 100 s -> Linear -> SiLU -> zero-init Linear -> (B, 4 * base).

    The input of a guidance-distilled network (Meng et al. 2023, "On Distillation of Guided Diffusion Models",
    stage one): added to the timestep embedding, zero at initialisation, so a student copied from its teacher
    starts as the teacher's conditional network (s = 1) for every s.
    """

    #: Useful scales run from 0 to about 10, so 100 s spans the sinusoid's positions as t in 0..999 does.
    SCALE = 100.0


def zero_init(module: nn.Module) -> nn.Module:
    """Zero a layer's parameters so its residual branch starts as the identity."""
    for parameter in module.parameters():
        nn.init.zeros_(parameter)
    return module


def _resample(x: torch.Tensor, mode: str | None) -> torch.Tensor:
    if mode == "down":
        return F.avg_pool2d(x, kernel_size=2)
    if mode == "up":
        return F.interpolate(x, scale_factor=2.0, mode="nearest")
    return x


class ResBlock(nn.Module):
    """Residual block conditioned on the timestep and, in the middle and decoder, on the label map.

    ``norm_in -> SiLU -> [resample] -> conv_in -> norm_out + timestep FiLM -> SiLU -> dropout -> conv_out``,
    plus the (resampled, 1x1-projected if the width changes) input. The encoder's norms are plain
    GroupNorm(32); with ``label_channels`` set both norms are :class:`SPADEGroupNorm`.

    Args:
        in_channels / out_channels: widths of the input and output feature maps.
        time_channels: width of the timestep embedding.
        label_channels: channels of the semantic map, or None for an image-only (encoder) block.
        spade_hidden_channels: width of the SPADE norms' shared conv.
        resample: ``"down"`` (2x2 average pool), ``"up"`` (2x nearest) or None.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        time_channels: int,
        label_channels: int | None = None,
        spade_hidden_channels: int = 128,
        dropout: float = 0.0,
        scale_shift_norm: bool = True,
        resample: str | None = None,
    ) -> None:
        super().__init__()
        if resample not in (None, "down", "up"):
            raise ValueError(f"resample must be None, 'down' or 'up', got {resample!r}")
        self.resample = resample
        self.scale_shift_norm = scale_shift_norm
        self.label_conditioned = label_channels is not None
        if label_channels is None:
            self.norm_in: nn.Module = GroupNorm32(in_channels)
            self.norm_out: nn.Module = GroupNorm32(out_channels)
        else:
            self.norm_in = SPADEGroupNorm(in_channels, label_channels, hidden_channels=spade_hidden_channels)
            self.norm_out = SPADEGroupNorm(out_channels, label_channels, hidden_channels=spade_hidden_channels)
        self.conv_in = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.time_proj = nn.Linear(time_channels, 2 * out_channels if scale_shift_norm else out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv_out = zero_init(nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1))
        self.skip = nn.Conv2d(in_channels, out_channels, kernel_size=1) if in_channels != out_channels else None

    def _normalize(self, norm: nn.Module, h: torch.Tensor, label_map: torch.Tensor | None) -> torch.Tensor:
        return norm(h, label_map) if self.label_conditioned else norm(h)

    def forward(
        self, x: torch.Tensor, time_features: torch.Tensor, label_map: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x: (B, C_in, H, W); time_features: (B, time_channels), the SiLU-activated timestep embedding;
        label_map: (B, label_channels, H0, W0) at any resolution (SPADE blocks only).
        Returns (B, C_out, H', W') with H' = H/2, 2H or H for down, up or no resampling."""
        if self.label_conditioned and label_map is None:
            raise ValueError("this res-block is SPADE-conditioned: pass the label map")
        h = F.silu(self._normalize(self.norm_in, x, label_map))
        if self.resample is not None:
            h, x = _resample(h, self.resample), _resample(x, self.resample)
        h = self.conv_in(h)
        film = self.time_proj(time_features).to(h.dtype)[:, :, None, None]
        if self.scale_shift_norm:
            scale, shift = film.chunk(2, dim=1)
            h = torch.addcmul(shift, self._normalize(self.norm_out, h, label_map), 1 + scale)
        else:
            h = self._normalize(self.norm_out, h + film, label_map)
        h = self.conv_out(self.dropout(F.silu(h)))
        skip = x if self.skip is None else self.skip(x)
        return skip + h


class Downsample(nn.Module):
    """Stride-2 3x3 conv, used between encoder levels when ``resblock_updown`` is off.

    Takes the timestep features and label map only to share the call signature of a resampling
    :class:`ResBlock`; it ignores them.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=1)

    def forward(
        self, x: torch.Tensor, time_features: torch.Tensor, label_map: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """2x nearest upsampling then a 3x3 conv, used between decoder levels when ``resblock_updown`` is off.

    Takes (and ignores) the timestep features and label map, like :class:`Downsample`.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(
        self, x: torch.Tensor, time_features: torch.Tensor, label_map: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
