"""Detection AP50 / recall / localisation and depth AbsRel / delta_1 on cases small enough to work out by hand."""

import pytest
import torch

from gesco.datasets import Boxes
from gesco.evaluation.objects_depth import (
    DepthMeter,
    Detections,
    average_precision,
    box_iou,
    depth_errors,
    detection_scores,
)

CAR, PERSON = 26, 24


def truth(*rows) -> Boxes:
    xyxy = torch.tensor([r[:4] for r in rows], dtype=torch.float32).reshape(-1, 4)
    classes = torch.tensor([r[4] for r in rows], dtype=torch.long)
    return Boxes(xyxy=xyxy, classes=classes, instances=classes * 1000 + torch.arange(len(rows)))


def found(*rows) -> Detections:
    return Detections(
        boxes=torch.tensor([r[:4] for r in rows], dtype=torch.float32).reshape(-1, 4),
        classes=torch.tensor([r[4] for r in rows], dtype=torch.long),
        scores=torch.tensor([r[5] for r in rows], dtype=torch.float32),
    )


def test_box_iou():
    iou = box_iou(torch.tensor([[0.0, 0, 2, 2]]), torch.tensor([[1.0, 1, 3, 3], [2.0, 0, 4, 2], [0.0, 0, 2, 2]]))
    assert iou.shape == (1, 3) and iou[0].tolist() == pytest.approx([1 / 7, 0.0, 1.0])


def test_duplicates_are_false_positives_and_ap_is_all_point_interpolated():
    targets = [truth((0, 0, 10, 10, CAR), (20, 0, 30, 10, CAR))]
    # found, duplicate of the first car, found: TP FP TP -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1
    predictions = [found((0, 0, 10, 10, CAR, 0.9), (1, 0, 11, 10, CAR, 0.8), (20, 1, 30, 11, CAR, 0.7))]
    scores = detection_scores(predictions, targets, image_size=(40, 60))
    car = scores.per_class[CAR]
    assert car.ap50 == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert car.recall == 1.0 and car.num_targets == 2 and car.num_predictions == 3
    assert scores.map50 == pytest.approx(car.ap50)
    assert average_precision([True, False, True], 2) == pytest.approx(car.ap50)


def test_ap_takes_the_best_precision_at_each_recall_or_beyond():
    # TP FP FP TP TP over 3 targets: precision 1, 1/2, 1/3, 1/2, 3/5 at recall 1/3, 1/3, 1/3, 2/3, 1; the
    # envelope lifts the 1/2 at recall 2/3 to the 3/5 reached later
    assert average_precision([True, False, False, True, True], 3) == pytest.approx((1 + 0.6 + 0.6) / 3)


def test_a_class_predicted_but_absent_has_no_ap_and_does_not_touch_the_others():
    targets = [truth((0, 0, 10, 10, CAR))]
    predictions = [found((0, 0, 10, 10, PERSON, 0.99), (0, 0, 10, 10, CAR, 0.5))]
    scores = detection_scores(predictions, targets, image_size=(40, 60))
    assert scores.per_class[PERSON].ap50 is None and scores.per_class[PERSON].recall is None
    assert scores.per_class[PERSON].num_predictions == 1
    assert scores.per_class[CAR].ap50 == 1.0 and scores.map50 == 1.0


def test_empty_predictions_score_zero():
    targets = [truth((0, 0, 10, 10, CAR)), truth()]
    scores = detection_scores([found(), found()], targets, image_size=(40, 60), classes=(CAR, PERSON))
    assert scores.per_class[CAR].ap50 == 0.0 and scores.per_class[CAR].recall == 0.0
    assert scores.per_class[PERSON].ap50 is None and scores.per_class[PERSON].num_targets == 0
    assert scores.map50 == 0.0 and scores.localisation_px is None and scores.matched == 0


def test_matches_stay_within_their_image_and_need_iou_one_half():
    targets = [truth((0, 0, 10, 10, CAR)), truth((0, 0, 10, 10, CAR))]
    # image 0: the right box, but in image 1's list only; image 1: IoU 50/150 = 1/3 < 0.5
    predictions = [found(), found((5, 0, 15, 10, CAR, 0.9))]
    assert detection_scores(predictions, targets, image_size=(40, 60)).per_class[CAR].recall == 0.0
    predictions = [found(), found((0, 0, 10, 10, CAR, 0.9))]
    assert detection_scores(predictions, targets, image_size=(40, 60)).per_class[CAR].recall == 0.5
    # IoU exactly one half is a match (PASCAL VOC and COCO: IoU >= 0.5): a 10 x 5 box inside the 10 x 10 one
    predictions = [found(), found((0, 0, 10, 5, CAR, 0.9))]
    assert detection_scores(predictions, targets, image_size=(40, 60)).per_class[CAR].recall == 0.5


def test_localisation_error_of_matched_boxes():
    targets = [truth((0, 0, 20, 20, CAR))]
    predictions = [found((3, 4, 23, 24, CAR, 0.9))]  # centre 5 px off; IoU 272 / 528 > 0.5
    scores = detection_scores(predictions, targets, image_size=(30, 40))
    assert scores.localisation_px == pytest.approx(5.0)
    assert scores.localisation_diagonal == pytest.approx(0.1)  # diagonal of 30 x 40 is 50
    assert scores.matched == 1
    # a smaller box on the same centre (IoU 256 / 400) is not displaced at all
    same_centre = detection_scores([found((2, 2, 18, 18, CAR, 0.9))], targets, image_size=(30, 40))
    assert same_centre.matched == 1 and same_centre.localisation_px == 0.0


def test_score_threshold_limits_recall_not_ap():
    targets = [truth((0, 0, 10, 10, CAR))]
    predictions = [found((0, 0, 10, 10, CAR, 0.3))]
    scores = detection_scores(predictions, targets, image_size=(40, 60), score_threshold=0.5)
    assert scores.per_class[CAR].ap50 == 1.0 and scores.per_class[CAR].recall == 0.0


def test_bad_detection_inputs_raise():
    with pytest.raises(ValueError, match=r"boxes \(N, 4\)"):
        Detections(torch.zeros(2, 4), torch.zeros(3, dtype=torch.long), torch.zeros(2))
    with pytest.raises(ValueError, match="1 images of predictions but 2"):
        detection_scores([found()], [truth(), truth()], image_size=(4, 4))
    for area in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=f"min_area must be a finite area >= 0.*got {area}"):
            detection_scores([found()], [truth()], image_size=(4, 4), min_area=area)


def test_abs_rel_and_delta1_by_hand():
    target = torch.tensor([[2.0, 4.0], [0.0, 8.0]])  # 0: unknown depth, left out
    predicted = torch.tensor([[2.0, 5.0], [1.0, 16.0]])
    errors = depth_errors(predicted, target)
    assert errors.abs_rel.tolist() == pytest.approx([(0 + 0.25 + 1.0) / 3])
    assert errors.delta1.tolist() == pytest.approx([1 / 3])  # ratios 1, 1.25 (not < 1.25), 2
    capped = depth_errors(predicted, target, max_depth=5.0)  # 8 m is out of range; 5 m stays
    assert capped.abs_rel.tolist() == pytest.approx([0.125])
    # half the depth is as wrong as double: ratio 2 either way
    assert depth_errors(torch.tensor([[1.0, 2.0]]), torch.tensor([[2.0, 2.0]])).delta1.tolist() == [0.5]
    # a prediction beyond max_depth is clipped to it before scoring: |5 - 4| / 4
    clipped = depth_errors(torch.tensor([[100.0]]), torch.tensor([[4.0]]), max_depth=5.0)
    assert clipped.abs_rel.tolist() == pytest.approx([0.25])


def test_median_scaling_removes_a_global_scale():
    target = torch.tensor([[[1.0, 2.0, 4.0, 8.0]]])
    assert depth_errors(3 * target, target).abs_rel.item() == pytest.approx(2.0)
    scaled = depth_errors(3 * target, target, median_scaling=True)
    assert scaled.abs_rel.item() == pytest.approx(0.0) and scaled.delta1.item() == 1.0


def test_meter_averages_images_not_pixels():
    meter = DepthMeter()
    meter.update(torch.ones(1, 2, 2), torch.ones(1, 2, 2))  # 4 valid pixels, AbsRel 0
    meter.update(torch.full((1, 2, 2), 2.0), torch.tensor([[[1.0, 0.0], [0.0, 0.0]]]))  # 1 pixel, AbsRel 1
    meter.update(torch.ones(1, 2, 2), torch.zeros(1, 2, 2))  # nothing valid: not counted
    result = meter.result()
    assert result.abs_rel == pytest.approx(0.5) and result.delta1 == pytest.approx(0.5) and result.images == 2
    with pytest.raises(ValueError, match="same"):
        depth_errors(torch.ones(2, 2), torch.ones(2, 3))


def test_small_boxes_and_the_predictions_finding_them_are_left_out():
    targets = [truth((0, 0, 10, 10, CAR), (20, 0, 22, 4, CAR))]  # the second is 2 x 4 = 8 px^2
    predictions = [found((20, 0, 22, 4, CAR, 0.9), (40, 0, 50, 10, CAR, 0.8), (0, 0, 10, 10, CAR, 0.7))]
    every = detection_scores(predictions, targets, image_size=(40, 60)).per_class[CAR]
    assert every.num_targets == 2 and every.ap50 == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    large = detection_scores(predictions, targets, image_size=(40, 60), min_area=10).per_class[CAR]
    # left: a false positive (0.8) then the hit (0.7): precision 1/2 at recall 1
    assert large.num_targets == 1 and large.num_predictions == 2 and large.ap50 == pytest.approx(0.5)
    assert large.recall == 1.0
