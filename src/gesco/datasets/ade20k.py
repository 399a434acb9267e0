"""ADE20K (150 classes) on disk, in both public layouts, and written from synthetic scenes.

Layouts, for split "train" -> ``training`` and "val" -> ``validation``:

- ``"challenge"`` (the scene-parsing release ADEChallengeData2016)::

      images/{training,validation}/{name}.jpg
      annotations/{training,validation}/{name}.png

- ``"beside"`` (what the official GESCO loader lists)::

      {training,validation}/**/{name}.jpg
      {training,validation}/**/{name}_seg.png

Label maps are 8-bit: 0 = "other", 1..150 = the classes of objectInfo150. Channels follow the
official loader: ``label - 1`` with 8-bit wrap-around, then anything above 150 -> 150, so classes
1..150 become 0..149 and "other" becomes channel 150 (151 channels). ADE20K has no instance maps.

Synthetic scenes carry Cityscapes label ids; the writer maps them with :data:`ADE20K_FROM_CITYSCAPES`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from gesco.datasets.base import ImageLabelDataset, list_files, pair_sorted, remap_labels, save_image_file
from gesco.datasets.label_files import ade20k_channels
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

NUM_CLASSES = 151
SPLIT_FOLDERS = {"train": "training", "val": "validation"}
LAYOUTS = ("challenge", "beside")
SEG_SUFFIX = "_seg.png"

ADE20K_FROM_CITYSCAPES: dict[int, int] = {
    ROAD: 7,  # road, route
    SIDEWALK: 12,  # sidewalk, pavement
    BUILDING: 2,  # building, edifice
    POLE: 94,  # pole
    TRAFFIC_LIGHT: 137,  # traffic light, traffic signal, stoplight
    TRAFFIC_SIGN: 44,  # signboard, sign
    VEGETATION: 5,  # tree
    TERRAIN: 10,  # grass
    SKY: 3,  # sky
    PERSON: 13,  # person, individual, someone, somebody, mortal, soul
    RIDER: 13,  # person (ADE20K has no rider class)
    CAR: 21,  # car, auto, automobile, machine, motorcar
    BICYCLE: 128,  # bicycle, bike, wheel, cycle
}
"""Cityscapes label id -> ADE20K class id as stored on disk (1..150; channel = id - 1)."""


def _split_folder(split: str) -> str:
    if split not in SPLIT_FOLDERS:
        raise ValueError(f"ADE20K split must be one of {sorted(SPLIT_FOLDERS)}, got {split!r}")
    return SPLIT_FOLDERS[split]


def detect_layout(root: Path, split: str) -> str:
    """ "challenge" if ``root`` has ``images/`` and ``annotations/`` for the split, else "beside"."""
    folder = _split_folder(split)
    if (root / "images" / folder).is_dir() and (root / "annotations" / folder).is_dir():
        return "challenge"
    if (root / folder).is_dir():
        return "beside"
    raise FileNotFoundError(
        f"no ADE20K {split} data under {root}: expected images/{folder} + annotations/{folder} "
        f"(ADEChallengeData2016) or {folder}/**/*.jpg with *_seg.png beside them"
    )


class ADE20KDataset(ImageLabelDataset):
    """ADE20K ``split`` under ``root`` in either layout (``layout=None`` detects it).

    ``size``: (H, W) target (default 256 x 256) or None for the native size; test mode resizes
    straight to it, ``random_crop=True`` takes the official training crop. ``flip``: random
    horizontal flips. Samples have ``instances=None``.
    """

    num_classes = NUM_CLASSES

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        layout: str | None = None,
        size: tuple[int, int] | None = (256, 256),
        random_crop: bool = False,
        flip: bool = False,
        seed: int = 0,
    ) -> None:
        root = Path(root)
        folder = _split_folder(split)
        layout = detect_layout(root, split) if layout is None else layout
        if layout == "challenge":
            images = (list_files(root / "images" / folder, ".jpg"), (".jpg",))
            labels = (list_files(root / "annotations" / folder, ".png"), (".png",))
        elif layout == "beside":
            images = (list_files(root / folder, ".jpg"), (".jpg",))
            labels = (list_files(root / folder, SEG_SUFFIX), (SEG_SUFFIX,))
        else:
            raise ValueError(f"ADE20K layout must be one of {LAYOUTS} or None (detect), got {layout!r}")
        self.layout = layout
        preprocessing = Preprocessing(size=size, random_crop=random_crop, flip=flip)
        super().__init__(pair_sorted(images, labels), preprocessing, seed=seed)

    def to_channels(self, ids: np.ndarray, path: Path) -> np.ndarray:
        return ade20k_channels(ids, path)


def write_ade20k(
    root: str | Path,
    split: str,
    scenes: Iterable[SyntheticScene],
    *,
    layout: str = "challenge",
    start_index: int = 0,
    quality: int = 95,
) -> list[Path]:
    """Write scenes as ``ADE_{train,val}_{index:08d}`` in ``layout``; returns the image paths.

    Images are JPEG (``quality``); label maps are 8-bit ADE20K ids mapped by
    :data:`ADE20K_FROM_CITYSCAPES`. Instances are not written (ADE20K has none).
    """
    folder = _split_folder(split)
    if layout not in LAYOUTS:
        raise ValueError(f"ADE20K layout must be one of {LAYOUTS}, got {layout!r}")
    root = Path(root)
    written = []
    for index, scene in enumerate(scenes, start=start_index):
        labels = remap_labels(scene.labels, ADE20K_FROM_CITYSCAPES, target="ADE20K", index=index)
        name = f"ADE_{'train' if split == 'train' else 'val'}_{index:08d}"
        if layout == "challenge":
            image_path = root / "images" / folder / f"{name}.jpg"
            label_path = root / "annotations" / folder / f"{name}.png"
        else:
            image_path = root / folder / f"{name}.jpg"
            label_path = root / folder / f"{name}{SEG_SUFFIX}"
        save_image_file(image_path, scene.image, quality=quality)
        save_image_file(label_path, labels)
        written.append(image_path)
    return written
