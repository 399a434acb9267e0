"""Segmentation networks for the mIoU of regenerated images: gesco's own compact UNet, or any external one.

Both kinds answer ``predict(images) -> labels``: float (B, 3, H, W) images in [-1, 1] in, int64 (B, H, W)
channel ids of their class table out, so the metric never needs to know which network it talks to.

- :class:`GescoSegmenter`: a small UNet (about 0.4M parameters) trained by ``gesco train-segmenter``;
  a folder of ``config.json`` (:class:`SegmenterConfig`) and ``model.safetensors``.
- :class:`ExternalSegmenter`: a TorchScript (``torch.jit.load``) or ONNX (onnxruntime, optional extra
  ``gesco[onnx]``) network mapping images to per-class logits, described by a small JSON file
  (:class:`ExternalSegmenterConfig`): the input range and normalisation it expects, and which class-table
  channel each of its logits stands for (e.g. DRN-D-105's 19 Cityscapes train ids -> label ids).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from gesco.config import Config
from gesco.datasets.synthetic import SYNTHETIC_CLASSES
from gesco.semantics.classes import ClassTable, class_table
from gesco.weights_folder import WeightsFolder

#: Cityscapes label ids the synthetic street scenes draw: the default classes of a segmenter trained on them.
SYNTHETIC_CLASS_IDS = tuple(sorted(SYNTHETIC_CLASSES))
#: Logit index -> class-table channel: this value marks a logit that stands for no class (its pixels count as wrong).
NO_CLASS = -1


class Segmenter(Protocol):
    """Anything that segments images into the channel ids of a class table."""

    table: ClassTable

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """float (B, 3, H, W) in [-1, 1] -> int64 (B, H, W) channel ids of ``table``."""
        ...


def default_class_ids(table: ClassTable) -> tuple[int, ...]:
    """The channels a segmenter of ``table`` predicts by default: Cityscapes' 19 train classes, or every
    channel but the table's ignored one."""
    if table.train_ids is not None:
        return tuple(c for c, t in enumerate(table.train_ids) if t != 255)
    return tuple(c for c in range(table.num_classes) if c != table.ignore_index)


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"a segmenter takes float images of shape (B, 3, H, W) in [-1, 1], got {shape}")


@dataclass(frozen=True)
class SegmenterConfig(Config):
    """The compact UNet: its class table, the channels it predicts, and its widths.

    Attributes:
        class_table: name of the class table the predicted ids refer to.
        class_ids: the class-table channels the network has a logit for, in logit order; target pixels of any
            other channel are ignored in training.
        widths: channels per resolution level (level i at 1 / 2**i); each level is two 3x3 conv-BN-ReLU
            layers, the decoder mirrors the encoder with skip connections, so thin classes (poles, signs)
            keep full-resolution features.
    """

    class_table: str = "cityscapes"
    class_ids: tuple[int, ...] = SYNTHETIC_CLASS_IDS
    widths: tuple[int, ...] = (16, 32, 64, 96)

    def __post_init__(self) -> None:
        table = class_table(self.class_table)
        bad = [i for i in self.class_ids if not 0 <= i < table.num_classes]
        if bad or not self.class_ids or len(set(self.class_ids)) != len(self.class_ids):
            raise ValueError(
                f"class_ids {list(self.class_ids)} must be distinct channels of the {table.name} table "
                f"(0..{table.num_classes - 1}); bad: {bad}"
            )
        if len(self.widths) < 2 or any(w < 1 for w in self.widths):
            raise ValueError(f"widths {list(self.widths)} needs at least two positive channel counts")


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    layers = []
    for channels in (in_channels, out_channels):
        layers += [
            nn.Conv2d(channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers)


class CompactUNet(nn.Module):
    """The compact UNet body of the segmenter and the depth network: conv blocks at widths[0] .. widths[-1]
    (max-pooled between them), bilinear upsampling with skips back to full size, and a 1x1 head."""

    def build_unet(self, widths: tuple[int, ...], out_channels: int) -> None:
        self.encoder = nn.ModuleList(_conv_block(3 if i == 0 else widths[i - 1], widths[i]) for i in range(len(widths)))
        self.decoder = nn.ModuleList(_conv_block(widths[i + 1] + widths[i], widths[i]) for i in range(len(widths) - 1))
        self.head = nn.Conv2d(widths[0], out_channels, 1)

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def run_unet(self, images: torch.Tensor) -> torch.Tensor:
        """float (B, 3, H, W) in [-1, 1] -> the head's output (B, out_channels, H, W); any H, W."""
        _check_images(images)
        height, width = images.shape[-2:]
        multiple = 2 ** (len(self.encoder) - 1)
        # Edge-pad to a multiple of the total downsampling so every skip lines up, crop back at the end.
        pad_h, pad_w = -height % multiple, -width % multiple
        x = F.pad(images, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else images
        skips = []
        for level, block in enumerate(self.encoder):
            if level:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        for level in reversed(range(len(self.decoder))):
            x = F.interpolate(x, size=skips[level].shape[-2:], mode="bilinear", align_corners=False)
            x = self.decoder[level](torch.cat([x, skips[level]], dim=1))
        return self.head(x)[:, :, :height, :width]


class GescoSegmenter(WeightsFolder, CompactUNet):
    """Compact UNet segmenter; ``forward`` gives logits, ``predict`` gives channel ids."""

    config_class = SegmenterConfig

    def __init__(self, config: SegmenterConfig):
        super().__init__()
        self.config = config
        self.table = class_table(config.class_table)
        self.build_unet(config.widths, len(config.class_ids))
        self.register_buffer("class_ids", torch.tensor(config.class_ids, dtype=torch.long), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """float (B, 3, H, W) in [-1, 1] -> float logits (B, len(class_ids), H, W); any H, W."""
        return self.run_unet(images)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """float (B, 3, H, W) in [-1, 1] -> int64 (B, H, W) channel ids (in eval mode, batch statistics frozen)."""
        was_training = self.training
        self.eval()
        try:
            return self.class_ids[self(images.float()).argmax(dim=1)]
        finally:
            self.train(was_training)


@dataclass(frozen=True)
class ExternalSegmenterConfig(Config):
    """How to feed an external segmenter and read its logits.

    The network receives ``(x - mean) / std`` per channel, where ``x`` is the image mapped linearly from
    [-1, 1] to ``input_range`` (e.g. (0, 1) for ImageNet-normalised networks with the usual mean / std,
    (0, 255) for networks fed raw pixel values), resized to ``input_size`` (H, W) if given. Its output must be
    logits (B, len(label_map), h, w); they are resized bilinearly to the image size before the argmax.
    ``label_map[k]`` is the class-table channel of logit ``k``, or -1 for a logit that stands for no class.

    Example for DRN-D-105 on Cityscapes (19 train ids, ImageNet normalisation)::

        {"class_table": "cityscapes", "input_range": [0, 1], "mean": [0.485, 0.456, 0.406],
         "std": [0.229, 0.224, 0.225], "label_map": [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26,
         27, 28, 31, 32, 33]}
    """

    class_table: str = "cityscapes"
    label_map: tuple[int, ...] = ()
    input_range: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    input_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        table = class_table(self.class_table)
        bad = [i for i in self.label_map if i != NO_CLASS and not 0 <= i < table.num_classes]
        if not self.label_map or bad:
            raise ValueError(
                f"label_map {list(self.label_map)} must give, for each logit, a {table.name} channel "
                f"(0..{table.num_classes - 1}) or {NO_CLASS}; bad entries: {bad}"
            )
        if not self.input_range[0] < self.input_range[1]:
            raise ValueError(f"input_range {self.input_range} must be (low, high) with low < high")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s <= 0 for s in self.std):
            raise ValueError(f"mean {self.mean} and std {self.std} need 3 values each, std > 0")


class _OnnxNetwork:
    """An ONNX file run by onnxruntime on the CPU, called like a torch module."""

    def __init__(self, path: Path):
        try:
            import onnxruntime
        except ImportError as err:
            raise ImportError(
                f"{path} is an ONNX model, which needs onnxruntime: pip install 'gesco[onnx]' (or onnxruntime)"
            ) from err
        self.path = path
        # onnxruntime's errors (a corrupt or foreign file, a failed run) derive from Exception alone: named here.
        try:
            self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except MemoryError:
            raise
        except Exception as err:
            raise ValueError(f"{path} is not an ONNX model onnxruntime can load: {err}") from err
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        inputs = {self.input_name: x.cpu().numpy()}
        try:
            (output, *_) = self.session.run(None, inputs)
        except MemoryError:
            raise
        except Exception as err:
            shape = tuple(x.shape)
            raise ValueError(f"onnxruntime could not run {self.path} on an input of shape {shape}: {err}") from err
        return torch.from_numpy(output)


class ExternalSegmenter:
    """A TorchScript or ONNX segmentation network with its :class:`ExternalSegmenterConfig`."""

    def __init__(self, network, config: ExternalSegmenterConfig):
        self.network = network
        self.config = config
        self.table = class_table(config.class_table)
        self._label_map = torch.tensor(config.label_map, dtype=torch.long)

    def to(self, device: str | torch.device) -> ExternalSegmenter:
        """Move a TorchScript network to ``device`` (an ONNX network stays on the CPU)."""
        if isinstance(self.network, torch.nn.Module):
            self.network = self.network.to(device)
        return self

    @classmethod
    def from_file(
        cls, path: str | Path, config: str | Path | ExternalSegmenterConfig | None = None
    ) -> ExternalSegmenter:
        """Load ``path`` (``.onnx`` or a TorchScript file); ``config`` defaults to the ``.json`` beside it."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no segmenter file at {path}")
        if not isinstance(config, ExternalSegmenterConfig):
            config_path = Path(config) if config is not None else path.with_suffix(".json")
            if not config_path.is_file():
                raise FileNotFoundError(
                    f"the external segmenter {path} needs a JSON config ({config_path} not found) giving its "
                    "class_table, label_map and input normalisation; see ExternalSegmenterConfig"
                )
            config = ExternalSegmenterConfig.load(config_path)
        if path.suffix.lower() == ".onnx":
            return cls(_OnnxNetwork(path), config)
        try:
            network = torch.jit.load(str(path), map_location="cpu").eval()
        except RuntimeError as err:
            raise ValueError(f"{path} is neither an ONNX file (.onnx) nor a TorchScript file: {err}") from err
        return cls(network, config)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """float (B, 3, H, W) in [-1, 1] -> int64 (B, H, W) channel ids; -1 where a no-class logit wins."""
        _check_images(images)
        low, high = self.config.input_range
        x = (images.float().clamp(-1, 1) + 1) / 2 * (high - low) + low
        mean = torch.tensor(self.config.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.config.std, device=x.device).view(1, 3, 1, 1)
        x = (x - mean) / std
        if self.config.input_size is not None:
            x = F.interpolate(x, size=tuple(self.config.input_size), mode="bilinear", align_corners=False)
        logits = self.network(x.contiguous())
        if logits.dim() != 4 or logits.shape[1] != len(self._label_map):
            raise ValueError(
                f"the external segmenter returned shape {tuple(logits.shape)}; its config maps "
                f"{len(self._label_map)} logits, so it must return (B, {len(self._label_map)}, h, w)"
            )
        logits = F.interpolate(logits.float(), size=images.shape[-2:], mode="bilinear", align_corners=False)
        return self._label_map[logits.argmax(dim=1).cpu()]


def load_segmenter(path: str | Path, config: str | Path | None = None) -> Segmenter:
    """A gesco segmenter folder, or an external TorchScript / ONNX file (with its JSON config)."""
    path = Path(path)
    if path.is_dir():
        if not (path / SegmenterConfig.config_name).is_file():
            raise FileNotFoundError(f"{path} is not a gesco segmenter folder (no {SegmenterConfig.config_name})")
        return GescoSegmenter.from_pretrained(path)
    return ExternalSegmenter.from_file(path, config)
