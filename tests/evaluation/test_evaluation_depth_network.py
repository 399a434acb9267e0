"""gesco's compact depth network: output, loss, training through the shared loop, loading as ``--depth``."""

import math

import pytest
import torch

from gesco.cli.main import main
from gesco.constants import VALIDATION_SEED_OFFSET
from gesco.datasets import SyntheticStreetsDataset, collate
from gesco.evaluation.depth_network import DepthNetConfig, GescoDepthNet, depth_loss
from gesco.evaluation.depth_training import DepthTrainConfig, train_depth
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
    monkeypatch.setattr(GescoDepthNet, "forward", lambda self, images: truth.log())  # the oracle, in order
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
