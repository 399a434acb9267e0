"""A set's objects and depth scored batch by batch from the ground truth the batches carry."""

import dataclasses

import pytest
import torch

from gesco.datasets import SyntheticStreetsDataset, collate
from gesco.evaluation.geometry_scoring import GeometryMeter
from gesco.evaluation.objects_depth import Detections


class Oracle:
    """Returns the batch's own ground truth: boxes (all of them, or the first per image), depth times ``gain``."""

    def __init__(self, gain: float = 1.0, first_only: bool = False):
        self.batch, self.gain, self.first_only = None, gain, first_only

    def detect(self, images):
        out = []
        for boxes in self.batch.boxes:
            keep = slice(0, 1) if self.first_only else slice(None)
            out.append(Detections(boxes.xyxy[keep], boxes.classes[keep], torch.ones(len(boxes.classes))[keep]))
        return out

    def estimate(self, images):
        return self.batch.depth * self.gain


@pytest.fixture(scope="module")
def batches():
    dataset = SyntheticStreetsDataset(4, seed_offset=1_000_000)
    return [collate([dataset[0], dataset[1]]), collate([dataset[2], dataset[3]])]


def test_batches_carry_depth_and_boxes(batches):
    batch = batches[0]
    assert batch.depth.shape == (2, 64, 128) and len(batch.boxes) == 2
    plain = dataclasses.replace(SyntheticStreetsDataset(1)[0], depth=None, boxes=None)
    mixed = collate([SyntheticStreetsDataset(1)[0], plain])
    assert mixed.depth is None and mixed.boxes is None


def test_the_ground_truth_scores_perfectly_and_a_scaled_depth_by_its_scale(batches):
    oracle = Oracle(gain=1.1)
    meter = GeometryMeter(detector=oracle, depth_estimator=oracle, classes=(19,), max_depth=None)
    for batch in batches:
        oracle.batch = batch
        meter.update(batch.image, batch)
    scores = meter.compute()
    assert scores.detection.map50 == 1.0 and scores.detection.localisation_px == 0.0
    assert all(c.recall == 1.0 for c in scores.detection.per_class.values() if c.num_targets)
    assert scores.depth.abs_rel == pytest.approx(0.1, abs=1e-6) and scores.depth.delta1 == 1.0
    assert scores.depth.images == 4
    flat = scores.flat({26: "car", 24: "person"})
    assert flat["ap50"] == 1.0 and flat["ap50/car"] == 1.0 and flat["abs_rel"] == pytest.approx(0.1, abs=1e-6)


def test_missed_objects_lower_recall_and_median_scaling_removes_scale(batches):
    oracle = Oracle(gain=3.0, first_only=True)
    meter = GeometryMeter(detector=oracle, depth_estimator=oracle, median_scaling=True, min_area=1)
    for batch in batches:
        oracle.batch = batch
        meter.update(batch.image, batch)
    scores = meter.compute()
    found = sum(min(1, len(b.classes)) for batch in batches for b in batch.boxes)
    total = sum(len(b.classes) for batch in batches for b in batch.boxes)
    recalled = sum(c.recall * c.num_targets for c in scores.detection.per_class.values() if c.num_targets)
    assert recalled == pytest.approx(found) and found < total
    assert scores.depth.abs_rel == pytest.approx(0.0, abs=1e-6)


def test_needs_a_network_and_the_ground_truth(batches):
    with pytest.raises(ValueError, match="needs a detector"):
        GeometryMeter(detector=None, depth_estimator=None)
    meter = GeometryMeter(detector=None, depth_estimator=Oracle())
    with pytest.raises(ValueError, match="no ground-truth depth"):
        meter.update(batches[0].image, dataclasses.replace(batches[0], depth=None))
