"""Write synthetic scenes in each on-disk layout, load them back, compare."""

import numpy as np
import pytest
import torch
from cityscapesscripts.helpers.labels import id2label
from PIL import Image
from torch.utils.data import DataLoader

from gesco.datasets import (
    ADE20KDataset,
    CityscapesDataset,
    CocoStuffDataset,
    FolderDataset,
    SyntheticStreets,
    collate,
    tensor_to_image,
    write_ade20k,
    write_cityscapes,
    write_coco_stuff,
    write_folder,
)

# Class positions from the public class lists (COCO-Stuff labels.txt minus 1; ADE20K objectInfo150).
COCO_INDEX = {7: 148, 23: 156, 26: 2, 24: 0}  # road, sky-other, car, person
ADE_ID = {7: 7, 23: 3, 26: 21, 24: 13, 11: 2}  # road, sky, car, person, building


@pytest.fixture(scope="module")
def scenes():
    streets = SyntheticStreets(64, 128)
    return [streets.scene(seed) for seed in (1, 2, 3)]


def _image(sample) -> np.ndarray:
    return tensor_to_image(sample.image)


def test_cityscapes_round_trip_is_exact(tmp_path, scenes):
    write_cityscapes(tmp_path, "val", scenes, city="testcity")
    dataset = CityscapesDataset(tmp_path, "val", size=None)
    assert len(dataset) == len(scenes) and dataset.num_classes == 35
    for scene, sample in zip(scenes, dataset):
        assert np.array_equal(sample.labels.numpy(), scene.labels)
        assert np.array_equal(sample.instances.numpy(), scene.instances)  # 16-bit ids such as 26001 survive
        assert np.array_equal(_image(sample), scene.image)
        assert sample.name.startswith("testcity_") and sample.name.endswith("_000019")
    assert (dataset[0].instances >= 24000).any()


def test_cityscapes_files_follow_the_official_names_and_colours(tmp_path, scenes):
    write_cityscapes(tmp_path, "train", scenes[:1], city="bonn", start_index=7)
    stem = "bonn_000007_000019"
    gt = tmp_path / "gtFine" / "train" / "bonn"
    assert (tmp_path / "leftImg8bit" / "train" / "bonn" / f"{stem}_leftImg8bit.png").is_file()
    with Image.open(gt / f"{stem}_gtFine_instanceIds.png") as instance_png:
        assert instance_png.mode.startswith("I")  # 16-bit, not 8-bit
    with Image.open(gt / f"{stem}_gtFine_color.png") as color_png:
        color = np.asarray(color_png.convert("RGB"))
    labels = scenes[0].labels
    for label_id in np.unique(labels):
        assert (color[labels == label_id] == id2label[int(label_id)].color).all()


def test_cityscapes_license_plate_and_bad_ids(tmp_path, scenes):
    write_cityscapes(tmp_path, "train", scenes[:1])
    label_file = next((tmp_path / "gtFine" / "train").rglob("*_labelIds.png"))
    ids = scenes[0].labels.copy()
    ids[:2, :2] = 255  # license plate, id -1 in 8 bits
    Image.fromarray(ids).save(label_file)
    labels = CityscapesDataset(tmp_path, "train", size=None)[0].labels
    assert (labels[:2, :2] == 34).all() and labels.max() == 34
    ids[:2, :2] = 40
    Image.fromarray(ids).save(label_file)
    with pytest.raises(ValueError, match="40"):
        CityscapesDataset(tmp_path, "train", size=None)[0]


def test_coco_stuff_round_trip(tmp_path, scenes):
    write_coco_stuff(tmp_path, "train", scenes)
    dataset = CocoStuffDataset(tmp_path, "train", size=None)
    assert dataset.num_classes == 183
    image_files = sorted((tmp_path / "images" / "train2017").glob("*.jpg"))
    assert len(image_files) == 3
    for scene, sample, image_file in zip(scenes, dataset, image_files):
        labels = sample.labels.numpy()
        for cityscapes_id, coco_index in COCO_INDEX.items():
            assert (labels[scene.labels == cityscapes_id] == coco_index).all()
        # Distinct synthetic classes stay distinct, and all are real COCO-Stuff classes.
        pairs = set(zip(scene.labels.ravel().tolist(), labels.ravel().tolist()))
        assert len({c for c, _ in pairs}) == len(pairs) == len({k for _, k in pairs})
        assert labels.max() < 182
        # SPADE instance map: stuff keeps the label value; each thing instance one distinct value.
        instances = sample.instances.numpy()
        things = scene.instances >= 1000
        assert np.array_equal(instances[~things], labels[~things])
        values = [np.unique(instances[scene.instances == i]) for i in np.unique(scene.instances[things])]
        assert all(v.size == 1 for v in values) and len({int(v[0]) for v in values}) == len(values)
        with Image.open(image_file) as jpeg:
            decoded = np.asarray(jpeg.convert("RGB"))
        assert np.array_equal(_image(sample), decoded)
        assert np.abs(decoded.astype(int) - scene.image).mean() < 4


def test_coco_stuff_unlabeled_is_the_last_channel(tmp_path, scenes):
    write_coco_stuff(tmp_path, "val", scenes[:1])
    label_file = next((tmp_path / "labels" / "val2017").glob("*.png"))
    ids = np.asarray(Image.open(label_file)).copy()
    ids[0, :] = 255
    Image.fromarray(ids).save(label_file)
    labels = CocoStuffDataset(tmp_path, "val", size=None, instances=False)[0].labels
    assert (labels[0] == 182).all() and labels[1:].max() < 182


@pytest.mark.parametrize("layout", ["challenge", "beside"])
def test_ade20k_round_trip_in_both_layouts(tmp_path, scenes, layout):
    write_ade20k(tmp_path, "val", scenes, layout=layout)
    dataset = ADE20KDataset(tmp_path, "val", size=None)
    assert dataset.layout == layout and dataset.num_classes == 151 and len(dataset) == 3
    for scene, sample in zip(scenes, dataset):
        labels = sample.labels.numpy()
        for cityscapes_id, ade_id in ADE_ID.items():
            assert (labels[scene.labels == cityscapes_id] == ade_id - 1).all()
        assert sample.instances is None
        assert np.abs(_image(sample).astype(int) - scene.image).mean() < 4


def test_ade20k_other_maps_to_the_last_channel(tmp_path, scenes):
    write_ade20k(tmp_path, "train", scenes[:1], layout="beside")
    label_file = next((tmp_path / "training").glob("*_seg.png"))
    ids = np.asarray(Image.open(label_file)).copy()
    ids[0, :] = 0  # "other"
    ids[1, :] = 200  # not an ADE20K class: clamped like the official loader
    Image.fromarray(ids).save(label_file)
    labels = ADE20KDataset(tmp_path, "train", size=None)[0].labels
    assert (labels[:2] == 150).all() and labels[2:].max() < 150


def test_folder_round_trip_and_collate(tmp_path, scenes):
    write_folder(tmp_path, scenes)
    dataset = FolderDataset(tmp_path, num_classes=35)
    for scene, sample in zip(scenes, dataset):
        assert np.array_equal(sample.labels.numpy(), scene.labels)
        assert np.array_equal(sample.instances.numpy(), scene.instances)
        assert np.array_equal(_image(sample), scene.image)
    batch = next(iter(DataLoader(dataset, batch_size=3, collate_fn=collate)))
    assert batch.image.shape == (3, 3, 64, 128) and batch.labels.dtype == torch.int64
    assert batch.instances.shape == (3, 64, 128) and batch.names == ("000000", "000001", "000002")
    without = FolderDataset(tmp_path, num_classes=35, instances=False)
    assert collate([dataset[0], without[1]]).instances is None


def test_folder_reads_16_bit_labels_and_checks_the_class_count(tmp_path, scenes):
    write_folder(tmp_path, scenes[:1], instances=False)
    wide = scenes[0].labels.astype(np.uint16) * 10  # ids up to 260: needs 16 bits
    Image.fromarray(wide).save(tmp_path / "labels" / "000000.png")
    labels = FolderDataset(tmp_path, num_classes=261)[0].labels.numpy()
    assert np.array_equal(labels, wide.astype(np.int64))
    with pytest.raises(ValueError, match="num_classes=100"):
        FolderDataset(tmp_path, num_classes=100)[0]


def test_folder_names_must_match(tmp_path, scenes):
    write_folder(tmp_path, scenes[:2])
    (tmp_path / "labels" / "000001.png").rename(tmp_path / "labels" / "000009.png")
    with pytest.raises(ValueError, match="000001"):
        FolderDataset(tmp_path, num_classes=35)


def test_mismatched_file_counts_raise(tmp_path, scenes):
    write_cityscapes(tmp_path, "train", scenes)
    next((tmp_path / "gtFine" / "train").rglob("*_instanceIds.png")).unlink()
    with pytest.raises(ValueError, match="counts differ"):
        CityscapesDataset(tmp_path, "train")
    assert len(CityscapesDataset(tmp_path, "train", instances=False)) == 3
    write_coco_stuff(tmp_path / "coco", "train", scenes)
    next((tmp_path / "coco" / "labels" / "train2017").glob("*.png")).unlink()
    with pytest.raises(ValueError, match="counts differ"):
        CocoStuffDataset(tmp_path / "coco", "train")


def test_missing_folders_and_bad_splits_raise(tmp_path):
    with pytest.raises(FileNotFoundError, match="leftImg8bit"):
        CityscapesDataset(tmp_path, "train")
    with pytest.raises(ValueError, match="split"):
        CocoStuffDataset(tmp_path, "training")
    with pytest.raises(FileNotFoundError, match="annotations"):
        ADE20KDataset(tmp_path, "val")


def test_colour_label_maps_are_rejected(tmp_path, scenes):
    write_folder(tmp_path, scenes[:1], instances=False)
    Image.fromarray(scenes[0].image).save(tmp_path / "labels" / "000000.png")
    with pytest.raises(ValueError, match="single-channel"):
        FolderDataset(tmp_path, num_classes=35)[0]
