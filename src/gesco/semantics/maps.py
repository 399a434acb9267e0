"""The semantic map: an integer label map (and optional instance map) of one class table."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gesco.semantics.classes import ClassTable, class_table
from gesco.semantics.edges import EDGE_RULES, EdgeRule, instance_edges


def _as_batch(name: str, tensor: torch.Tensor) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dtype.is_floating_point or tensor.dtype.is_complex or tensor.dtype == torch.bool:
        raise TypeError(f"{name} must have an integer dtype, got {tensor.dtype}")
    if tensor.dim() == 2:
        tensor = tensor.unsqueeze(0)
    if tensor.dim() != 3:
        raise ValueError(f"{name} must have shape (B, H, W) or (H, W), got {tuple(tensor.shape)}")
    return tensor.long()


@dataclass(frozen=True)
class SemanticMap:
    """Label map of a class table, validated on construction.

    Attributes:
        labels: int64 tensor (B, H, W) of channel indices of ``table`` (0..num_classes-1).
            (H, W) is accepted and gets a batch dimension.
        table: the class table the ids refer to.
        instances: optional int64 tensor (B, H, W) of instance ids (e.g. Cityscapes'
            label_id * 1000 + k for things). Without it, the edge channel marks class
            boundaries (the label map acts as its own instance map).
        edge_rule: how edges are drawn from the instance map (see ``instance_edges``).
    """

    labels: torch.Tensor
    table: ClassTable
    instances: torch.Tensor | None = None
    edge_rule: EdgeRule = "instance"

    def __post_init__(self) -> None:
        if isinstance(self.table, str):
            object.__setattr__(self, "table", class_table(self.table))
        if not isinstance(self.table, ClassTable):
            raise TypeError(f"table must be a ClassTable or a table name, got {type(self.table).__name__}")
        # checked now, not when the edge channel is first drawn inside the transmitter
        if self.edge_rule not in EDGE_RULES:
            raise ValueError(f"unknown edge_rule {self.edge_rule!r}; choose one of {list(EDGE_RULES)}")
        labels = _as_batch("labels", self.labels)
        object.__setattr__(self, "labels", labels)
        bad = labels[(labels < 0) | (labels >= self.table.num_classes)]
        if bad.numel():
            offending = sorted(set(bad.unique().tolist()))[:20]
            raise ValueError(
                f"label ids {offending} are outside the {self.table.name} table "
                f"(valid ids 0..{self.table.num_classes - 1})"
            )
        if self.instances is not None:
            instances = _as_batch("instances", self.instances)
            if instances.shape != labels.shape:
                raise ValueError(
                    f"instance map shape {tuple(instances.shape)} differs from label map shape {tuple(labels.shape)}"
                )
            object.__setattr__(self, "instances", instances)

    @property
    def batch_size(self) -> int:
        return self.labels.shape[0]

    @property
    def size(self) -> tuple[int, int]:
        return (self.labels.shape[1], self.labels.shape[2])

    def edges(self) -> torch.Tensor:
        """Instance-edge map, float32 (B, 1, H, W) in {0, 1}."""
        source = self.instances if self.instances is not None else self.labels
        return instance_edges(source, rule=self.edge_rule)

    def present(self) -> torch.Tensor:
        """bool (B, num_classes): which classes occur in each map."""
        counts = torch.zeros(self.batch_size, self.table.num_classes, dtype=torch.long, device=self.labels.device)
        counts.scatter_add_(1, self.labels.flatten(1), torch.ones_like(self.labels.flatten(1)))
        return counts > 0

    def one_hot(self) -> torch.Tensor:
        """float32 (B, num_channels, H, W): one channel per class, then the edge channel if the table has one."""
        channels = torch.nn.functional.one_hot(self.labels, self.table.num_classes).permute(0, 3, 1, 2).float()
        if self.table.has_edge:
            channels = torch.cat([channels, self.edges()], dim=1)
        return channels

    def colorize(self) -> torch.Tensor:
        """uint8 (B, 3, H, W): each pixel in its class colour."""
        palette = torch.tensor(self.table.colors, dtype=torch.uint8, device=self.labels.device)
        return palette[self.labels].permute(0, 3, 1, 2).contiguous()

    def __getitem__(self, index: int | slice) -> SemanticMap:
        index = slice(index, index + 1) if isinstance(index, int) else index
        instances = None if self.instances is None else self.instances[index]
        return SemanticMap(self.labels[index], self.table, instances, self.edge_rule)
