r"""gesco's compact object detector: CenterNet-style centre heatmaps, box sizes and offsets at stride 4.

The detector answers the :class:`~gesco.evaluation.geometry_networks.Detector` call: float (B, 3, H, W)
images in [-1, 1] in, one :class:`~gesco.evaluation.objects_depth.Detections` per image out, boxes in the
image's pixels and classes as Cityscapes label ids. It is a folder of ``config.json``
(:class:`DetectorConfig`) and ``model.safetensors``, trained by ``gesco train-detector``.

How it works (Zhou et al. 2019, "Objects as Points"):

1. The image is resized to ``input_size`` (bilinear): the 64 x 128 scenes are read at 128 x 256, so a
   2 px pole spans a whole output cell instead of half of one.
2. A small conv encoder (stride 2 per level) and a decoder with skip connections give features at
   stride :data:`OUTPUT_STRIDE` of the input; three 1x1 heads read them:
   - ``heatmap``: per class, the logit that an object's centre falls in the cell;
   - ``size``: :math:`\log w, \log h` of the box, in cells;
   - ``offset``: where in the cell the centre lies, :math:`(c_x - \lfloor c_x \rfloor, c_y - \lfloor c_y \rfloor)`.
3. :func:`decode_detections` keeps the cells that are the maximum of their 3x3 neighbourhood (the
   network's NMS), takes the ``max_detections`` best over all classes, and turns each into a box
   :math:`(c - s / 2, c + s / 2)` with centre :math:`c = (i + o)` cells and size :math:`s = e^{\log s}` cells,
   scaled to the image's pixels.

Scoring resolution: regenerations are scored at the receivers' 64 x 128, the size they are delivered at.
Upsampling the image and the ground truth together would change nothing (IoU does not depend on scale), so
the detector instead reads a 2x upsampled input and places boxes to a fraction of a pixel. The bar is
high there: the ground truth itself shifted by one pixel right and down scores AP50 0.14 at 64 x 128 (0.87
for the same scenes drawn at 128 x 256), and shifted one pixel right 0.74, poles 0.12 (a 2 px pole one pixel
off has IoU 1/3) (100 scenes from seed 1,000,000). ``gesco evaluate --detector-min-area 16`` leaves out the
22 % of boxes under 16 px^2 (far persons, signs and pole stubs of a few pixels), as PASCAL VOC's "difficult".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gesco.config import Config
from gesco.datasets.synthetic_canvas import BOX_CLASSES
from gesco.evaluation.objects_depth import Detections
from gesco.evaluation.segmenter import _check_images
from gesco.weights_folder import WeightsFolder

#: Input pixels per output cell.
OUTPUT_STRIDE = 4
#: Classes of the synthetic scenes' boxes (pole, traffic light, traffic sign, person, car): the default.
SYNTHETIC_BOX_CLASS_IDS = tuple(sorted(BOX_CLASSES))
#: Initial heatmap probability: CenterNet's prior, so the focal loss starts small instead of exploding on the
#: thousands of empty cells.
HEATMAP_PRIOR = 0.1


@dataclass(frozen=True)
class DetectorConfig(Config):
    """The compact detector: its classes, the resolution it reads, its widths and its decoding.

    Attributes:
        class_ids: Cityscapes label ids of the heatmap channels, in order (riders, 25, and bicycles, 33, need
            training scenes with cyclists: ``SyntheticStreets(riders=True)``, ``gesco train-detector --riders``).
        input_size: (H, W) the images are resized to before the network; None reads them at their own size.
            The network pads any size to a multiple of 2 ** len(widths).
        widths: channels per encoder level; level i is at stride 2 ** (i + 1) of the input, so the first is
            the stride-2 stem and the second the stride-4 level the heads read (after the decoder).
        head_width: channels of the shared 3x3 layer before the three 1x1 heads.
        max_detections: boxes kept per image (best scores over all classes).
        min_score: boxes scoring at or below it are dropped.
    """

    class_ids: tuple[int, ...] = SYNTHETIC_BOX_CLASS_IDS
    input_size: tuple[int, int] | None = (128, 256)
    widths: tuple[int, ...] = (16, 32, 64, 96)
    head_width: int = 48
    max_detections: int = 100
    min_score: float = 0.01

    def __post_init__(self) -> None:
        if not self.class_ids or len(set(self.class_ids)) != len(self.class_ids) or min(self.class_ids) < 0:
            raise ValueError(f"class_ids {list(self.class_ids)} must be distinct class ids >= 0, at least one")
        if self.input_size is not None and (len(self.input_size) != 2 or min(self.input_size) < OUTPUT_STRIDE):
            raise ValueError(f"input_size {self.input_size} must be (height, width) >= {OUTPUT_STRIDE} px, or None")
        if len(self.widths) < 2 or min(self.widths) < 1 or self.head_width < 1:
            raise ValueError(f"widths {list(self.widths)} needs >= 2 positive channel counts; head_width >= 1")
        if self.max_detections < 1 or not 0 <= self.min_score < 1:
            raise ValueError(
                f"max_detections must be >= 1 and min_score in [0, 1), got {self.max_detections}, {self.min_score}"
            )


@dataclass(frozen=True)
class DetectorOutput:
    """The heads on the output grid (h, w) = input / :data:`OUTPUT_STRIDE`.

    ``heatmap``: float (B, K, h, w) logits. ``size``: float (B, 2, h, w) log of the box width and height in
    cells. ``offset``: float (B, 2, h, w) the centre's x and y position inside its cell (0..1).
    """

    heatmap: torch.Tensor
    size: torch.Tensor
    offset: torch.Tensor


def _conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def _level(in_channels: int, out_channels: int) -> nn.Sequential:
    """Halve the resolution, then one more 3x3 layer."""
    return nn.Sequential(_conv(in_channels, out_channels, stride=2), _conv(out_channels, out_channels))


class GescoDetector(WeightsFolder, nn.Module):
    """Compact CenterNet-style detector; ``forward`` gives the heads, ``detect`` the boxes."""

    config_class = DetectorConfig

    def __init__(self, config: DetectorConfig):
        super().__init__()
        self.config = config
        widths = config.widths
        self.encoder = nn.ModuleList(_level(3 if i == 0 else widths[i - 1], widths[i]) for i in range(len(widths)))
        # The decoder climbs back to level 1 (stride 4), fusing each level's skip.
        self.decoder = nn.ModuleList(_conv(widths[i + 1] + widths[i], widths[i]) for i in range(1, len(widths) - 1))
        self.neck = _conv(widths[1], config.head_width)
        self.heatmap = nn.Conv2d(config.head_width, len(config.class_ids), 1)
        self.size = nn.Conv2d(config.head_width, 2, 1)
        self.offset = nn.Conv2d(config.head_width, 2, 1)
        nn.init.constant_(self.heatmap.bias, math.log(HEATMAP_PRIOR / (1 - HEATMAP_PRIOR)))
        self.register_buffer("class_ids", torch.tensor(config.class_ids, dtype=torch.long), persistent=False)

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def network_input(self, images: torch.Tensor) -> torch.Tensor:
        """float (B, 3, H, W) in [-1, 1] -> the network's input: resized to ``input_size`` if one is set."""
        _check_images(images)
        images = images.float()
        if self.config.input_size is not None and tuple(images.shape[-2:]) != tuple(self.config.input_size):
            images = F.interpolate(images, size=tuple(self.config.input_size), mode="bilinear", align_corners=False)
        return images

    def forward(self, x: torch.Tensor) -> DetectorOutput:
        """The network input (see :meth:`network_input`), any (B, 3, H, W) -> :class:`DetectorOutput` on the
        grid (ceil(H / 4), ceil(W / 4))."""
        _check_images(x)
        height, width = x.shape[-2:]
        multiple = 2 ** len(self.encoder)
        # Edge-pad to a multiple of the total downsampling so every skip lines up; the extra cells are cut off.
        pad_h, pad_w = -height % multiple, -width % multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        skips = []
        for level in self.encoder:
            x = level(x)
            skips.append(x)
        for level in reversed(range(1, len(skips) - 1)):
            x = F.interpolate(x, size=skips[level].shape[-2:], mode="bilinear", align_corners=False)
            x = self.decoder[level - 1](torch.cat([x, skips[level]], dim=1))
        features = self.neck(x)[:, :, : -(-height // OUTPUT_STRIDE), : -(-width // OUTPUT_STRIDE)]
        return DetectorOutput(self.heatmap(features), self.size(features), self.offset(features))

    @torch.no_grad()
    def detect(self, images: torch.Tensor) -> list[Detections]:
        """float (B, 3, H, W) in [-1, 1] -> one :class:`Detections` per image, boxes in its pixels (CPU tensors;
        in eval mode, batch statistics frozen)."""
        was_training = self.training
        self.eval()
        try:
            x = self.network_input(images)
            out = self(x)
        finally:
            self.train(was_training)
        height, width = images.shape[-2:]
        cell = (OUTPUT_STRIDE * width / x.shape[-1], OUTPUT_STRIDE * height / x.shape[-2])
        return decode_detections(
            torch.sigmoid(out.heatmap.float()).cpu(),
            out.size.float().cpu(),
            out.offset.float().cpu(),
            class_ids=self.config.class_ids,
            cell_size=cell,
            image_size=(height, width),
            max_detections=self.config.max_detections,
            min_score=self.config.min_score,
        )


def decode_detections(
    heatmap: torch.Tensor,
    size: torch.Tensor,
    offset: torch.Tensor,
    *,
    class_ids: tuple[int, ...],
    cell_size: tuple[float, float],
    image_size: tuple[int, int],
    max_detections: int = 100,
    min_score: float = 0.0,
) -> list[Detections]:
    """Boxes from the heads (step 3 of the module docstring).

    Args:
        heatmap: float (B, K, h, w) probabilities in [0, 1] (the sigmoid of the logits).
        size: float (B, 2, h, w) log width and log height of the box centred in each cell, in cells.
        offset: float (B, 2, h, w) the centre's x and y inside each cell.
        class_ids: the class id of each of the K heatmap channels.
        cell_size: (x, y) image pixels per cell.
        image_size: (H, W) of the image; boxes are clipped to it.
        max_detections: best peaks kept per image, over all classes.
        min_score: peaks at or below it are dropped.

    Returns:
        One :class:`Detections` per image, in descending score order.
    """
    if heatmap.dim() != 4 or heatmap.shape[1] != len(class_ids):
        raise ValueError(
            f"heatmap must be (B, K={len(class_ids)}, h, w) for {len(class_ids)} class ids, got {tuple(heatmap.shape)}"
        )
    batch, _, rows, cols = heatmap.shape
    for name, value in (("size", size), ("offset", offset)):
        if tuple(value.shape) != (batch, 2, rows, cols):
            raise ValueError(f"{name} must be (B, 2, h, w) = {(batch, 2, rows, cols)}, got {tuple(value.shape)}")
    # A peak is a cell no neighbour beats: the 3x3 max pool leaves it unchanged.
    peaks = heatmap * (F.max_pool2d(heatmap, 3, stride=1, padding=1) == heatmap)
    scores, flat = peaks.flatten(1).topk(min(max_detections, peaks[0].numel()), dim=1)
    labels = torch.tensor(class_ids, dtype=torch.long)
    cell = torch.tensor(cell_size, dtype=torch.float32)
    limit = torch.tensor([image_size[1], image_size[0]] * 2, dtype=torch.float32)
    out = []
    for b in range(batch):
        keep = scores[b] > min_score
        channel, position = flat[b][keep] // (rows * cols), flat[b][keep] % (rows * cols)
        y, x = position // cols, position % cols
        centre = (torch.stack([x, y], dim=1).float() + offset[b][:, y, x].T) * cell
        extent = size[b][:, y, x].T.exp() * cell
        boxes = torch.cat([centre - extent / 2, centre + extent / 2], dim=1)
        boxes = torch.minimum(boxes.clamp(min=0), limit)
        out.append(Detections(boxes=boxes, classes=labels[channel], scores=scores[b][keep]))
    return out
