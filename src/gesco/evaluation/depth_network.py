r"""gesco's compact monocular depth network: a small UNet from one image to metric depth.

It answers the :class:`~gesco.evaluation.geometry_networks.DepthEstimator` call: float (B, 3, H, W) images in
[-1, 1] in, float32 (B, H, W) depth in metres out. It is a folder of ``config.json``
(:class:`DepthNetConfig`) and ``model.safetensors``, trained by ``gesco train-depth``.

The UNet is the segmenter's (two 3x3 conv-BN-ReLU layers per level, skip connections) with one output
channel :math:`u`, read as log depth squashed into the configured range, so every output is a positive
depth and its gradient never vanishes at either end:

.. math::

    \log d = \log d_{min} + (\log d_{max} - \log d_{min})\, \sigma(u)

Trained with :func:`depth_loss`: the scale-invariant log error of Eigen et al. (2014) plus an L1 term on log
depth, which pins the metric scale the scale-invariant part leaves almost free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from gesco.config import Config
from gesco.datasets.synthetic_canvas import SKY_DEPTH_M
from gesco.evaluation.segmenter import CompactUNet
from gesco.weights_folder import WeightsFolder


@dataclass(frozen=True)
class DepthNetConfig(Config):
    """The compact depth UNet.

    Attributes:
        widths: channels per resolution level (level i at 1 / 2**i).
        min_depth, max_depth: the range of the output (m); the synthetic sky lies at ``SKY_DEPTH_M``.
    """

    widths: tuple[int, ...] = (16, 32, 64, 96)
    min_depth: float = 0.5
    max_depth: float = SKY_DEPTH_M

    def __post_init__(self) -> None:
        if len(self.widths) < 2 or min(self.widths) < 1:
            raise ValueError(f"widths {list(self.widths)} needs at least two positive channel counts")
        if not 0 < self.min_depth < self.max_depth:
            raise ValueError(f"need 0 < min_depth < max_depth (m), got {self.min_depth} and {self.max_depth}")


class GescoDepthNet(WeightsFolder, CompactUNet):
    """Compact UNet depth network; ``forward`` gives log depth, ``estimate`` depth in metres."""

    config_class = DepthNetConfig

    def __init__(self, config: DepthNetConfig):
        super().__init__()
        self.config = config
        self.build_unet(config.widths, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """float (B, 3, H, W) in [-1, 1] -> float (B, H, W) natural log of depth in metres; any H, W."""
        low, high = math.log(self.config.min_depth), math.log(self.config.max_depth)
        return low + (high - low) * torch.sigmoid(self.run_unet(images)[:, 0].float())

    @torch.no_grad()
    def estimate(self, images: torch.Tensor) -> torch.Tensor:
        """float (B, 3, H, W) in [-1, 1] -> float32 (B, H, W) depth (m), in eval mode (batch statistics frozen)."""
        was_training = self.training
        self.eval()
        try:
            return self(images.float()).exp()
        finally:
            self.train(was_training)


def depth_loss(
    log_depth: torch.Tensor, target: torch.Tensor, *, variance_focus: float = 0.85, l1_weight: float = 1.0
) -> torch.Tensor:
    r"""Scale-invariant log loss plus L1 on log depth, per image over its valid pixels, mean over images.

    With :math:`g_i = \log d_i - \log d^*_i` over the n valid pixels of an image:

    .. math::

        L = \frac1n \sum_i g_i^2 - \lambda \Big(\frac1n \sum_i g_i\Big)^2 + w \frac1n \sum_i |g_i|

    :math:`\lambda` = ``variance_focus`` (1: fully scale-invariant, 0: plain squared log error; Eigen et al.
    use 0.5, BTS 0.85), :math:`w` = ``l1_weight``.

    Args:
        log_depth: float (B, H, W) predicted natural log depth (the network's ``forward``).
        target: float (B, H, W) ground-truth depth (m); pixels <= 0 or not finite are unknown and left out.

    Raises:
        ValueError: shapes differ, or no image has a valid pixel.
    """
    if log_depth.shape != target.shape or log_depth.dim() != 3:
        raise ValueError(
            f"log_depth {tuple(log_depth.shape)} and target {tuple(target.shape)} must be the same (B, H, W) shape"
        )
    if not 0 <= variance_focus <= 1 or l1_weight < 0:
        raise ValueError(f"need variance_focus in [0, 1] and l1_weight >= 0, got {variance_focus}, {l1_weight}")
    valid = torch.isfinite(target) & (target > 0)
    count = valid.sum(dim=(1, 2))
    if not (count > 0).any():
        raise ValueError("no valid ground-truth depth (> 0 and finite) in the batch")
    log_target = torch.where(valid, target, torch.ones_like(target)).float().log()
    g = torch.where(valid, log_depth.float() - log_target, torch.zeros_like(log_target))
    n = count.clamp(min=1)
    mean = g.sum(dim=(1, 2)) / n
    loss = (g.square().sum(dim=(1, 2)) / n - variance_focus * mean.square()) + l1_weight * g.abs().sum(dim=(1, 2)) / n
    return loss[count > 0].mean()
