"""Cyclists in the synthetic scenes (``riders=True``): riders and bicycles as Cityscapes instances with boxes,
added without moving anything else, and written to and read back from the Cityscapes layout."""

import argparse
import hashlib
import json

import numpy as np
import pytest

from gesco.cli.main import main
from gesco.cli.options import evaluation_dataset
from gesco.datasets import (
    ADE20KDataset,
    CityscapesDataset,
    CocoStuffDataset,
    FolderDataset,
    SyntheticStreets,
    SyntheticStreetsDataset,
    write_cityscapes,
)
from gesco.datasets.layouts import build_evaluation_dataset
from gesco.datasets.synthetic_canvas import BICYCLE, BOX_CLASSES, CYCLIST_CLASSES, RIDER, Camera, Canvas
from gesco.datasets.synthetic_layout import Street, _overlaps, _place_cyclists
from gesco.datasets.synthetic_objects import Car, Cyclist
from gesco.evaluation.detector import DetectorConfig
from gesco.evaluation.detector_training import DetectorTrainConfig
from gesco.semantics.classes import class_table
from gesco.training.config import DataConfig
from gesco.training.data import build_dataset
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
        assert np.array_equal(riders.image[~cyclist], plain.image[~cyclist])  # colours and lighting too
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
    labels = set()
    for path in (tmp_path / "gtFine" / "val" / "testcity").glob("*_polygons.json"):
        labels |= {o["label"] for o in json.loads(path.read_text())["objects"]}
    assert {"rider", "bicycle"} <= labels
    for sample, scene in zip(CityscapesDataset(tmp_path, "val", size=None, geometry=True), scenes):
        assert np.array_equal(sample.labels.numpy(), scene.labels)
        assert np.array_equal(sample.instances.numpy(), scene.instances)
        assert sample.boxes.classes.tolist() == scene.boxes[:, 4].tolist()
        assert sample.boxes.instances.tolist() == scene.boxes[:, 5].tolist()


def with_cyclists(dataset, n: int) -> bool:
    return any(np.isin(dataset[i].labels.numpy(), CYCLIST_CLASSES).any() for i in range(n))


def test_the_option_reaches_training_and_evaluation_data():
    dataset = SyntheticStreetsDataset(24, riders=True)
    assert with_cyclists(dataset, 24) and dataset[0].name == "synthetic_riders_0000000"
    assert with_cyclists(build_dataset(DataConfig(num_scenes=24, riders=True), class_table("cityscapes")), 24)
    assert not with_cyclists(build_dataset(DataConfig(num_scenes=24), class_table("cityscapes")), 24)
    dataset = build_evaluation_dataset("synthetic", (64, 128), count=2, first_seed=5, riders=True)
    assert np.array_equal(dataset[0].labels.numpy(), SyntheticStreets(riders=True).scene(5).labels)
    # the command line's evaluation set (gesco evaluate / compare --riders)
    options = dict(data="synthetic", n=24, layout="auto", split="val", data_seed=0, detector=None, depth=None)
    assert with_cyclists(evaluation_dataset(argparse.Namespace(**options, riders=True), (64, 128)), 24)
    assert not with_cyclists(evaluation_dataset(argparse.Namespace(**options, riders=False), (64, 128)), 24)


@pytest.mark.parametrize("layout", ["cityscapes", "coco-stuff", "ade20k", "folder"])
def test_data_synth_writes_cyclists_in_every_layout(tmp_path, layout):
    out = tmp_path / layout
    assert main(["data", "synth", "--layout", layout, "--out", str(out), "--n", "3", "--seed", "4", "--riders"]) == 0
    channels = {
        "cityscapes": lambda: CityscapesDataset(out, "train", size=None),
        "coco-stuff": lambda: CocoStuffDataset(out, "train", size=None),
        "ade20k": lambda: ADE20KDataset(out, "train", size=None),
        "folder": lambda: FolderDataset(out, 35, size=None),
    }[layout]()
    table = {"coco-stuff": class_table("coco-stuff"), "ade20k": class_table("ade20k")}.get(layout)
    bicycle = table.names.index("bicycle") if table else BICYCLE  # scene 4 has a bicycle
    assert any((channels[i].labels == bicycle).any() for i in range(3))


def test_cyclists_are_never_placed_inside_a_car():
    cam = Camera(focal=64.0, horizon=27.0, center_x=64.0)
    street = Street(
        road_left=-5.0,
        road_right=5.0,
        lane_width=3.3,
        sidewalk=(2.0, 2.0),
        verge=(0.0, 0.0),
        zones=("buildings", "buildings"),
    )
    cars = [Car(x, z, 1.8, 1.5, 4.5, True) for x in (-4.1, 4.1) for z in (5.0, 12.0)]
    kept = [c for seed in range(200) for c in _place_cyclists(street, cam, 1.0, cars, np.random.default_rng(seed))]
    assert kept and not any(_overlaps(c, car) for c in kept for car in cars)
    assert _overlaps(Cyclist(4.1, 7.0, 1.8, 0, 0.0), cars[2])  # a rider in the car's body would be dropped


def test_bad_cyclist_options_raise(tmp_path):
    with pytest.raises(TypeError, match="riders must be a bool"):
        SyntheticStreets(riders=1)
    with pytest.raises(TypeError, match="data.riders must be true or false"):
        DataConfig(riders="false")
    with pytest.raises(ValueError, match="heading"):
        Cyclist(0.0, 6.0, 1.8, 2, 0.0)
    with pytest.raises(ValueError, match=r"\[25, 33\].*--riders"):
        DetectorTrainConfig(model=DetectorConfig(class_ids=(24, 25, 33)))
    with pytest.raises(ValueError, match="synthetic scenes"):
        DataConfig(kind="cityscapes", root="somewhere", riders=True)
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError, match="--riders"):
        build_evaluation_dataset(tmp_path / "folder", (64, 128), count=1, riders=True)
