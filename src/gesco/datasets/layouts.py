"""Which loader reads a data set folder, and the evaluation set of ``gesco evaluate`` and ``gesco compare``.

An evaluation set is either synthetic street scenes (seeds from :data:`~gesco.constants.EVALUATION_SEED_OFFSET`
on, never seen in training) or a split of a folder in one of the layouts of :data:`~gesco.constants.DATA_LAYOUTS`,
resized to the receiver's image size.

>>> from gesco.datasets.layouts import build_evaluation_dataset
>>> dataset = build_evaluation_dataset("synthetic", (64, 128), count=2)
>>> len(dataset), dataset.seed_offset
(2, 1000000)
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from gesco.constants import DATA_LAYOUTS, EVALUATION_SEED_OFFSET
from gesco.datasets.ade20k import ADE20KDataset
from gesco.datasets.cityscapes import CityscapesDataset
from gesco.datasets.coco_stuff import CocoStuffDataset
from gesco.datasets.synthetic import SyntheticStreetsDataset

#: The ``data`` value that means generated scenes instead of a folder.
SYNTHETIC = "synthetic"
#: Layouts that carry a class table, so a regenerated set can be scored against them.
EVALUATION_LAYOUTS = ("cityscapes", "coco-stuff", "ade20k")


def detect_layout(root: str | Path) -> str:
    """The layout of a data set folder, read off its sub-folders.

    Args:
        root: the data set's root folder.

    Returns:
        ``"cityscapes"`` when ``root/leftImg8bit`` exists, ``"folder"`` when ``root/images`` and ``root/labels``
        do. COCO-Stuff and ADE20K folders are not told apart from their files: name their layout.

    Raises:
        ValueError: neither pattern matches.
    """
    root = Path(root)
    if (root / "leftImg8bit").is_dir():
        return "cityscapes"
    if (root / "images").is_dir() and (root / "labels").is_dir():
        return "folder"
    raise ValueError(f"cannot tell the layout of {root}: give the layout, one of {list(DATA_LAYOUTS)} (CLI: --layout)")


def build_evaluation_dataset(
    data: str | Path,
    size: tuple[int, int],
    *,
    count: int,
    layout: str = "auto",
    split: str = "val",
    first_seed: int | None = None,
    geometry: bool = False,
    riders: bool = False,
) -> Dataset:
    """The evaluation set at a receiver's image size.

    Args:
        data: ``"synthetic"`` for generated street scenes, else a data set folder.
        size: (height, width) of the receiver; every image and map comes at this size.
        count: synthetic only: the number of scenes.
        layout: of a folder: one of :data:`~gesco.constants.DATA_LAYOUTS`, or ``"auto"`` (:func:`detect_layout`).
        split: of a folder, e.g. ``"val"``.
        first_seed: synthetic only: the first scene's seed; default :data:`~gesco.constants.EVALUATION_SEED_OFFSET`,
            disjoint from every training seed.
        geometry: a folder: also read its ground-truth depth and boxes (Cityscapes only; synthetic scenes
            always carry them).
        riders: synthetic only: scenes with cyclists (:class:`~gesco.datasets.synthetic.SyntheticStreets`).

    Returns:
        A ``Dataset`` of :class:`~gesco.datasets.base.Sample` (Cityscapes classes for synthetic scenes).

    Raises:
        FileNotFoundError: ``data`` is neither ``"synthetic"`` nor a folder.
        ValueError: an unknown layout, a layout that cannot be detected, the plain ``"folder"`` layout,
            which has no class table to score against, ``geometry`` for a layout without depth and boxes, or
            ``riders`` for a folder.
    """
    if str(data) == SYNTHETIC:
        seed = EVALUATION_SEED_OFFSET if first_seed is None else first_seed
        return SyntheticStreetsDataset(count, seed, height=size[0], width=size[1], riders=riders)
    if riders:
        raise ValueError(
            f"riders adds cyclists to synthetic scenes; the folder {str(data)!r} has its own (CLI: --riders)"
        )
    root = Path(data)
    if not root.is_dir():
        raise FileNotFoundError(f"data {str(root)!r} is neither {SYNTHETIC!r} nor a folder (CLI: --data)")
    if layout not in ("auto", *DATA_LAYOUTS):
        raise ValueError(f"unknown layout {layout!r}; choose 'auto' or one of {list(DATA_LAYOUTS)}")
    if layout == "auto":
        layout = detect_layout(root)
    if geometry and layout != "cityscapes":
        raise ValueError(
            f"the {layout} layout of {root} has no ground-truth depth or boxes (COCO-Stuff's instance maps hold "
            "running counts that can equal class indices, so they give no boxes; ADE20K has none); detection "
            "and depth are scored on Cityscapes folders and synthetic scenes"
        )
    if layout == "cityscapes":
        return CityscapesDataset(root, split, size=size, geometry=geometry)
    if layout == "coco-stuff":
        return CocoStuffDataset(root, split, size=size)
    if layout == "ade20k":
        return ADE20KDataset(root, split, size=size)
    raise ValueError(
        "a plain folder has no class table for the evaluation: write it in a data set layout "
        f"(gesco data synth --layout cityscapes) or use the layout {'/'.join(EVALUATION_LAYOUTS)}"
    )
