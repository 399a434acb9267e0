import json

import pytest
import torch
from torch import nn

from gesco.training.checkpoint import TrainingState, list_checkpoints, load_checkpoint, save_checkpoint
from gesco.training.conditioning import drop_condition
from gesco.training.ema import EMA


def test_condition_dropout_zeroes_whole_maps(generator):
    condition = torch.ones(2000, 2, 2, 2)
    dropped = drop_condition(condition, 0.2, generator=generator)
    per_map = dropped.flatten(1).sum(1)
    assert set(per_map.unique().tolist()) == {0.0, 8.0}
    assert (per_map == 0).float().mean().item() == pytest.approx(0.2, abs=0.03)
    assert torch.equal(drop_condition(condition, 0.0, generator=generator), condition)


def test_ema_warmup_tracks_early_weights():
    model = nn.Linear(2, 2)
    ema = EMA(model, decay=0.999, warmup=True)
    with torch.no_grad():
        model.weight.fill_(1.0)
    for _ in range(20):
        ema.update(model)
    # the warm-up decay (1+n)/(10+n) lets 20 updates pull the average most of the way to 1
    assert ema.shadow["weight"].mean().item() > 0.8
    plain = EMA(nn.Linear(2, 2), decay=0.999, warmup=False)
    assert plain.current_decay() == 0.999
    with pytest.raises(ValueError, match="decay"):
        EMA(model, decay=1.0)


def test_ema_is_the_decayed_average_and_copies_into_a_model():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    ema = EMA(model, decay=0.9, warmup=False)
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    model(torch.randn(4, 2))  # moves the batch-norm statistics and its integer counter
    ema.update(model)
    ema.update(model)
    # two updates towards the same weights w: 0.81 * start + 0.19 * w
    torch.testing.assert_close(ema.shadow["0.weight"], 0.81 * start["0.weight"] + 0.19)
    assert ema.shadow["1.num_batches_tracked"].item() == 1  # integers are copied, not averaged
    warm = EMA(model, decay=0.3, warmup=True)
    decays = []
    for _ in range(4):
        decays.append(warm.current_decay())
        warm.update(model)
    assert decays == pytest.approx([1 / 10, 2 / 11, 3 / 12, 0.3])
    copy = ema.copy_to(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)))
    assert torch.equal(copy[0].weight, ema.shadow["0.weight"])
    assert copy[1].num_batches_tracked.dtype == torch.int64 and copy[1].num_batches_tracked.item() == 1


def state(step, model):
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    return TrainingState(
        step,
        model.state_dict(),
        model.state_dict(),
        step,
        optimizer.state_dict(),
        scheduler.state_dict(),
        torch.get_rng_state(),
    )


def test_checkpoints_round_trip_and_keep_the_last_n(tmp_path):
    model = nn.Linear(2, 2)
    for step in (10, 20, 30):
        save_checkpoint(tmp_path, state(step, model), keep=2)
    found = list_checkpoints(tmp_path)
    assert [p.name for p in found] == ["step-00000020", "step-00000030"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folders left
    loaded = load_checkpoint(found[-1])
    assert loaded.step == 30 and loaded.ema_updates == 30
    assert torch.equal(loaded.model["weight"], model.state_dict()["weight"])
    assert loaded.optimizer["state"][0]["exp_avg"].shape == (2, 2)
    assert json.loads((found[-1] / "state.json").read_text())["step"] == 30


def test_truncated_checkpoint_is_reported(tmp_path):
    path = save_checkpoint(tmp_path, state(5, nn.Linear(2, 2)), keep=1)
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        load_checkpoint(path)
    (path / "optimizer.pt").write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match="incomplete or corrupt"):
        load_checkpoint(path)


@pytest.mark.parametrize("name", ["cityscapes", "coco-stuff", "ade20k", "synthetic-cpu"])
def test_training_presets_load_and_fit_their_class_table(name):
    from pathlib import Path

    from gesco.training.config import TrainConfig
    from gesco.training.data import dataset_class_table

    config = TrainConfig.load(Path(__file__).resolve().parents[2] / "configs" / f"train-{name}.json")
    table = dataset_class_table(config)
    assert config.model.label_channels == table.num_channels
    assert config.data.size[0] % 2 ** (len(config.model.channel_mult) - 1) == 0
