"""tools/depth_by_class.py: delta1 per ground-truth class, real images against regenerations."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gesco.datasets.synthetic import SyntheticStreets

TOOL = Path(__file__).resolve().parents[2] / "tools" / "depth_by_class.py"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("depth_by_class", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pooled_delta1_counts_the_pixels_of_each_class_within_range(tool):
    truth = torch.tensor([[[10.0, 10.0, 10.0, 70.0, 500.0]]])  # the last pixel is beyond 80 m: not scored
    labels = torch.tensor([[[11, 11, 26, 21, 23]]])  # building, building, car, vegetation, sky
    estimate = torch.tensor([[[10.0, 20.0, 11.0, 500.0, 1.0]]])  # one building pixel twice too far
    scores = tool.pooled_delta1(estimate, truth, labels)
    assert scores["all"] == pytest.approx(3 / 4)
    assert scores["building"] == pytest.approx(0.5) and scores["car"] == 1.0
    assert scores["vegetation"] == 1.0  # 500 m clipped to 80 m, as gesco evaluate clips estimates
    assert scores["sky"] is None and scores["road"] is None


def test_the_tool_scores_real_images_against_their_regenerations(tool, tmp_path, monkeypatch):
    streets = SyntheticStreets(height=64, width=128)
    images = tmp_path / "images"
    images.mkdir()
    for seed in (1_000_000, 1_000_001):
        regenerated = streets.scene(seed).image.copy()
        regenerated[:, :64] = 255 - regenerated[:, :64]  # the left half's colours inverted
        Image.fromarray(regenerated).save(images / f"synthetic_{seed}.png")
    out = tmp_path / "figures" / "by-class"
    # the shipped network: an untrained one's depth barely depends on the image, so no change would show
    depth = "depth-synthetic-streets-64x128"
    argv = ["depth_by_class.py", "--images", str(images), "--depth", depth, "--out", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    tool.main()
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["scenes"] == 2
    assert saved["class_shares"]["road"] > 0.2 and saved["class_shares"]["sky"] == 0.0
    assert sum(saved["class_shares"].values()) == pytest.approx(1.0, abs=1e-4)
    scores = saved["delta1"][depth]
    assert set(scores) == {"real", "regenerated"} and scores["real"] != scores["regenerated"]
    assert scores["real"]["all"] > 0.8 and scores["regenerated"]["all"] < scores["real"]["all"] - 0.05
    assert scores["real"]["sky"] is None  # the sky lies beyond 80 m
    assert out.with_suffix(".png").stat().st_size > 10_000
    # the real images are the scenes' own renders: scoring them as "regenerations" gives the same numbers
    for seed in (1_000_000, 1_000_001):
        Image.fromarray(streets.scene(seed).image).save(images / f"synthetic_{seed}.png")
    tool.main()
    scores = json.loads(out.with_suffix(".json").read_text())["delta1"][depth]
    assert scores["real"] == scores["regenerated"]
    # an image of another size stops the tool before it writes anything
    Image.fromarray(np.zeros((32, 64, 3), np.uint8)).save(images / "synthetic_1000002.png")
    out.with_suffix(".json").unlink()
    with pytest.raises(SystemExit, match="64x32"):
        tool.main()
    assert not out.with_suffix(".json").exists()
