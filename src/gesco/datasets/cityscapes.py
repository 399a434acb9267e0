"""Cityscapes on disk: the official folder layout, read unchanged, and written from synthetic scenes.

Layout (``root`` holds both trees)::

    leftImg8bit/{split}/{city}/{city}_{seq:06d}_{frame:06d}_leftImg8bit.png
    gtFine/{split}/{city}/{city}_{seq:06d}_{frame:06d}_gtFine_labelIds.png     8-bit label ids
    gtFine/{split}/{city}/{city}_{seq:06d}_{frame:06d}_gtFine_instanceIds.png  16-bit instance ids
    gtFine/{split}/{city}/{city}_{seq:06d}_{frame:06d}_gtFine_color.png        colours (RGBA)

With ``geometry=True`` the loader also reads each image's depth (``disparity/`` with ``camera/``) and its
object boxes (``gtFine/*_gtFine_polygons.json``) where those files exist; the writer writes them for
synthetic scenes (see :mod:`gesco.datasets.cityscapes_geometry`).

Channels are the 35 label ids: 0..33 as stored, and the license plate (id -1, which would be 255 in
an 8-bit map) as channel 34. Instance ids are returned as stored, 16-bit: stuff pixels hold their
label id, things ``label_id * 1000 + k``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from cityscapesscripts.helpers.labels import labels as cityscapes_labels
from PIL import Image

from gesco.datasets.base import Boxes, ImageLabelDataset, Sample, list_files, pair_sorted, save_image_file
from gesco.datasets.cityscapes_geometry import (
    CAMERA_SUFFIX,
    DISPARITY_SUFFIX,
    POLYGONS_SUFFIX,
    disparity_png_to_depth,
    read_baseline_fx,
    read_polygon_boxes,
    write_scene_geometry,
)
from gesco.datasets.label_files import cityscapes_channels
from gesco.datasets.preprocessing import Preprocessing, read_id_map
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
    ``geometry``: also load ``depth`` (metres, 0 where the disparity is invalid; resized NEAREST) and
    ``boxes`` (scaled with the image) where an image has disparity and camera files, or a polygons file;
    samples without them keep None. Not with ``flip``: evaluation data are read unflipped.
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
        geometry: bool = False,
    ) -> None:
        if split not in ("train", "val", "test"):
            raise ValueError(f"Cityscapes split must be 'train', 'val' or 'test', got {split!r}")
        if geometry and flip:
            raise ValueError("geometry=True reads depth and boxes for evaluation, unflipped: pass flip=False")
        root = Path(root)
        self.root, self.split, self.geometry = root, split, geometry
        images = (list_files(root / "leftImg8bit" / split, IMAGE_SUFFIX), (IMAGE_SUFFIX,))
        labels = (list_files(root / "gtFine" / split, LABEL_SUFFIX), (LABEL_SUFFIX,))
        inst = (list_files(root / "gtFine" / split, INSTANCE_SUFFIX), (INSTANCE_SUFFIX,)) if instances else None
        files = pair_sorted(images, labels, inst)
        super().__init__(files, Preprocessing(size=size, keep_aspect=True, flip=flip), seed=seed)

    def to_channels(self, ids: np.ndarray, path: Path) -> np.ndarray:
        return cityscapes_channels(ids, path)

    def _geometry_paths(self, index: int) -> tuple[Path, Path, Path]:
        """The disparity, camera and polygons files of image ``index`` (they may not exist)."""
        files = self.files[index]
        city, stem = files.image.parent.name, files.name
        return (
            self.root / "disparity" / self.split / city / f"{stem}{DISPARITY_SUFFIX}",
            self.root / "camera" / self.split / city / f"{stem}{CAMERA_SUFFIX}",
            self.root / "gtFine" / self.split / city / f"{stem}{POLYGONS_SUFFIX}",
        )

    def missing_geometry(self, count: int) -> dict[str, list[str]]:
        """Of the first ``count`` images, the names of those without depth (``"depth"``: no disparity or no camera
        file) and without boxes (``"boxes"``: no polygons file), from the file names alone: nothing is read."""
        missing: dict[str, list[str]] = {"depth": [], "boxes": []}
        for index in range(min(count, len(self))):
            disparity, camera, polygons = self._geometry_paths(index)
            name = self.files[index].name
            if not (disparity.is_file() and camera.is_file()):
                missing["depth"].append(name)
            if not polygons.is_file():
                missing["boxes"].append(name)
        return missing

    def __getitem__(self, index: int) -> Sample:
        sample = super().__getitem__(index)
        if not self.geometry:
            return sample
        height, width = sample.labels.shape
        depth = boxes = None
        disparity, camera, polygons = self._geometry_paths(index)
        if disparity.is_file():
            if not camera.is_file():
                raise FileNotFoundError(f"{disparity} has no camera file {camera}; its depth needs baseline and fx")
            native = disparity_png_to_depth(read_id_map(disparity), read_baseline_fx(camera))
            # Depth in metres does not change with the image size; NEAREST keeps invalid pixels invalid.
            resized = Image.fromarray(native).resize((width, height), resample=Image.NEAREST)
            depth = torch.from_numpy(np.array(resized, np.float32))
        if polygons.is_file():
            rows, (native_h, native_w) = read_polygon_boxes(polygons)
            boxes = Boxes.from_rows(rows)
            scale = torch.tensor([width / native_w, height / native_h] * 2)
            boxes = dataclasses.replace(boxes, xyxy=boxes.xyxy * scale)
        return dataclasses.replace(sample, depth=depth, boxes=boxes)


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
    the cityscapesscripts colours (RGBA, as the release). Scenes with depth and boxes also get their
    disparity, camera and polygons files. Files are written atomically.
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
        write_scene_geometry(root, split, city, stem, scene)
        written.append(image_path)
    return written
