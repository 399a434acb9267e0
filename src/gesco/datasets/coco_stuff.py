"""COCO-Stuff on disk, as the official GESCO loader reads it, and written from synthetic scenes.

Layout::

    images/{train2017,val2017}/{name}.jpg
    labels/{train2017,val2017}/{name}.png       8-bit, 0..181 = COCO-Stuff class index, 255 = unlabeled
    images/{train_inst,val_inst}/{name}.png     8-bit instance maps (SPADE's coco_generate_instance_map)

Channels: 0..181 as stored, unlabeled (255) -> 182: 183 classes. The instance maps are SPADE's:
the label map with every thing instance overwritten by a running instance count 0, 1, 2, ...
(values that can coincide with class indices; only their boundaries are meaningful). They are
returned as stored.

Synthetic scenes carry Cityscapes label ids; the writer maps them with
:data:`COCO_STUFF_FROM_CITYSCAPES`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from gesco.datasets.base import ImageLabelDataset, list_files, pair_sorted, remap_labels, save_image_file
from gesco.datasets.label_files import coco_stuff_channels
from gesco.datasets.preprocessing import Preprocessing
from gesco.datasets.synthetic import SyntheticScene
from gesco.datasets.synthetic_canvas import (
    BICYCLE,
    BUILDING,
    CAR,
    PERSON,
    POLE,
    RIDER,
    ROAD,
    SIDEWALK,
    SKY,
    TERRAIN,
    TRAFFIC_LIGHT,
    TRAFFIC_SIGN,
    VEGETATION,
)

NUM_CLASSES = 183
SPLIT_FOLDERS = {"train": ("train2017", "train_inst"), "val": ("val2017", "val_inst")}

COCO_STUFF_FROM_CITYSCAPES: dict[int, int] = {
    ROAD: 148,  # road
    SIDEWALK: 139,  # pavement
    BUILDING: 95,  # building-other
    POLE: 131,  # metal (COCO-Stuff has no pole class)
    TRAFFIC_LIGHT: 9,  # traffic light
    TRAFFIC_SIGN: 12,  # stop sign (the only sign among COCO's 80 annotated things)
    VEGETATION: 168,  # tree
    TERRAIN: 123,  # grass
    SKY: 156,  # sky-other
    PERSON: 0,  # person
    RIDER: 0,  # person (COCO has no rider class)
    CAR: 2,  # car
    BICYCLE: 1,  # bicycle
}
"""Cityscapes label id -> COCO-Stuff class index (0-based, as in the label PNGs) of synthetic classes."""


def _split_folders(split: str) -> tuple[str, str]:
    if split not in SPLIT_FOLDERS:
        raise ValueError(f"COCO-Stuff split must be one of {sorted(SPLIT_FOLDERS)}, got {split!r}")
    return SPLIT_FOLDERS[split]


class CocoStuffDataset(ImageLabelDataset):
    """COCO-Stuff ``split`` ("train" -> train2017, "val" -> val2017) under ``root``.

    ``size``: (H, W) target (default 256 x 256) or None for the native size; test mode resizes
    straight to it (BOX halving, then BICUBIC), ``random_crop=True`` takes the official training
    crop instead. ``flip``: random horizontal flips. ``instances``: load SPADE instance maps too.
    """

    num_classes = NUM_CLASSES

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        size: tuple[int, int] | None = (256, 256),
        random_crop: bool = False,
        flip: bool = False,
        seed: int = 0,
        instances: bool = True,
    ) -> None:
        image_dir, instance_dir = _split_folders(split)
        root = Path(root)
        image_suffixes = (".jpg", ".jpeg", ".png")
        images = (list_files(root / "images" / image_dir, image_suffixes), image_suffixes)
        labels = (list_files(root / "labels" / image_dir, ".png"), (".png",))
        inst = (list_files(root / "images" / instance_dir, ".png"), (".png",)) if instances else None
        files = pair_sorted(images, labels, inst)
        preprocessing = Preprocessing(size=size, random_crop=random_crop, flip=flip)
        super().__init__(files, preprocessing, seed=seed)

    def to_channels(self, ids: np.ndarray, path: Path) -> np.ndarray:
        return coco_stuff_channels(ids, path)


def spade_instance_map(labels: np.ndarray, instances: np.ndarray) -> np.ndarray:
    """SPADE-style COCO instance map: ``labels`` (uint8 (H, W) COCO-Stuff values) with the pixels of
    each thing instance of ``instances`` (Cityscapes encoding, id >= 1000) set to a running count
    0, 1, ... in increasing instance id order. Returns uint8 (H, W)."""
    out = labels.astype(np.uint8).copy()
    things = np.unique(instances[instances >= 1000])
    if things.size > 256:
        raise ValueError(f"{things.size} instances do not fit an 8-bit SPADE instance map (at most 256)")
    for count, instance in enumerate(things):
        out[instances == instance] = count
    return out


def write_coco_stuff(
    root: str | Path,
    split: str,
    scenes: Iterable[SyntheticScene],
    *,
    start_index: int = 0,
    quality: int = 95,
) -> list[Path]:
    """Write scenes in the COCO-Stuff layout as ``{index:012d}``; returns the image paths.

    Images are JPEG (``quality``), labels mapped by :data:`COCO_STUFF_FROM_CITYSCAPES`, instance
    maps made by :func:`spade_instance_map`.
    """
    image_dir, instance_dir = _split_folders(split)
    root = Path(root)
    written = []
    for index, scene in enumerate(scenes, start=start_index):
        labels = remap_labels(scene.labels, COCO_STUFF_FROM_CITYSCAPES, target="COCO-Stuff", index=index)
        name = f"{index:012d}"
        image_path = root / "images" / image_dir / f"{name}.jpg"
        save_image_file(image_path, scene.image, quality=quality)
        save_image_file(root / "labels" / image_dir / f"{name}.png", labels)
        save_image_file(root / "images" / instance_dir / f"{name}.png", spade_instance_map(labels, scene.instances))
        written.append(image_path)
    return written
