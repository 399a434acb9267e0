"""Conditioning maps for training: noise-aware maps (the paper) and condition dropout.

Three ways of making a training map noisy, chosen by ``TrainConfig.noise``:

- ``"paper"`` (the released code): sigma drawn per mini-batch from a list, one noise map of
  shape (B, 1, H, W) broadcast over every channel (one value per pixel, shared by classes).
- ``"channel"``: each map goes through the link the receiver will see at test time (``gesco.link.Link``:
  the transmitter, the AWGN channel on the transmitted channels with sigma drawn per map, then FDS),
  the edge channel included. This is the train/test match the paper's FDS lacks.
- ``"none"``: clean maps (the SDM-style ablation).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from gesco.channel.quality import ChannelQuality
from gesco.datasets.base import Batch
from gesco.link import Link
from gesco.semantics.classes import ClassTable
from gesco.semantics.maps import SemanticMap

NOISE_MODES = ("paper", "channel", "none")

#: The test-time link without an image generator: transmitter -> AWGN -> FDS.
_CHANNEL_LINK = Link()


def draw_sigmas(batch_size: int, sigmas: Sequence[float], *, per_map: bool, generator: torch.Generator) -> torch.Tensor:
    """(B,) noise levels drawn uniformly from ``sigmas``: one for the batch, or one per map."""
    choices = torch.tensor(sigmas, dtype=torch.float32)
    count = batch_size if per_map else 1
    picked = choices[torch.randint(len(choices), (count,), generator=generator)]
    return picked.expand(batch_size).clone()


def noisy_condition(
    semantic_map: SemanticMap,
    *,
    mode: str,
    sigmas: Sequence[float],
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The map the model is conditioned on during training.

    Args:
        semantic_map: the clean training maps (labels, instances, edge rule).
        mode: one of ``NOISE_MODES``.
        sigmas: the noise levels to draw from.
        generator: CPU generator for every draw (exact resume depends on it).

    Returns:
        (condition float (B, C, H, W), sigma (B,)).
    """
    if mode not in NOISE_MODES:
        raise ValueError(f"unknown noise mode {mode!r}; choose one of {list(NOISE_MODES)}")
    if mode == "channel":
        sigma = draw_sigmas(semantic_map.batch_size, sigmas, per_map=True, generator=generator)
        out = _CHANNEL_LINK(semantic_map, ChannelQuality.noise_std(sigma.tolist()), generator=generator)
        return out.condition, sigma
    one_hot = semantic_map.one_hot()
    batch, _, height, width = one_hot.shape
    if mode == "none":
        return one_hot, torch.zeros(batch)
    sigma = draw_sigmas(batch, sigmas, per_map=False, generator=generator)
    noise = torch.randn((batch, 1, height, width), generator=generator).to(one_hot.device, one_hot.dtype)
    return one_hot + sigma.to(one_hot.device, one_hot.dtype)[:, None, None, None] * noise, sigma


def drop_condition(condition: torch.Tensor, probability: float, *, generator: torch.Generator) -> torch.Tensor:
    """Zero whole maps with ``probability`` (classifier-free guidance learns the unconditional model)."""
    if probability <= 0:
        return condition
    keep = torch.rand(condition.shape[0], generator=generator) >= probability
    return condition * keep.to(condition.device, condition.dtype)[:, None, None, None]


def flipped_noisy_condition(
    batch: Batch,
    table: ClassTable,
    *,
    flip: bool,
    edge_rule: str,
    mode: str,
    sigmas: Sequence[float],
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The start of a receiver training step: flip images and maps together (with ``flip``, each with chance 1/2),
    then the map as the receiver sees it (:func:`noisy_condition`). Draws from ``generator`` in that order, so the
    receiver training and the guidance distillation see the same scenes for the same seed.

    Args:
    Returns:
        images (B, 3, H, W), condition (B, K, H, W) and sigma (B,).
    """
    images, labels, instances = batch.image, batch.labels, batch.instances
    if flip:
        flipped = torch.rand(images.shape[0], generator=generator) < 0.5
        images = torch.where(flipped[:, None, None, None], images.flip(-1), images)
        labels = torch.where(flipped[:, None, None], labels.flip(-1), labels)
        if instances is not None:
            instances = torch.where(flipped[:, None, None], instances.flip(-1), instances)
    semantic_map = SemanticMap(labels, table, instances, edge_rule)
    condition, sigma = noisy_condition(semantic_map, mode=mode, sigmas=sigmas, generator=generator)
    return images, condition, sigma
