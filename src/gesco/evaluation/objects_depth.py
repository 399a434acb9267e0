"""Do the regenerations keep the objects, where they are, and how far away? Detection and depth metrics.

GESCO's claim is that the receiver regenerates the scene's semantics: a detector and a monocular depth
network run on the regenerated image should find what they find on the real one. These functions score
their outputs against the ground truth (the synthetic scenes' boxes and depth, or Cityscapes' polygons and
disparity), all pure, on CPU tensors.

Detection (per class, over a whole set of images):

- Matching at IoU 0.5: predictions of a class, taken in descending score order over all images (stable for
  ties), each take the still-unmatched ground-truth box of that class and image with the highest IoU, if
  that IoU is >= 0.5; otherwise (no box left, e.g. a duplicate of a found object) they are false positives.
- AP50: all-point interpolated average precision (PASCAL VOC 2010+): the area under the precision-recall
  curve after making precision monotone, :math:`AP = \\sum_i (r_i - r_{i-1}) \\max_{r \\ge r_i} p(r)`.
- Recall: the share of ground-truth boxes matched by predictions with score >= ``score_threshold``.
- Localisation error: the distance between the centres of matched boxes (pixels), and the same divided by
  the image diagonal.

Ground-truth boxes smaller than ``min_area`` are left out: not counted as targets, and a prediction
whose only match (IoU >= 0.5) is such a box counts neither as a hit nor as a false positive.

A class with no ground-truth box has no AP or recall (None; its predictions are false positives that
touch no other class) and is left out of the mean AP.

Depth (per image, then the mean over images, as Eigen et al. 2014 and the KITTI benchmark):

- Valid pixels: ground truth in ``(min_depth, max_depth]`` and finite (0 marks unknown depth, e.g. an
  invalid Cityscapes disparity).
- Median scaling (optional, for networks whose depth is known only up to scale, e.g. trained on monocular
  video): the prediction times ``median(target) / median(prediction)`` over the valid pixels of the image.
- Predictions are clipped to ``[min_depth, max_depth]`` (a zero or negative prediction would make the
  ratios below meaningless).
- :math:`AbsRel = \\mathrm{mean}(|d - d^*| / d^*)` and
  :math:`\\delta_1 = \\mathrm{mean}(\\max(d / d^*, d^* / d) < 1.25)` with :math:`d^*` the ground truth.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gesco.datasets.base import Boxes

#: IoU a prediction needs with a ground-truth box to count as finding it (the "50" of AP50).
IOU_THRESHOLD = 0.5
#: Threshold of the delta_1 accuracy: max(d / d*, d* / d) < 1.25.
DELTA1_THRESHOLD = 1.25


@dataclass(frozen=True)
class Detections:
    """A detector's boxes on one image.

    ``boxes``: float (N, 4) ``(x0, y0, x1, y1)`` in pixel edges of the scored image (as
    :class:`~gesco.datasets.base.Boxes`). ``classes``: int64 (N,) class ids (Cityscapes label ids for street
    scenes). ``scores``: float (N,) confidences, higher is surer.
    """

    boxes: torch.Tensor
    classes: torch.Tensor
    scores: torch.Tensor

    def __post_init__(self) -> None:
        n = self.boxes.shape[0] if self.boxes.dim() == 2 else -1
        if self.boxes.dim() != 2 or self.boxes.shape[1] != 4 or self.classes.shape != (n,) or self.scores.shape != (n,):
            raise ValueError(
                "Detections need boxes (N, 4), classes (N,) and scores (N,); got "
                f"{tuple(self.boxes.shape)}, {tuple(self.classes.shape)}, {tuple(self.scores.shape)}"
            )


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of every box in ``a`` (N, 4) with every box in ``b`` (M, 4), both ``(x0, y0, x1, y1)``: (N, M).

    Boxes are continuous rectangles (area ``(x1 - x0) * (y1 - y0)``); a degenerate pair has IoU 0.
    """
    a, b = a.double(), b.double()
    left = torch.maximum(a[:, None, 0], b[None, :, 0])
    top = torch.maximum(a[:, None, 1], b[None, :, 1])
    right = torch.minimum(a[:, None, 2], b[None, :, 2])
    bottom = torch.minimum(a[:, None, 3], b[None, :, 3])
    inter = (right - left).clamp(min=0) * (bottom - top).clamp(min=0)
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    union = area_a[:, None] + area_b[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(union))


def average_precision(true_positive: np.ndarray, num_targets: int) -> float:
    """All-point interpolated AP of predictions already sorted by descending score.

    ``true_positive``: bool (N,) whether each prediction matched; ``num_targets`` > 0 ground-truth boxes.
    """
    if num_targets <= 0:
        raise ValueError(f"AP needs at least one ground-truth box, got num_targets={num_targets}")
    hits = np.cumsum(true_positive, dtype=np.float64)
    recall = hits / num_targets
    precision = hits / np.arange(1, len(true_positive) + 1)
    # Precision envelope: at each recall the best precision reachable at that recall or beyond.
    envelope = np.maximum.accumulate(np.concatenate([precision, [0.0]])[::-1])[::-1]
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float((steps * envelope[:-1]).sum())


@dataclass(frozen=True)
class ClassDetection:
    """One class over a set: AP50 and recall (None without ground truth), and the box counts (without the
    small boxes left out and the predictions that found them)."""

    ap50: float | None
    recall: float | None
    num_targets: int
    num_predictions: int


@dataclass(frozen=True)
class DetectionScores:
    """Detection over a set of images.

    Attributes:
        per_class: class id -> :class:`ClassDetection`, for every class given or seen.
        map50: mean AP50 over the classes with ground truth (None if there is none).
        localisation_px: mean centre distance of the matched boxes (pixels), None without a match.
        localisation_diagonal: the same divided by the image diagonal.
        matched: how many (prediction, ground truth) pairs were matched at score >= the threshold.
    """

    per_class: dict[int, ClassDetection]
    map50: float | None
    localisation_px: float | None
    localisation_diagonal: float | None
    matched: int


def check_min_area(min_area: float, name: str = "min_area") -> None:
    """``min_area`` must be a finite area >= 0 (px^2): a negative one would silently score every box, NaN too."""
    if not (math.isfinite(min_area) and min_area >= 0):
        raise ValueError(f"{name} must be a finite area >= 0 (px^2; 0 scores every box), got {min_area}")


def _check_pairs(predictions: Sequence[Detections], targets: Sequence[Boxes]) -> None:
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} images of predictions but {len(targets)} of ground truth; give one each")


def detection_scores(
    predictions: Sequence[Detections],
    targets: Sequence[Boxes],
    *,
    image_size: tuple[int, int],
    classes: Sequence[int] = (),
    score_threshold: float = 0.0,
    iou_threshold: float = IOU_THRESHOLD,
    min_area: float = 0.0,
) -> DetectionScores:
    """Score a detector's ``predictions`` against the ground-truth ``targets``, image by image.

    Args:
        predictions: one :class:`Detections` per image.
        targets: the ground-truth :class:`~gesco.datasets.base.Boxes` of the same images, same order.
        image_size: (H, W) of the images, for the diagonal of the normalised localisation error.
        classes: classes to report even where neither side has a box (e.g. every class the detector knows);
            any other class seen in either side is reported too.
        score_threshold: predictions below it count for AP but not for recall or localisation.
        iou_threshold: IoU a match needs (0.5: AP50).
        min_area: ground-truth boxes of a smaller area (px^2) are left out, with the predictions that find
            them: at 64 x 128 a pole is 2 px wide and a one-pixel offset alone halves its IoU.

    Returns:
        :class:`DetectionScores`.
    """
    _check_pairs(predictions, targets)
    if not 0 < iou_threshold <= 1:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    check_min_area(min_area)
    diagonal = float(np.hypot(*image_size))
    seen = set(int(c) for c in classes)
    for p, t in zip(predictions, targets):
        seen |= set(p.classes.tolist()) | set(t.classes.tolist())
    per_class: dict[int, ClassDetection] = {}
    distances: list[float] = []
    for label in sorted(seen):
        # Every prediction of the class over the set, as (image, index), in descending score order.
        entries = [
            (i, j, float(p.scores[j]))
            for i, p in enumerate(predictions)
            for j in torch.nonzero(p.classes == label).flatten().tolist()
        ]
        entries.sort(key=lambda e: -e[2])
        truth = [t.xyxy[t.classes == label] for t in targets]
        small = [(b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) < min_area for b in truth]
        # A small box is out of the score, and so is a prediction that finds one (PASCAL VOC's "difficult").
        taken = [s.clone() for s in small]
        num_targets = sum(int((~s).sum()) for s in small)
        hits = np.zeros(len(entries), bool)
        counted = np.ones(len(entries), bool)
        recalled = 0
        for n, (i, j, score) in enumerate(entries):
            if len(truth[i]) == 0:
                continue
            box = predictions[i].boxes[j : j + 1]
            overlap = box_iou(box, truth[i])[0]
            iou = overlap.masked_fill(taken[i], -1.0)
            best = int(iou.argmax())
            if iou[best] < iou_threshold:
                counted[n] = not bool((overlap[small[i]] >= iou_threshold).any())
                continue
            taken[i][best] = True
            hits[n] = True
            if score >= score_threshold:
                recalled += 1
                centre = (box[0, :2] + box[0, 2:]) / 2 - (truth[i][best, :2] + truth[i][best, 2:]) / 2
                distances.append(float(torch.linalg.vector_norm(centre.double())))
        per_class[label] = ClassDetection(
            ap50=average_precision(hits[counted], num_targets) if num_targets else None,
            recall=recalled / num_targets if num_targets else None,
            num_targets=num_targets,
            num_predictions=int(counted.sum()),
        )
    aps = [c.ap50 for c in per_class.values() if c.ap50 is not None]
    localisation = float(np.mean(distances)) if distances else None
    return DetectionScores(
        per_class=per_class,
        map50=float(np.mean(aps)) if aps else None,
        localisation_px=localisation,
        localisation_diagonal=localisation / diagonal if localisation is not None else None,
        matched=len(distances),
    )


@dataclass(frozen=True)
class DepthErrors:
    """Per-image depth errors: ``abs_rel`` and ``delta1`` float64 (B,), NaN for an image with no valid pixel."""

    abs_rel: torch.Tensor
    delta1: torch.Tensor


def depth_errors(
    predicted: torch.Tensor,
    target: torch.Tensor,
    *,
    median_scaling: bool = False,
    min_depth: float = 1e-3,
    max_depth: float | None = None,
) -> DepthErrors:
    """AbsRel and delta_1 of each image (see the module docstring for the protocol).

    Args:
        predicted: float (B, H, W) or (H, W) depth in metres (up to scale with ``median_scaling``).
        target: float, same shape: ground-truth depth in metres, 0 (or anything outside
            ``(min_depth, max_depth]``) where unknown.
        median_scaling: rescale each prediction to the target's median first.
        min_depth, max_depth: the valid ground-truth range (``max_depth`` None: no upper limit); predictions
            are clipped to it.
    """
    if predicted.shape != target.shape or predicted.dim() not in (2, 3):
        raise ValueError(
            f"predicted {tuple(predicted.shape)} and target {tuple(target.shape)} depth must be the same "
            "(B, H, W) or (H, W) shape; resize the prediction to the ground truth first"
        )
    if min_depth <= 0 or (max_depth is not None and max_depth <= min_depth):
        raise ValueError(f"need 0 < min_depth < max_depth, got {min_depth} and {max_depth}")
    predicted = predicted.detach().cpu().double().reshape(-1, *predicted.shape[-2:])
    target = target.detach().cpu().double().reshape(predicted.shape)
    high = float("inf") if max_depth is None else max_depth
    abs_rel = torch.full((len(target),), float("nan"), dtype=torch.float64)
    delta1 = abs_rel.clone()
    for b, (pred, truth) in enumerate(zip(predicted, target)):
        valid = torch.isfinite(truth) & (truth > min_depth) & (truth <= high)
        if not valid.any():
            continue
        d, d_star = pred[valid], truth[valid]
        if median_scaling:
            d = d * (d_star.median() / d.median().clamp(min=min_depth))
        d = d.nan_to_num(nan=min_depth).clamp(min_depth, high)
        abs_rel[b] = ((d - d_star).abs() / d_star).mean()
        delta1[b] = (torch.maximum(d / d_star, d_star / d) < DELTA1_THRESHOLD).double().mean()
    return DepthErrors(abs_rel=abs_rel, delta1=delta1)


@dataclass(frozen=True)
class DepthScores:
    """Depth over a set: the mean over images of AbsRel and delta_1, and how many images had valid pixels."""

    abs_rel: float | None
    delta1: float | None
    images: int


class DepthMeter:
    """Accumulates :func:`depth_errors` batch by batch (nothing but two numbers per image is kept)."""

    def __init__(self, *, median_scaling: bool = False, min_depth: float = 1e-3, max_depth: float | None = None):
        self.options = {"median_scaling": median_scaling, "min_depth": min_depth, "max_depth": max_depth}
        self._abs_rel: list[torch.Tensor] = []
        self._delta1: list[torch.Tensor] = []

    def update(self, predicted: torch.Tensor, target: torch.Tensor) -> None:
        errors = depth_errors(predicted, target, **self.options)
        self._abs_rel.append(errors.abs_rel)
        self._delta1.append(errors.delta1)

    def result(self) -> DepthScores:
        if not self._abs_rel:
            return DepthScores(abs_rel=None, delta1=None, images=0)
        abs_rel, delta1 = torch.cat(self._abs_rel), torch.cat(self._delta1)
        scored = ~abs_rel.isnan()
        if not scored.any():
            return DepthScores(abs_rel=None, delta1=None, images=0)
        return DepthScores(
            abs_rel=float(abs_rel[scored].mean()), delta1=float(delta1[scored].mean()), images=int(scored.sum())
        )
