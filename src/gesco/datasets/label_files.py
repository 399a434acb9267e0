"""Single label-map files as stored by each data set, decoded into channel indices."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gesco.datasets.preprocessing import read_id_map
from gesco.semantics.classes import ClassTable

CITYSCAPES_LICENSE_PLATE_ON_DISK = 255  # id -1 written as 8 bits
COCO_STUFF_UNLABELED_ON_DISK = 255


def cityscapes_channels(ids: np.ndarray, path: Path | str) -> np.ndarray:
    """Cityscapes ``*_labelIds.png`` values -> channels 0..34 (license plate 255 -> 34)."""
    channels = ids.copy()
    channels[ids == CITYSCAPES_LICENSE_PLATE_ON_DISK] = 34
    bad = (channels < 0) | (channels >= 35)
    if bad.any():
        raise ValueError(
            f"{path} holds label ids {sorted(set(ids[bad].tolist()))[:10]} that are not Cityscapes label "
            f"ids (0..33, or 255 for the license plate); is this a *_gtFine_labelIds.png?"
        )
    return channels


def coco_stuff_channels(ids: np.ndarray, path: Path | str) -> np.ndarray:
    """COCO-Stuff stuff-thing map values 0..181 and 255 (unlabeled) -> channels 0..182."""
    channels = ids.copy()
    channels[ids == COCO_STUFF_UNLABELED_ON_DISK] = 182
    bad = (channels < 0) | (channels >= 183)
    if bad.any():
        raise ValueError(
            f"{path} holds values {sorted(set(ids[bad].tolist()))[:10]}; COCO-Stuff label maps hold "
            "class indices 0..181 and 255 (unlabeled)"
        )
    return channels


def ade20k_channels(ids: np.ndarray, path: Path | str) -> np.ndarray:
    """ADE20K values 1..150 -> 0..149 and 0 ("other") -> 150, as the official loader's uint8 wrap."""
    if ids.min() < 0 or ids.max() > 255:
        raise ValueError(f"{path} holds values outside 0..255; ADE20K label maps are 8-bit (0 = other, 1..150)")
    channels = (ids - 1) % 256
    channels[channels > 150] = 150
    return channels


def numbered_channels(ids: np.ndarray, path: Path | str, num_classes: int) -> np.ndarray:
    """Ids used as channels unchanged; they must lie in 0..num_classes-1."""
    if ids.min() < 0 or ids.max() >= num_classes:
        raise ValueError(
            f"{path} holds label ids {int(ids.min())}..{int(ids.max())} but num_classes={num_classes} "
            f"allows 0..{num_classes - 1}: pass num_classes >= {int(ids.max()) + 1} or remap the labels"
        )
    return ids


def read_label_map(path: str | Path, table: ClassTable) -> np.ndarray:
    """A label PNG as stored by ``table``'s data set -> int64 (H, W) channel indices."""
    path = Path(path)
    ids = read_id_map(path)
    if table.name == "cityscapes":
        return cityscapes_channels(ids, path)
    if table.name == "coco-stuff":
        return coco_stuff_channels(ids, path)
    if table.name == "ade20k":
        return ade20k_channels(ids, path)
    return numbered_channels(ids, path, table.num_classes)
