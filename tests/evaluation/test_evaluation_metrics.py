import math

import pytest
import torch

from gesco.evaluation.metrics import (
    MS_SSIM_MIN_SIDE,
    DistributionMetrics,
    EvaluationClasses,
    PairedImageMetrics,
    SegmentationConfusion,
)
from gesco.semantics.classes import class_table

CITYSCAPES = class_table("cityscapes")
ROAD, SIDEWALK, BUILDING, UNLABELED, PARKING = 7, 8, 11, 0, 9  # parking (9) has no train id


def scores(predicted, target):
    confusion = SegmentationConfusion(EvaluationClasses.from_table(CITYSCAPES))
    confusion.update(torch.as_tensor(predicted), torch.as_tensor(target))
    return confusion.compute()


def test_cityscapes_evaluates_the_19_train_classes():
    classes = EvaluationClasses.from_table(CITYSCAPES)
    assert classes.num_classes == 19
    assert classes.names[0] == "road" and classes.names[-1] == "bicycle"
    assert classes.channel_to_class[ROAD] == 0 and classes.channel_to_class[UNLABELED] == -1
    ade = EvaluationClasses.from_table(class_table("ade20k"))
    assert ade.num_classes == 150 and ade.channel_to_class[150] == -1


def test_identical_maps_score_one():
    labels = torch.randint(0, 34, (2, 8, 8))
    result = scores(labels, labels)
    evaluated = {CITYSCAPES.names[c] for c in labels.unique().tolist() if CITYSCAPES.train_ids[c] != 255}
    assert result.miou == 1.0 and result.pixel_accuracy == 1.0
    assert set(result.per_class_iou) == evaluated  # absent classes left out


def test_hand_computed_confusion():
    # target:    road road road road | sidewalk sidewalk | building | unlabeled (ignored)
    # predicted: road road road side | sidewalk parking  | sidewalk | road
    target = [[ROAD, ROAD, ROAD, ROAD, SIDEWALK, SIDEWALK, BUILDING, UNLABELED]]
    predicted = [[ROAD, ROAD, ROAD, SIDEWALK, SIDEWALK, PARKING, SIDEWALK, ROAD]]
    result = scores(predicted, target)
    # road: TP 3, FN 1, FP 0 -> 3/4. sidewalk: TP 1, FN 1 (parking is no class), FP 2 -> 1/4. building: 0/1.
    assert result.per_class_iou == pytest.approx({"road": 0.75, "sidewalk": 0.25, "building": 0.0})
    assert result.miou == pytest.approx((0.75 + 0.25 + 0.0) / 3)
    assert result.pixel_accuracy == pytest.approx(4 / 7)
    assert result.pixels == 7


def test_confusion_accumulates_over_batches_and_accepts_no_class_predictions():
    confusion = SegmentationConfusion(EvaluationClasses.from_table(CITYSCAPES))
    confusion.update(torch.tensor([[ROAD, -1]]), torch.tensor([[ROAD, ROAD]]))
    confusion.update(torch.tensor([[ROAD]]), torch.tensor([[ROAD]]))
    result = confusion.compute()
    assert result.per_class_iou == {"road": pytest.approx(2 / 3)} and result.pixel_accuracy == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="differs"):
        confusion.update(torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long))
    empty = SegmentationConfusion(EvaluationClasses.from_table(CITYSCAPES))
    empty.update(torch.tensor([[UNLABELED]]), torch.tensor([[UNLABELED]]))
    with pytest.raises(ValueError, match="nothing to score"):
        empty.compute()


def test_ssim_psnr_of_identical_and_different_images(generator):
    images = torch.rand(3, 3, 24, 40, generator=generator) * 2 - 1
    metrics = PairedImageMetrics(ms_ssim=False)
    metrics.update(images, images)
    same = metrics.compute()
    assert same.ssim == pytest.approx(1.0, abs=1e-6) and math.isinf(same.psnr) and same.images == 3
    assert same.ms_ssim is None and same.lpips is None
    noisy = (images + 0.2 * torch.randn(images.shape, generator=generator)).clamp(-1, 1)
    metrics = PairedImageMetrics(ms_ssim=False)
    metrics.update(noisy, images)
    result = metrics.compute()
    assert 0 < result.ssim < 0.99
    quantised = lambda x: ((x + 1) * 127.5).round() / 255  # noqa: E731
    mse = (quantised(noisy) - quantised(images)).square().mean(dim=(1, 2, 3))
    assert result.psnr == pytest.approx(float((10 * torch.log10(1 / mse)).mean()), rel=1e-4)


def test_ms_ssim_and_lpips_hooks(generator):
    small = torch.zeros(1, 3, 32, 64)
    with pytest.raises(ValueError, match="MS-SSIM needs images of at least"):
        PairedImageMetrics(ms_ssim=True).update(small, small)
    side = MS_SSIM_MIN_SIDE
    images = torch.rand(2, 3, side, side, generator=generator) * 2 - 1
    calls = []

    def fake_lpips(a, b):
        calls.append(a.shape)
        return (a - b).abs().mean(dim=(1, 2, 3))

    metrics = PairedImageMetrics(ms_ssim=True, lpips=fake_lpips)
    metrics.update(images, images)
    result = metrics.compute()
    assert result.ms_ssim == pytest.approx(1.0, abs=1e-5) and result.lpips == 0.0 and calls


def test_distribution_metrics_self_zero_and_growing(generator):
    real = torch.randn(60, 8, generator=generator)
    metrics = DistributionMetrics(real, kid_subsets=20, kid_subset_size=50, seed=3)
    itself = metrics.score(real)
    assert abs(itself.fid) < 1e-6
    shifted = [metrics.score(real + shift) for shift in (0.1, 0.5, 1.0)]
    fids, kids = [s.fid for s in shifted], [s.kid_mean for s in shifted]
    assert fids == sorted(fids) and fids[0] > 0
    assert kids == sorted(kids) and kids[0] > itself.kid_mean
    again = metrics.score(real + 0.5)
    assert again.kid_mean == metrics.score(real + 0.5).kid_mean  # seeded subsets
    with pytest.raises(ValueError, match="generated features"):
        metrics.score(torch.zeros(1, 8))


def test_a_class_predicted_but_absent_from_the_target_scores_zero():
    # target: road x4. predicted: road x2, building x2 -> road 2/4; building (absent from the target) 0/2
    result = scores([[ROAD, ROAD, BUILDING, BUILDING]], [[ROAD, ROAD, ROAD, ROAD]])
    assert result.per_class_iou == pytest.approx({"road": 0.5, "building": 0.0})
    assert result.miou == pytest.approx(0.25)
