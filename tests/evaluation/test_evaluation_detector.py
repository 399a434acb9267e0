"""gesco's compact detector: decoding, targets, training through the shared loop, loading as ``--detector``."""

import math
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from gesco.cli.main import main
from gesco.config import ConfigError
from gesco.constants import VALIDATION_SEED_OFFSET
from gesco.datasets import SyntheticStreetsDataset, collate
from gesco.datasets.base import Boxes
from gesco.evaluation import detector_training
from gesco.evaluation.depth_network import DepthNetConfig, GescoDepthNet
from gesco.evaluation.detector import (
    OUTPUT_STRIDE,
    DetectorConfig,
    DetectorOutput,
    GescoDetector,
    decode_detections,
)
from gesco.evaluation.detector_training import (
    DetectionTargets,
    DetectorTrainConfig,
    augment_with_boxes,
    detection_loss,
    detection_targets,
    train_detector,
)
from gesco.evaluation.geometry_networks import load_detector
from gesco.evaluation.scorer_factory import ScoringNetworks, build_set_scorer
from gesco.semantics.classes import class_table
from gesco.training.config import DataConfig

TINY = DetectorConfig(input_size=(64, 128), widths=(4, 8), head_width=8)
PERSON, CAR = 24, 26


def test_decode_of_a_hand_made_heatmap():
    heatmap = torch.zeros(1, 2, 4, 8)
    heatmap[0, 0, 1, 2] = 0.9  # a peak ...
    heatmap[0, 0, 1, 3] = 0.5  # ... and its weaker neighbour, which the 3x3 peak test drops
    heatmap[0, 1, 3, 6] = 0.6
    size, offset = torch.zeros(1, 2, 4, 8), torch.zeros(1, 2, 4, 8)
    size[0, :, 1, 2] = torch.tensor([math.log(2.0), math.log(3.0)])  # 2 x 3 cells
    offset[0, :, 1, 2] = torch.tensor([0.5, 0.25])
    (found,) = decode_detections(
        heatmap, size, offset, class_ids=(PERSON, CAR), cell_size=(4.0, 4.0), image_size=(16, 32), min_score=0.1
    )
    # centre (2.5, 1.25) cells = (10, 5) px, 8 x 12 px, clipped at the top; the car: 1 cell = 4 px at (24, 12)
    assert torch.allclose(found.boxes, torch.tensor([[6.0, 0.0, 14.0, 11.0], [22.0, 10.0, 26.0, 14.0]]))
    assert found.classes.tolist() == [PERSON, CAR] and found.scores.tolist() == pytest.approx([0.9, 0.6])


def _scenes(count: int, *, height: int = 64, width: int = 128):
    return collate([SyntheticStreetsDataset(count, 600_000, height, width)[i] for i in range(count)])


def _perfect_heads(boxes, config: DetectorConfig, x: torch.Tensor, image_size) -> DetectorOutput:
    """The heads a perfect network gives on input ``x``: its targets, the heatmap as logits."""
    height, width = image_size
    grid = (-(-x.shape[-2] // OUTPUT_STRIDE), -(-x.shape[-1] // OUTPUT_STRIDE))
    cell = (OUTPUT_STRIDE * width / x.shape[-1], OUTPUT_STRIDE * height / x.shape[-2])
    targets = detection_targets(boxes, class_ids=config.class_ids, grid=grid, cell_size=cell)
    return DetectorOutput(torch.logit(targets.heatmap, eps=1e-6), targets.size, targets.offset)


def test_targets_decode_back_to_the_ground_truth_boxes():
    # a car, a person at a half-pixel edge, and a 2 px pole, at 64 x 128 read at 128 x 256 (cells of 2 px)
    xyxy = torch.tensor([[10.0, 20.0, 30.0, 34.0], [50.5, 10.0, 54.0, 40.0], [100.0, 5.0, 102.0, 50.0]])
    classes = torch.tensor([CAR, PERSON, 17])
    boxes = Boxes(xyxy, classes, classes * 1000)
    config = DetectorConfig()
    heads = _perfect_heads((boxes,), config, torch.zeros(1, 3, *config.input_size), (64, 128))
    (found,) = decode_detections(
        torch.sigmoid(heads.heatmap),
        heads.size,
        heads.offset,
        class_ids=config.class_ids,
        cell_size=(2.0, 2.0),
        image_size=(64, 128),
        min_score=0.5,
    )
    order = found.classes.argsort(descending=True)  # car, person, pole
    assert found.classes[order].tolist() == classes.tolist()
    assert torch.allclose(found.boxes[order], xyxy, atol=1e-4)


def test_the_focal_loss_by_hand():
    # three cells of one class, every logit 0 (p = 1/2): the object's centre (target 1), a cell beside it
    # (target 1/2) and a far one (target 0); the box heads are read at the centre only
    targets = DetectionTargets(
        heatmap=torch.tensor([1.0, 0.5, 0.0]).view(1, 1, 1, 3),
        size=torch.tensor([[math.log(2.0), 5.0, 5.0], [math.log(4.0), 5.0, 5.0]]).view(1, 2, 1, 3),
        offset=torch.tensor([[0.5, 9.0, 9.0], [0.25, 9.0, 9.0]]).view(1, 2, 1, 3),
        mask=torch.tensor([1.0, 0.0, 0.0]).view(1, 1, 1, 3),
    )
    output = DetectorOutput(torch.zeros(1, 1, 1, 3), torch.zeros(1, 2, 1, 3), torch.zeros(1, 2, 1, 3))
    loss = detection_loss(output, targets, size_weight=2.0, offset_weight=3.0)
    # -(1 - p)^2 log p at the centre; -(1 - y)^4 p^2 log(1 - p) elsewhere (1/16 of it beside the centre);
    # divided by the one object
    assert loss.heatmap.item() == pytest.approx((0.25 + 0.25 / 16 + 0.25) * math.log(2))
    assert loss.size.item() == pytest.approx((math.log(2) + math.log(4)) / 2)
    assert loss.offset.item() == pytest.approx((0.5 + 0.25) / 2)
    assert loss.total.item() == pytest.approx(loss.heatmap.item() + 2 * loss.size.item() + 3 * loss.offset.item())


def test_boxes_flip_with_their_images():
    # eight copies of a dark image with one bright box; the augmentation flips about half of them
    images = torch.full((8, 3, 16, 32), -1.0)
    images[:, :, 2:8, 4:10] = 1.0
    box = Boxes(torch.tensor([[4.0, 2.0, 10.0, 8.0]]), torch.tensor([CAR]), torch.tensor([CAR * 1000]))
    augmented, boxes = augment_with_boxes(images, (box,) * 8, torch.Generator().manual_seed(0))
    flips = 0
    for image, moved in zip(augmented, boxes):
        columns = image[:, 2:8].mean(dim=(0, 1))
        bright = torch.nonzero(columns > columns.mean()).flatten()
        # the bright columns are where the box says, to the pixel
        assert moved.xyxy[0].tolist() == [float(bright[0]), 2.0, float(bright[-1] + 1), 8.0]
        flips += moved.xyxy[0, 0].item() == 22.0
    assert 0 < flips < 8


def test_a_few_training_steps_lower_the_loss():
    batch = _scenes(4)
    torch.manual_seed(0)
    detector = GescoDetector(TINY)
    optimizer = torch.optim.AdamW(detector.parameters(), lr=5e-3)
    x = detector.network_input(batch.image)
    losses = []
    for _ in range(8):
        out = detector(x)
        cell = (OUTPUT_STRIDE * 128 / x.shape[-1], OUTPUT_STRIDE * 64 / x.shape[-2])
        targets = detection_targets(batch.boxes, class_ids=TINY.class_ids, grid=out.heatmap.shape[-2:], cell_size=cell)
        loss = detection_loss(out, targets)
        loss.total.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.total.item())
    assert losses[-1] < 0.7 * losses[0]


def test_trained_folder_loads_through_the_scoring_interface_and_a_perfect_network_scores_ap50_one(
    tmp_path, monkeypatch
):
    config = DetectorTrainConfig(
        output_dir=str(tmp_path / "run"),
        data=DataConfig(size=(32, 64), num_scenes=4, seed_offset=600_000),
        validation=DataConfig(size=(32, 64), num_scenes=2, seed_offset=VALIDATION_SEED_OFFSET),
        model=TINY.replace(input_size=(64, 128)),
        batch_size=2,
        max_steps=2,
        warmup_steps=0,
        checkpoint_every=2,
    )
    result = train_detector(config, progress=False)
    assert result.step == 2 and result.validation is not None and (tmp_path / "run" / "model").is_dir()
    assert isinstance(load_detector(tmp_path / "run" / "model"), GescoDetector)

    dataset = SyntheticStreetsDataset(2, 1_000_000, height=32, width=64)
    truth = tuple(dataset[i].boxes for i in range(2))

    def perfect(self, x):  # the oracle answers the evaluation set's boxes, in order
        return _perfect_heads(truth[: len(x)], self.config, x, (32, 64))

    monkeypatch.setattr(GescoDetector, "forward", perfect)
    networks = ScoringNetworks(fid=False, detector=tmp_path / "run" / "model", detector_min_area=4.0)
    scoring = build_set_scorer(networks, dataset, 2, class_table("cityscapes"), feature_dir=tmp_path, progress=False)
    detection = scoring.scorer.score_real().geometry.detection
    assert detection.map50 == pytest.approx(1.0) and detection.localisation_px == pytest.approx(0.0, abs=1e-4)


def test_train_detector_command(tmp_path):
    args = ["train-detector", "--out", str(tmp_path / "det"), "--steps", "1", "--batch-size", "2", "--scenes", "2"]
    args += ["--val-scenes", "2", "--size", "32x64", "--input-size", "32x64", "--widths", "4", "8", "--no-progress"]
    assert main(args) == 0
    saved = DetectorTrainConfig.load(tmp_path / "det")
    assert saved.model.input_size == (32, 64) and saved.data.seed_offset == 600_000
    assert GescoDetector.from_pretrained(tmp_path / "det" / "model").config.widths == (4, 8)
    assert not saved.data.riders and saved.model.class_ids == (17, 19, 20, 24, 26)
    # --riders trains and validates on scenes with cyclists, and detects riders and bicycles by default
    assert main([*args[:2], str(tmp_path / "riders"), *args[3:], "--riders"]) == 0
    saved = DetectorTrainConfig.load(tmp_path / "riders")
    assert saved.data.riders and saved.validation.riders
    assert saved.model.class_ids == (17, 19, 20, 24, 25, 26, 33)
    # --regenerated: with share 1 every training item is a regeneration (here grey images of scenes 5 and 6),
    # and the training step sees those images with those scenes' boxes
    for seed in (5, 6):
        (tmp_path / "regenerated").mkdir(exist_ok=True)
        Image.fromarray(np.full((32, 64, 3), 128, np.uint8)).save(tmp_path / f"regenerated/synthetic_{seed:07d}.png")
    scene_boxes = [SyntheticStreetsDataset(2, 5, height=32, width=64)[i].boxes.xyxy for i in range(2)]
    seen = []

    def recording(images, boxes, generator):
        seen.append((images.clone(), boxes))
        return images, boxes

    regenerated = ["--regenerated", str(tmp_path / "regenerated"), "--regenerated-share", "1"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(detector_training, "augment_with_boxes", recording)
        assert main([*args[:2], str(tmp_path / "regen"), *args[3:], *regenerated]) == 0
    saved = DetectorTrainConfig.load(tmp_path / "regen")
    assert saved.regenerated == (str(tmp_path / "regenerated"),) and saved.regenerated_share == 1.0
    [(images, boxes)] = seen  # one step of batch 2
    assert torch.allclose(images, torch.full_like(images, 128 / 127.5 - 1), atol=1e-6)
    assert sorted(b.xyxy.tolist() for b in boxes) == sorted(b.tolist() for b in scene_boxes)
    with pytest.raises(ValueError, match="regenerated_share"):
        DetectorTrainConfig(regenerated_share=0.0)
    # --texture-swap: the step swaps textures first, with the batch's instance maps, then augments
    assert not saved.texture_swap
    swapped = []

    def swap(images, instances, generator):
        swapped.append(instances.shape)
        return torch.full_like(images, -0.5)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(detector_training, "augment_with_boxes", recording)
        patch.setattr(detector_training, "texture_swap", swap)
        assert main([*args[:2], str(tmp_path / "swap"), *args[3:], *regenerated, "--texture-swap"]) == 0
    assert DetectorTrainConfig.load(tmp_path / "swap").texture_swap
    assert swapped == [(2, 32, 64)] and torch.equal(seen[-1][0], torch.full((2, 3, 32, 64), -0.5))


def test_init_weights_fine_tunes_a_trained_detector_with_its_settings(tmp_path):
    torch.manual_seed(5)
    start = GescoDetector(TINY.replace(input_size=(32, 64))).save_pretrained(tmp_path / "start")
    args = ["train-detector", "--steps", "1", "--batch-size", "2", "--scenes", "2", "--val-scenes", "2"]
    args += ["--size", "32x64", "--lr", "1e-9", "--no-progress", "--init-weights", str(start)]
    assert main([*args, "--out", str(tmp_path / "tuned")]) == 0
    saved = DetectorTrainConfig.load(tmp_path / "tuned")
    # the settings come from the starting network, not from the defaults (widths 16 32 64 96, input 128x256)
    assert saved.init_weights == str(start) and saved.model == GescoDetector.from_pretrained(start).config
    # at a vanishing learning rate the exported weights are still the starting ones, not fresh random ones (the
    # batch-norm statistics move with the data)
    networks = (GescoDetector.from_pretrained(p) for p in (start, tmp_path / "tuned" / "model"))
    before, after = (dict(n.named_parameters()) for n in networks)
    assert all(torch.allclose(before[k], after[k], atol=1e-6) for k in before)
    # other settings than the starting network's, or no such network: an error before anything is written
    assert main([*args, "--out", str(tmp_path / "never"), "--widths", "4", "16"]) == 2
    assert main([*args[:-1], str(tmp_path / "missing"), "--out", str(tmp_path / "never")]) == 2
    assert not (tmp_path / "never").exists()
    other = saved.model.replace(head_width=4)
    with pytest.raises(ValueError, match=r"\['head_width'\] differ"):
        train_detector(saved.replace(output_dir=str(tmp_path / "never"), model=other), progress=False)
    with pytest.raises(FileNotFoundError, match="init_weights"):
        train_detector(saved.replace(output_dir=str(tmp_path / "never"), init_weights="no-such-model"), progress=False)
    assert not (tmp_path / "never").exists()
    # a resumed run takes its weights from its checkpoint, so the starting folder may be gone
    shutil.rmtree(start)
    assert main(["train-detector", "--out", str(tmp_path / "tuned"), "--resume", "--steps", "2", "--no-progress"]) == 0
    assert DetectorTrainConfig.load(tmp_path / "tuned").max_steps == 2


def test_bad_inputs_give_typed_errors(tmp_path):
    with pytest.raises(ValueError, match="class_ids"):
        DetectorConfig(class_ids=())
    with pytest.raises(ValueError, match="input_size"):
        DetectorConfig(input_size=(2, 8))
    with pytest.raises(ValueError, match="evaluation seeds"):
        DetectorTrainConfig(data=DataConfig(num_scenes=10, seed_offset=999_995))
    with pytest.raises(ValueError, match="synthetic"):
        DetectorTrainConfig(data=DataConfig(kind="cityscapes", root=str(tmp_path)))
    # road has no boxes, 999 is no label id: neither heatmap would ever see an object
    for class_ids, unboxed in (((7, 26), 7), ((26, 999), 999)):
        with pytest.raises(ValueError, match=rf"classes \[{unboxed}\] have no boxes"):
            DetectorTrainConfig(model=DetectorConfig(class_ids=class_ids))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        GescoDetector(TINY).detect(torch.zeros(1, 1, 32, 64))
    with pytest.raises(ValueError, match="heatmap must be"):
        decode_detections(
            torch.zeros(1, 3, 4, 4),
            torch.zeros(1, 2, 4, 4),
            torch.zeros(1, 2, 4, 4),
            class_ids=(1, 2),
            cell_size=(1, 1),
            image_size=(4, 4),
        )
    with pytest.raises(ValueError, match="size must be"):
        decode_detections(
            torch.zeros(1, 2, 4, 4),
            torch.zeros(1, 2, 4, 5),
            torch.zeros(1, 2, 4, 4),
            class_ids=(1, 2),
            cell_size=(1, 1),
            image_size=(4, 4),
        )
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="not a gesco detector folder"):
        load_detector(tmp_path / "empty")
    GescoDepthNet(DepthNetConfig(widths=(2, 2))).save_pretrained(tmp_path / "depth")
    with pytest.raises(ConfigError, match="DepthNetConfig"):
        load_detector(tmp_path / "depth")
    GescoDetector(TINY).save_pretrained(tmp_path / "det")
    with pytest.raises(ValueError, match="carries its own config"):
        load_detector(tmp_path / "det", tmp_path / "det.json")
    boxes = Boxes(torch.tensor([[0.0, 0.0, 4.0, 4.0]]), torch.tensor([CAR]), torch.tensor([CAR * 1000]))
    out = GescoDetector(TINY)(torch.zeros(1, 3, 64, 128))
    wrong = detection_targets((boxes,), class_ids=TINY.class_ids, grid=(8, 8), cell_size=(4.0, 4.0))
    with pytest.raises(ValueError, match="output grid"):
        detection_loss(out, wrong)
