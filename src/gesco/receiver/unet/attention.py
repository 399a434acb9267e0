"""Multi-head self-attention over all pixels of a feature map."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gesco.receiver.unet.blocks import GroupNorm32, zero_init
from gesco.receiver.unet.config import QKV_LAYOUTS


class AttentionBlock(nn.Module):
    r"""Residual self-attention: ``x + proj_out(softmax(q k^T / \sqrt{d}) v)`` on ``GroupNorm(x)``.

    Every pixel is a token. The ``qkv`` projection's 3C outputs are ordered per ``qkv_layout``:
    ``"per_head"`` = [q_0, k_0, v_0, q_1, k_1, v_1, ...] (guided-diffusion's legacy order, the one
    GESCO and SDM use), ``"split"`` = [q_0..q_n, k_0..k_n, v_0..v_n].

    Args:
        channels: width C of the feature map.
        head_channels: width d of each head; ``C / d`` heads.
    """

    def __init__(self, channels: int, *, head_channels: int, qkv_layout: str = "per_head") -> None:
        super().__init__()
        if channels % head_channels:
            raise ValueError(f"head_channels={head_channels} must divide channels={channels}")
        if qkv_layout not in QKV_LAYOUTS:
            raise ValueError(f"qkv_layout must be one of {QKV_LAYOUTS}, got {qkv_layout!r}")
        self.num_heads = channels // head_channels
        self.head_channels = head_channels
        self.qkv_layout = qkv_layout
        self.norm = GroupNorm32(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj_out = zero_init(nn.Linear(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        batch, channels, height, width = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (B, T, C); a view when x is channels_last
        qkv = self.qkv(tokens)
        if self.qkv_layout == "per_head":
            qkv = qkv.view(batch, -1, self.num_heads, 3, self.head_channels).permute(3, 0, 2, 1, 4)
        else:
            qkv = qkv.view(batch, -1, 3, self.num_heads, self.head_channels).permute(2, 0, 3, 1, 4)
        query, key, value = qkv.unbind(0)  # each (B, heads, T, d)
        attended = F.scaled_dot_product_attention(query, key, value)
        attended = attended.transpose(1, 2).reshape(batch, height * width, channels)
        out = self.proj_out(attended).view(batch, height, width, channels).permute(0, 3, 1, 2)
        return x + out
