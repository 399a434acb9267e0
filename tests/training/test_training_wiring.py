"""What the receiver trainer feeds the UNet, seen at the diffusion loss: condition dropout at its rate, the
configured noise list and mode; and the batch each process takes at every step, not only the first."""

import pytest
import torch
from test_training_loop import tiny_config

from gesco.receiver.diffusion import GaussianDiffusion
from gesco.training.loop import StepBatchSampler
from gesco.training.trainer import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def conditions_seen(tmp_path, monkeypatch, **changes) -> torch.Tensor:
    """Train a few steps; return every conditioning map the diffusion loss received, (steps x B, K, H, W)."""
    seen = []
    original = GaussianDiffusion.training_loss

    def spy(self, model, x0, t, y, **kwargs):
        seen.append(y.detach().clone())
        return original(self, model, x0, t, y, **kwargs)

    monkeypatch.setattr(GaussianDiffusion, "training_loss", spy)
    settings = dict(batch_size=8, max_steps=4, checkpoint_every=4, condition_dropout=0.0)
    train(tiny_config(tmp_path, **{**settings, **changes}), progress=False)
    return torch.cat(seen)


def test_condition_dropout_zeroes_whole_maps_at_its_rate(tmp_path, monkeypatch):
    y = conditions_seen(tmp_path, monkeypatch, noise="none", condition_dropout=0.5)
    dropped = y.flatten(1).abs().sum(1) == 0
    # a kept clean map is one-hot: every pixel holds exactly one class
    assert torch.all(y[~dropped, :35].sum(1) == 1)
    # 32 maps at rate 0.5: 16 expected, 9..23 covers 99.9% of the binomial
    assert 9 <= int(dropped.sum()) <= 23


def test_the_configured_noise_list_is_drawn(tmp_path, monkeypatch):
    y = conditions_seen(tmp_path, monkeypatch, noise="paper", noise_sigmas=(0.5,))
    # paper noise: one value per pixel shared by every channel, so the smallest channel is the noise itself
    noise = y.min(dim=1).values
    assert set((y - noise[:, None]).round(decimals=4).unique().tolist()) <= {0.0, 1.0}
    assert noise.flatten(1).std(dim=1).tolist() == pytest.approx([0.5] * len(y), abs=0.06)


def test_the_channel_mode_trains_on_the_fds_output(tmp_path, monkeypatch):
    y = conditions_seen(tmp_path, monkeypatch, noise="channel", noise_sigmas=(0.4,))
    # the link sends only the present classes: FDS leaves every other channel at exactly 0 ...
    silent = y.flatten(2).abs().amax(dim=2) == 0
    assert silent.sum(1).min() >= 20
    # ... and its mean-then-max filter smooths the noise of the sent ones (values between the noisy extremes)
    sent = y.transpose(0, 1)[~silent.T]
    assert sent.std() > 0.05 and sent.min() > -1.0 and sent.max() < 2.0


@pytest.mark.parametrize("world_size", [2, 3])
def test_processes_share_every_step_of_a_single_process_batch(world_size):
    """With B per process and W processes, step s of process r is the r-th slice of the single-process batch
    of B x W at step s: the processes never overlap, at any step, in any epoch."""
    steps, batch = 17, 2
    single = list(StepBatchSampler(30, batch * world_size, seed=5, start_step=0, max_steps=steps))
    ranks = [
        list(StepBatchSampler(30, batch, seed=5, start_step=0, max_steps=steps, rank=r, world_size=world_size))
        for r in range(world_size)
    ]
    for step in range(steps):
        assert sum((ranks[r][step] for r in range(world_size)), []) == single[step], step
        assert len({i for r in range(world_size) for i in ranks[r][step]}) == batch * world_size
