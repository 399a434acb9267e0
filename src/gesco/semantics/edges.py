"""Instance-edge channel: 1 where a pixel's instance id differs from one of its 4 neighbours."""

from __future__ import annotations

from typing import Literal

import torch

EdgeRule = Literal["instance", "official"]
EDGE_RULES: tuple[str, ...] = ("instance", "official")


def instance_edges(instances: torch.Tensor, *, rule: EdgeRule = "instance") -> torch.Tensor:
    """Edge map of an instance map.

    Args:
        instances: integer tensor (B, H, W) of instance ids.
        rule: ``"instance"`` marks every boundary between two ids (true instance edges);
            ``"official"`` first saturates ids at 255, as the official loader's 8-bit
            ``convert("L")`` does to Cityscapes' 16-bit instance maps, so touching
            instances of thing classes (ids >= 1000) share no edge.

    Returns:
        float32 tensor (B, 1, H, W) with values in {0, 1}; both pixels of a differing
        4-neighbour pair are marked.
    """
    if rule not in EDGE_RULES:
        raise ValueError(f"unknown edge rule {rule!r}; choose one of {list(EDGE_RULES)}")
    if instances.dim() != 3:
        raise ValueError(f"instance map must have shape (B, H, W), got {tuple(instances.shape)}")
    ids = instances.clamp(max=255) if rule == "official" else instances
    edge = torch.zeros(ids.shape, dtype=torch.bool, device=ids.device)
    horizontal = ids[:, :, 1:] != ids[:, :, :-1]
    vertical = ids[:, 1:, :] != ids[:, :-1, :]
    edge[:, :, 1:] |= horizontal
    edge[:, :, :-1] |= horizontal
    edge[:, 1:, :] |= vertical
    edge[:, :-1, :] |= vertical
    return edge.unsqueeze(1).float()
