"""The shared training loop, on a toy regression: seeds, batches, learning rate, EMA, exact resume, hooks."""

import dataclasses
import doctest
import json
import math

import pytest
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from torch import nn
from torch.utils.data import TensorDataset

import gesco.images
import gesco.training.loop
from gesco.training.checkpoint import list_checkpoints, load_checkpoint
from gesco.training.loop import (
    LoopSettings,
    NonFiniteLossError,
    StepBatchSampler,
    StepOutput,
    TrainingLoop,
    learning_rate_factor,
    step_generator,
)

PEAK_LR = 0.05


@pytest.fixture(autouse=True)
def on_one_thread(one_torch_thread):
    yield


def toy_data(size=24) -> TensorDataset:
    x = torch.randn(size, 3, generator=torch.Generator().manual_seed(1))
    return TensorDataset(x, x @ torch.tensor([1.0, -2.0, 0.5]))


def toy_model() -> nn.Module:
    # dropout draws from the global RNG, so exact resume needs the restored global RNG too
    return nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.3), nn.Linear(8, 1))


def toy_settings(output_dir, **changes) -> LoopSettings:
    settings = LoopSettings(
        output_dir=output_dir,
        seed=3,
        batch_size=4,
        max_steps=20,
        checkpoint_every=5,
        keep_checkpoints=0,
        warmup_steps=3,
        lr_schedule="constant",
        ema_decay=0.8,
        device="cpu",
    )
    return dataclasses.replace(settings, **changes)


@dataclasses.dataclass
class Seen:
    """What the step function saw at each step."""

    steps: list = dataclasses.field(default_factory=list)
    draws: list = dataclasses.field(default_factory=list)
    batches: list = dataclasses.field(default_factory=list)
    rates: list = dataclasses.field(default_factory=list)


def toy_run(settings, *, resume=False, seen=None, nan_at=None, built=None, **hooks):
    """Build the loop (appended to ``built``), take its steps; return (loop, result)."""
    seen = Seen() if seen is None else seen
    loop = TrainingLoop(settings, toy_model, lambda p: torch.optim.Adam(p, lr=PEAK_LR), resume=resume, progress=False)
    if built is not None:
        built.append(loop)

    def step(inputs):
        x, y = inputs.batch
        noise = 0.1 * torch.randn(y.shape, generator=inputs.generator)
        seen.steps.append(inputs.step)
        seen.draws.append(noise)
        seen.batches.append(x)
        seen.rates.append(loop.optimizer.param_groups[0]["lr"])
        loss = F.mse_loss(inputs.model(x.to(inputs.device)).squeeze(-1), y + noise)
        return loss * math.nan if inputs.step == nan_at else StepOutput(loss, {"abs": (y + noise).abs()})

    return loop, loop.run(toy_data(), step, **hooks)


def test_docstring_examples():
    for module in (gesco.training.loop, gesco.images):
        assert doctest.testmod(module).failed == 0, module.__name__


def test_step_generator_depends_on_seed_step_and_rank():
    def draw(*args):
        return torch.rand(4, generator=step_generator(*args))

    assert torch.equal(draw(0, 7, 0), draw(0, 7, 0)) and torch.equal(draw(0, 7), draw(0, 7, 0))
    for other in ((1, 7, 0), (0, 8, 0), (0, 7, 1)):
        assert not torch.allclose(draw(0, 7, 0), draw(*other)), other
    # no two (seed, step, rank) share a stream, e.g. (s, step + 1, r) and (s, step, r + 1)
    firsts = {draw(seed, step, rank)[0].item() for seed in range(3) for step in range(30) for rank in range(4)}
    assert len(firsts) == 3 * 30 * 4
    with pytest.raises(ValueError, match=">= 0"):
        step_generator(0, -1)


def test_step_sampler_is_resumable_and_shards_processes():
    straight = list(StepBatchSampler(10, 2, seed=1, start_step=0, max_steps=12))
    resumed = list(StepBatchSampler(10, 2, seed=1, start_step=7, max_steps=12))
    assert straight[7:] == resumed
    # an epoch is a permutation: 5 steps of 2 cover all 10 items once; the next epoch has another order
    assert sorted(i for batch in straight[:5] for i in batch) == list(range(10))
    assert straight[:5] != straight[5:10]
    assert straight != list(StepBatchSampler(10, 2, seed=2, start_step=0, max_steps=12))
    rank0 = list(StepBatchSampler(10, 2, seed=1, start_step=0, max_steps=2, rank=0, world_size=2))
    rank1 = list(StepBatchSampler(10, 2, seed=1, start_step=0, max_steps=2, rank=1, world_size=2))
    assert not set(rank0[0]) & set(rank1[0]) and rank0[0] + rank1[0] == straight[0] + straight[1]
    with pytest.raises(ValueError, match="fewer than one step"):
        StepBatchSampler(3, 2, seed=0, start_step=0, max_steps=1, world_size=2)


def test_learning_rate_factor_warms_up_from_the_first_step():
    constant = [learning_rate_factor(s, warmup_steps=4, max_steps=10, schedule="constant") for s in range(6)]
    assert constant == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    cosine = [learning_rate_factor(s, warmup_steps=2, max_steps=6, schedule="cosine") for s in range(7)]
    assert cosine == pytest.approx(
        [0.5, 1.0, 1.0, (1 + math.cos(math.pi / 4)) / 2, 0.5, (1 + math.cos(3 * math.pi / 4)) / 2, 0.0]
    )
    assert learning_rate_factor(0, warmup_steps=0, max_steps=5, schedule="cosine") == 1.0
    with pytest.raises(ValueError, match="schedule"):
        learning_rate_factor(0, warmup_steps=0, max_steps=5, schedule="linear")


def test_settings_are_checked():
    for field, value in (
        ("checkpoint_every", 0),
        ("max_steps", 0),
        ("lr_schedule", "step"),
        ("device", "cuda:0"),
        ("mixed_precision", "fp8"),
        ("seed", -1),
    ):
        with pytest.raises(ValueError, match=field):
            toy_settings("x", **{field: value})


def test_each_step_sees_its_batch_draws_and_learning_rate(tmp_path):
    seen = Seen()
    settings = toy_settings(tmp_path, max_steps=8, lr_schedule="cosine")
    _, result = toy_run(settings, seen=seen)
    assert seen.steps == list(range(8)) and result.step == 8 and len(result.losses) == 8
    data = toy_data()
    batches = StepBatchSampler(len(data), 4, seed=3, start_step=0, max_steps=8)
    for step, (indices, x, noise, rate) in enumerate(zip(batches, seen.batches, seen.draws, seen.rates, strict=True)):
        assert torch.equal(x, data.tensors[0][indices])
        assert torch.equal(noise, 0.1 * torch.randn(4, generator=step_generator(3, step, 0)))
        factor = learning_rate_factor(step, warmup_steps=3, max_steps=8, schedule="cosine")
        assert rate == pytest.approx(PEAK_LR * factor), step


def test_the_step_function_gets_the_process_rank(tmp_path, monkeypatch):
    # Rank 1 of 2, simulated in one process: its batches and draws are those of rank 1.
    monkeypatch.setattr(Accelerator, "process_index", property(lambda self: 1))
    monkeypatch.setattr(Accelerator, "num_processes", property(lambda self: 2))
    seen = Seen()
    toy_run(toy_settings(tmp_path, max_steps=3), seen=seen)
    data = toy_data()
    batches = StepBatchSampler(len(data), 4, seed=3, start_step=0, max_steps=3, rank=1, world_size=2)
    for step, (indices, x, noise) in enumerate(zip(batches, seen.batches, seen.draws, strict=True)):
        assert torch.equal(x, data.tensors[0][indices])
        assert torch.equal(noise, 0.1 * torch.randn(4, generator=step_generator(3, step, 1)))


def test_resume_continues_exactly(tmp_path):
    straight_seen, split_seen = Seen(), Seen()
    _, straight = toy_run(toy_settings(tmp_path / "straight"), seen=straight_seen)
    _, first = toy_run(toy_settings(tmp_path / "split", max_steps=10), seen=split_seen)
    middle = load_checkpoint(list_checkpoints(tmp_path / "split" / "checkpoints")[-1])
    assert first.step == middle.step == middle.ema_updates == middle.lr_scheduler["last_epoch"] == 10
    loop, second = toy_run(toy_settings(tmp_path / "split"), resume=True, seen=split_seen)
    assert loop.start_step == 10 and second.step == 20
    assert split_seen.steps == straight_seen.steps == list(range(20))
    assert first.losses + second.losses == straight.losses
    for a, b in zip(straight_seen.draws + straight_seen.batches, split_seen.draws + split_seen.batches, strict=True):
        assert torch.equal(a, b)
    assert split_seen.rates == straight_seen.rates
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "step-00000020")
    b = load_checkpoint(tmp_path / "split" / "checkpoints" / "step-00000020")
    assert a.ema_updates == b.ema_updates == 20
    for name in a.model:
        assert torch.equal(a.model[name], b.model[name]) and torch.equal(a.ema[name], b.ema[name]), name
    assert torch.equal(a.optimizer["state"][0]["exp_avg"], b.optimizer["state"][0]["exp_avg"])
    assert a.lr_scheduler == b.lr_scheduler and a.rng.keys() == b.rng.keys()
    assert all(torch.equal(a.rng[k], b.rng[k]) for k in a.rng)
    assert [h["step"] for h in straight.history] == [h["step"] for h in second.history] == [5, 10, 15, 20]
    assert json.loads((tmp_path / "split" / "history.json").read_text())[-1]["loss"] == straight.losses[-1]


def test_a_run_refuses_to_overwrite_and_resume_needs_a_checkpoint(tmp_path):
    toy_run(toy_settings(tmp_path / "a", max_steps=5))
    with pytest.raises(ValueError, match="--resume"):
        toy_run(toy_settings(tmp_path / "a", max_steps=10))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        toy_run(toy_settings(tmp_path / "b"), resume=True)


@pytest.mark.parametrize("warmup", [False, True])
def test_ema_follows_its_decay(tmp_path, warmup):
    snapshots = []
    loop = None

    def keep(done):
        snapshots.append({k: v.detach().clone() for k, v in loop.unwrapped_model.state_dict().items()})

    # decay 0.3: the warm-up's (1 + n) / (10 + n) is below it for n <= 2 and above it from n = 3 on
    settings = toy_settings(tmp_path, max_steps=6, ema_decay=0.3, ema_warmup=warmup)
    loop = TrainingLoop(settings, toy_model, lambda p: torch.optim.Adam(p, lr=PEAK_LR), progress=False)
    expected = {k: v.detach().clone() for k, v in loop.unwrapped_model.state_dict().items()}
    loop.run(toy_data(), lambda inputs: inputs.model(inputs.batch[0]).square().mean(), on_step_end=keep)
    for n, weights in enumerate(snapshots):
        decay = min(0.3, (1 + n) / (10 + n)) if warmup else 0.3
        expected = {k: decay * expected[k] + (1 - decay) * weights[k] for k in expected}
    for name, value in expected.items():
        torch.testing.assert_close(loop.ema.shadow[name], value, rtol=1e-6, atol=1e-7)
    assert not torch.allclose(loop.ema.shadow["0.weight"], snapshots[-1]["0.weight"])
    exported = load_checkpoint(list_checkpoints(tmp_path / "checkpoints")[-1]).ema
    assert torch.equal(exported["0.weight"], loop.ema.shadow["0.weight"])


def test_non_finite_loss_stops_before_the_update(tmp_path):
    built, weights = [], []

    def keep(done):
        weights.append(built[0].unwrapped_model.state_dict()["0.weight"].clone())

    with pytest.raises(NonFiniteLossError, match="at step 3"):
        toy_run(toy_settings(tmp_path, checkpoint_every=2), nan_at=3, built=built, on_step_end=keep)
    assert len(weights) == 3  # steps 0, 1, 2 were taken; step 3 stopped before touching the weights
    assert torch.equal(built[0].unwrapped_model.state_dict()["0.weight"], weights[-1])
    assert built[0].ema.updates == 3
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["step-00000002"]


def test_hooks_cannot_shift_the_draws_of_later_steps(tmp_path):
    def busy(done):
        torch.rand(100)
        nn.Linear(50, 50)  # a model built for validation or a preview draws its init from the global RNG
        return {"busy": float(done)}

    _, quiet = toy_run(toy_settings(tmp_path / "quiet", max_steps=8, checkpoint_every=2))
    _, hooked = toy_run(
        toy_settings(tmp_path / "hooked", max_steps=8, checkpoint_every=2), on_step_end=busy, on_checkpoint=busy
    )
    assert hooked.losses == quiet.losses
    assert [h["busy"] for h in hooked.history] == [2.0, 4.0, 6.0, 8.0]


def test_export_gets_the_ema_and_tensorboard_logs(tmp_path):
    exported = {}
    _, result = toy_run(
        toy_settings(tmp_path, max_steps=4, log_every=2),
        export=lambda ema, directory: exported.update(ema=ema, directory=directory),
    )
    assert exported["directory"] == tmp_path / "model" and exported["ema"].updates == 4
    assert list((tmp_path / "tensorboard").rglob("events.out.tfevents.*"))


def test_runs_with_other_accelerate_settings_in_one_process(tmp_path):
    # accelerate keeps one state per process; the loop starts it afresh when a run needs other settings
    _, bf16 = toy_run(toy_settings(tmp_path / "bf16", max_steps=2, mixed_precision="bf16"))
    _, plain = toy_run(toy_settings(tmp_path / "plain", max_steps=2))
    assert len(bf16.losses) == len(plain.losses) == 2
