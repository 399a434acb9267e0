"""Training data from a ``DataConfig``: the dataset, its class table and the batch collation."""

from __future__ import annotations

from torch.utils.data import Dataset

from gesco.datasets import (
    ADE20KDataset,
    CityscapesDataset,
    CocoStuffDataset,
    FolderDataset,
    SyntheticStreetsDataset,
    collate,
)
from gesco.semantics.classes import ClassTable, class_table, folder_table
from gesco.training.config import DataConfig, TrainConfig

collate_samples = collate

#: The class table of each data kind (a folder has a numbered one).
TABLE_OF_KIND = {"synthetic": "cityscapes", "cityscapes": "cityscapes", "coco-stuff": "coco-stuff", "ade20k": "ade20k"}


def dataset_class_table(config: TrainConfig) -> ClassTable:
    """The class table of the run: the dataset's own, or a numbered one for a folder."""
    if config.data.kind == "folder":
        if config.data.num_classes is None:
            raise ValueError("a folder dataset needs data.num_classes")
        return folder_table(config.data.num_classes)
    expected = TABLE_OF_KIND[config.data.kind]
    if config.class_table != expected:
        raise ValueError(
            f"data kind {config.data.kind!r} uses the {expected!r} class table, not {config.class_table!r}"
        )
    return class_table(expected)


def build_dataset(data: DataConfig, table: ClassTable) -> Dataset:
    """The training dataset; flips are left to the trainer, which seeds them per step."""
    size = tuple(data.size) if data.size else None
    if data.kind == "synthetic":
        return SyntheticStreetsDataset(
            data.num_scenes, data.seed_offset, height=size[0], width=size[1], riders=data.riders
        )
    if data.kind == "cityscapes":
        return CityscapesDataset(data.root, data.split, size=size)
    if data.kind == "coco-stuff":
        return CocoStuffDataset(data.root, data.split, size=size, random_crop=data.split == "train")
    if data.kind == "ade20k":
        return ADE20KDataset(data.root, data.split, size=size, random_crop=data.split == "train")
    return FolderDataset(data.root, table.num_classes, size=size)
