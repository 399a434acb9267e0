"""Object detectors and monocular depth networks that score regenerations, loaded as external segmenters are.

Each kind answers one call on float (B, 3, H, W) images in [-1, 1], so a metric never needs to know which
network it talks to:

- :class:`Detector`: ``detect(images) -> list[Detections]``, one per image, boxes in the image's pixels.
- :class:`DepthEstimator`: ``estimate(images) -> float (B, H, W)`` depth in metres (or up to scale: score it
  with median scaling, see :mod:`gesco.evaluation.objects_depth`).

gesco's own networks are folders of ``config.json`` + ``model.safetensors``
(:class:`~gesco.evaluation.detector.GescoDetector`, :class:`~gesco.evaluation.depth_network.GescoDepthNet`);
:func:`load_detector` and :func:`load_depth_estimator` take such a folder or an external file.

External networks are TorchScript (``torch.jit.load``) or ONNX (onnxruntime, extra ``gesco[onnx]``) files
with a JSON config beside them (same stem, ``.json``) saying how to feed them and read their output:

- a detector returns one tensor (B, N, 6) of rows ``(x0, y0, x1, y1, score, class index)``, boxes in the
  pixels of its input (or relative to its width and height, ``box_units: "relative"``); rows scoring at or
  below ``min_score`` are padding (a fixed N keeps the file exportable). ``label_map[k]`` is the class id
  (Cityscapes label id) of class index ``k``, -1 for a class that is not scored.
- a depth network returns (B, 1, h, w) or (B, h, w): depth, or inverse depth (MiDaS-style, ``output:
  "inverse_depth"``), times ``scale``; it is resized bilinearly to the image.

Example detector config (a network fed ImageNet-normalised 0..1 pixels whose classes 0, 1, 2 are person,
car and traffic light)::

    {"label_map": [24, 26, 19], "input_range": [0, 1], "mean": [0.485, 0.456, 0.406],
     "std": [0.229, 0.224, 0.225], "min_score": 0.05}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import torch
import torch.nn.functional as F

from gesco.config import Config
from gesco.evaluation.depth_network import DepthNetConfig, GescoDepthNet
from gesco.evaluation.detector import DetectorConfig, GescoDetector
from gesco.evaluation.objects_depth import Detections
from gesco.evaluation.segmenter import _check_images, _OnnxNetwork

#: ``label_map`` value of a network class that is not scored (its boxes are dropped).
NOT_SCORED = -1


class Detector(Protocol):
    """Anything that finds objects in images."""

    def detect(self, images: torch.Tensor) -> list[Detections]:
        """float (B, 3, H, W) in [-1, 1] -> one :class:`Detections` per image, boxes in its pixels."""
        ...


class DepthEstimator(Protocol):
    """Anything that estimates per-pixel depth from one image."""

    def estimate(self, images: torch.Tensor) -> torch.Tensor:
        """float (B, 3, H, W) in [-1, 1] -> float32 (B, H, W) depth in metres (or up to a scale)."""
        ...


def _check_input_options(config: ExternalDetectorConfig | ExternalDepthConfig) -> None:
    if not config.input_range[0] < config.input_range[1]:
        raise ValueError(f"input_range {config.input_range} must be (low, high) with low < high")
    if len(config.mean) != 3 or len(config.std) != 3 or any(s <= 0 for s in config.std):
        raise ValueError(f"mean {config.mean} and std {config.std} need 3 values each, std > 0")
    if config.input_size is not None and (len(config.input_size) != 2 or min(config.input_size) < 1):
        raise ValueError(f"input_size {config.input_size} must be (height, width) in pixels, or null")


def _network_input(images: torch.Tensor, config: ExternalDetectorConfig | ExternalDepthConfig) -> torch.Tensor:
    """[-1, 1] images -> ``(x - mean) / std`` of pixels mapped to ``input_range``, resized to ``input_size``."""
    _check_images(images)
    low, high = config.input_range
    x = (images.float().clamp(-1, 1) + 1) / 2 * (high - low) + low
    mean = torch.tensor(config.mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(config.std, device=x.device).view(1, 3, 1, 1)
    x = (x - mean) / std
    if config.input_size is not None:
        x = F.interpolate(x, size=tuple(config.input_size), mode="bilinear", align_corners=False)
    return x.contiguous()


def _open_network(path: Path, what: str):
    """The TorchScript module or ONNX session in ``path``."""
    if not path.is_file():
        raise FileNotFoundError(f"no {what} file at {path}")
    if path.suffix.lower() == ".onnx":
        return _OnnxNetwork(path)
    try:
        return torch.jit.load(str(path), map_location="cpu").eval()
    except RuntimeError as err:
        raise ValueError(f"the {what} {path} is neither an ONNX file (.onnx) nor a TorchScript file: {err}") from err


def _config_path(path: Path, config: str | Path | None, what: str, fields: str) -> Path:
    config_path = Path(config) if config is not None else path.with_suffix(".json")
    if not config_path.is_file():
        raise FileNotFoundError(
            f"the {what} {path} needs a JSON config ({config_path} not found) giving {fields}; see {__name__}"
        )
    return config_path


def _check_tensor(output, what: str, expected: str) -> None:
    if not isinstance(output, torch.Tensor):
        raise ValueError(
            f"the external {what} returned a {type(output).__name__}; it must return {expected} (export a wrapper "
            "module that turns its outputs into that tensor)"
        )


class _External:
    """A TorchScript / ONNX network and its config; TorchScript moves to a device, ONNX stays on the CPU."""

    def __init__(self, network, config) -> None:
        self.network = network
        self.config = config

    def to(self, device: str | torch.device):
        if isinstance(self.network, torch.nn.Module):
            self.network = self.network.to(device)
        return self


@dataclass(frozen=True)
class ExternalDetectorConfig(Config):
    """How to feed an external detector and read its boxes (see the module docstring).

    Attributes:
        label_map: class index -> class id (e.g. Cityscapes label id), or -1 for a class not scored.
        box_units: "pixels" of the network input, or "relative" (0..1 of its width and height).
        min_score: rows scoring at or below it are dropped (padding, or too unsure to count).
        input_range, mean, std, input_size: the network's input, as :class:`ExternalSegmenterConfig`'s.
    """

    label_map: tuple[int, ...] = ()
    box_units: Literal["pixels", "relative"] = "pixels"
    min_score: float = 0.0
    input_range: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    input_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if all(c == NOT_SCORED for c in self.label_map) or any(c < NOT_SCORED for c in self.label_map):
            raise ValueError(
                f"label_map {list(self.label_map)} must give, for each class index, a class id >= 0 or {NOT_SCORED}, "
                "and name at least one class"
            )
        _check_input_options(self)


class ExternalDetector(_External):
    """A TorchScript or ONNX detector with its :class:`ExternalDetectorConfig`."""

    config: ExternalDetectorConfig

    @classmethod
    def from_file(cls, path: str | Path, config: str | Path | ExternalDetectorConfig | None = None) -> ExternalDetector:
        """Load ``path`` (``.onnx`` or TorchScript); ``config`` defaults to the ``.json`` beside it."""
        path = Path(path)
        network = _open_network(path, "detector")
        if not isinstance(config, ExternalDetectorConfig):
            config = ExternalDetectorConfig.load(_config_path(path, config, "detector", "its label_map"))
        return cls(network, config)

    @torch.no_grad()
    def detect(self, images: torch.Tensor) -> list[Detections]:
        """float (B, 3, H, W) in [-1, 1] -> one :class:`Detections` per image, boxes in the image's pixels."""
        x = _network_input(images, self.config)
        rows = self.network(x)
        _check_tensor(rows, "detector", "one (B, N, 6) tensor of rows (x0, y0, x1, y1, score, class index)")
        if rows.dim() != 3 or rows.shape[0] != len(images) or rows.shape[2] != 6:
            raise ValueError(
                f"the external detector returned shape {tuple(rows.shape)}; it must return (B={len(images)}, N, 6) "
                "rows (x0, y0, x1, y1, score, class index)"
            )
        rows = rows.detach().cpu().float()
        height, width = images.shape[-2:]
        if self.config.box_units == "relative":
            scale = torch.tensor([width, height, width, height], dtype=torch.float32)
        else:
            scale = torch.tensor([width / x.shape[-1], height / x.shape[-2]] * 2, dtype=torch.float32)
        label_map = torch.tensor(self.config.label_map, dtype=torch.long)
        out = []
        for image_rows in rows:
            kept = image_rows[image_rows[:, 4] > self.config.min_score]
            index = kept[:, 5].round().long()
            if ((index < 0) | (index >= len(label_map))).any():
                raise ValueError(
                    f"the external detector gave class indices {sorted(set(index.tolist()))}; its config maps "
                    f"0..{len(label_map) - 1}"
                )
            classes = label_map[index]
            scored = classes != NOT_SCORED
            out.append(Detections(boxes=kept[scored, :4] * scale, classes=classes[scored], scores=kept[scored, 4]))
        return out


@dataclass(frozen=True)
class ExternalDepthConfig(Config):
    """How to feed an external depth network and read its output (see the module docstring).

    Attributes:
        output: "depth", or "inverse_depth" (disparity-like: larger is nearer).
        scale: metres per output unit: depth = ``scale * output``, or ``scale / output`` for inverse depth.
        input_range, mean, std, input_size: the network's input, as :class:`ExternalSegmenterConfig`'s.
    """

    output: Literal["depth", "inverse_depth"] = "depth"
    scale: float = 1.0
    input_range: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    input_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if not self.scale > 0:
            raise ValueError(f"scale must be > 0 (metres per output unit), got {self.scale}")
        _check_input_options(self)


#: Smallest inverse depth read (keeps a zero output finite: depth at most scale / this).
MIN_INVERSE_DEPTH = 1e-6


class ExternalDepthEstimator(_External):
    """A TorchScript or ONNX monocular depth network with its :class:`ExternalDepthConfig`."""

    config: ExternalDepthConfig

    @classmethod
    def from_file(
        cls, path: str | Path, config: str | Path | ExternalDepthConfig | None = None
    ) -> ExternalDepthEstimator:
        """Load ``path`` (``.onnx`` or TorchScript); ``config`` defaults to the ``.json`` beside it."""
        path = Path(path)
        network = _open_network(path, "depth network")
        if not isinstance(config, ExternalDepthConfig):
            config = ExternalDepthConfig.load(_config_path(path, config, "depth network", "its output and scale"))
        return cls(network, config)

    @torch.no_grad()
    def estimate(self, images: torch.Tensor) -> torch.Tensor:
        """float (B, 3, H, W) in [-1, 1] -> float32 (B, H, W) depth (m) at the image's size, on the CPU."""
        raw = self.network(_network_input(images, self.config))
        _check_tensor(raw, "depth network", "one (B, 1, h, w) or (B, h, w) tensor")
        if raw.dim() == 3:
            raw = raw[:, None]
        if raw.dim() != 4 or raw.shape[:2] != (len(images), 1):
            raise ValueError(
                f"the external depth network returned shape {tuple(raw.shape)}; it must return "
                f"(B={len(images)}, 1, h, w) or (B, h, w)"
            )
        # Resize in the network's own units (inverse depth interpolates well across edges), then convert.
        raw = F.interpolate(raw.detach().cpu().float(), size=images.shape[-2:], mode="bilinear", align_corners=False)
        if self.config.output == "inverse_depth":
            return (self.config.scale / raw.clamp(min=MIN_INVERSE_DEPTH))[:, 0]
        return (self.config.scale * raw)[:, 0]


def _gesco_folder(path: Path, config: str | Path | None, config_class: type[Config], what: str) -> bool:
    """Whether ``path`` is a gesco network folder (``config.json`` of ``config_class`` + weights), not a file."""
    if not path.is_dir():
        return False
    if not (path / config_class.config_name).is_file():
        raise FileNotFoundError(f"{path} is not a gesco {what} folder (no {config_class.config_name})")
    if config is not None:
        raise ValueError(f"the gesco {what} folder {path} carries its own config.json; drop the config {config}")
    return True


def load_detector(path: str | Path, config: str | Path | None = None) -> Detector:
    """A gesco detector folder (``gesco train-detector``), or an external TorchScript / ONNX detector file (with
    its JSON config, by default the ``.json`` beside it). A shipped model's name is resolved to its folder by the
    command line (``gesco.pretrained.resolve``)."""
    path = Path(path)
    if _gesco_folder(path, config, DetectorConfig, "detector"):
        return GescoDetector.from_pretrained(path)
    return ExternalDetector.from_file(path, config)


def load_depth_estimator(path: str | Path, config: str | Path | None = None) -> DepthEstimator:
    """A gesco depth network folder (``gesco train-depth``), or an external TorchScript / ONNX depth network
    file (with its JSON config, by default beside it)."""
    path = Path(path)
    if _gesco_folder(path, config, DepthNetConfig, "depth network"):
        return GescoDepthNet.from_pretrained(path)
    return ExternalDepthEstimator.from_file(path, config)


def detector_classes(detector: Detector) -> tuple[int, ...] | None:
    """The class ids ``detector`` can name: a gesco detector's heatmap classes, an external one's ``label_map``
    without :data:`NOT_SCORED`; None for another :class:`Detector`, which does not say."""
    if isinstance(detector, GescoDetector):
        return tuple(detector.config.class_ids)
    if isinstance(detector, ExternalDetector):
        return tuple(sorted({c for c in detector.config.label_map if c != NOT_SCORED}))
    return None


def check_geometry_networks(
    detector: Detector | None, depth_estimator: DepthEstimator | None, image: torch.Tensor
) -> None:
    """Run each given network once on ``image`` (float (3, H, W) in [-1, 1], on the networks' device), so that
    one with the wrong output fails now, not after hours of generation.

    Raises:
        ValueError: the detector does not give one :class:`Detections` per image, or the depth estimator not
            a (1, H, W) tensor (external networks also raise for an output of the wrong type or shape).
    """
    batch = image[None]
    if detector is not None:
        found = detector.detect(batch)
        if not isinstance(found, list) or len(found) != 1 or not isinstance(found[0], Detections):
            raise ValueError(f"the detector gave {type(found).__name__} for one image; it must give [Detections]")
    if depth_estimator is not None:
        depth = depth_estimator.estimate(batch)
        if not isinstance(depth, torch.Tensor) or tuple(depth.shape) != (1, *image.shape[-2:]):
            shape = tuple(depth.shape) if isinstance(depth, torch.Tensor) else type(depth).__name__
            raise ValueError(f"the depth estimator gave {shape} for one image; it must give (1, H, W) depth")
