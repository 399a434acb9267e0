"""Resizing, cropping and flipping as the official loader does it."""

import numpy as np
import pytest
import torch
from PIL import Image

from gesco.datasets import (
    CityscapesDataset,
    CocoStuffDataset,
    FolderDataset,
    Preprocessing,
    SyntheticStreets,
    image_to_tensor,
    tensor_to_image,
    write_cityscapes,
    write_coco_stuff,
    write_folder,
)


@pytest.fixture(scope="module")
def small_scenes():
    streets = SyntheticStreets(64, 128)
    return [streets.scene(seed) for seed in range(4)]


def test_full_resolution_cityscapes_loads_at_256x512(tmp_path):
    scene = SyntheticStreets(1024, 2048).scene(4)
    write_cityscapes(tmp_path, "train", [scene])
    sample = CityscapesDataset(tmp_path, "train")[0]  # default: the paper's 256 x 512
    assert sample.image.shape == (3, 256, 512) and sample.labels.shape == (256, 512)
    assert set(sample.labels.unique().tolist()) <= set(np.unique(scene.labels).tolist())
    assert set(sample.instances.unique().tolist()) <= set(np.unique(scene.instances).tolist())
    # Two BOX halvings average 4 x 4 blocks: compare with a plain numpy block mean.
    reference = scene.image.astype(float).reshape(256, 4, 512, 4, 3).mean(axis=(1, 3))
    assert np.abs(tensor_to_image(sample.image).astype(float) - reference).mean() < 1.0
    # Labels are NEAREST samples of the original map: most agree with the block's centre pixel.
    assert (sample.labels.numpy() == scene.labels[2::4, 2::4]).mean() > 0.97


def test_keep_aspect_rejects_a_size_of_another_aspect(tmp_path, small_scenes):
    write_cityscapes(tmp_path, "val", small_scenes[:1])
    assert CityscapesDataset(tmp_path, "val", size=(32, 64))[0].image.shape == (3, 32, 64)
    with pytest.raises(ValueError, match="aspect"):
        CityscapesDataset(tmp_path, "val", size=(64, 64))[0]


def test_test_mode_resizes_straight_to_the_square_target(tmp_path, small_scenes):
    write_coco_stuff(tmp_path, "val", small_scenes[:1])
    sample = CocoStuffDataset(tmp_path, "val", size=(48, 48))[0]
    assert sample.image.shape == (3, 48, 48) and sample.labels.shape == (48, 48) == sample.instances.shape
    stored = np.asarray(Image.open(next((tmp_path / "labels" / "val2017").glob("*.png"))))
    assert set(sample.labels.unique().tolist()) <= set(np.unique(stored).tolist())


def test_random_crop_is_seeded_and_covers_most_of_the_image(tmp_path, small_scenes):
    write_folder(tmp_path, small_scenes[:1])
    full = FolderDataset(tmp_path, 35)[0]
    crops = FolderDataset(tmp_path, 35, size=(32, 32), random_crop=True, seed=3)
    again = FolderDataset(tmp_path, 35, size=(32, 32), random_crop=True, seed=3)
    first = crops[0]
    assert first.image.shape == (3, 32, 32) and first.labels.shape == (32, 32)
    assert torch.equal(first.image, again[0].image) and torch.equal(first.labels, again[0].labels)
    seen = []
    for epoch in range(6):
        crops.set_epoch(epoch)
        seen.append(crops[0].labels)
    assert any(not torch.equal(seen[0], other) for other in seen[1:])
    # The crop spans 80-100 % of the short side (64 px): its labels come from the full map.
    assert set(torch.cat(seen).unique().tolist()) <= set(full.labels.unique().tolist())


def test_flip_mirrors_image_labels_and_instances_together(tmp_path, small_scenes):
    write_folder(tmp_path, small_scenes)
    plain = FolderDataset(tmp_path, 35)
    flipping = FolderDataset(tmp_path, 35, flip=True, seed=11)
    outcomes = []
    for epoch in range(4):
        flipping.set_epoch(epoch)
        for index in range(len(plain)):
            a, b = plain[index], flipping[index]
            flipped = torch.equal(b.labels, a.labels.flip(-1))
            if flipped:
                assert torch.equal(b.image, a.image.flip(-1)) and torch.equal(b.instances, a.instances.flip(-1))
            else:
                assert torch.equal(b.image, a.image) and torch.equal(b.labels, a.labels)
            outcomes.append(flipped)
    assert 0 < sum(outcomes) < len(outcomes)
    flipping.set_epoch(0)
    repeat = FolderDataset(tmp_path, 35, flip=True, seed=11)
    assert all(torch.equal(flipping[i].image, repeat[i].image) for i in range(len(plain)))


def test_preprocessing_checks_its_options():
    with pytest.raises(ValueError, match="size"):
        Preprocessing(size=(0, 64))
    with pytest.raises(ValueError, match="crop_fraction"):
        Preprocessing(crop_fraction=(0.9, 0.8))
    with pytest.raises(ValueError, match="exclude"):
        Preprocessing(keep_aspect=True, random_crop=True)


def test_image_tensor_conversion_round_trips():
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    tensor = image_to_tensor(pixels)
    assert tensor.shape == (3, 5, 7) and tensor.dtype == torch.float32
    assert tensor.min() >= -1 and tensor.max() <= 1
    assert torch.allclose(tensor[:, 2, 3], torch.tensor(pixels[2, 3], dtype=torch.float32) / 127.5 - 1)
    assert np.array_equal(tensor_to_image(tensor), pixels)
    with pytest.raises(ValueError, match="uint8"):
        image_to_tensor(pixels.astype(np.float32))
