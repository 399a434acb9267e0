"""The objects-and-depth figure: box outlines, depth colours, which boxes are drawn, and ``gesco compare`` writing it
only with a detector or depth network (tiny TorchScript networks, a Deep JSCC set at 32 x 64)."""

import numpy as np
import pytest
import torch
from PIL import Image

from gesco.datasets.base import Boxes
from gesco.datasets.synthetic_canvas import BOX_CLASSES, CAR, CYCLIST_CLASSES
from gesco.evaluation.figures import COLORBAR_INCHES, FIGURE_DPI
from gesco.evaluation.geometry_figure import (
    BOX_PALETTE,
    UNKNOWN_DEPTH_RGB,
    UPSCALE,
    box_colour,
    depth_to_rgb,
    draw_boxes,
    shown_detections,
    upsample,
)
from gesco.evaluation.geometry_networks import ExternalDepthConfig, ExternalDetectorConfig
from gesco.evaluation.objects_depth import Detections

BOX = (2.0, 3.0, 7.0, 9.0)  # x0, y0, x1, y1 in image pixels
NEAR_M, FAR_M = 4.0, 60.0


def test_a_box_changes_exactly_its_outline():
    picture = upsample(np.zeros((16, 16, 3), np.uint8), 3)
    drawn = draw_boxes(picture, torch.tensor([BOX]), torch.tensor([CAR]), scale=3, line_width=2)
    changed = (drawn != picture).any(axis=2)
    expected = np.zeros_like(changed)
    expected[9:27, 6:21] = True  # the box's pixels, edges times 3
    expected[11:25, 8:19] = False  # all but the 2-pixel band along its border
    np.testing.assert_array_equal(changed, expected)
    assert tuple(drawn[9, 6]) == box_colour(CAR) and not picture.any()


def test_a_label_sits_above_the_box_and_leaves_its_inside_alone():
    picture = np.zeros((48, 96, 3), np.uint8)
    box = torch.tensor([[10.0, 20.0, 40.0, 44.0]])
    drawn = draw_boxes(picture, box, torch.tensor([CAR]), names={CAR: "car"}, line_width=1)
    outline = draw_boxes(picture, box, torch.tensor([CAR]), line_width=1)
    label = (drawn != outline).any(axis=2)
    rows = np.nonzero(label.any(axis=1))[0]
    assert label.any() and rows.max() < 20  # the tab is above the top edge
    assert not drawn[21:43, 11:39].any()  # nothing inside the box


def test_classes_get_distinct_colours():
    boxed = BOX_CLASSES + CYCLIST_CLASSES
    assert len({box_colour(c) for c in boxed}) == len(boxed)
    assert set(map(box_colour, boxed)) <= set(BOX_PALETTE)


def test_depth_colours_run_monotonically_from_near_to_far_on_one_fixed_range():
    depths = torch.linspace(0.5, 80.0, 12)
    rgb = depth_to_rgb(depths[None], max_depth=80.0)[0].astype(float)
    luminance = rgb @ np.array([0.2126, 0.7152, 0.0722])
    assert np.all(np.diff(luminance) < 0)  # near bright, farther ever darker
    near, far = depth_to_rgb(torch.tensor([[NEAR_M, FAR_M]]))[0]
    assert np.abs(near.astype(int) - far.astype(int)).sum() > 100
    # the range is fixed: beyond it is the far end, and unknown ground truth (0, NaN) is grey
    beyond = depth_to_rgb(torch.tensor([[80.0, 1000.0, 0.0, float("nan")]]))[0]
    assert tuple(beyond[0]) == tuple(beyond[1]) and tuple(beyond[2]) == tuple(beyond[3]) == UNKNOWN_DEPTH_RGB


def test_drawn_detections_follow_the_score_threshold_and_min_area():
    truth = Boxes(
        torch.tensor([[0.0, 0.0, 2.0, 2.0], [10.0, 10.0, 20.0, 20.0]]), torch.tensor([CAR, CAR]), torch.zeros(2)
    )
    found = Detections(
        torch.tensor([[0.0, 0.0, 2.0, 2.0], [10.0, 10.0, 20.0, 20.0], [30.0, 0.0, 40.0, 9.0]]),
        torch.tensor([CAR, CAR, CAR]),
        torch.tensor([0.9, 0.9, 0.1]),
    )
    assert shown_detections(found, truth, min_score=0.3, min_area=0).scores.tolist() == pytest.approx([0.9, 0.9])
    # the 4 px^2 box is out of the scoring at min_area 16, and so is the prediction that finds it
    kept = shown_detections(found, truth, min_score=0.05, min_area=16)
    assert kept.boxes.tolist() == [[10.0, 10.0, 20.0, 20.0], [30.0, 0.0, 40.0, 9.0]]


class FixedBox(torch.nn.Module):
    """Detector file: one car in the middle of every image, score 1 (rows ``x0, y0, x1, y1, score, class``)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("row", torch.tensor([16.0, 8.0, 40.0, 24.0, 1.0, float(BOX_CLASSES.index(CAR))]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.row.expand(x.shape[0], 1, 6)


class BrightnessDepth(torch.nn.Module):
    """Depth file: 1 + 40 x brightness, so each picture gets its own depth map."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1 + 40 * x.mean(dim=1, keepdim=True)


@pytest.fixture(scope="module")
def networks(tmp_path_factory):
    root = tmp_path_factory.mktemp("figure_networks")
    torch.jit.script(FixedBox()).save(str(root / "detector.pt"))
    ExternalDetectorConfig(label_map=BOX_CLASSES).save(root / "detector.json")
    torch.jit.script(BrightnessDepth()).save(str(root / "depth.pt"))
    ExternalDepthConfig().save(root / "depth.json")
    return root


def _grid_size(columns: int, rows: int, *, colorbar: bool) -> tuple[int, int]:
    """(width, height) in pixels of a save_grid figure of UPSCALE x (32, 64) cells, as save_grid sizes it."""
    cell_width = 64 * UPSCALE / FIGURE_DPI
    width = cell_width * columns + (COLORBAR_INCHES if colorbar else 0)
    height = cell_width / 2 * rows + 0.6
    return round(width * FIGURE_DPI), round(height * FIGURE_DPI)


def test_compare_draws_objects_and_depth_only_with_the_networks(assets, networks, tmp_path):
    from gesco.baselines.deep_jscc import DeepJSCC, DeepJSCCConfig
    from gesco.cli.main import main

    torch.manual_seed(2)
    DeepJSCC(DeepJSCCConfig(image_size=(32, 64), hidden_channels=(4, 4, 4, 4))).save_pretrained(tmp_path / "djscc")
    out = tmp_path / "out"
    args = ["compare", "--model", str(assets / "gesco"), "--aware-model", "none", "--methods", "deep-jscc"]
    args += ["--deep-jscc", str(tmp_path / "djscc"), "--n", "1", "--snr", "0", "20", "--no-fid", "--segmenter"]
    args += [str(assets / "segmenter"), "--examples", "1", "--out", str(out), "--no-progress"]
    figure = out / "figures" / "objects_depth_synthetic_1000000.png"

    assert main(args) == 0
    assert (out / "figures" / "examples_synthetic_1000000.png").is_file() and not figure.exists()

    # the detector alone: the ground truth and Deep JSCC, boxes drawn, no depth columns and no colour bar
    assert main([*args, "--detector", str(networks / "detector.pt")]) == 0
    with Image.open(figure) as image:
        assert image.format == "PNG"
        width, height = image.size
    expected = _grid_size(2, 2, colorbar=False)
    assert abs(width - expected[0]) <= 2 and abs(height - expected[1]) <= 2

    # both: (image, depth) for the ground truth and for Deep JSCC, and the depth scale
    both = [*args, "--detector", str(networks / "detector.pt"), "--depth", str(networks / "depth.pt")]
    assert main(both) == 0
    with Image.open(figure) as image:
        width, height = image.size
        pixels = np.asarray(image.convert("RGB"))
    expected = _grid_size(4, 2, colorbar=True)
    assert abs(width - expected[0]) <= 2 and abs(height - expected[1]) <= 2
    # the car's box colour is drawn somewhere in the figure
    assert (pixels == np.array(box_colour(CAR), np.uint8)).all(axis=2).sum() > 100


def test_evaluate_draws_objects_and_depth_per_scene_with_a_row_per_psnr(assets, networks, tmp_path):
    from gesco.cli.main import main

    out = tmp_path / "eval"
    args = ["evaluate", "--model", str(assets / "gesco"), "--data", "synthetic", "--n", "1", "--psnr", "5", "20"]
    args += ["--methods", "gesco", "--batch-size", "1", "--no-fid", "--samples", "1", "--out", str(out)]
    args += ["--depth", str(networks / "depth.pt"), "--no-progress"]
    assert main(args) == 0
    with Image.open(out / "figures" / "objects_depth_synthetic_1000000.png") as image:
        width, height = image.size
    expected = _grid_size(4, 2, colorbar=True)  # (image, depth) of the ground truth and of GESCO; 2 PSNRs
    assert abs(width - expected[0]) <= 2 and abs(height - expected[1]) <= 2
