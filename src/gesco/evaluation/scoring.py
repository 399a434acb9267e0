"""Scoring one set of images of an evaluation sweep against its ground truth.

A set is a folder of PNGs named like the ground-truth samples. :class:`SetScorer` holds what every set is
scored with (segmenter, LPIPS, Inception features of the real images for FID / KID) and scores a set in one
pass over its images: segmenter mIoU against the transmitted maps, SSIM / MS-SSIM / PSNR / LPIPS against the
ground-truth images, FID / KID against the real images, and, with a detector or a depth network, the objects
and depth against the ground truth the batches carry (:class:`~gesco.evaluation.geometry_scoring.GeometryMeter`).
Inception features are cached per set beside the images' folder tree (``features/...safetensors``), so a rerun
scores a finished set without the network.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from gesco.datasets.base import Batch, collate, image_to_tensor
from gesco.evaluation.geometry_scoring import GeometryMeter, GeometryScores
from gesco.evaluation.inception import InceptionFeatures
from gesco.evaluation.metrics import (
    DistributionMetrics,
    DistributionScores,
    EvaluationClasses,
    PairedImageMetrics,
    PairedScores,
    SegmentationConfusion,
    SegmentationScores,
)
from gesco.evaluation.segmenter import Segmenter
from gesco.io import save_tensors


@dataclass(frozen=True)
class SetScores:
    """Every metric of one set; a part is None when it was not computed (no segmenter, a reference...)."""

    segmentation: SegmentationScores | None = None
    paired: PairedScores | None = None
    distribution: DistributionScores | None = None
    geometry: GeometryScores | None = None


def ground_truth_batches(dataset: Dataset, count: int, batch_size: int) -> Iterator[Batch]:
    """Items 0 .. count - 1 of ``dataset`` in batches, in order."""
    for first in range(0, count, batch_size):
        yield collate([dataset[i] for i in range(first, min(first + batch_size, count))])


def read_images(paths: Sequence[Path]) -> torch.Tensor:
    """PNG files -> float (B, 3, H, W) in [-1, 1]."""
    return torch.stack([image_to_tensor(np.asarray(Image.open(p).convert("RGB"))) for p in paths])


def image_path(folder: Path, name: str) -> Path:
    return folder / f"{name}.png"


class FeatureCache:
    """Inception features of a set, stored with the sample names and the extractor they came from."""

    def __init__(self, path: Path, names: Sequence[str], extractor: str):
        self.path, self.names, self.extractor = path, list(names), extractor

    def load(self) -> torch.Tensor | None:
        if not self.path.is_file():
            return None
        with safe_open(str(self.path), framework="pt") as stored:
            metadata = stored.metadata() or {}
            if json.loads(metadata.get("names", "[]")) != self.names or metadata.get("extractor") != self.extractor:
                return None
            return stored.get_tensor("features")

    def save(self, features: torch.Tensor) -> None:
        save_tensors(
            self.path, {"features": features}, metadata={"names": json.dumps(self.names), "extractor": self.extractor}
        )


class SetScorer:
    """Scores sets of generated images against ``count`` ground-truth items of ``dataset``.

    Args:
        dataset: the evaluation data (Samples with image, labels, name), items 0 .. count - 1 used.
        classes: the evaluation classes of the mIoU.
        segmenter: segments the generated images (None: no mIoU).
        lpips: the perceptual distance (None: no LPIPS).
        ms_ssim: compute MS-SSIM (the images must be large enough).
        inception: feature extractor for FID / KID (None: no FID / KID).
        feature_dir: where the Inception features of each set are cached.
        geometry: makes a fresh :class:`~gesco.evaluation.geometry_scoring.GeometryMeter` (detector and / or
            depth network) for each set scored (None: no detection or depth metrics).
        label_names: class name of each ground-truth box label id, for the reports' per-class keys.
        device: where the networks run (they must be there already); scores are gathered on the CPU.
    """

    def __init__(
        self,
        dataset: Dataset,
        count: int,
        classes: EvaluationClasses,
        *,
        segmenter: Segmenter | None,
        lpips: torch.nn.Module | None,
        ms_ssim: bool,
        inception: InceptionFeatures | None,
        feature_dir: Path,
        batch_size: int = 16,
        kid_subsets: int = 100,
        seed: int = 0,
        geometry: Callable[[], GeometryMeter] | None = None,
        label_names: Mapping[int, str] | None = None,
        device: str | torch.device = "cpu",
        progress: bool = True,
    ):
        self.dataset, self.count, self.classes = dataset, count, classes
        self.geometry, self.label_names = geometry, dict(label_names or {})
        self.segmenter, self.lpips, self.ms_ssim, self.inception = segmenter, lpips, ms_ssim, inception
        self.feature_dir, self.batch_size, self.progress = feature_dir, batch_size, progress
        self.device = torch.device(device)
        self.names = [dataset[i].name for i in range(count)]
        self._distribution: DistributionMetrics | None = None
        self._kid_subsets, self._seed = kid_subsets, seed

    def _batches(self, description: str) -> Iterator[Batch]:
        total = -(-self.count // self.batch_size)
        return tqdm(
            ground_truth_batches(self.dataset, self.count, self.batch_size),
            total=total,
            disable=not self.progress,
            desc=description,
            unit="batch",
        )

    def _feature_cache(self, key: str) -> FeatureCache:
        return FeatureCache(self.feature_dir / f"{key}.safetensors", self.names, str(self.inception.path))

    def _distribution_metrics(self) -> DistributionMetrics:
        if self._distribution is None:
            cache = self._feature_cache("real")
            features = cache.load()
            if features is None:
                features = torch.cat(
                    [self.inception(b.image.to(self.device)).cpu() for b in self._batches("inception real")]
                )
                cache.save(features)
            self._distribution = DistributionMetrics(features, kid_subsets=self._kid_subsets, seed=self._seed)
        return self._distribution

    def score_real(self) -> SetScores:
        """The real images as if they were regenerations: the segmenter's mIoU and the detection and depth
        scores on the ground truth (the ceiling of the regenerations)."""
        if self.segmenter is None and self.geometry is None:
            return SetScores()
        confusion = SegmentationConfusion(self.classes) if self.segmenter is not None else None
        geometry = self.geometry() if self.geometry is not None else None
        for batch in self._batches("score real images"):
            images = batch.image.to(self.device)
            if confusion is not None:
                confusion.update(self.segmenter.predict(images), batch.labels)
            if geometry is not None:
                geometry.update(images, batch)
        return SetScores(
            segmentation=confusion.compute() if confusion is not None else None,
            geometry=geometry.compute() if geometry is not None else None,
        )

    def score_maps(self, predicted_maps: Callable[[Batch, int], torch.Tensor], description: str) -> SetScores:
        """mIoU of label maps made from the ground truth, e.g. the argmax of received maps.

        ``predicted_maps(batch, first_index)`` returns int64 (B, H, W) channel ids for the batch.
        """
        confusion = SegmentationConfusion(self.classes)
        for number, batch in enumerate(self._batches(description)):
            confusion.update(predicted_maps(batch, number * self.batch_size), batch.labels)
        return SetScores(segmentation=confusion.compute())

    def score_images(self, folder: Path, key: str) -> SetScores:
        """Score the PNGs in ``folder`` (one per ground-truth name); ``key`` names its feature cache."""
        missing = [n for n in self.names if not image_path(folder, n).is_file()]
        if missing:
            raise FileNotFoundError(f"{len(missing)} images missing in {folder}, e.g. {missing[:3]}")
        confusion = SegmentationConfusion(self.classes) if self.segmenter is not None else None
        paired = PairedImageMetrics(lpips=self.lpips, ms_ssim=self.ms_ssim)
        geometry = self.geometry() if self.geometry is not None else None
        cache = self._feature_cache(key) if self.inception is not None else None
        cached = cache.load() if cache is not None else None
        features = []
        for batch in self._batches(f"score {key}"):
            generated = read_images([image_path(folder, n) for n in batch.names]).to(self.device)
            if confusion is not None:
                confusion.update(self.segmenter.predict(generated), batch.labels)
            paired.update(generated, batch.image.to(self.device))
            if geometry is not None:
                geometry.update(generated, batch)
            if cache is not None and cached is None:
                features.append(self.inception(generated).cpu())
        distribution = None
        if cache is not None:
            if cached is None:
                cached = torch.cat(features)
                cache.save(cached)
            distribution = self._distribution_metrics().score(cached)
        return SetScores(
            segmentation=confusion.compute() if confusion is not None else None,
            paired=paired.compute(),
            distribution=distribution,
            geometry=geometry.compute() if geometry is not None else None,
        )
