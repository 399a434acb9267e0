"""Objects, locations and depth of a set of images, batch by batch: a detector and a depth network run on each
image (regenerated or real) and are scored against the ground truth the batch carries.

Use it as :class:`~gesco.evaluation.metrics.SegmentationConfusion` is used: one :class:`GeometryMeter` per
scored set, ``update(images, batch)`` per batch, ``compute()`` at the end. Scoring the real images the same
way gives the ceiling the regenerations are compared with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from gesco.datasets.base import Batch, Boxes
from gesco.evaluation.geometry_networks import DepthEstimator, Detector
from gesco.evaluation.objects_depth import DepthMeter, DepthScores, Detections, DetectionScores, detection_scores

#: Farthest ground truth scored (m), as the KITTI and Cityscapes depth benchmarks: beyond it (the synthetic
#: sky at 1000 m, far façades) a monocular estimate says little.
DEFAULT_MAX_DEPTH_M = 80.0


@dataclass(frozen=True)
class GeometryScores:
    """Detection and depth of one set; a part is None when its network was not given."""

    detection: DetectionScores | None
    depth: DepthScores | None

    def flat(self, class_names: dict[int, str]) -> dict[str, float | None]:
        """Flat metric keys for reports and tables: ``ap50``, ``ap50/<class>``, ``recall/<class>``,
        ``localisation_px``, ``localisation_diagonal``, ``abs_rel``, ``delta1`` (None: not defined)."""
        out: dict[str, float | None] = {}
        if self.detection is not None:
            out["ap50"] = self.detection.map50
            for label, scores in self.detection.per_class.items():
                name = class_names.get(label, str(label))
                out[f"ap50/{name}"] = scores.ap50
                out[f"recall/{name}"] = scores.recall
            out["localisation_px"] = self.detection.localisation_px
            out["localisation_diagonal"] = self.detection.localisation_diagonal
        if self.depth is not None:
            out["abs_rel"] = self.depth.abs_rel
            out["delta1"] = self.depth.delta1
        return out


class GeometryMeter:
    """Runs ``detector`` and ``depth_estimator`` (either may be None) on a set's images and scores them.

    Args:
        detector, depth_estimator: the networks (already on the images' device).
        classes: the detector's classes, reported even where a set has none of them.
        scored_classes: the classes AP50, recall and localisation are over (the detector's own): ground-truth
            boxes of any other class are left out, so a detector is not scored on classes it cannot name (a
            Cityscapes polygons file also boxes trucks, buses and trains). None: every class.
        score_threshold: predictions below it count for AP but not for recall or localisation.
        min_area: ground-truth boxes smaller than this (px^2) are left out (see ``detection_scores``).
        median_scaling: rescale each depth map to the ground truth's median (scale-ambiguous networks).
        max_depth: farthest ground-truth depth scored (m), None for all.
    """

    def __init__(
        self,
        *,
        detector: Detector | None,
        depth_estimator: DepthEstimator | None,
        classes: Sequence[int] = (),
        scored_classes: Sequence[int] | None = None,
        score_threshold: float = 0.0,
        min_area: float = 0.0,
        median_scaling: bool = False,
        max_depth: float | None = DEFAULT_MAX_DEPTH_M,
    ) -> None:
        if detector is None and depth_estimator is None:
            raise ValueError("a GeometryMeter needs a detector, a depth estimator, or both")
        self.detector, self.depth_estimator = detector, depth_estimator
        self.classes, self.score_threshold, self.min_area = tuple(classes), score_threshold, min_area
        self._scored = None if scored_classes is None else torch.tensor(sorted(set(scored_classes)), dtype=torch.long)
        self._depth = DepthMeter(median_scaling=median_scaling, max_depth=max_depth)
        self._predictions: list[Detections] = []
        self._targets: list = []
        self._image_size: tuple[int, int] | None = None

    def update(self, images: torch.Tensor, batch: Batch) -> None:
        """Score float (B, 3, H, W) images in [-1, 1] against the ground truth of ``batch`` (same items)."""
        if len(images) != len(batch.names):
            raise ValueError(f"{len(images)} images for a batch of {len(batch.names)} ground-truth items")
        self._image_size = (images.shape[-2], images.shape[-1])
        if self.detector is not None:
            if batch.boxes is None:
                raise ValueError(f"batch {batch.names[:3]}... has no ground-truth boxes; the data set must carry them")
            self._predictions += [
                Detections(d.boxes.cpu(), d.classes.cpu(), d.scores.cpu()) for d in self.detector.detect(images)
            ]
            self._targets += [self._only_scored(t) for t in batch.boxes] if self._scored is not None else batch.boxes
        if self.depth_estimator is not None:
            if batch.depth is None:
                raise ValueError(f"batch {batch.names[:3]}... has no ground-truth depth; the data set must carry it")
            self._depth.update(self.depth_estimator.estimate(images), batch.depth)

    def _only_scored(self, boxes: Boxes) -> Boxes:
        """Ground-truth ``boxes`` without those of unscored classes."""
        keep = torch.isin(boxes.classes, self._scored)
        return Boxes(xyxy=boxes.xyxy[keep], classes=boxes.classes[keep], instances=boxes.instances[keep])

    def compute(self) -> GeometryScores:
        detection = None
        if self.detector is not None and self._image_size is not None:
            detection = detection_scores(
                self._predictions,
                self._targets,
                image_size=self._image_size,
                classes=self.classes,
                score_threshold=self.score_threshold,
                min_area=self.min_area,
            )
        return GeometryScores(
            detection=detection, depth=self._depth.result() if self.depth_estimator is not None else None
        )
