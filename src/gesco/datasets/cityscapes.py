"""Cityscapes on disk: the official folder layout, read unchanged, and written from synthetic scenes.

Layout (``root`` holds both trees)::

    leftImg8bit/{split}/{city}/{city}_{seq:06d}_{frame:06d}_leftImg8bit.png
    gtFine/{split}/{city}/{city}_{seq:06d}_{frame:06d}_gtFine_labelIds.png     8-bit label ids
    gtFine/{split}/{city}/{city}_{seq:06d}_{frame:06d}_gtFine_instanceIds.png  16-bit instance ids
    gtFine/{split}/{city}/{city}_{seq:06d}_{frame:06d}_gtFine_color.png        colours (RGBA)

Channels are the 35 label ids: 0..33 as stored, and the license plate (id -1, which would be 255 in
an 8-bit map) as channel 34. Instance ids are returned as stored, 16-bit: stuff pixels hold their
label id, things ``label_id * 1000 + k``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from cityscapesscripts.helpers.labels import labels as cityscapes_labels

from gesco.datasets.base import ImageLabelDataset, list_files, pair_sorted, save_image_file
from gesco.datasets.label_files import cityscapes_channels
from gesco.datasets.preprocessing import Preprocessing
from gesco.datasets.synthetic import SyntheticScene

NUM_CLASSES = 35
IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"
INSTANCE_SUFFIX = "_gtFine_instanceIds.png"
COLOR_SUFFIX = "_gtFine_color.png"
ANNOTATED_FRAME = 19  # Cityscapes annotates the 20th frame of each snippet: ..._000019


def color_palette() -> np.ndarray:
    """(256, 3) uint8 colours of Cityscapes label ids (cityscapesscripts); unknown ids black."""
    palette = np.zeros((256, 3), np.uint8)
    for label in cityscapes_labels:
        if label.id >= 0:
            palette[label.id] = label.color
    return palette


class CityscapesDataset(ImageLabelDataset):
    """Cityscapes ``split`` ("train", "val" or "test") under ``root``, as :class:`~gesco.datasets.base.Sample`.

    ``size``: (H, W) with the images' aspect (default 256 x 512, the paper's), or None for the
    native size. Resizing keeps the aspect (BOX halving, then BICUBIC); maps go NEAREST.
    ``flip``: random horizontal flips (the official training setting), seeded by ``seed``.
    ``instances``: also load the instance maps (Cityscapes always has them).
    """

    num_classes = NUM_CLASSES

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        size: tuple[int, int] | None = (256, 512),
        flip: bool = False,
        seed: int = 0,
        instances: bool = True,
    ) -> None:
        if split not in ("train", "val", "test"):
            raise ValueError(f"Cityscapes split must be 'train', 'val' or 'test', got {split!r}")
        root = Path(root)
        images = (list_files(root / "leftImg8bit" / split, IMAGE_SUFFIX), (IMAGE_SUFFIX,))
        labels = (list_files(root / "gtFine" / split, LABEL_SUFFIX), (LABEL_SUFFIX,))
        inst = (list_files(root / "gtFine" / split, INSTANCE_SUFFIX), (INSTANCE_SUFFIX,)) if instances else None
        files = pair_sorted(images, labels, inst)
        super().__init__(files, Preprocessing(size=size, keep_aspect=True, flip=flip), seed=seed)

    def to_channels(self, ids: np.ndarray, path: Path) -> np.ndarray:
        return cityscapes_channels(ids, path)


def write_cityscapes(
    root: str | Path,
    split: str,
    scenes: Iterable[SyntheticScene],
    *,
    city: str = "synthetic",
    start_index: int = 0,
) -> list[Path]:
    """Write scenes as Cityscapes files ``{city}_{index:06d}_000019_*``; returns the image paths.

    Label maps are 8-bit label ids, instance maps 16-bit Cityscapes instance ids, colour maps
    the cityscapesscripts colours (RGBA, as the release). Files are written atomically.
    """
    if split not in ("train", "val", "test"):
        raise ValueError(f"Cityscapes split must be 'train', 'val' or 'test', got {split!r}")
    if not city or "_" in city or "/" in city:
        raise ValueError(f"city must be a non-empty name without '_' or '/', got {city!r}")
    root = Path(root)
    palette = color_palette()
    written = []
    for index, scene in enumerate(scenes, start=start_index):
        if scene.labels.max() >= NUM_CLASSES - 1:
            raise ValueError(f"scene {index} holds label ids >= 34; Cityscapes label ids are 0..33")
        if scene.instances.max() > np.iinfo(np.uint16).max or scene.instances.min() < 0:
            raise ValueError(f"scene {index} has instance ids outside 0..65535; they must fit 16 bits")
        stem = f"{city}_{index:06d}_{ANNOTATED_FRAME:06d}"
        gt = root / "gtFine" / split / city
        image_path = root / "leftImg8bit" / split / city / f"{stem}{IMAGE_SUFFIX}"
        save_image_file(image_path, scene.image)
        save_image_file(gt / f"{stem}{LABEL_SUFFIX}", scene.labels.astype(np.uint8))
        save_image_file(gt / f"{stem}{INSTANCE_SUFFIX}", scene.instances.astype(np.uint16))
        color = np.concatenate([palette[scene.labels], np.full((*scene.labels.shape, 1), 255, np.uint8)], axis=2)
        save_image_file(gt / f"{stem}{COLOR_SUFFIX}", color)
        written.append(image_path)
    return written
