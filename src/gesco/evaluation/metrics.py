"""Metrics of regenerated images: mIoU / pixel accuracy, SSIM / MS-SSIM / PSNR / LPIPS, FID / KID.

- Segmentation (mIoU of a segmenter run on the regeneration, against the transmitted map): one confusion
  matrix accumulated over the whole set (torchmetrics), IoU_c = TP / (TP + FP + FN) per evaluation class;
  classes absent from both prediction and target are left out of the mean.
- Paired image quality (regeneration vs ground truth): per-image SSIM, MS-SSIM, PSNR (torchmetrics) and
  LPIPS, averaged over the set, on 8-bit-quantised images in [0, 1].
- Distribution distances (regenerations vs real images): torchmetrics' FID and KID on Inception-V3 pool
  features (:mod:`gesco.evaluation.inception`), extracted once per image and shared by both.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
from torch import nn
from torchmetrics.classification import MulticlassConfusionMatrix
from torchmetrics.functional.image import (
    multiscale_structural_similarity_index_measure,
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from gesco.semantics.classes import ClassTable

#: Train-id value of a Cityscapes channel that is not evaluated.
NOT_EVALUATED = 255
#: Smallest image side torchmetrics' MS-SSIM (5 scales, 11-px Gaussian window) accepts: side // 16 > 10.
MS_SSIM_MIN_SIDE = 11 * 16


@dataclass(frozen=True)
class EvaluationClasses:
    """The classes mIoU is computed over, and which class-table channel belongs to which.

    ``channel_to_class[c]`` is the evaluation class of channel ``c``, or -1 if the channel is not evaluated
    (target pixels of such channels are ignored; predicting one is a miss).
    """

    names: tuple[str, ...]
    channel_to_class: tuple[int, ...]

    @classmethod
    def from_table(cls, table: ClassTable) -> EvaluationClasses:
        """Cityscapes: the 19 train classes (the field's standard); other tables: every channel but
        ``table.ignore_index``."""
        if table.train_ids is not None:
            train_ids = sorted({t for t in table.train_ids if t != NOT_EVALUATED})
            names = tuple(table.names[table.train_ids.index(t)] for t in train_ids)
            mapping = tuple(train_ids.index(t) if t != NOT_EVALUATED else -1 for t in table.train_ids)
            return cls(names, mapping)
        kept = [c for c in range(table.num_classes) if c != table.ignore_index]
        return cls(
            tuple(table.names[c] for c in kept),
            tuple(kept.index(c) if c in kept else -1 for c in range(table.num_classes)),
        )

    @property
    def num_classes(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class SegmentationScores:
    """mIoU over the classes that occur (in target or prediction), pixel accuracy, and per-class IoU.

    ``per_class_iou`` maps class name -> IoU, for the classes that occur only.
    """

    miou: float
    pixel_accuracy: float
    per_class_iou: dict[str, float]
    pixels: int


class SegmentationConfusion:
    """A confusion matrix over a whole set, fed batch by batch with class-table channel ids.

    Each process scores what it is fed (no synchronisation between processes).

    >>> import torch
    >>> from gesco.semantics import class_table
    >>> confusion = SegmentationConfusion(EvaluationClasses.from_table(class_table("cityscapes")))
    >>> confusion.update(torch.tensor([[7, 7, 8, 8]]), torch.tensor([[7, 7, 7, 8]]))
    >>> scores = confusion.compute()
    >>> round(scores.miou, 4), scores.pixel_accuracy, scores.per_class_iou
    (0.5833, 0.75, {'road': 0.6666666666666666, 'sidewalk': 0.5})
    """

    def __init__(self, classes: EvaluationClasses):
        self.classes = classes
        k = classes.num_classes
        # Predictions of channels outside the evaluation go to an extra "void" column (a miss); targets
        # outside it are ignored.
        self._void, self._ignored = k, k + 1
        lookup = torch.tensor(classes.channel_to_class, dtype=torch.long)
        self._lookup = torch.where(lookup < 0, torch.tensor(k), lookup)
        self._matrix = MulticlassConfusionMatrix(
            num_classes=k + 1, ignore_index=self._ignored, validate_args=False, sync_on_compute=False
        )

    def _classes(self, channels: torch.Tensor) -> torch.Tensor:
        channels = channels.long().cpu()
        valid = (channels >= 0) & (channels < len(self._lookup))
        return torch.where(valid, self._lookup[channels.clamp(0, len(self._lookup) - 1)], torch.tensor(self._void))

    def update(self, predicted: torch.Tensor, target: torch.Tensor) -> None:
        """predicted, target: int (B, H, W) channel ids (predicted may hold -1 = no class)."""
        if predicted.shape != target.shape:
            raise ValueError(f"prediction shape {tuple(predicted.shape)} differs from target {tuple(target.shape)}")
        target_classes = self._classes(target)
        target_classes[target_classes == self._void] = self._ignored
        self._matrix.update(self._classes(predicted).flatten(), target_classes.flatten())

    def compute(self) -> SegmentationScores:
        matrix = self._matrix.compute().double()  # rows: target, columns: prediction
        k = self.classes.num_classes
        true_positive = matrix.diagonal()[:k]
        in_target, in_prediction = matrix[:k].sum(dim=1), matrix[:, :k].sum(dim=0)
        union = in_target + in_prediction - true_positive
        occurs = union > 0
        if not occurs.any():
            raise ValueError("no evaluated pixel in the targets or predictions: nothing to score")
        iou = true_positive[occurs] / union[occurs]
        names = [name for name, present in zip(self.classes.names, occurs.tolist()) if present]
        pixels = int(in_target.sum())
        return SegmentationScores(
            miou=float(iou.mean()),
            pixel_accuracy=float(true_positive.sum() / pixels) if pixels else math.nan,
            per_class_iou=dict(zip(names, iou.tolist())),
            pixels=pixels,
        )


def set_miou(predicted: torch.Tensor, labels: torch.Tensor, classes: EvaluationClasses) -> float:
    """mIoU of one set given at once: predicted and target channel ids of the same shape."""
    confusion = SegmentationConfusion(classes)
    confusion.update(predicted, labels)
    return confusion.compute().miou


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> float [0, 1], quantised to the 256 levels the images are stored with."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round() / 255


@dataclass(frozen=True)
class PairedScores:
    """Means over the set of per-image scores of regeneration vs ground truth (None: not computed)."""

    ssim: float
    psnr: float
    ms_ssim: float | None
    lpips: float | None
    images: int


class PairedImageMetrics:
    """SSIM, PSNR, and optionally MS-SSIM and LPIPS between regenerations and their ground truth.

    Args:
        lpips: a perceptual distance ``(a, b) -> (B,)`` on [-1, 1] images (:mod:`gesco.evaluation.lpips`),
            or None to skip LPIPS.
        ms_ssim: compute MS-SSIM (5 scales; needs both sides >= ``MS_SSIM_MIN_SIDE``).
    """

    def __init__(self, *, lpips: nn.Module | None = None, ms_ssim: bool = True):
        self.lpips = lpips
        self.ms_ssim = ms_ssim
        self._sums = {"ssim": 0.0, "psnr": 0.0, "ms_ssim": 0.0, "lpips": 0.0}
        self._count = 0

    @torch.no_grad()
    def update(self, generated: torch.Tensor, reference: torch.Tensor) -> None:
        """generated, reference: float (B, 3, H, W) in [-1, 1]."""
        if generated.shape != reference.shape:
            raise ValueError(
                f"generated images {tuple(generated.shape)} and references {tuple(reference.shape)} differ"
            )
        a, b = to_unit_range(generated), to_unit_range(reference)
        if self.ms_ssim and min(a.shape[-2:]) < MS_SSIM_MIN_SIDE:
            raise ValueError(
                f"MS-SSIM needs images of at least {MS_SSIM_MIN_SIDE} px a side, got "
                f"{tuple(a.shape[-2:])}; pass ms_ssim=False"
            )
        self._sums["ssim"] += float(structural_similarity_index_measure(a, b, data_range=1.0, reduction="sum"))
        self._sums["psnr"] += float(
            peak_signal_noise_ratio(a, b, data_range=1.0, reduction="none", dim=(1, 2, 3)).sum()
        )
        if self.ms_ssim:
            self._sums["ms_ssim"] += float(
                multiscale_structural_similarity_index_measure(a, b, data_range=1.0, reduction="sum")
            )
        if self.lpips is not None:
            self._sums["lpips"] += float(self.lpips(a * 2 - 1, b * 2 - 1).sum())  # [0, 1] back to [-1, 1]
        self._count += a.shape[0]

    def compute(self) -> PairedScores:
        if not self._count:
            raise ValueError("no image pairs were given")
        mean = {name: total / self._count for name, total in self._sums.items()}
        return PairedScores(
            ssim=mean["ssim"],
            psnr=mean["psnr"],
            ms_ssim=mean["ms_ssim"] if self.ms_ssim else None,
            lpips=mean["lpips"] if self.lpips is not None else None,
            images=self._count,
        )


class PrecomputedFeatures(nn.Module):
    """The 'feature extractor' for torchmetrics' FID / KID when features were extracted beforehand:
    pass (B, D) features where images would go, and they come out unchanged."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.dim() != 2 or features.shape[1] != self.num_features:
            raise ValueError(f"expected features of shape (B, {self.num_features}), got {tuple(features.shape)}")
        return features


@dataclass(frozen=True)
class DistributionScores:
    """FID and KID (mean and standard deviation over random subsets) of one generated set."""

    fid: float
    kid_mean: float
    kid_std: float
    images: int


class DistributionMetrics:
    """FID and KID of generated sets against one real set, all given as features (N, D), in this process only.

    Args:
        real_features: float (N, D) features of the real images (e.g. Inception pool features).
        kid_subsets, kid_subset_size: KID averages the polynomial-kernel MMD over this many random subsets
            of this size (capped at the smaller set's size).
        seed: seeds the KID subsets, so a score is reproducible.
    """

    def __init__(
        self, real_features: torch.Tensor, *, kid_subsets: int = 100, kid_subset_size: int = 1000, seed: int = 0
    ):
        if real_features.dim() != 2 or real_features.shape[0] < 2:
            raise ValueError(f"real features must be (N >= 2, D), got {tuple(real_features.shape)}")
        self.num_features = real_features.shape[1]
        self.kid_subsets, self.kid_subset_size, self.seed = kid_subsets, kid_subset_size, seed
        self.real_count = real_features.shape[0]
        passthrough = PrecomputedFeatures(self.num_features)
        self._fid = FrechetInceptionDistance(feature=passthrough, reset_real_features=False, sync_on_compute=False)
        self._fid.update(real_features.double(), real=True)
        self._real = real_features.float()

    def score(self, fake_features: torch.Tensor) -> DistributionScores:
        """FID and KID of one generated set, float (M >= 2, D) features (the real features stay)."""
        if fake_features.dim() != 2 or fake_features.shape[1] != self.num_features or fake_features.shape[0] < 2:
            raise ValueError(
                f"generated features must be (M >= 2, {self.num_features}), got {tuple(fake_features.shape)}"
            )
        self._fid.reset()
        self._fid.update(fake_features.double(), real=False)
        fid = float(self._fid.compute())
        subset_size = min(self.kid_subset_size, self.real_count, fake_features.shape[0])
        with warnings.catch_warnings():  # torchmetrics warns that KID keeps features: they are here already
            warnings.simplefilter("ignore", UserWarning)
            kid = KernelInceptionDistance(
                feature=PrecomputedFeatures(self.num_features),
                subsets=self.kid_subsets,
                subset_size=subset_size,
                sync_on_compute=False,
            )
        kid.update(self._real, real=True)
        kid.update(fake_features.float(), real=False)
        # torchmetrics draws the KID subsets from the global generator: fork it so the score is reproducible
        # and nothing else's randomness moves.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            kid_mean, kid_std = kid.compute()
        return DistributionScores(
            fid=fid, kid_mean=float(kid_mean), kid_std=float(kid_std), images=fake_features.shape[0]
        )
