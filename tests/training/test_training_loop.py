import json
import os
import subprocess
import sys

import pytest
import torch

from gesco.receiver.diffusion import GaussianDiffusion, LossOutput
from gesco.receiver.pipeline import DiffusionReceiver
from gesco.receiver.sampling import SamplerConfig
from gesco.training.checkpoint import list_checkpoints, load_checkpoint
from gesco.training.config import DataConfig, TrainConfig
from gesco.training.trainer import NonFiniteLossError, train
from helpers import TINY_UNET


def tiny_config(output_dir, **changes) -> TrainConfig:
    config = TrainConfig(
        output_dir=str(output_dir),
        data=DataConfig(kind="synthetic", size=(16, 32), num_scenes=64),
        model=TINY_UNET,
        batch_size=2,
        max_steps=20,
        learning_rate=1e-3,
        checkpoint_every=10,
        log_every=5,
        noise="paper",
    )
    return config.replace(**changes)


def test_resume_continues_exactly(tmp_path):
    straight = train(tiny_config(tmp_path / "straight"), progress=False)
    first = train(tiny_config(tmp_path / "split", max_steps=10), progress=False)
    second = train(tiny_config(tmp_path / "split"), resume=True, progress=False)
    assert len(straight.losses) == 20 and len(first.losses) == 10 and len(second.losses) == 10
    assert first.losses + second.losses == pytest.approx(straight.losses, abs=1e-6)
    a = load_checkpoint(list_checkpoints(tmp_path / "straight" / "checkpoints")[-1])
    b = load_checkpoint(list_checkpoints(tmp_path / "split" / "checkpoints")[-1])
    assert a.step == b.step == 20
    for name, value in a.model.items():
        assert torch.allclose(value, b.model[name], atol=1e-6), name
    # the run exported its EMA receiver, which loads and generates
    receiver = DiffusionReceiver.from_pretrained(tmp_path / "split" / "model")
    images = receiver(torch.zeros(1, 36, 16, 32), generator=torch.Generator().manual_seed(0))
    assert images.shape == (1, 3, 16, 32) and torch.isfinite(images).all()


def test_an_existing_run_needs_resume(tmp_path):
    train(tiny_config(tmp_path, max_steps=2, checkpoint_every=2), progress=False)
    with pytest.raises(ValueError, match="--resume"):
        train(tiny_config(tmp_path, max_steps=4), progress=False)


def test_training_lowers_the_loss(tmp_path):
    result = train(
        tiny_config(tmp_path, max_steps=60, checkpoint_every=60, learning_rate=2e-3, batch_size=4), progress=False
    )
    first, last = sum(result.losses[:10]) / 10, sum(result.losses[-10:]) / 10
    assert last < 0.7 * first, (first, last)


def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    train(tiny_config(tmp_path, max_steps=4, checkpoint_every=4), progress=False)
    good = load_checkpoint(list_checkpoints(tmp_path / "checkpoints")[-1])
    real_loss = GaussianDiffusion.training_loss
    calls = {"n": 0}

    def poisoned(self, *args, **kwargs):
        out = real_loss(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:
            return LossOutput(loss=out.loss * float("nan"), mse=out.mse, vb=out.vb)
        return out

    monkeypatch.setattr(GaussianDiffusion, "training_loss", poisoned)
    with pytest.raises(NonFiniteLossError, match="step 5"):
        train(tiny_config(tmp_path, max_steps=8, checkpoint_every=1), resume=True, progress=False)
    found = list_checkpoints(tmp_path / "checkpoints")
    assert [p.name for p in found][-1] == "step-00000005"  # step 5 was good and saved, step 6 never was
    assert load_checkpoint(found[0]).step == good.step or len(found) <= 3


def test_model_must_fit_the_class_table(tmp_path):
    config = tiny_config(tmp_path, model=TINY_UNET.replace(label_channels=35))
    with pytest.raises(ValueError, match="36"):
        train(config, progress=False)


def test_tensorboard_and_sample_grid(tmp_path):
    sampler = SamplerConfig(sampler="dpmpp", steps=2, guidance=1.5)
    train(
        tiny_config(tmp_path, max_steps=2, checkpoint_every=2, log_every=1, sample_every=2, sampler=sampler),
        progress=False,
    )
    assert (tmp_path / "samples" / "step-00000002.png").is_file()
    events = list((tmp_path / "tensorboard").rglob("events.out.tfevents.*"))
    assert events and sum(e.stat().st_size for e in events) > 0
    assert json.loads((tmp_path / "config.json").read_text())["_class_name"] == "TrainConfig"


@pytest.mark.slow
def test_two_processes_with_torchrun(tmp_path):
    config = tiny_config(tmp_path / "run", max_steps=3, checkpoint_every=3)
    config_path = config.save(tmp_path / "config.json")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # --standalone: the rendezvous takes a free port, so a concurrent job on a fixed port cannot join
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "gesco.cli.main",
            "train",
            "--config",
            str(config_path),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # both ranks joined one process group (and each reports the same finished run)
    assert result.stdout.count("trained to step 3 on 2 process(es)") == 2, result.stdout
    assert load_checkpoint(list_checkpoints(tmp_path / "run" / "checkpoints")[-1]).step == 3
