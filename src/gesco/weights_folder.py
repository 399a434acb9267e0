"""Models that live in a folder of ``config.json`` + ``model.safetensors`` (the UNet, the segmenter, Deep JSCC).

A foundation module: it imports only :mod:`gesco.config` and :mod:`gesco.io`, so every stage can use it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar, Self

import torch

from gesco.config import Config, ConfigError
from gesco.io import load_tensors, output_folder, save_tensors

WEIGHTS_NAME = "model.safetensors"
#: Where the package's shipped models live (``gesco.pretrained`` lists and loads them; lower layers find them here).
SHIPPED_MODELS = Path(__file__).resolve().parent / "pretrained"


def model_folder(name_or_path: str | Path) -> Path | None:
    """``name_or_path`` as an existing path, else the folder of the shipped model of that name; None if neither.

    For the layers below :mod:`gesco.pretrained` (a receiver config names its learned map denoiser this way).
    """
    path = Path(name_or_path)
    if path.exists():
        return path
    name = str(name_or_path)
    if not name or "/" in name or name in (".", ".."):
        return None
    shipped = SHIPPED_MODELS / name
    return shipped if shipped.is_dir() else None


class StateDictMismatchError(ValueError):
    """Weights that do not fit the architecture: names missing or unexpected, or shapes differ."""

    def __init__(self, missing: list[str], unexpected: list[str], wrong_shapes: list[str], *, source: str) -> None:
        self.missing, self.unexpected, self.wrong_shapes = missing, unexpected, wrong_shapes
        parts = [f"{source} does not match the architecture (another model or config?)"]
        named = (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", wrong_shapes))
        for label, keys in named:
            if keys:
                shown = ", ".join(keys[:8]) + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")
                parts.append(f"{label}: {shown}")
        super().__init__("; ".join(parts))


def check_state_dict(
    expected: Mapping[str, torch.Size | tuple[int, ...]], given: Mapping[str, torch.Tensor], *, source: str
) -> None:
    """Raise :class:`StateDictMismatchError` unless ``given`` has exactly the names and shapes of ``expected``."""
    missing = sorted(k for k in expected if k not in given)
    unexpected = sorted(k for k in given if k not in expected)
    wrong_shapes = sorted(
        f"{k} {tuple(given[k].shape)} != {tuple(expected[k])}"
        for k in expected
        if k in given and tuple(given[k].shape) != tuple(expected[k])
    )
    if missing or unexpected or wrong_shapes:
        raise StateDictMismatchError(missing, unexpected, wrong_shapes, source=source)


class WeightsFolder:
    """Mixin for an ``nn.Module`` built from one config (``self.config`` of type ``config_class``).

    A subclass that builds itself differently around existing weights (e.g. on the meta device)
    overrides :meth:`from_state_dict`; :meth:`from_pretrained` goes through it.
    """

    config_class: ClassVar[type[Config]]

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``directory`` as one set: built aside and moved
        in with the config last, so a failed write (full disk) never leaves a config without its weights."""
        directory = Path(directory)
        metadata = {"format": "pt", "class": type(self).__name__}
        with output_folder(directory, last=[self.config.config_name]) as staging:
            save_tensors(staging / WEIGHTS_NAME, self.state_dict(), metadata=metadata)
            self.config.save(staging)
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, device: str | torch.device = "cpu") -> Self:
        """Load a folder written by :meth:`save_pretrained`, on ``device``, in eval mode, with floating weights
        as float32 (shipped models store float16).

        Raises:
            FileNotFoundError: no config or weights in ``directory``.
            ValueError: unreadable (e.g. truncated) weights or config (:class:`~gesco.config.ConfigError`);
                :class:`StateDictMismatchError` if the weights belong to another architecture.
        """
        directory = Path(directory)
        config = cls.config_class.load(directory)
        path = directory / WEIGHTS_NAME
        weights = {k: v.float() if v.is_floating_point() else v for k, v in load_tensors(path, device=device).items()}
        try:
            return cls.from_state_dict(weights, config, source=str(path)).to(device).eval()
        except StateDictMismatchError as err:
            absent = _fields_absent_from(directory / config.config_name, config)
            if not absent:
                raise
            # the likely cause is the config, not the weights: name the fields that fell back to defaults
            raise ConfigError(
                f"{directory / config.config_name} lacks the fields {absent}, so their defaults were used and the "
                f"weights do not fit ({len(err.missing) + len(err.unexpected) + len(err.wrong_shapes)} tensors "
                "differ); restore those fields"
            ) from err

    @classmethod
    def from_state_dict(
        cls, state_dict: Mapping[str, torch.Tensor], config: Config, *, source: str = "state dict"
    ) -> Self:
        """Build the model from ``config`` and load ``state_dict`` into it after checking names and shapes."""
        model = cls(config)
        check_state_dict({k: v.shape for k, v in model.state_dict().items()}, state_dict, source=source)
        model.load_state_dict(state_dict)
        return model


def _fields_absent_from(path: Path, config: Config) -> list[str]:
    """The fields of ``config`` that its JSON file at ``path`` does not set (they took their defaults)."""
    data = json.loads(path.read_text())
    return sorted(f.name for f in dataclasses.fields(config) if f.init and f.name not in data)
