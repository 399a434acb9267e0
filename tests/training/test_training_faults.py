"""Faults a training run survives: SIGKILL in a checkpoint write, a corrupt newest checkpoint, leftover temporary
folders, old or partial state files; and resume stays exact with every global random-number state in use."""

import json
import os
import random
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from gesco.training.checkpoint import (
    CheckpointError,
    CheckpointFallbackWarning,
    list_checkpoints,
    load_checkpoint,
)
from gesco.training.loop import LoopSettings, TrainingLoop

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def data() -> TensorDataset:
    x = torch.randn(24, 3, generator=torch.Generator().manual_seed(1))
    return TensorDataset(x, x @ torch.tensor([1.0, -2.0, 0.5]))


def model() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.1), nn.Linear(8, 1))


def settings(output_dir, **changes) -> LoopSettings:
    base = dict(output_dir=output_dir, seed=3, batch_size=4, max_steps=12, checkpoint_every=4, keep_checkpoints=0)
    return LoopSettings(**{**base, "device": "cpu", "ema_decay": 0.8, **changes})


def step(inputs):
    """A loss that draws from every global RNG: torch (dropout), numpy and Python's random."""
    x, y = inputs.batch
    jitter = 1e-2 * (float(np.random.rand()) + random.random())
    return F.mse_loss(inputs.model(x).squeeze(-1), y + jitter)


def run(output_dir, *, resume=False, **changes):
    """Take the steps of a run (a fresh run starts numpy's and Python's RNG from seed 0, as a script would)."""
    if not resume:
        np.random.seed(0)
        random.seed(0)
    optimizer = lambda parameters: torch.optim.Adam(parameters, lr=0.05)  # noqa: E731
    loop = TrainingLoop(settings(output_dir, **changes), model, optimizer, resume=resume, progress=False)
    return loop, loop.run(data(), step)


def test_resume_restores_every_global_rng_in_use(tmp_path):
    _, straight = run(tmp_path / "straight")
    _, first = run(tmp_path / "split", max_steps=8)
    # the process's RNGs move on between the runs (another job, a validation); the checkpoint must not care
    np.random.rand(7)
    random.random()
    torch.rand(3)
    loop, second = run(tmp_path / "split", resume=True)
    assert loop.start_step == 8
    assert first.losses + second.losses == straight.losses


def test_a_corrupt_newest_checkpoint_falls_back_to_the_newest_intact_one(tmp_path):
    _, straight = run(tmp_path / "straight")
    run(tmp_path / "split", max_steps=8)
    newest = list_checkpoints(tmp_path / "split" / "checkpoints")[-1]
    (newest / "rng.pt").write_bytes(b"")
    with pytest.warns(CheckpointFallbackWarning, match="rng.pt is empty"):
        loop, second = run(tmp_path / "split", resume=True)
    assert loop.start_step == 4 and second.losses == straight.losses[4:]


def test_every_checkpoint_unreadable_is_a_typed_error(tmp_path):
    run(tmp_path, max_steps=4)
    (list_checkpoints(tmp_path / "checkpoints")[-1] / "model.safetensors").write_bytes(b"\x00" * 5)
    with pytest.raises(CheckpointError, match="none of the 1 checkpoints.*model.safetensors"):
        run(tmp_path, resume=True)


def test_temporary_folders_of_interrupted_writes_are_removed_on_start(tmp_path):
    run(tmp_path, max_steps=4)
    leftover = tmp_path / "checkpoints" / ".step-00000008.abc123"
    leftover.mkdir()
    (leftover / "model.safetensors").write_bytes(b"half")
    loop, _ = run(tmp_path, resume=True, max_steps=8)
    assert loop.start_step == 4 and not leftover.exists()
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-00000004", "step-00000008"]


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"step": 4}, "'ema_updates' must be an int >= 0, got None"),
        ({"ema_updates": 4}, "'step' must be an int >= 0, got None"),
        ({"step": "4", "ema_updates": 4}, "'step' must be an int >= 0, got '4'"),
        ([4, 4], "must hold a JSON object"),
    ],
)
def test_old_or_partial_state_files_are_typed_errors(tmp_path, state, message):
    run(tmp_path, max_steps=4)
    path = list_checkpoints(tmp_path / "checkpoints")[-1]
    (path / "state.json").write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match=message) as raised:
        load_checkpoint(path)
    assert "state.json" in str(raised.value)


@pytest.mark.parametrize("name", ["optimizer.pt", "lr_scheduler.pt", "rng.pt"])
def test_an_empty_or_missing_torch_file_is_named(tmp_path, name):
    run(tmp_path, max_steps=4)
    path = list_checkpoints(tmp_path / "checkpoints")[-1]
    (path / name).write_bytes(b"")
    with pytest.raises(CheckpointError, match=f"{name} is empty"):
        load_checkpoint(path)
    (path / name).unlink()
    with pytest.raises(CheckpointError, match=f"{name} is missing or unreadable \\(.*No such file"):
        load_checkpoint(path)


KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    sys.path.insert(0, {tests!r})
    import test_training_faults as t
    import gesco.training.checkpoint as checkpoint

    real_save, real_step = torch.save, t.step
    steps_taken = 0

    def save_then_die(obj, path, *args, **kwargs):
        real_save(obj, path, *args, **kwargs)
        # the second checkpoint (step 8) dies half-written: this file is on disk, the ones after it are not
        if "step-00000008" in str(path) and str(path).endswith({file!r}):
            os.kill(os.getpid(), signal.SIGKILL)

    def step_then_die(inputs):
        global steps_taken
        steps_taken += 1
        if steps_taken == {die_in_step}:  # mid-step, between checkpoints: the loss is computed, not applied
            os.kill(os.getpid(), signal.SIGKILL)
        return real_step(inputs)

    checkpoint.torch.save = save_then_die
    t.step = step_then_die
    torch.set_num_threads(1)
    t.run({out!r})
    """
)


@pytest.mark.parametrize(
    ("file", "die_in_step", "survivor"),
    [
        # inside the step-8 checkpoint, after each of the files torch writes
        ("optimizer.pt", 0, "step-00000004"),
        ("lr_scheduler.pt", 0, "step-00000004"),
        ("rng.pt", 0, "step-00000004"),
        # in the middle of steps 7 and 11, with the last checkpoint intact
        ("", 7, "step-00000004"),
        ("", 11, "step-00000008"),
    ],
)
def test_sigkill_during_a_checkpoint_write_or_a_step_resumes_bit_exactly(tmp_path, file, die_in_step, survivor):
    _, straight = run(tmp_path / "straight")
    script = KILLED_RUN.format(
        tests=os.path.dirname(__file__), out=str(tmp_path / "killed"), file=file or "never", die_in_step=die_in_step
    )
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    checkpoints = tmp_path / "killed" / "checkpoints"
    assert [p.name for p in list_checkpoints(checkpoints)][-1] == survivor
    if file:
        assert [p.name for p in checkpoints.iterdir() if p.name.startswith(".step-00000008")]  # the torn write
    loop, resumed = run(tmp_path / "killed", resume=True)
    start = int(survivor.removeprefix("step-"))
    assert loop.start_step == start and resumed.losses == straight.losses[start:]
    assert not [p for p in checkpoints.iterdir() if p.name.startswith(".")]
    a = load_checkpoint(tmp_path / "straight" / "checkpoints" / "step-00000012")
    b = load_checkpoint(checkpoints / "step-00000012")
    assert a.ema_updates == b.ema_updates == 12
    for name in a.model:
        assert torch.equal(a.model[name], b.model[name]) and torch.equal(a.ema[name], b.ema[name]), name
