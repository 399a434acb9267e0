"""The transmitter: semantic map -> payload."""

from __future__ import annotations

import torch
from torch import nn

from gesco.semantics.maps import SemanticMap
from gesco.semantics.payload import Payload


class Transmitter(nn.Module):
    """One-hot encodes a semantic map, appends the edge channel, and marks the present
    classes (plus the edge channel) as transmitted.

    >>> import torch
    >>> from gesco.semantics import SemanticMap, Transmitter
    >>> labels = torch.tensor([[7, 7, 26], [7, 26, 26]])
    >>> payload = Transmitter()(SemanticMap(labels, "cityscapes"))
    >>> payload.present_ids(0), int(payload.real_values[0])
    ([7, 26], 18)
    """

    def forward(self, semantic_map: SemanticMap) -> Payload:
        if not isinstance(semantic_map, SemanticMap):
            raise TypeError(f"the transmitter takes a SemanticMap, got {type(semantic_map).__name__}")
        table = semantic_map.table
        transmitted = semantic_map.present()
        if table.has_edge:
            edge = torch.ones(semantic_map.batch_size, 1, dtype=torch.bool, device=transmitted.device)
            transmitted = torch.cat([transmitted, edge], dim=1)
        return Payload(semantic_map.one_hot(), transmitted, table)
