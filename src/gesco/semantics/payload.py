"""What the transmitter sends: the present-class channels and the edge channel, with the present ids."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from gesco.semantics.classes import ClassTable


@dataclass(frozen=True)
class Payload:
    """A batch of transmitted semantic maps, kept in the full channel layout.

    Attributes:
        values: float32 (B, C, H, W), C = ``table.num_channels``; channels that are not
            transmitted hold zeros (the receiver re-inserts absent channels as zeros).
        transmitted: bool (B, C): the channels that cross the link, i.e. the present classes
            and the edge channel. The class ids among them are the side information.
        table: the class table of the channels.
    """

    values: torch.Tensor
    transmitted: torch.Tensor
    table: ClassTable

    def __post_init__(self) -> None:
        for name in ("values", "transmitted"):
            if not isinstance(getattr(self, name), torch.Tensor):
                raise TypeError(f"payload {name} must be a torch.Tensor, got {type(getattr(self, name)).__name__}")
        if self.values.dim() != 4 or self.values.shape[1] != self.table.num_channels:
            raise ValueError(
                f"payload values must have shape (B, {self.table.num_channels}, H, W) for {self.table.name}, "
                f"got {tuple(self.values.shape)}"
            )
        if self.transmitted.shape != self.values.shape[:2] or self.transmitted.dtype != torch.bool:
            raise ValueError(
                f"transmitted must be a bool tensor of shape {tuple(self.values.shape[:2])}, "
                f"got {self.transmitted.dtype} {tuple(self.transmitted.shape)}"
            )

    @property
    def batch_size(self) -> int:
        return self.values.shape[0]

    @property
    def size(self) -> tuple[int, int]:
        return (self.values.shape[2], self.values.shape[3])

    @property
    def real_values(self) -> torch.Tensor:
        """int64 (B,): real values sent per map, (|present| + edge) x H x W (two make one complex channel use)."""
        height, width = self.size
        return self.transmitted.sum(dim=1) * height * width

    def present_ids(self, index: int) -> list[int]:
        """Class ids transmitted for map ``index`` (the side information), increasing."""
        ids = self.transmitted[index, : self.table.num_classes].nonzero().flatten()
        return ids.tolist()

    def compact(self, index: int) -> torch.Tensor:
        """The values that cross the link for map ``index``: (k, H, W), present classes in
        increasing id order, then the edge channel."""
        return self.values[index, self.transmitted[index]]

    @classmethod
    def from_compact(cls, table: ClassTable, present_ids: list[list[int]], compact: list[torch.Tensor]) -> Payload:
        """Re-insert received compact channels into the full layout; absent channels are zero."""
        if len(present_ids) != len(compact):
            raise ValueError(f"{len(present_ids)} id lists for {len(compact)} compact maps")
        if not compact:
            raise ValueError("from_compact needs at least one map")
        height, width = compact[0].shape[-2:]
        values = torch.zeros(len(compact), table.num_channels, height, width, dtype=compact[0].dtype)
        transmitted = torch.zeros(len(compact), table.num_channels, dtype=torch.bool)
        for b, (ids, maps) in enumerate(zip(present_ids, compact, strict=True)):
            bad = [i for i in ids if not 0 <= i < table.num_classes]
            if bad:
                raise ValueError(f"present ids {bad} are outside the {table.name} table (0..{table.num_classes - 1})")
            channels = list(ids) + ([table.edge_channel] if table.has_edge else [])
            if maps.shape != (len(channels), height, width):
                raise ValueError(
                    f"map {b}: expected compact shape {(len(channels), height, width)}, got {tuple(maps.shape)}"
                )
            transmitted[b, channels] = True
            values[b, channels] = maps
        return cls(values, transmitted, table)

    def with_values(self, values: torch.Tensor) -> Payload:
        """The same payload with new channel values (e.g. after the channel or a filter)."""
        return replace(self, values=values)
