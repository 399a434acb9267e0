"""gesco's compact depth network: output, loss, training through the shared loop, loading as ``--depth``."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from gesco.cli.main import main
from gesco.constants import VALIDATION_SEED_OFFSET
from gesco.datasets import SyntheticStreetsDataset, collate
from gesco.datasets.regenerated import RegeneratedScenes
from gesco.evaluation import depth_training, geometry_augment
from gesco.evaluation.depth_network import DepthNetConfig, GescoDepthNet, depth_loss
from gesco.evaluation.depth_training import DepthTrainConfig, appearance_augment, train_depth
from gesco.evaluation.detector import DetectorConfig, GescoDetector
from gesco.evaluation.geometry_augment import texture_swap
from gesco.evaluation.geometry_networks import load_depth_estimator
from gesco.evaluation.scorer_factory import ScoringNetworks, build_set_scorer
from gesco.semantics.classes import class_table
from gesco.training.config import DataConfig

TINY = DepthNetConfig(widths=(4, 8))


def test_depth_is_positive_in_range_at_any_size():
    torch.manual_seed(0)
    network = GescoDepthNet(TINY)
    depth = network.estimate(torch.rand(2, 3, 21, 37) * 2 - 1)
    assert depth.shape == (2, 21, 37) and depth.dtype == torch.float32
    assert (depth >= TINY.min_depth).all() and (depth <= TINY.max_depth).all()


def test_loss_is_zero_for_the_truth_and_scale_invariant_at_full_variance_focus():
    target = torch.rand(2, 8, 8) * 50 + 1
    target[0, 0, 0] = 0.0  # unknown: left out
    log_truth = target.clamp(min=1e-3).log()
    assert depth_loss(log_truth, target).item() == pytest.approx(0.0, abs=1e-6)
    doubled = log_truth + math.log(2.0)
    assert depth_loss(doubled, target, variance_focus=1.0, l1_weight=0.0).item() == pytest.approx(0.0, abs=1e-5)
    assert depth_loss(doubled, target).item() == pytest.approx(0.15 * math.log(2) ** 2 + math.log(2), rel=1e-4)


def test_loss_is_per_image_and_images_weigh_alike():
    # image 0: 16 valid pixels, all twice as far; image 1: 4 valid pixels, all four times as far
    target = torch.rand(2, 4, 4) * 50 + 1
    target[1, :, :3] = 0.0
    log_depth = target.clamp(min=1e-3).log() + torch.tensor([math.log(2.0), 2 * math.log(2.0)]).view(2, 1, 1)
    # each image's own global scale is forgiven, not the batch's
    assert depth_loss(log_depth, target, variance_focus=1.0, l1_weight=0.0).item() == pytest.approx(0.0, abs=1e-5)
    # the mean over images, not over pixels: (1 + 4) / 2 log(2)^2, where pooling would give (16 + 16) / 20
    squared = depth_loss(log_depth, target, variance_focus=0.0, l1_weight=0.0).item()
    assert squared == pytest.approx(2.5 * math.log(2) ** 2, rel=1e-4)


def test_a_few_training_steps_lower_the_loss():
    batch = collate([SyntheticStreetsDataset(4, 600_000, 32, 64)[i] for i in range(4)])
    torch.manual_seed(0)
    network = GescoDepthNet(TINY)
    optimizer = torch.optim.AdamW(network.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        loss = depth_loss(network(batch.image), batch.depth)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_trained_folder_loads_through_the_scoring_interface_and_a_perfect_network_scores_delta1_one(
    tmp_path, monkeypatch
):
    config = DepthTrainConfig(
        output_dir=str(tmp_path / "run"),
        data=DataConfig(size=(32, 64), num_scenes=4, seed_offset=600_000),
        validation=DataConfig(size=(32, 64), num_scenes=2, seed_offset=VALIDATION_SEED_OFFSET),
        model=TINY,
        batch_size=2,
        max_steps=2,
        warmup_steps=0,
        checkpoint_every=2,
        mixed_precision="bf16",
    )
    result = train_depth(config, progress=False)
    assert result.step == 2 and result.validation.abs_rel is not None
    assert isinstance(load_depth_estimator(tmp_path / "run" / "model"), GescoDepthNet)

    dataset = SyntheticStreetsDataset(2, 1_000_000, height=32, width=64)
    truth = torch.stack([dataset[i].depth for i in range(2)])
    monkeypatch.setattr(GescoDepthNet, "forward", lambda self, images: truth[: len(images)].log())  # the oracle
    networks = ScoringNetworks(fid=False, depth=tmp_path / "run" / "model")
    scoring = build_set_scorer(networks, dataset, 2, class_table("cityscapes"), feature_dir=tmp_path, progress=False)
    depth = scoring.scorer.score_real().geometry.depth
    assert depth.delta1 == pytest.approx(1.0) and depth.abs_rel == pytest.approx(0.0, abs=1e-5)


def test_train_depth_command(tmp_path):
    args = ["train-depth", "--out", str(tmp_path / "depth"), "--steps", "1", "--batch-size", "2", "--scenes", "2"]
    args += ["--val-scenes", "2", "--size", "32x64", "--widths", "4", "8", "--no-progress"]
    assert main(args) == 0
    assert DepthTrainConfig.load(tmp_path / "depth").data.seed_offset == 600_000
    assert GescoDepthNet.from_pretrained(tmp_path / "depth" / "model").config.widths == (4, 8)
    assert not DepthTrainConfig.load(tmp_path / "depth").appearance_augment
    calls = []

    def counted(images, instances, generator):
        calls.append(images.shape)
        return appearance_augment(images, instances, generator)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(depth_training, "appearance_augment", counted)
        assert main([*args[:2], str(tmp_path / "augmented"), *args[3:], "--appearance-augment"]) == 0
    assert DepthTrainConfig.load(tmp_path / "augmented").appearance_augment
    assert calls == [(2, 3, 32, 64)]  # the training step changed its batch
    swapped = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(depth_training, "texture_swap", lambda images, *_: swapped.append(images.shape) or images)
        assert main([*args[:2], str(tmp_path / "swapped"), *args[3:], "--texture-swap"]) == 0
    assert DepthTrainConfig.load(tmp_path / "swapped").texture_swap
    assert not DepthTrainConfig.load(tmp_path / "augmented").texture_swap
    assert swapped == [(2, 3, 32, 64)]
    # --init-weights: the run starts from the trained network, with its settings (widths 4 8, not the defaults)
    trained = tmp_path / "depth" / "model"
    tuning = [
        "--steps",
        "1",
        "--batch-size",
        "2",
        "--scenes",
        "2",
        "--val-scenes",
        "2",
        "--size",
        "32x64",
        "--lr",
        "1e-9",
    ]
    assert main(["train-depth", "--out", str(tmp_path / "tuned"), *tuning, "--init-weights", str(trained)]) == 0
    tuned = DepthTrainConfig.load(tmp_path / "tuned")
    assert tuned.init_weights == str(trained) and tuned.model.widths == (4, 8)
    networks = (GescoDepthNet.from_pretrained(p) for p in (trained, tmp_path / "tuned" / "model"))
    before, after = (dict(n.named_parameters()) for n in networks)
    assert all(torch.allclose(before[k], after[k], atol=1e-6) for k in before)
    # a detector is no depth network to start from
    GescoDetector(DetectorConfig(widths=(4, 8), head_width=8)).save_pretrained(tmp_path / "detector")
    assert main([*args[:2], str(tmp_path / "never"), "--init-weights", str(tmp_path / "detector")]) == 2
    assert not (tmp_path / "never").exists()


def test_train_depth_on_regenerations_feeds_them_to_the_step_with_their_scenes_depth(tmp_path, monkeypatch):
    # two "regenerations" of training scenes 5 and 6 (outside the range the others are drawn from): grey images
    for seed in (5, 6):
        (tmp_path / "regenerated").mkdir(exist_ok=True)
        Image.fromarray(np.full((32, 64, 3), 128, dtype=np.uint8)).save(
            tmp_path / f"regenerated/synthetic_{seed:07d}.png"
        )
    seen = []
    real_loss = depth_training.depth_loss

    def recording_loss(log_depth, target, **kwargs):
        seen.append(target.clone())
        return real_loss(log_depth, target, **kwargs)

    monkeypatch.setattr(depth_training, "depth_loss", recording_loss)
    monkeypatch.setattr(depth_training, "augment", lambda images, depth, generator: (images, depth))
    taken = []
    original = RegeneratedScenes.__getitem__
    monkeypatch.setattr(RegeneratedScenes, "__getitem__", lambda self, i: taken.append(i) or original(self, i))
    args = ["train-depth", "--out", str(tmp_path / "depth"), "--steps", "2", "--batch-size", "4", "--scenes", "8"]
    args += ["--val-scenes", "2", "--size", "32x64", "--widths", "4", "8", "--no-progress", "--seed", "3"]
    args += ["--regenerated", str(tmp_path / "regenerated"), "--regenerated-share", "0.5"]
    assert main(args) == 0
    config = DepthTrainConfig.load(tmp_path / "depth")
    assert config.regenerated == (str(tmp_path / "regenerated"),) and config.regenerated_share == 0.5
    assert taken  # some training items were regenerations
    scenes = SyntheticStreetsDataset(2, 5, height=32, width=64)
    depths = [scenes[i].depth.clamp(0.5, 1000.0) for i in range(2)]
    # each regeneration trains against its own scene's depth, and only they have those depths
    assert sum(any(torch.equal(d, depth) for depth in depths) for d in torch.cat(seen)) == len(taken)
    with pytest.raises(ValueError, match="regenerated_share"):
        DepthTrainConfig(regenerated_share=1.5)
    # a wrong folder fails before the run writes anything
    missing = DepthTrainConfig(output_dir=str(tmp_path / "never"), regenerated=(str(tmp_path / "missing"),))
    with pytest.raises(FileNotFoundError, match="no folder of regenerated images"):
        train_depth(missing, progress=False)
    assert not (tmp_path / "never").exists()
    assert main(["train-depth", "--out", str(tmp_path / "never"), "--regenerated-share", "0.3"]) == 2
    assert main(["train-depth", "--out", str(tmp_path / "never"), "--texture-swap", "--batch-size", "1"]) == 2
    assert not (tmp_path / "never").exists()


@pytest.fixture(scope="module")
def street_batch():
    return collate([SyntheticStreetsDataset(6, VALIDATION_SEED_OFFSET)[i] for i in range(6)])


def only(monkeypatch, change: str) -> None:
    """Let ``appearance_augment`` make only one of its three changes, to every image."""
    for name in ("BLUR_CHANCE", "CHANNEL_SWAP_CHANCE", "FLATTEN_CHANCE"):
        monkeypatch.setattr(depth_training, name, 1.0 if name.startswith(change) else 0.0)


def test_flattening_pulls_each_object_towards_its_own_mean_colour(monkeypatch, street_batch):
    only(monkeypatch, "FLATTEN")
    images, instances = street_batch.image, street_batch.instances
    out = appearance_augment(images, instances, torch.Generator().manual_seed(0))
    lower_spread = 0
    for b in range(len(images)):
        for region in instances[b].unique():
            mask = instances[b] == region
            before, after = images[b][:, mask], out[b][:, mask]
            torch.testing.assert_close(after.mean(1), before.mean(1), atol=1e-5, rtol=0)  # same mean colour
            if mask.sum() > 1:
                assert after.std(1).sum() <= before.std(1).sum() + 1e-5
                lower_spread += bool(after.std(1).sum() < before.std(1).sum() - 1e-4)
    assert lower_spread > 20  # the texture goes: most objects come out flatter
    assert not torch.equal(out, images)


def test_blur_smooths_and_keeps_the_colours(monkeypatch, street_batch):
    only(monkeypatch, "BLUR")
    images = street_batch.image
    out = appearance_augment(images, street_batch.instances, torch.Generator().manual_seed(1))
    assert out.diff(dim=-1).abs().mean() < 0.9 * images.diff(dim=-1).abs().mean()
    torch.testing.assert_close(out.mean((2, 3)), images.mean((2, 3)), atol=0.02, rtol=0)


def test_channel_swap_permutes_the_colour_channels_of_each_image(monkeypatch, street_batch):
    only(monkeypatch, "CHANNEL_SWAP")
    images = street_batch.image
    out = appearance_augment(images, street_batch.instances, torch.Generator().manual_seed(2))
    for b in range(len(images)):
        matches = [[torch.equal(out[b, i], images[b, j]) for j in range(3)] for i in range(3)]
        assert all(sum(row) >= 1 for row in matches)  # every output channel is an input channel
        assert not all(matches[i][i] for i in range(3))  # never the identity
    again = appearance_augment(images, street_batch.instances, torch.Generator().manual_seed(2))
    assert torch.equal(out, again)  # the generator decides


def test_texture_swap_gives_whole_regions_another_images_detail_and_keeps_the_rest(monkeypatch, street_batch):
    monkeypatch.setattr(geometry_augment, "TEXTURE_SWAP_IMAGE_CHANCE", 1.0)
    instances = street_batch.instances
    # every region of every image a flat colour: any texture in the output came from elsewhere
    flat = torch.zeros_like(street_batch.image)
    for b in range(len(flat)):
        for region in instances[b].unique():
            flat[b][:, instances[b] == region] = torch.rand(3, 1, generator=torch.Generator().manual_seed(int(region)))
    flat = flat * 1.6 - 0.8
    out = texture_swap(flat, instances, torch.Generator().manual_seed(0))
    kept = changed = textured = 0
    for b in range(len(flat)):
        for region in instances[b].unique():
            mask = instances[b] == region
            if mask.sum() < 30:
                continue
            same = (out[b][:, mask] == flat[b][:, mask]).all(0)
            assert same.all() or not same.any()  # a region takes a foreign texture whole, or not at all
            kept += bool(same.all())
            if not same.any():
                changed += 1
                textured += bool(out[b][:, mask].std(1).sum() > 0.01)
    assert kept > 5 and changed > 5 and textured > 0.8 * changed  # changed regions now have texture
    again = texture_swap(flat, instances, torch.Generator().manual_seed(0))
    assert torch.equal(out, again) and not torch.equal(out, texture_swap(flat, instances, torch.Generator()))
    monkeypatch.setattr(geometry_augment, "TEXTURE_SWAP_IMAGE_CHANCE", 0.0)
    assert torch.equal(texture_swap(street_batch.image, instances, torch.Generator()), street_batch.image)


@pytest.mark.parametrize("zoom", [0.5, 1.0, 2.0])
def test_texture_swap_takes_the_previous_images_texture_zoomed(monkeypatch, zoom):
    monkeypatch.setattr(geometry_augment, "TEXTURE_SWAP_IMAGE_CHANCE", 1.0)
    monkeypatch.setattr(geometry_augment, "TEXTURE_SWAP_REGION_CHANCE", 1.0)
    monkeypatch.setattr(geometry_augment, "TEXTURE_SWAP_ZOOM", (zoom, zoom))
    images = torch.zeros(3, 3, 32, 128)
    images[1] = 0.2 + 0.5 * torch.sin(2 * math.pi * torch.arange(128) / 8)  # vertical stripes, period 8 px
    instances = torch.full((3, 32, 128), 7)  # one region (road) per image
    out = texture_swap(images, instances, torch.Generator().manual_seed(0))
    # image 2 takes image 1's stripes, the period scaled by the zoom, on its own mean colour (0)
    row = out[2, 0, 16]
    crossings = int(((row[1:] > row.mean()) != (row[:-1] > row.mean())).sum())
    # two crossings per period; the random shift can reflect the texture at the border, a crossing or two more
    assert abs(crossings - 2 * 128 / (8 * zoom)) <= 3, crossings
    torch.testing.assert_close(out[2].mean(), torch.tensor(0.0), atol=0.05, rtol=0)
    # image 1 takes flat image 0's detail (none) and keeps its mean; image 0 takes flat image 2's
    torch.testing.assert_close(out[1], torch.full_like(out[1], 0.2), atol=1e-5, rtol=0)
    assert torch.equal(out[0], images[0])
    with pytest.raises(ValueError, match="2 or more"):
        texture_swap(images[:1], instances[:1], torch.Generator())
    with pytest.raises(ValueError, match="batch_size must be >= 2"):
        DepthTrainConfig(texture_swap=True, batch_size=1)


def test_bad_inputs_give_typed_errors(tmp_path):
    with pytest.raises(ValueError, match="min_depth"):
        DepthNetConfig(min_depth=0.0)
    with pytest.raises(ValueError, match="widths"):
        DepthNetConfig(widths=(4,))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        GescoDepthNet(TINY).estimate(torch.zeros(3, 16, 16))
    with pytest.raises(ValueError, match="same"):
        depth_loss(torch.zeros(1, 4, 4), torch.ones(1, 4, 5))
    with pytest.raises(ValueError, match="no valid"):
        depth_loss(torch.zeros(1, 4, 4), torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="variance_focus"):
        DepthTrainConfig(variance_focus=1.5)
    with pytest.raises(ValueError, match="device"):
        DepthTrainConfig(device="tpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="not a gesco depth network folder"):
        load_depth_estimator(tmp_path / "empty")
