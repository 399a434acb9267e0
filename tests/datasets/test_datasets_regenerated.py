"""Regenerated images of training scenes paired with the scenes' own ground truth, and mixed into a training set."""

import numpy as np
import pytest
import torch
from PIL import Image

from gesco.datasets import SyntheticStreetsDataset
from gesco.datasets.base import image_to_tensor
from gesco.datasets.preprocessing import UnreadableImageError
from gesco.datasets.regenerated import MixedScenes, RegeneratedScenes

SIZE = (32, 64)


def write_png(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full((*SIZE, 3), value, dtype=np.uint8)
    pixels[:, :, 1] = np.arange(SIZE[1], dtype=np.uint8)  # not a constant image: a transposed read would show
    Image.fromarray(pixels).save(path)
    return pixels


def test_each_image_comes_with_its_own_scene_ground_truth(tmp_path):
    plain = write_png(tmp_path / "images/gesco/psnr10/synthetic_0000005.png", 40)
    riders = write_png(tmp_path / "images/gesco/psnr1/synthetic_riders_0000007.png", 200)
    dataset = RegeneratedScenes((tmp_path / "images",), *SIZE)
    assert len(dataset) == 2
    for item, pixels, seed, with_riders in ((dataset[0], riders, 7, True), (dataset[1], plain, 5, False)):
        scene = SyntheticStreetsDataset(1, height=SIZE[0], width=SIZE[1], riders=with_riders).sample(seed)
        assert torch.equal(item.image, image_to_tensor(pixels))
        assert not torch.equal(item.image, scene.image)
        assert torch.equal(item.labels, scene.labels) and torch.equal(item.instances, scene.instances)
        assert torch.equal(item.depth, scene.depth) and item.name == scene.name
        assert torch.equal(item.boxes.xyxy, scene.boxes.xyxy)
    assert dataset[0].name == "synthetic_riders_0000007"
    assert not torch.equal(dataset[0].labels, dataset[1].labels)


def test_bad_folders_give_typed_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no folder"):
        RegeneratedScenes((tmp_path / "missing",), *SIZE)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no regenerated images"):
        RegeneratedScenes((tmp_path / "empty",), *SIZE)
    write_png(tmp_path / "named/figure.png", 0)
    with pytest.raises(ValueError, match="figure.png is not named"):
        RegeneratedScenes((tmp_path / "named",), *SIZE)
    write_png(tmp_path / "held_out/synthetic_1000000.png", 0)
    with pytest.raises(ValueError, match="evaluation scene"):
        RegeneratedScenes((tmp_path / "held_out",), *SIZE)
    write_png(tmp_path / "short/synthetic_5.png", 0)  # evaluate writes seeds in at least seven digits
    with pytest.raises(ValueError, match="synthetic_5.png is not named"):
        RegeneratedScenes((tmp_path / "short",), *SIZE)
    # checked when the data set is built, before a training run writes anything
    write_png(tmp_path / "small/synthetic_0000003.png", 0)
    with pytest.raises(ValueError, match="32x64 px, the scenes 64x128"):
        RegeneratedScenes((tmp_path / "small",), 64, 128)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken/synthetic_0000004.png").write_bytes(b"not a png")
    with pytest.raises(UnreadableImageError, match="synthetic_0000004.png"):
        RegeneratedScenes((tmp_path / "broken",), *SIZE)
    # the last training seed is accepted, and several folders are read in order
    write_png(tmp_path / "last/synthetic_0999999.png", 0)
    both = RegeneratedScenes((tmp_path / "last", tmp_path / "small"), *SIZE)
    assert [item.name for item in both] == ["synthetic_0999999", "synthetic_0000003"]


def test_mixed_scenes_take_an_even_share_from_the_regenerations(tmp_path):
    for seed in range(3):
        write_png(tmp_path / f"images/synthetic_{seed:07d}.png", 10 * seed)
    regenerated = RegeneratedScenes((tmp_path / "images",), *SIZE)
    base = SyntheticStreetsDataset(400, 600_000, height=SIZE[0], width=SIZE[1])
    for share in (0.25, 0.5):
        mixed = MixedScenes(base, regenerated, share)
        assert len(mixed) == 400
        chosen = [i for i in range(400) if mixed.is_regenerated(i)]
        assert abs(len(chosen) / 400 - share) < 0.01
        # spread evenly: every quarter of the range has its share
        assert all(abs(sum(q * 100 <= i < (q + 1) * 100 for i in chosen) / 100 - share) < 0.03 for q in range(4))
        # item i is regeneration i % 3, for every remainder
        for remainder in range(3):
            index = next(i for i in chosen if i % 3 == remainder)
            assert torch.equal(mixed[index].image, regenerated[remainder].image)
        other = next(i for i in range(400) if i not in chosen)
        assert mixed[other].name == f"synthetic_{600_000 + other:07d}"
    with pytest.raises(ValueError, match="share"):
        MixedScenes(base, regenerated, 0.0)
