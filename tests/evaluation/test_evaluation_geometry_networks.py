"""External detectors and depth networks (TorchScript / ONNX + JSON config) behind one call each."""

import pytest
import torch

from gesco.evaluation.geometry_networks import (
    ExternalDepthConfig,
    ExternalDetectorConfig,
    check_geometry_networks,
    detector_classes,
    load_depth_estimator,
    load_detector,
)


class TwoBoxes(torch.nn.Module):
    """Per image: a box (1, 2, 5, 6) of class 1 scored by the mean input, one of class 0, and a padding row."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = x.mean(dim=(1, 2, 3))
        one = torch.ones_like(score)
        first = torch.stack([one, 2 * one, 5 * one, 6 * one, score, one], dim=1)
        second = torch.stack([0 * one, 0 * one, 2 * one, 2 * one, 0.5 * one, 0 * one], dim=1)
        return torch.stack([first, second, torch.zeros_like(first)], dim=1)


class DetrStyle(torch.nn.Module):
    """Returns boxes and logits apart, as an exported DETR does: not the one tensor gesco reads."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"pred_boxes": torch.zeros(x.shape[0], 3, 4), "pred_logits": torch.zeros(x.shape[0], 3, 2)}


class TwoChannels(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :2]


class DepthFromRed(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1] + 1.0


def test_detector_normalises_its_input_and_maps_boxes_to_the_image(tmp_path):
    torch.jit.script(TwoBoxes()).save(str(tmp_path / "det.pt"))
    # network sees 8 x 16 pixels in 0..1; the images are 16 x 32, so boxes double
    ExternalDetectorConfig(label_map=(-1, 26), input_size=(8, 16), min_score=0.1).save(tmp_path / "det.json")
    detector = load_detector(tmp_path / "det.pt")
    images = torch.stack([torch.ones(3, 16, 32), -torch.ones(3, 16, 32)])  # network input 1 and 0
    bright, dark = detector.detect(images)
    assert bright.boxes.tolist() == [[2.0, 4.0, 10.0, 12.0]] and bright.classes.tolist() == [26]
    assert bright.scores.tolist() == pytest.approx([1.0])  # class 0 is not scored, padding is dropped
    assert len(dark.boxes) == 0  # its score 0 is at most min_score


def test_detector_relative_boxes_and_bad_outputs(tmp_path):
    torch.jit.script(TwoBoxes()).save(str(tmp_path / "det.pt"))
    config = ExternalDetectorConfig(label_map=(24, 26), box_units="relative")
    detector = load_detector(tmp_path / "det.pt", config.save(tmp_path / "rel.json"))
    (bright,) = detector.detect(torch.ones(1, 3, 10, 20))
    assert bright.boxes.tolist() == [[20.0, 20.0, 100.0, 60.0], [0.0, 0.0, 40.0, 20.0]]
    assert bright.classes.tolist() == [26, 24]
    short = load_detector(tmp_path / "det.pt", ExternalDetectorConfig(label_map=(24,)).save(tmp_path / "short.json"))
    with pytest.raises(ValueError, match="class indices"):
        short.detect(torch.ones(1, 3, 10, 20))
    torch.jit.script(DepthFromRed()).save(str(tmp_path / "wrong.pt"))
    wrong = load_detector(tmp_path / "wrong.pt", tmp_path / "rel.json")
    with pytest.raises(ValueError, match=r"\(B=1, N, 6\)"):
        wrong.detect(torch.ones(1, 3, 10, 20))


def test_depth_network_in_metres_and_inverse_depth(tmp_path):
    torch.jit.script(DepthFromRed()).save(str(tmp_path / "depth.pt"))
    images = torch.zeros(2, 3, 6, 8)
    images[1] = 1.0  # network input 0.5 and 1.0 -> outputs 1.5 and 2.0
    ExternalDepthConfig(scale=4.0, input_size=(3, 4)).save(tmp_path / "depth.json")
    depth = load_depth_estimator(tmp_path / "depth.pt").estimate(images)
    assert depth.shape == (2, 6, 8) and depth.dtype == torch.float32
    assert torch.allclose(depth[0], torch.full((6, 8), 6.0)) and torch.allclose(depth[1], torch.full((6, 8), 8.0))
    inverse = ExternalDepthConfig(output="inverse_depth", scale=4.0).save(tmp_path / "inverse.json")
    depth = load_depth_estimator(tmp_path / "depth.pt", inverse).estimate(images)
    assert torch.allclose(depth[0], torch.full((6, 8), 4 / 1.5)) and torch.allclose(depth[1], torch.full((6, 8), 2.0))


def test_missing_or_foreign_files_say_what_is_wrong(tmp_path):
    torch.jit.script(DepthFromRed()).save(str(tmp_path / "depth.pt"))
    with pytest.raises(FileNotFoundError, match="needs a JSON config"):
        load_depth_estimator(tmp_path / "depth.pt")
    with pytest.raises(FileNotFoundError, match="no detector file"):
        load_detector(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="neither an ONNX file"):
        load_detector(tmp_path / "junk.pt", ExternalDetectorConfig(label_map=(26,)))
    with pytest.raises(ValueError, match="label_map"):
        ExternalDetectorConfig(label_map=())
    with pytest.raises(ValueError, match="name at least one class"):
        ExternalDetectorConfig(label_map=(-1, -1))
    with pytest.raises(ValueError, match="scale"):
        ExternalDepthConfig(scale=0.0)


def _export_onnx(module: torch.nn.Module, path, output_axes: dict[int, str]) -> None:
    """``module`` as an ONNX file with a dynamic batch and image size (skips without onnx / onnxruntime)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    torch.onnx.export(
        module,
        (torch.zeros(1, 3, 4, 4),),
        str(path),
        dynamo=False,
        input_names=["images"],
        output_names=["output"],
        dynamic_axes={"images": {0: "batch", 2: "h", 3: "w"}, "output": output_axes},
    )


def test_onnx_depth_network(tmp_path):
    _export_onnx(DepthFromRed(), tmp_path / "depth.onnx", {0: "batch", 2: "h", 3: "w"})
    ExternalDepthConfig(scale=2.0).save(tmp_path / "depth.json")
    depth = load_depth_estimator(tmp_path / "depth.onnx").estimate(torch.ones(2, 3, 5, 7))
    assert torch.allclose(depth, torch.full((2, 5, 7), 4.0))


def test_outputs_of_the_wrong_kind_fail_on_one_image_with_a_typed_error(tmp_path):
    torch.jit.script(DetrStyle()).save(str(tmp_path / "detr.pt"))
    detr = load_detector(tmp_path / "detr.pt", ExternalDetectorConfig(label_map=(26, 24)))
    image = torch.zeros(3, 8, 16)
    with pytest.raises(ValueError, match="returned a dict; it must return one"):
        check_geometry_networks(detr, None, image)
    torch.jit.script(TwoChannels()).save(str(tmp_path / "two.pt"))
    two_channels = load_depth_estimator(tmp_path / "two.pt", ExternalDepthConfig())
    with pytest.raises(ValueError, match=r"\(B=1, 1, h, w\)"):
        check_geometry_networks(None, two_channels, image)
    torch.jit.script(TwoBoxes()).save(str(tmp_path / "det.pt"))

    class NotAList:
        def detect(self, images):
            return torch.zeros(1, 6)

    with pytest.raises(ValueError, match=r"must give \[Detections\]"):
        check_geometry_networks(NotAList(), None, image)
    torch.jit.script(DepthFromRed()).save(str(tmp_path / "depth.pt"))
    good = load_detector(tmp_path / "det.pt", ExternalDetectorConfig(label_map=(-1, 26, 24)))
    check_geometry_networks(good, load_depth_estimator(tmp_path / "depth.pt", ExternalDepthConfig()), image)
    assert detector_classes(good) == (24, 26)  # the unscored index left out, sorted
    assert detector_classes(NotAList()) is None


def test_onnx_detector_and_a_corrupt_onnx_file(tmp_path):
    _export_onnx(TwoBoxes(), tmp_path / "det.onnx", {0: "batch"})
    ExternalDetectorConfig(label_map=(24, 26), box_units="relative").save(tmp_path / "det.json")
    (bright,) = load_detector(tmp_path / "det.onnx").detect(torch.ones(1, 3, 10, 20))
    assert bright.boxes.tolist() == [[20.0, 20.0, 100.0, 60.0], [0.0, 0.0, 40.0, 20.0]]
    assert bright.classes.tolist() == [26, 24]
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(ValueError, match="junk.onnx is not an ONNX model onnxruntime can load"):
        load_detector(tmp_path / "junk.onnx", tmp_path / "det.json")
