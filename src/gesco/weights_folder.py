"""Models that live in a folder of ``config.json`` + ``model.safetensors`` (the segmenter, Deep JSCC)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Self

from gesco.config import Config
from gesco.io import load_tensors, save_tensors

WEIGHTS_NAME = "model.safetensors"


class WeightsFolder:
    """Mixin for an ``nn.Module`` built from one config (``self.config`` of type ``config_class``)."""

    config_class: ClassVar[type[Config]]

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``directory`` atomically; return it."""
        directory = Path(directory)
        self.config.save(directory)
        save_tensors(directory / WEIGHTS_NAME, self.state_dict(), metadata={"class": type(self).__name__})
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> Self:
        """Load a folder written by :meth:`save_pretrained` (float16 weights are upcast), in eval mode."""
        from gesco.receiver.unet.model import check_state_dict

        directory = Path(directory)
        model = cls(cls.config_class.load(directory))
        weights = load_tensors(directory / WEIGHTS_NAME)
        check_state_dict({k: v.shape for k, v in model.state_dict().items()}, weights, source=str(directory))
        model.load_state_dict(weights)
        return model.eval()
