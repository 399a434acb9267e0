import doctest

import numpy as np
import pytest
import torch
from cityscapesscripts.helpers.labels import id2label

from gesco.datasets import SyntheticStreets, SyntheticStreetsDataset, synthetic
from gesco.datasets.synthetic_canvas import Camera, Canvas
from gesco.datasets.synthetic_layout import draw_layout
from gesco.datasets.synthetic_objects import Pole

# Cityscapes label ids the brief asks for, by name (taken from cityscapesscripts, not from gesco).
EXPECTED = {
    name: next(label.id for label in id2label.values() if label.name == name)
    for name in (
        "road",
        "sidewalk",
        "building",
        "pole",
        "traffic light",
        "traffic sign",
        "vegetation",
        "terrain",
        "sky",
        "person",
        "car",
    )
}
THINGS = {label.id for label in id2label.values() if label.hasInstances}


@pytest.fixture(scope="module")
def streets() -> SyntheticStreets:
    return SyntheticStreets(64, 128)


@pytest.fixture(scope="module")
def scenes(streets):
    return [streets.scene(seed) for seed in range(40)]


def test_shapes_and_dtypes_at_several_resolutions():
    for height, width in [(64, 128), (128, 256), (48, 80)]:
        scene = SyntheticStreets(height, width).scene(3)
        assert scene.image.shape == (height, width, 3) and scene.image.dtype == np.uint8
        assert scene.labels.shape == (height, width) and scene.labels.dtype == np.uint8
        assert scene.instances.shape == (height, width) and scene.instances.dtype == np.int32


def test_deterministic_by_seed(streets):
    a, b, c = streets.scene(11), SyntheticStreets(64, 128).scene(11), streets.scene(12)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.instances, b.instances)
    assert not np.array_equal(a.labels, c.labels)


def test_appearance_seed_keeps_layout_and_changes_the_image(streets):
    base = streets.scene(5)
    for appearance in (1, 2):
        other = streets.scene(5, appearance_seed=appearance)
        assert np.array_equal(other.labels, base.labels)
        assert np.array_equal(other.instances, base.instances)
        assert np.abs(other.image.astype(int) - base.image).mean() > 5


def test_same_scene_at_any_resolution():
    small, large = SyntheticStreets(64, 128).scene(8), SyntheticStreets(128, 256).scene(8)
    agreement = (small.labels == large.labels[1::2, 1::2]).mean()
    assert agreement > 0.93


def test_labels_are_the_cityscapes_ids_and_at_least_ten_classes_appear(scenes):
    seen = set()
    for scene in scenes:
        seen |= set(np.unique(scene.labels).tolist())
    assert seen <= set(EXPECTED.values())
    assert len(seen) >= 10
    assert {EXPECTED["road"], EXPECTED["car"], EXPECTED["person"], EXPECTED["pole"]} <= seen


def test_cityscapes_instance_encoding(scenes):
    for scene in scenes:
        stuff = ~np.isin(scene.labels, list(THINGS))
        assert np.array_equal(scene.instances[stuff], scene.labels[stuff].astype(np.int32))
        things = scene.instances[~stuff]
        assert np.array_equal(things // 1000, scene.labels[~stuff].astype(np.int32))
        for label in np.unique(things // 1000):
            ks = np.unique(things[things // 1000 == label] % 1000)
            assert np.array_equal(ks, np.arange(ks.size))  # k counts 0, 1, 2, ... with no gaps


def test_instances_are_connected_objects(scenes):
    # Each instance is one object: its pixels share one label and its bounding box is compact.
    for scene in scenes[:10]:
        for instance in np.unique(scene.instances[scene.instances >= 1000]):
            rows, cols = np.nonzero(scene.instances == instance)
            assert len(set(scene.labels[rows, cols].tolist())) == 1
            assert rows.max() - rows.min() < 64 and cols.max() - cols.min() < 128


def test_class_appearance_is_distinct(scenes):
    # Mean colours: sky brighter and bluer than road, vegetation greener than road and building.
    pixels = {name: [] for name in EXPECTED}
    for scene in scenes:
        for name, label in EXPECTED.items():
            pixels[name].append(scene.image[scene.labels == label].astype(float))
    mean = {name: np.concatenate(p).mean(axis=0) for name, p in pixels.items() if sum(len(x) for x in p)}
    assert mean["sky"].sum() > mean["road"].sum() + 150
    assert mean["sky"][2] > mean["sky"][0]
    assert mean["vegetation"][1] > mean["vegetation"][0] + 20 and mean["vegetation"][1] > mean["vegetation"][2] + 20
    assert mean["sidewalk"].sum() > mean["road"].sum() + 120


def test_textures_are_smooth_not_grain(scenes):
    # Inside a stuff region the typical step between neighbours is far below the region's spread:
    # texture is smooth noise, not per-pixel grain (lane markings and windows are rare big steps).
    for scene in scenes[:10]:
        image = scene.image.astype(float)
        for name in ("road", "sidewalk", "vegetation", "terrain", "sky"):
            label = EXPECTED[name]
            same = (scene.labels[:, 1:] == label) & (scene.labels[:, :-1] == label)
            if same.sum() < 300:
                continue
            steps = np.abs(image[:, 1:] - image[:, :-1])[same]
            assert np.median(steps) <= 4, name


@pytest.mark.parametrize("width", [128, 256])
def test_far_poles_keep_the_minimum_width(width):
    canvas = Canvas(width // 2, width)
    cam = Camera(focal=0.5 * width, horizon=0.42 * width / 2, center_x=width / 2)
    for x_m in (-6.0, 5.0):
        Pole(x_m, z_m=80.0, height_m=8.0).paint(canvas, cam)
    rows = np.nonzero((canvas.labels == EXPECTED["pole"]).any(axis=1))[0]
    assert rows.size > 0
    for row in rows:
        run_lengths = np.diff(np.flatnonzero(np.diff(np.r_[0, canvas.labels[row] == EXPECTED["pole"], 0])))[::2]
        assert set(run_lengths.tolist()) == {2 * width // 128}


def test_lane_markings_are_at_least_two_pixels_wide():
    for seed in range(30):
        canvas = Canvas(64, 128)
        draw_layout(canvas, np.random.default_rng(seed))
        marking = np.array([kind == "lane_marking" for kind in canvas.material_kinds])[canvas.material]
        plain_road = (canvas.labels == EXPECTED["road"]) & ~marking
        for row in range(64):
            edges = np.flatnonzero(np.diff(np.r_[0, marking[row], 0]))
            for start, stop in zip(edges[::2], edges[1::2]):
                # Only runs with plain road on both sides: elsewhere a car or the curb may cut them.
                if start > 0 and stop < 128 and plain_road[row, start - 1] and plain_road[row, stop]:
                    assert stop - start >= 2, (seed, row, start, stop)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="height"):
        SyntheticStreets(8, 128)
    with pytest.raises(ValueError, match="seed"):
        SyntheticStreets().scene(-1)
    with pytest.raises(TypeError, match="seed"):
        SyntheticStreets().scene(1.5)


def test_dataset_view_matches_the_generator(streets):
    dataset = SyntheticStreetsDataset(4, seed_offset=100)
    assert len(dataset) == 4
    sample = dataset[2]
    scene = streets.scene(102)
    assert sample.image.dtype == torch.float32 and sample.image.shape == (3, 64, 128)
    assert torch.equal(sample.image, torch.from_numpy(scene.image).permute(2, 0, 1).float() / 127.5 - 1)
    assert sample.labels.dtype == torch.int64 and torch.equal(sample.labels, torch.from_numpy(scene.labels).long())
    assert torch.equal(sample.instances, torch.from_numpy(scene.instances).long())
    assert sample.name.endswith("102")
    with pytest.raises(IndexError):
        dataset[4]


def test_docstring_example():
    assert doctest.testmod(synthetic, raise_on_error=True).attempted > 0
