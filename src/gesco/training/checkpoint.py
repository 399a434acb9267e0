"""Training checkpoints: one folder per step, written atomically, the last N kept.

``checkpoints/step-00001000/`` holds ``model.safetensors`` and ``ema.safetensors`` (weights),
``optimizer.pt`` and ``lr_scheduler.pt`` (state dicts of tensors and numbers, read back with
``weights_only=True``), ``rng.pt`` (every global random-number state: torch on the CPU and on each CUDA
device, numpy, Python's ``random``) and ``state.json`` (step, EMA updates, gesco version). The folder is
assembled under a temporary name (``.step-N.*``) and renamed in one step, so a crash never leaves a half-written
checkpoint behind a valid name; :func:`remove_partial_checkpoints` clears the temporary folders a killed run
left. :func:`restore_latest` falls back to the newest intact checkpoint when a newer one is unreadable.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gesco import __version__
from gesco.io import load_tensors, save_tensors, write_json

_PREFIX = "step-"
#: The files of a checkpoint read with ``torch.load``.
_TORCH_FILES = ("optimizer.pt", "lr_scheduler.pt", "rng.pt")


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be restored: a missing, empty, truncated or outdated file, named."""


class CheckpointFallbackWarning(UserWarning):
    """The newest checkpoint was unreadable; an older intact one was restored instead."""


@dataclass(frozen=True)
class TrainingState:
    step: int
    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor]
    ema_updates: int
    optimizer: dict
    lr_scheduler: dict
    rng: dict[str, torch.Tensor]


def capture_rng() -> dict[str, torch.Tensor]:
    """Every global random-number state a step can draw from (dropout, a user's numpy or ``random`` call), as
    tensors that ``torch.load(weights_only=True)`` reads back."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for index, cuda_state in enumerate(torch.cuda.get_rng_state_all()):
            state[f"cuda.{index}"] = cuda_state
    _, keys, position, has_gauss, gauss = np.random.get_state()
    state["numpy"] = torch.from_numpy(keys.astype(np.int64))
    state["numpy.extra"] = torch.tensor([position, has_gauss, gauss], dtype=torch.float64)
    version, words, python_gauss = random.getstate()
    state["python"] = torch.tensor([version, *words], dtype=torch.int64)
    state["python.gauss"] = torch.tensor([] if python_gauss is None else [python_gauss], dtype=torch.float64)
    return state


def restore_rng(state: dict[str, torch.Tensor] | torch.Tensor) -> None:
    """Set the global random-number states of :func:`capture_rng` (a bare tensor: torch's CPU state only, the
    format of gesco 0.1 checkpoints)."""
    if isinstance(state, torch.Tensor):
        torch.set_rng_state(state)
        return
    torch.set_rng_state(state["torch"])
    cuda = sorted((k for k in state if k.startswith("cuda.")), key=lambda k: int(k.split(".")[1]))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([state[k] for k in cuda][: torch.cuda.device_count()])
    if "numpy" in state:
        position, has_gauss, gauss = state["numpy.extra"].tolist()
        np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), int(position), int(has_gauss), gauss))
    if "python" in state:
        version, *words = state["python"].tolist()
        gauss = state["python.gauss"].tolist()
        random.setstate((version, tuple(words), gauss[0] if gauss else None))


def checkpoint_dir(root: Path, step: int) -> Path:
    return Path(root) / f"{_PREFIX}{step:08d}"


def remove_partial_checkpoints(root: str | Path) -> list[Path]:
    """Delete the temporary folders (``.step-N.*``) of checkpoint writes that a killed run left; return them."""
    root = Path(root)
    partial = sorted(p for p in root.glob(f".{_PREFIX}*") if p.is_dir()) if root.is_dir() else []
    for folder in partial:
        shutil.rmtree(folder, ignore_errors=True)
    return partial


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
        write_json(staging / "state.json", meta)
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
    """Read a checkpoint folder.

    Raises:
        CheckpointError (a ValueError): a missing, empty, truncated or unreadable file, or a ``state.json``
            without ``step`` or ``ema_updates`` (an older or partial state file), named in the message.
    """
    path = Path(path)
    meta = _read_state_json(path / "state.json")
    loaded = {}
    for name in _TORCH_FILES:
        file = path / name
        try:
            if file.stat().st_size == 0:
                raise CheckpointError(
                    f"checkpoint {path} is incomplete or corrupt: {name} is empty (a write was cut short)"
                )
            loaded[name] = torch.load(file, weights_only=True)
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise CheckpointError(
                f"checkpoint {path} is incomplete or corrupt: {name} is missing or unreadable ({reason})"
            ) from err
    try:
        model, ema = load_tensors(path / "model.safetensors"), load_tensors(path / "ema.safetensors")
    except (OSError, ValueError) as err:
        raise CheckpointError(f"checkpoint {path} is incomplete or corrupt: {err}") from err
    return TrainingState(
        step=meta["step"],
        model=model,
        ema=ema,
        ema_updates=meta["ema_updates"],
        optimizer=loaded["optimizer.pt"],
        lr_scheduler=loaded["lr_scheduler.pt"],
        rng=loaded["rng.pt"],
    )


def _read_state_json(file: Path) -> dict[str, int]:
    try:
        meta = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{file} is missing or not JSON ({err})") from err
    if not isinstance(meta, dict):
        raise CheckpointError(f"{file} must hold a JSON object with step and ema_updates, got {type(meta).__name__}")
    for key in ("step", "ema_updates"):
        value = meta.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CheckpointError(
                f"{file}: {key!r} must be an int >= 0, got {value!r}; the file is partial or from an older gesco "
                "(restart the run, or restore an intact checkpoint)"
            )
    return meta


def restore_latest(root: str | Path, model, ema, optimizer, lr_scheduler) -> int:
    """Load the newest intact checkpoint under ``root`` into the given objects (and every global RNG); return
    its step. An unreadable newer checkpoint is skipped with a :class:`CheckpointFallbackWarning`.

    Raises:
        FileNotFoundError: no checkpoint under ``root``.
        CheckpointError: every checkpoint under ``root`` is unreadable (the newest one's error is shown).
    """
    found = list_checkpoints(root)
    if not found:
        raise FileNotFoundError(f"--resume: no checkpoint under {root}")
    errors = []
    for path in reversed(found):
        try:
            state = load_checkpoint(path)
        except CheckpointError as err:
            errors.append(err)
            continue
        if errors:
            warnings.warn(
                f"resuming from {path.name}: the newer checkpoint(s) could not be read: " + "; ".join(map(str, errors)),
                CheckpointFallbackWarning,
                stacklevel=2,
            )
        model.load_state_dict(state.model)
        ema.load_state_dict(state.ema, state.ema_updates)
        optimizer.load_state_dict(state.optimizer)
        lr_scheduler.load_state_dict(state.lr_scheduler)
        restore_rng(state.rng)
        return state.step
    raise CheckpointError(f"--resume: none of the {len(found)} checkpoints under {root} is readable: {errors[0]}")
