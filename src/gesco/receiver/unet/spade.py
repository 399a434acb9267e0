"""SPADE group norm: the label map modulates normalised features (Park et al. 2019, as in SDM/GESCO)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gesco.receiver.unet.config import NORM_GROUPS


class SPADEGroupNorm(nn.Module):
    r"""Parameter-free GroupNorm(32) followed by a per-pixel affine map predicted from the label map.

    .. math::
        a = \mathrm{ReLU}(\mathrm{conv}_{3\times3}(m)), \qquad
        \mathrm{out} = \mathrm{GN}(x) \odot (1 + \mathrm{conv}^{\gamma}_{3\times3}(a))
                       + \mathrm{conv}^{\beta}_{3\times3}(a)

    with ``m`` the label map resized to the feature size by nearest neighbour.

    Args:
        channels: width C of the normalised features.
        label_channels: channels of the label map.
        hidden_channels: width of the shared conv (128 in SPADE, SDM and GESCO).
    """

    def __init__(self, channels: int, label_channels: int, *, hidden_channels: int = 128) -> None:
        super().__init__()
        self.num_groups = NORM_GROUPS
        self.shared = nn.Conv2d(label_channels, hidden_channels, kernel_size=3, padding=1)
        self.gamma = nn.Conv2d(hidden_channels, channels, kernel_size=3, padding=1)
        self.beta = nn.Conv2d(hidden_channels, channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor, label_map: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W); label_map: (B, label_channels, H0, W0), any size. Returns (B, C, H, W) in x's dtype.

        The statistics are computed in float32 whatever the autocast dtype.
        """
        if label_map.shape[-2:] != x.shape[-2:]:
            label_map = F.interpolate(label_map, size=x.shape[-2:], mode="nearest")
        normalized = F.group_norm(x.float(), self.num_groups).to(x.dtype)
        hidden = F.relu(self.shared(label_map))
        scale = self.gamma(hidden).add_(1)  # 1 + gamma, in place: the conv output is not needed again
        return torch.addcmul(self.beta(hidden), normalized, scale)
