"""Ground truth of geometry: the synthetic scenes' depth and boxes, and their Cityscapes files round trip."""

import json

import numpy as np
import pytest
import torch

from gesco.cli.main import main
from gesco.datasets import CityscapesDataset, SyntheticStreets, SyntheticStreetsDataset, write_cityscapes
from gesco.datasets.cityscapes_geometry import (
    SYNTHETIC_DISPARITY_AT_1M,
    depth_to_disparity_png,
    disparity_png_to_depth,
    read_polygon_boxes,
)
from gesco.datasets.synthetic_canvas import (
    BOX_CLASSES,
    CAR,
    GROUND,
    PERSON,
    SKY,
    SKY_DEPTH_M,
    Camera,
    Canvas,
)
from gesco.datasets.synthetic_layout import draw_layout
from gesco.datasets.synthetic_objects import Person, Pole
from helpers import assert_tight_boxes


@pytest.fixture(scope="module")
def drawn():
    """(canvas, camera) of a few laid-out scenes."""
    out = []
    for seed in range(8):
        canvas = Canvas(64, 128)
        out.append((canvas, draw_layout(canvas, np.random.default_rng([seed, 0]))))
    return out


@pytest.fixture(scope="module")
def scenes():
    streets = SyntheticStreets(64, 128)
    return [streets.scene(seed) for seed in range(6)]


def test_ground_and_sky_depth_follow_the_pinhole_camera(drawn):
    for canvas, cam in drawn:
        rows = np.arange(canvas.height)[:, None] + 0.5
        ground = canvas.facing == GROUND
        expected = np.minimum(cam.focal * cam.height_m / np.broadcast_to(rows - cam.horizon, ground.shape), SKY_DEPTH_M)
        np.testing.assert_allclose(canvas.depth[ground], expected[ground], rtol=1e-6)
        assert (canvas.depth[canvas.labels == SKY] == SKY_DEPTH_M).all()


def test_objects_stand_at_the_depth_of_their_ground_contact():
    cam = Camera(focal=64.0, horizon=27.0, center_x=64.0)
    canvas = Canvas(64, 128)
    Person(x_m=-1.0, z_m=9.0, height_m=1.8, stride=0.3).paint(canvas, cam)
    Pole(x_m=3.0, z_m=14.0, height_m=6.0).paint(canvas, cam)
    assert (canvas.depth[canvas.labels == PERSON] == 9.0).all()
    assert (canvas.depth[canvas.labels == 17] == 14.0).all()
    boxes = canvas.finished_boxes(canvas.finished_instances())
    person = boxes[boxes[:, 4] == PERSON][0]
    # The feet are on the row where the ground is 9 m away: the box ends on the row holding y_of(0, 9).
    assert person[3] == np.ceil(cam.y_of(0.0, 9.0) - 0.5)
    ground_at_bottom_row = cam.focal * cam.height_m / (person[3] - 0.5 - cam.horizon)
    assert abs(ground_at_bottom_row - 9.0) < 9.0 * 0.1


def test_flat_figures_never_float_below_the_ground(drawn):
    # A person stands on the ground, so the ground at its lowest visible row is at least as far as the person.
    for canvas, cam in drawn:
        instances = canvas.finished_instances()
        for x0, y0, x1, y1, label, _ in canvas.finished_boxes(instances):
            if label == PERSON:
                z = canvas.depth[y0:y1, x0:x1][canvas.labels[y0:y1, x0:x1] == PERSON]
                assert np.ptp(z) == 0
                assert z[0] <= cam.focal * cam.height_m / (y1 - 0.5 - cam.horizon) + 1e-3


def test_boxes_are_the_tight_boxes_of_the_instances(scenes):
    assert_tight_boxes(scenes, BOX_CLASSES)


def test_geometry_is_deterministic_and_on_the_samples(scenes):
    again = SyntheticStreets(64, 128).scene(3)
    assert np.array_equal(again.depth, scenes[3].depth) and np.array_equal(again.boxes, scenes[3].boxes)
    assert again.depth.dtype == np.float32 and again.depth.shape == (64, 128)
    sample = SyntheticStreetsDataset(2, seed_offset=4)[1]
    scene = scenes[5]
    assert torch.equal(sample.depth, torch.from_numpy(scene.depth))
    assert torch.equal(sample.boxes.xyxy, torch.from_numpy(scene.boxes[:, :4]).float())
    assert sample.boxes.classes.tolist() == scene.boxes[:, 4].tolist()
    assert sample.boxes.instances.tolist() == scene.boxes[:, 5].tolist()


def test_disparity_encoding_is_cityscapes():
    depth = np.array([[1.0, 4.0, 400.0, 0.0], [np.inf, -1.0, 0.1, 1e9]])
    values = depth_to_disparity_png(depth, 128.0)
    # p = round(256 * d) + 1 with d = 128 / depth; 0 = invalid; clipped to stay a finite known depth
    assert values.tolist() == [[32769, 8193, 83, 0], [0, 0, 65535, 2]]
    back = disparity_png_to_depth(values, 128.0)
    assert back[0, :3].tolist() == pytest.approx([1.0, 4.0, 128 / (82 / 256)])
    assert back[0, 3] == 0 and back[1, 0] == 0
    assert disparity_png_to_depth(np.array([1]), 128.0).tolist() == [0.0]  # disparity 0: no depth


def test_cityscapes_round_trip_of_depth_and_boxes(tmp_path, scenes):
    write_cityscapes(tmp_path, "val", scenes[:3], city="testcity")
    stem = "testcity_000001_000019"
    camera = json.loads((tmp_path / "camera" / "val" / "testcity" / f"{stem}_camera.json").read_text())
    assert camera["extrinsic"]["baseline"] * camera["intrinsic"]["fx"] == pytest.approx(SYNTHETIC_DISPARITY_AT_1M)
    assert set(camera["intrinsic"]) == {"fx", "fy", "u0", "v0"}
    polygons = json.loads((tmp_path / "gtFine" / "val" / "testcity" / f"{stem}_gtFine_polygons.json").read_text())
    assert (polygons["imgHeight"], polygons["imgWidth"]) == (64, 128)
    assert {o["label"] for o in polygons["objects"]} <= {"pole", "traffic light", "traffic sign", "person", "car"}
    dataset = CityscapesDataset(tmp_path, "val", size=None, geometry=True)
    for sample, scene in zip(dataset, scenes[:3]):
        true_disparity = SYNTHETIC_DISPARITY_AT_1M / scene.depth.astype(np.float64)
        read_disparity = SYNTHETIC_DISPARITY_AT_1M / sample.depth.double().numpy()
        assert np.abs(read_disparity - true_disparity).max() <= 1 / 512 + 1e-9  # rounding to 1/256 px
        assert torch.equal(sample.boxes.xyxy, torch.from_numpy(scene.boxes[:, :4]).float())
        assert sample.boxes.classes.tolist() == scene.boxes[:, 4].tolist()
        assert sample.boxes.instances.tolist() == scene.boxes[:, 5].tolist()
    assert CityscapesDataset(tmp_path, "val", size=None)[0].depth is None  # read only when asked
    with pytest.raises(ValueError, match="flip=False"):
        CityscapesDataset(tmp_path, "val", flip=True, geometry=True)


def test_cityscapes_geometry_is_resized_with_the_image(tmp_path, scenes):
    write_cityscapes(tmp_path, "val", scenes[:1], city="testcity")
    full = CityscapesDataset(tmp_path, "val", size=None, geometry=True)[0]
    half = CityscapesDataset(tmp_path, "val", size=(32, 64), geometry=True)[0]
    assert half.depth.shape == (32, 64)
    assert torch.equal(half.boxes.xyxy, full.boxes.xyxy / 2)
    # NEAREST picks one of each 2 x 2 block's depths, never a blend
    blocks = full.depth.reshape(32, 2, 64, 2).permute(0, 2, 1, 3).reshape(32, 64, 4)
    assert ((blocks == half.depth[..., None]).any(dim=-1)).all()


def test_real_polygons_give_boxes_of_boxed_classes(tmp_path):
    path = tmp_path / "x_gtFine_polygons.json"
    objects = [
        {"label": "road", "polygon": [[0, 0], [10, 0], [10, 10]]},
        {"label": "car", "polygon": [[5, 6], [20, 6], [12, 30]]},
        {"label": "cargroup", "polygon": [[0, 0], [3, 3], [0, 3]]},
        {"label": "car", "polygon": [[-4, 40], [8, 40], [8, 70]], "deleted": 1},
        {"label": "car", "polygon": [[-4, 40], [8, 40], [8, 70]]},
        {"label": "bicycle", "polygon": [[1, 1], [2, 2], [1, 2]]},
    ]
    path.write_text(json.dumps({"imgHeight": 64, "imgWidth": 128, "objects": objects}))
    rows, size = read_polygon_boxes(path)
    assert size == (64, 128)
    assert rows.tolist() == [[5, 6, 21, 31, CAR, 26000], [0, 40, 9, 64, CAR, 26001], [1, 1, 3, 3, 33, 33000]]
    path.write_text(json.dumps({"imgHeight": 64, "imgWidth": 128, "objects": [{"label": "spaceship", "polygon": []}]}))
    with pytest.raises(ValueError, match="spaceship"):
        read_polygon_boxes(path)


def test_data_synth_writes_depth_and_boxes(tmp_path):
    out = tmp_path / "cs"
    assert main(["data", "synth", "--layout", "cityscapes", "--out", str(out), "--n", "2", "--split", "val"]) == 0
    sample = CityscapesDataset(out, "val", size=None, geometry=True)[1]
    scene = SyntheticStreets(64, 128).scene(1)
    assert torch.allclose(sample.depth, torch.from_numpy(scene.depth), rtol=0.05)
    assert sample.boxes.classes.tolist() == scene.boxes[:, 4].tolist()
