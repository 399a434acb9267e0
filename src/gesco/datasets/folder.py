"""A generic data set folder: images, label maps with ids taken as-is, optional instance maps.

Layout::

    images/{name}.png|.jpg|.jpeg   RGB images
    labels/{name}.png              8- or 16-bit label ids, 0..num_classes-1
    instances/{name}.png           optional: 8-, 16- or 32-bit instance ids, returned as stored

Files are matched by ``name`` (the path below the folder without its extension, so subfolders
work too). The number of classes is the user's: ids outside ``0..num_classes-1`` raise.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from gesco.datasets.base import FileTriple, ImageLabelDataset, list_files, save_image_file
from gesco.datasets.label_files import numbered_channels
from gesco.datasets.preprocessing import Preprocessing
from gesco.datasets.synthetic import SyntheticScene

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _by_name(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in list_files(folder, suffixes):
        name = path.relative_to(folder).with_suffix("").as_posix()
        if name in files:
            raise ValueError(f"two files named {name!r} in {folder}: {files[name].name} and {path.name}; keep one")
        files[name] = path
    return files


def _check_same_names(reference: dict[str, Path], other: dict[str, Path], what: str, folder: Path) -> None:
    missing = sorted(set(reference) - set(other))
    extra = sorted(set(other) - set(reference))
    if missing or extra:
        raise ValueError(
            f"{what} in {folder} do not match the images by name: missing {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}, without an image {extra[:5]}{' ...' if len(extra) > 5 else ''}"
        )


class FolderDataset(ImageLabelDataset):
    """Images, labels and (optionally) instances under ``root``, as :class:`~gesco.datasets.base.Sample`.

    ``num_classes``: the size of the label space; labels are used as channel indices unchanged.
    ``instances``: None loads ``instances/`` if it exists, True requires it, False ignores it.
    ``size``: (H, W) target or None (native size); resizing goes straight to it (BOX halving,
    then BICUBIC), ``random_crop=True`` takes the official training crop. ``flip``: random flips.
    """

    def __init__(
        self,
        root: str | Path,
        num_classes: int,
        *,
        instances: bool | None = None,
        size: tuple[int, int] | None = None,
        random_crop: bool = False,
        flip: bool = False,
        seed: int = 0,
    ) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        root = Path(root)
        images = _by_name(root / "images", IMAGE_SUFFIXES)
        labels = _by_name(root / "labels", (".png",))
        _check_same_names(images, labels, "label maps", root / "labels")
        use_instances = (root / "instances").is_dir() if instances is None else instances
        instance_files = _by_name(root / "instances", (".png",)) if use_instances else None
        if instance_files is not None:
            _check_same_names(images, instance_files, "instance maps", root / "instances")
        files = [
            FileTriple(images[name], labels[name], instance_files[name] if instance_files else None, name)
            for name in sorted(images)
        ]
        self.num_classes = num_classes
        preprocessing = Preprocessing(size=size, random_crop=random_crop, flip=flip)
        super().__init__(files, preprocessing, seed=seed)

    def to_channels(self, ids: np.ndarray, path: Path) -> np.ndarray:
        return numbered_channels(ids, path, self.num_classes)


def write_folder(
    root: str | Path,
    scenes: Iterable[SyntheticScene],
    *,
    start_index: int = 0,
    instances: bool = True,
) -> list[Path]:
    """Write scenes as ``images/``, ``labels/`` (8-bit ids) and ``instances/`` (16-bit) PNGs named
    ``{index:06d}``; returns the image paths. Labels stay Cityscapes label ids (use 35 classes)."""
    root = Path(root)
    written = []
    for index, scene in enumerate(scenes, start=start_index):
        name = f"{index:06d}.png"
        save_image_file(root / "images" / name, scene.image)
        save_image_file(root / "labels" / name, scene.labels.astype(np.uint8))
        if instances:
            if scene.instances.max() > np.iinfo(np.uint16).max or scene.instances.min() < 0:
                raise ValueError(f"scene {index} has instance ids outside 0..65535; they must fit 16 bits")
            save_image_file(root / "instances" / name, scene.instances.astype(np.uint16))
        written.append(root / "images" / name)
    return written
