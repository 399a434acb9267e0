"""Data sets: the synthetic street scenes, and Cityscapes, COCO-Stuff, ADE20K and plain folders on disk.

Every loader is a torch ``Dataset`` of :class:`Sample` (image in [-1, 1], labels as channel
indices, raw instance ids, and where known depth and object boxes); batch them with
``DataLoader(..., collate_fn=collate)``. The writers
put synthetic scenes into each on-disk layout, so the whole pipeline can run without real data.
"""

from gesco.datasets.ade20k import ADE20K_FROM_CITYSCAPES, ADE20KDataset, write_ade20k
from gesco.datasets.base import Batch, Boxes, Sample, collate, image_to_tensor, tensor_to_image
from gesco.datasets.cityscapes import CityscapesDataset, write_cityscapes
from gesco.datasets.coco_stuff import COCO_STUFF_FROM_CITYSCAPES, CocoStuffDataset, write_coco_stuff
from gesco.datasets.folder import FolderDataset, write_folder
from gesco.datasets.preprocessing import Preprocessing
from gesco.datasets.synthetic import SYNTHETIC_CLASSES, SyntheticScene, SyntheticStreets, SyntheticStreetsDataset

__all__ = [
    "ADE20K_FROM_CITYSCAPES",
    "ADE20KDataset",
    "Batch",
    "Boxes",
    "COCO_STUFF_FROM_CITYSCAPES",
    "CityscapesDataset",
    "CocoStuffDataset",
    "FolderDataset",
    "Preprocessing",
    "SYNTHETIC_CLASSES",
    "Sample",
    "SyntheticScene",
    "SyntheticStreets",
    "SyntheticStreetsDataset",
    "collate",
    "image_to_tensor",
    "tensor_to_image",
    "write_ade20k",
    "write_cityscapes",
    "write_coco_stuff",
    "write_folder",
]
