"""Cyclists in the synthetic scenes (``riders=True``): riders and bicycles as Cityscapes instances with boxes,
added without moving anything else, and written to and read back from the Cityscapes layout."""

import hashlib
import json

import numpy as np
import pytest

from gesco.cli.main import main
from gesco.datasets import CityscapesDataset, SyntheticStreets, SyntheticStreetsDataset, write_cityscapes
from gesco.datasets.layouts import build_evaluation_dataset
from gesco.datasets.synthetic_canvas import BICYCLE, BOX_CLASSES, CYCLIST_CLASSES, RIDER, Camera, Canvas
from gesco.datasets.synthetic_objects import Cyclist
from gesco.training.config import DataConfig
from helpers import assert_tight_boxes

SEEDS = range(24)
#: sha256 (first 16 hex digits) of the labels, instances and boxes of scenes 1,000,000-1,000,004 before cyclists
#: existed.
EXPECTED_DEFAULT_DIGEST = "930dc23ca7871eda"


@pytest.fixture(scope="module")
def pairs():
    """(default scene, the same seed with cyclists) for a few seeds."""
    plain, riders = SyntheticStreets(64, 128), SyntheticStreets(64, 128, riders=True)
    return [(plain.scene(seed), riders.scene(seed)) for seed in SEEDS]


def test_default_scenes_are_those_every_shipped_model_was_trained_and_scored_on():
    # Digest of the labels, instances and boxes of the first evaluation scenes as the shipped models saw them:
    # the cyclist option must leave the default scenes as they were.
    streets, digest = SyntheticStreets(64, 128), hashlib.sha256()
    for seed in range(1_000_000, 1_000_005):
        scene = streets.scene(seed)
        for array in (scene.labels, scene.instances, scene.boxes):
            digest.update(np.ascontiguousarray(array).tobytes())
    assert digest.hexdigest()[:16] == EXPECTED_DEFAULT_DIGEST


def test_cyclists_leave_everything_they_do_not_cover_in_place(pairs):
    for plain, riders in pairs:
        cyclist = np.isin(riders.labels, CYCLIST_CLASSES)
        assert np.array_equal(riders.labels[~cyclist], plain.labels[~cyclist])
        # the same objects, though one a cyclist hides completely leaves the numbering of its class
        pairs_seen = np.unique(np.stack([riders.instances[~cyclist], plain.instances[~cyclist]]), axis=1)
        assert len(np.unique(pairs_seen[0])) == len(np.unique(pairs_seen[1])) == pairs_seen.shape[1]
        assert np.array_equal(riders.depth[~cyclist], plain.depth[~cyclist])
        assert riders.camera == plain.camera
    with_cyclists = sum(np.isin(r.labels, CYCLIST_CLASSES).any() for _, r in pairs)
    assert with_cyclists >= len(pairs) // 2  # most scenes have one: enough to train a detector on
    assert not any(np.isin(p.labels, CYCLIST_CLASSES).any() for p, _ in pairs)


def test_riders_and_bicycles_are_tight_boxed_instances(pairs):
    assert_tight_boxes([r for _, r in pairs], BOX_CLASSES + CYCLIST_CLASSES)
    for _, scene in pairs:
        for label in CYCLIST_CLASSES:
            ids = np.unique(scene.instances[scene.labels == label])
            assert (ids // 1000 == label).all() and (ids % 1000).tolist() == list(range(len(ids)))


@pytest.mark.parametrize("heading", [-1, 0, 1])
def test_a_cyclist_is_a_rider_on_a_bicycle_at_its_ground_contact(heading):
    cam = Camera(focal=64.0, horizon=27.0, center_x=64.0)
    canvas = Canvas(64, 128)
    Cyclist(x_m=0.5, z_m=6.0, height_m=1.75, heading=heading, pedal=0.7).paint(canvas, cam)
    boxes = canvas.finished_boxes(canvas.finished_instances())
    assert sorted(boxes[:, 4].tolist()) == [RIDER, BICYCLE]
    rider, bicycle = (boxes[boxes[:, 4] == label][0] for label in (RIDER, BICYCLE))
    assert (canvas.depth[np.isin(canvas.labels, CYCLIST_CLASSES)] == 6.0).all()
    foot_row = np.ceil(cam.y_of(0.0, 6.0) - 0.5)
    assert bicycle[3] == foot_row  # the wheels touch the ground
    assert rider[1] < bicycle[1] and rider[3] < foot_row  # the rider sits above it, feet on the pedals
    centre = cam.x_of(0.5, 6.0)
    assert rider[0] < centre < rider[2] and bicycle[0] < centre < bicycle[2]
    width, k = bicycle[2] - bicycle[0], cam.px_per_m(6.0)
    if heading:  # seen from the side a bicycle is about 1.8 m long, and the rider leans the way it rides
        assert width == pytest.approx(1.78 * k, abs=2)
        head_column = np.nonzero(canvas.material == canvas.material_kinds.index("helmet"))[1].mean()
        assert np.sign(head_column - centre) == heading
    else:  # head-on the wheel shows below the rider and the handlebar's ends beside the hands
        assert 1 <= width <= 0.65 * k + 1
        assert (canvas.labels[bicycle[3] - 1, bicycle[0] : bicycle[2]] == BICYCLE).any()


def test_cityscapes_round_trip_of_riders(tmp_path, pairs):
    scenes = [r for _, r in pairs if np.isin(r.labels, CYCLIST_CLASSES).any()][:3]
    write_cityscapes(tmp_path, "val", scenes, city="testcity")
    polygons = json.loads(next((tmp_path / "gtFine" / "val" / "testcity").glob("*_polygons.json")).read_text())
    assert {"rider", "bicycle"} & {o["label"] for o in polygons["objects"]}
    for sample, scene in zip(CityscapesDataset(tmp_path, "val", size=None, geometry=True), scenes):
        assert np.array_equal(sample.labels.numpy(), scene.labels)
        assert np.array_equal(sample.instances.numpy(), scene.instances)
        assert sample.boxes.classes.tolist() == scene.boxes[:, 4].tolist()
        assert sample.boxes.instances.tolist() == scene.boxes[:, 5].tolist()


def test_the_option_reaches_every_way_of_making_scenes(tmp_path):
    sample = SyntheticStreetsDataset(24, riders=True)
    assert any(np.isin(sample[i].labels.numpy(), CYCLIST_CLASSES).any() for i in range(24))
    dataset = build_evaluation_dataset("synthetic", (64, 128), count=2, first_seed=5, riders=True)
    assert np.array_equal(dataset[0].labels.numpy(), SyntheticStreets(riders=True).scene(5).labels)
    out = tmp_path / "cs"
    assert main(["data", "synth", "--layout", "cityscapes", "--out", str(out), "--n", "6", "--riders"]) == 0
    written = CityscapesDataset(out, "train", size=None)
    assert any(np.isin(written[i].labels.numpy(), CYCLIST_CLASSES).any() for i in range(6))


def test_bad_cyclist_options_raise(tmp_path):
    with pytest.raises(TypeError, match="riders must be a bool"):
        SyntheticStreets(riders=1)
    with pytest.raises(ValueError, match="synthetic scenes"):
        DataConfig(kind="cityscapes", root="somewhere", riders=True)
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError, match="--riders"):
        build_evaluation_dataset(tmp_path / "folder", (64, 128), count=1, riders=True)
