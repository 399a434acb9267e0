"""Training checkpoints: one folder per step, written atomically, the last N kept.

``checkpoints/step-00001000/`` holds ``model.safetensors`` and ``ema.safetensors`` (weights),
``optimizer.pt`` and ``lr_scheduler.pt`` (state dicts of tensors and numbers, read back with
``weights_only=True``), ``rng.pt`` (the global torch RNG state) and ``state.json`` (step,
EMA updates, gesco version). The folder is assembled under a temporary name and renamed in
one step, so a crash never leaves a half-written checkpoint behind a valid name.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from gesco import __version__
from gesco.io import load_tensors, save_tensors

_PREFIX = "step-"


@dataclass(frozen=True)
class TrainingState:
    step: int
    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor]
    ema_updates: int
    optimizer: dict
    lr_scheduler: dict
    rng: torch.Tensor


def checkpoint_dir(root: Path, step: int) -> Path:
    return Path(root) / f"{_PREFIX}{step:08d}"


def list_checkpoints(root: str | Path) -> list[Path]:
    """Complete checkpoint folders under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [
        p for p in root.iterdir() if p.is_dir() and p.name.startswith(_PREFIX) and p.name[len(_PREFIX) :].isdigit()
    ]
    return sorted(found, key=lambda p: int(p.name[len(_PREFIX) :]))


def save_checkpoint(root: str | Path, state: TrainingState, *, keep: int) -> Path:
    """Write ``state`` as ``root/step-N`` atomically and delete all but the newest ``keep``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = checkpoint_dir(root, state.step)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
        save_tensors(staging / "model.safetensors", state.model)
        save_tensors(staging / "ema.safetensors", state.ema)
        torch.save(state.optimizer, staging / "optimizer.pt")
        torch.save(state.lr_scheduler, staging / "lr_scheduler.pt")
        torch.save(state.rng, staging / "rng.pt")
        meta = {"step": state.step, "ema_updates": state.ema_updates, "gesco_version": __version__}
        (staging / "state.json").write_text(json.dumps(meta, indent=2) + "\n")
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    for old in list_checkpoints(root)[:-keep] if keep > 0 else []:
        shutil.rmtree(old)
    return final


def load_checkpoint(path: str | Path) -> TrainingState:
    """Read a checkpoint folder; a missing or truncated file raises ``ValueError``."""
    path = Path(path)
    try:
        meta = json.loads((path / "state.json").read_text())
        optimizer = torch.load(path / "optimizer.pt", weights_only=True)
        lr_scheduler = torch.load(path / "lr_scheduler.pt", weights_only=True)
        rng = torch.load(path / "rng.pt", weights_only=True)
    except (OSError, KeyError, json.JSONDecodeError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
        raise ValueError(f"checkpoint {path} is incomplete or corrupt: {err}") from err
    return TrainingState(
        step=int(meta["step"]),
        model=load_tensors(path / "model.safetensors"),
        ema=load_tensors(path / "ema.safetensors"),
        ema_updates=int(meta["ema_updates"]),
        optimizer=optimizer,
        lr_scheduler=lr_scheduler,
        rng=rng,
    )


def restore_latest(root: str | Path, model, ema, optimizer, lr_scheduler) -> int:
    """Load the newest checkpoint under ``root`` into the given objects (and the global RNG); return its step."""
    found = list_checkpoints(root)
    if not found:
        raise FileNotFoundError(f"--resume: no checkpoint under {root}")
    state = load_checkpoint(found[-1])
    model.load_state_dict(state.model)
    ema.load_state_dict(state.ema, state.ema_updates)
    optimizer.load_state_dict(state.optimizer)
    lr_scheduler.load_state_dict(state.lr_scheduler)
    torch.set_rng_state(state.rng)
    return state.step
