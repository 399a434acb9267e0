"""Objects and depth as a figure, in the style of the GESCO paper's main figure.

For one scene at several channel qualities (the rows), the figure shows the ground truth (the real image
with its ground-truth boxes, and the ground-truth depth map), then per method the delivered image with the
boxes the detector finds in it and the depth the depth network estimates from it. With only one of the two
networks, only its columns are drawn (the images stay, without boxes, when there is no detector).

Drawing:

- every picture is upsampled by :data:`UPSCALE` (nearest neighbour) first, so a box's outline and its label
  stay legible on a 64 x 128 scene;
- a box is a rectangle of :func:`box_colour` (one colour per class, the same in every cell) with its class's
  short name on a tab above it (inside the box at the image's top edge);
- depth is coloured by :data:`DEPTH_COLORMAP` over the one fixed range 0 .. ``max_depth`` for the whole
  figure (the depth scoring's cap, 80 m): near is bright, farther is darker, anything beyond the cap (the
  synthetic sky) is the darkest; unknown ground truth (0, not finite) is grey.

Which boxes: the scoring counts every box the detector returns (its recall threshold is 0), which for the
compact detector is 100 boxes an image, nearly all near-zero peaks, so the figure draws the boxes scoring at
least :data:`FIGURE_MIN_SCORE` (or the scoring's threshold if higher). With a ``--detector-min-area``, the
ground-truth boxes the scoring leaves out are not drawn, nor the predictions that only find those.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from gesco.datasets.base import Boxes, Sample, image_to_tensor
from gesco.datasets.synthetic_canvas import BICYCLE, CAR, PERSON, POLE, RIDER, TRAFFIC_LIGHT, TRAFFIC_SIGN
from gesco.evaluation.figures import FIGURE_DPI, Colorbar, save_grid
from gesco.evaluation.geometry_networks import DepthEstimator, Detector
from gesco.evaluation.geometry_scoring import DEFAULT_MAX_DEPTH_M
from gesco.evaluation.objects_depth import IOU_THRESHOLD, Detections, box_iou
from gesco.evaluation.scoring import SetScorer

#: Image pixels become UPSCALE x UPSCALE figure pixels before boxes and labels are drawn.
UPSCALE = 3
#: Lowest detector score drawn (see the module docstring).
FIGURE_MIN_SCORE = 0.3
#: Perceptually uniform, reversed so that near objects are bright and the far background dark.
DEPTH_COLORMAP = "magma_r"
UNKNOWN_DEPTH_RGB = (128, 128, 128)
#: Saturated colours that stand out on street scenes and on each other; a class takes ``id % len`` unless
#: ``BOX_COLOUR_OF`` names it.
BOX_PALETTE = (
    (255, 60, 60),
    (60, 220, 60),
    (60, 150, 255),
    (255, 220, 0),
    (255, 0, 255),
    (0, 230, 230),
    (255, 140, 0),
    (255, 255, 255),
)
#: The synthetic scenes' seven box classes, each its own colour (``id % len`` would give pole, rider and bicycle
#: one): pole green, light yellow, sign magenta, person red, rider orange, car blue, bicycle cyan.
BOX_COLOUR_OF = {
    POLE: BOX_PALETTE[1],
    TRAFFIC_LIGHT: BOX_PALETTE[3],
    TRAFFIC_SIGN: BOX_PALETTE[4],
    PERSON: BOX_PALETTE[0],
    RIDER: BOX_PALETTE[6],
    CAR: BOX_PALETTE[2],
    BICYCLE: BOX_PALETTE[5],
}
LABEL_FONT_PX = 11


def upsample(picture: np.ndarray, scale: int) -> np.ndarray:
    """uint8 (H, W, C) -> (scale H, scale W, C), each pixel repeated (nearest neighbour)."""
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    return np.repeat(np.repeat(picture, scale, axis=0), scale, axis=1)


def box_colour(class_id: int) -> tuple[int, int, int]:
    return BOX_COLOUR_OF.get(class_id, BOX_PALETTE[class_id % len(BOX_PALETTE)])


def short_name(name: str) -> str:
    """The label on a box: the last word of the class name ("traffic light" -> "light")."""
    return name.split()[-1]


def draw_boxes(
    picture: np.ndarray,
    boxes: torch.Tensor,
    classes: torch.Tensor,
    *,
    scale: int = 1,
    names: Mapping[int, str] | None = None,
    line_width: int = 2,
) -> np.ndarray:
    """A copy of ``picture`` with each box's outline, and its class name if ``names`` is given.

    Args:
        picture: uint8 (h, w, 3), the image already upsampled by ``scale``.
        boxes: float (N, 4) ``(x0, y0, x1, y1)`` in pixel edges of the image before upsampling.
        classes: int (N,) class ids: the colour, and the key of ``names``.
        scale: figure pixels per image pixel.
        names: class id -> name; None draws no labels.
        line_width: outline thickness in figure pixels, drawn inside the box's edges.

    The outline covers exactly the pixels of the box ``[x0 s, x1 s) x [y0 s, y1 s)`` (edges rounded) within
    ``line_width`` of its border; a label sits on a tab above the box, or inside its top if it would leave
    the picture.
    """
    out = picture.copy()
    height, width = out.shape[:2]
    edges = (boxes.detach().cpu().double() * scale).round().long()
    labelled: list[tuple[int, int, tuple[int, int, int], str]] = []
    for (x0, y0, x1, y1), label in zip(edges.tolist(), classes.tolist(), strict=True):
        x0, x1 = max(x0, 0), min(x1, width)
        y0, y1 = max(y0, 0), min(y1, height)
        if x1 <= x0 or y1 <= y0:
            continue
        colour = box_colour(label)
        out[y0:y1, x0 : min(x0 + line_width, x1)] = colour
        out[y0:y1, max(x1 - line_width, x0) : x1] = colour
        out[y0 : min(y0 + line_width, y1), x0:x1] = colour
        out[max(y1 - line_width, y0) : y1, x0:x1] = colour
        if names is not None:
            labelled.append((x0, y0, colour, short_name(names.get(label, str(label)))))
    if labelled:
        image = Image.fromarray(out)
        draw = ImageDraw.Draw(image)
        font = ImageFont.load_default(size=LABEL_FONT_PX)
        for x0, y0, colour, text in labelled:
            left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
            tab_w, tab_h = right - left + 2, bottom - top + 2
            x = min(x0, max(width - tab_w, 0))
            y = y0 - tab_h if y0 >= tab_h else y0
            draw.rectangle((x, y, x + tab_w - 1, y + tab_h - 1), fill=colour)
            draw.text((x + 1 - left, y + 1 - top), text, fill=(0, 0, 0), font=font)
        out = np.asarray(image)
    return out


def depth_to_rgb(depth: torch.Tensor, *, max_depth: float = DEFAULT_MAX_DEPTH_M) -> np.ndarray:
    """float (H, W) depth (m) -> uint8 (H, W, 3) in :data:`DEPTH_COLORMAP` over 0 .. ``max_depth`` (clipped);
    pixels of unknown depth (<= 0 or not finite, as in ground truth) are :data:`UNKNOWN_DEPTH_RGB`."""
    if depth.dim() != 2 or max_depth <= 0:
        raise ValueError(f"need a (H, W) depth map and max_depth > 0, got {tuple(depth.shape)} and {max_depth}")
    values = depth.detach().cpu().double().numpy()
    known = np.isfinite(values) & (values > 0)
    position = np.clip(np.where(known, values, 0) / max_depth, 0, 1)
    rgb = (matplotlib.colormaps[DEPTH_COLORMAP](position)[..., :3] * 255).round().astype(np.uint8)
    rgb[~known] = UNKNOWN_DEPTH_RGB
    return rgb


def shown_detections(detections: Detections, truth: Boxes, *, min_score: float, min_area: float) -> Detections:
    """The boxes the figure draws: score >= ``min_score``, and not one that matches (IoU >= 0.5) only
    ground-truth boxes smaller than ``min_area`` (which the scoring leaves out)."""
    keep = detections.scores >= min_score
    if min_area > 0 and len(truth.classes) and keep.any():
        small = _areas(truth.xyxy) < min_area
        same_class = detections.classes[:, None] == truth.classes[None, :]
        matches = (box_iou(detections.boxes, truth.xyxy) >= IOU_THRESHOLD) & same_class
        keep &= ~((matches & small[None]).any(dim=1) & ~(matches & ~small[None]).any(dim=1))
    return Detections(detections.boxes[keep], detections.classes[keep], detections.scores[keep])


def _areas(xyxy: torch.Tensor) -> torch.Tensor:
    return (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])


class ObjectsDepthFigure:
    """Draws the objects-and-depth figure of scenes with a detector and / or a depth network.

    Args:
        detector, depth_estimator: the scoring's networks (at least one), already on ``device``.
        label_names: class id -> name, for the box labels.
        min_score: lowest detector score drawn.
        min_area: ground-truth boxes smaller than this (px^2) are not drawn, nor predictions that only find them.
        max_depth: the top of the depth colour range (m), the same in every cell.
        device: where the networks run.
    """

    def __init__(
        self,
        *,
        detector: Detector | None,
        depth_estimator: DepthEstimator | None,
        label_names: Mapping[int, str],
        min_score: float = FIGURE_MIN_SCORE,
        min_area: float = 0.0,
        max_depth: float = DEFAULT_MAX_DEPTH_M,
        device: str | torch.device = "cpu",
    ) -> None:
        if detector is None and depth_estimator is None:
            raise ValueError("an objects-and-depth figure needs a detector, a depth network, or both")
        self.detector, self.depth_estimator = detector, depth_estimator
        self.label_names, self.min_score, self.min_area = dict(label_names), min_score, min_area
        self.max_depth, self.device = max_depth, torch.device(device)

    @classmethod
    def from_scorer(cls, scorer: SetScorer) -> ObjectsDepthFigure | None:
        """The figure of the networks ``scorer`` scores objects and depth with (None if it has neither): the
        same networks, device and minimum box area, no second load."""
        if scorer.geometry is None:
            return None
        # the scorer keeps the networks only inside its meter factory; a fresh meter holds them and the thresholds
        meter = scorer.geometry()
        return cls(
            detector=meter.detector,
            depth_estimator=meter.depth_estimator,
            label_names=scorer.label_names,
            min_score=max(meter.score_threshold, FIGURE_MIN_SCORE),
            min_area=meter.min_area,
            device=scorer.device,
        )

    def column_titles(self, truth: str, methods: Sequence[str]) -> list[str]:
        """Titles of the columns: the ground truth's then each method's (image, depth)."""
        titles = []
        for name in (truth, *methods):
            titles.append(f"{name}: objects" if self.detector is not None else name)
            if self.depth_estimator is not None:
                titles.append(f"{name}: depth")
        return titles

    @property
    def note(self) -> str:
        """Which boxes are drawn, for the figure's title ("" without a detector)."""
        if self.detector is None:
            return ""
        area = f"; boxes under {self.min_area:g} px² left out, as in the scoring" if self.min_area > 0 else ""
        return f"boxes: the detector's scoring ≥ {self.min_score:g}{area}"

    @torch.no_grad()
    def row(self, truth: Sample, real: np.ndarray, delivered: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One row: ``real`` (uint8 (H, W, 3), the scene's image) with ``truth``'s boxes and depth, then each
        ``delivered`` picture with the detector's boxes and the depth network's estimate."""
        if self.detector is not None and truth.boxes is None:
            raise ValueError(f"item {truth.name} has no ground-truth boxes to draw; the data set must carry them")
        if self.depth_estimator is not None and truth.depth is None:
            raise ValueError(f"item {truth.name} has no ground-truth depth to draw; the data set must carry it")
        images = torch.stack([image_to_tensor(p) for p in delivered]).to(self.device)
        found = self.detector.detect(images) if self.detector is not None else None
        depths = self.depth_estimator.estimate(images).cpu() if self.depth_estimator is not None else None
        cells = []
        if found is not None:
            large = _areas(truth.boxes.xyxy) >= self.min_area
            cells.append(self._boxes(real, truth.boxes.xyxy[large], truth.boxes.classes[large]))
        else:
            cells.append(upsample(real, UPSCALE))
        if depths is not None:
            cells.append(self._depth(truth.depth))
        for k, picture in enumerate(delivered):
            if found is not None:
                shown = shown_detections(
                    Detections(found[k].boxes.cpu(), found[k].classes.cpu(), found[k].scores.cpu()),
                    truth.boxes,
                    min_score=self.min_score,
                    min_area=self.min_area,
                )
                cells.append(self._boxes(picture, shown.boxes, shown.classes))
            else:
                cells.append(upsample(picture, UPSCALE))
            if depths is not None:
                cells.append(self._depth(depths[k]))
        return cells

    def _boxes(self, picture: np.ndarray, boxes: torch.Tensor, classes: torch.Tensor) -> np.ndarray:
        return draw_boxes(upsample(picture, UPSCALE), boxes, classes, scale=UPSCALE, names=self.label_names)

    def _depth(self, depth: torch.Tensor) -> np.ndarray:
        return upsample(depth_to_rgb(depth, max_depth=self.max_depth), UPSCALE)

    def save(
        self,
        path: str | Path,
        truth: Sample,
        rows: Sequence[Sequence[np.ndarray]],
        *,
        truth_title: str,
        method_titles: Sequence[str],
        row_titles: Sequence[str],
        title: str,
    ) -> Path:
        """Draw and save the figure of one scene: ``rows`` are an example figure's rows (per channel quality,
        the real image then each method's delivered picture); ``title`` gets a line saying what is drawn."""
        drawn = [self.row(truth, row[0], row[1:]) for row in rows]
        colorbar = None
        if self.depth_estimator is not None:
            colorbar = Colorbar(DEPTH_COLORMAP, 0.0, self.max_depth, f"depth (m), clipped at {self.max_depth:g}")
        width = drawn[0][0].shape[1]
        return save_grid(
            path,
            drawn,
            self.column_titles(truth_title, method_titles),
            row_titles=row_titles,
            title=f"{title}\n{self.note}" if self.note else title,
            # one figure pixel per drawn pixel: the labels keep the size they were drawn at
            cell_width=width / FIGURE_DPI,
            colorbar=colorbar,
        )
