"""The evaluation set of ``gesco evaluate`` / ``gesco compare``: synthetic scenes or a data set folder by layout."""

import pytest

from gesco.constants import EVALUATION_SEED_OFFSET
from gesco.datasets import CityscapesDataset, SyntheticStreets, SyntheticStreetsDataset, write_cityscapes, write_folder
from gesco.datasets.layouts import build_evaluation_dataset, detect_layout


@pytest.fixture
def scenes():
    streets = SyntheticStreets(16, 32)
    return [streets.scene(seed) for seed in (3, 4)]


def test_synthetic_scenes_start_at_the_held_out_seeds():
    dataset = build_evaluation_dataset("synthetic", (16, 32), count=3)
    assert isinstance(dataset, SyntheticStreetsDataset) and len(dataset) == 3
    assert dataset.seed_offset == EVALUATION_SEED_OFFSET and tuple(dataset[0].image.shape) == (3, 16, 32)
    assert build_evaluation_dataset("synthetic", (16, 32), count=1, first_seed=7).seed_offset == 7


def test_a_cityscapes_folder_is_detected_and_read_at_the_receiver_size(tmp_path, scenes):
    write_cityscapes(tmp_path, "val", scenes)
    assert detect_layout(tmp_path) == "cityscapes"
    dataset = build_evaluation_dataset(tmp_path, (8, 16), count=99)
    assert isinstance(dataset, CityscapesDataset) and len(dataset) == 2
    assert tuple(dataset[0].labels.shape) == (8, 16) and dataset[0].depth is None
    with_geometry = build_evaluation_dataset(tmp_path, (8, 16), count=99, geometry=True)[0]
    assert tuple(with_geometry.depth.shape) == (8, 16) and len(with_geometry.boxes.classes) > 0


@pytest.mark.parametrize("layout", ["ade20k", "coco-stuff"])
def test_depth_and_boxes_are_read_from_cityscapes_folders_only(tmp_path, layout):
    with pytest.raises(ValueError, match=f"the {layout} layout of .* has no ground-truth depth or boxes"):
        build_evaluation_dataset(tmp_path, (16, 32), count=2, layout=layout, geometry=True)


def test_a_plain_folder_is_detected_but_cannot_be_scored(tmp_path, scenes):
    write_folder(tmp_path, scenes)
    assert detect_layout(tmp_path) == "folder"
    with pytest.raises(ValueError, match="no class table"):
        build_evaluation_dataset(tmp_path, (16, 32), count=2)


@pytest.mark.parametrize(
    ("data", "layout", "error", "message"),
    [
        ("missing", "auto", FileNotFoundError, "neither 'synthetic' nor a folder"),
        (".", "auto", ValueError, "cannot tell the layout"),
        (".", "kitti", ValueError, "unknown layout 'kitti'"),
    ],
)
def test_bad_data_is_named(tmp_path, data, layout, error, message):
    with pytest.raises(error, match=message):
        build_evaluation_dataset(tmp_path / data, (16, 32), count=2, layout=layout)
