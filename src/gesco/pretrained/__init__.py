"""Models trained on this project's CPU and shipped inside the package: loadable by name, nothing downloaded.

Each model is a folder ``gesco/pretrained/<name>/`` holding its ``MODEL_CARD.md`` and the files its class
reads with ``from_pretrained``: a receiver folder (``receiver.json`` + ``unet/``), or the folder of a segmenter,
Deep JSCC, map denoiser, detector or depth network (``config.json`` of its config class + ``model.safetensors``).
Weights are stored in float16 to keep the wheel small and are loaded as float32.

>>> import gesco.pretrained
>>> gesco.pretrained.available()                                  # doctest: +SKIP
['deep-jscc-synthetic-streets-64x128', 'segmenter-synthetic-streets-64x128', 'synthetic-streets-64x128', ...]
>>> receiver = gesco.pretrained.load("synthetic-streets-64x128")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent
MODEL_CARD = "MODEL_CARD.md"

#: The models the demo and the tests use (the folders must exist in a release).
GESCO_RECEIVER = "synthetic-streets-64x128"
SDM_RECEIVER = "synthetic-streets-64x128-sdm"
#: gesco's channel-aware receiver: the GESCO network conditioned on the channel's noise level.
CHANNEL_AWARE_RECEIVER = "synthetic-streets-64x128-channel-aware"
MAP_DENOISER = "map-denoiser-synthetic-streets-64x128"
#: gesco's two-stage receiver: the learned map denoiser (told sigma), then the SDM-style network on its clean map.
TWO_STAGE_RECEIVER = "synthetic-streets-64x128-two-stage"
#: The GESCO receiver with its guidance distilled into the network (gesco distill-guidance): one forward per step.
ONE_PASS_RECEIVER = "synthetic-streets-64x128-one-pass"
#: The GESCO receiver distilled into a consistency model (gesco distill-consistency): lcm sampler, 4 forwards.
LCM_RECEIVER = "synthetic-streets-64x128-lcm"
SEGMENTER = "segmenter-synthetic-streets-64x128"
#: The compact detector behind AP50 (``gesco evaluate --detector``).
DETECTOR = "detector-synthetic-streets-64x128"
#: The same detector, half of its training images replaced by the paper's receiver's regenerations.
DETECTOR_ADAPTED = "detector-synthetic-streets-64x128-adapted"
#: The compact monocular depth network behind AbsRel and delta1 (``gesco evaluate --depth``).
DEPTH = "depth-synthetic-streets-64x128"
#: The same depth network, half of its training images replaced by the paper's receiver's regenerations.
DEPTH_ADAPTED = "depth-synthetic-streets-64x128-adapted"
DEEP_JSCC = "deep-jscc-synthetic-streets-64x128"


Kind = Literal["receiver", "segmenter", "deep-jscc", "map-denoiser", "detector", "depth"]
#: The config class name of each kind of model folder with a ``config.json``.
_CONFIG_KINDS = {
    "SegmenterConfig": "segmenter",
    "DeepJSCCConfig": "deep-jscc",
    "MapDenoiserConfig": "map-denoiser",
    "DetectorConfig": "detector",
    "DepthNetConfig": "depth",
}
#: The class that loads each kind (module, class name), imported only when a model of that kind is loaded.
_LOADERS = {
    "receiver": ("gesco.receiver.pipeline", "DiffusionReceiver"),
    "map-denoiser": ("gesco.receiver.learned_denoiser", "LearnedMapDenoiser"),
    "deep-jscc": ("gesco.baselines.deep_jscc", "DeepJSCC"),
    "segmenter": ("gesco.evaluation.segmenter", "GescoSegmenter"),
    "detector": ("gesco.evaluation.detector", "GescoDetector"),
    "depth": ("gesco.evaluation.depth_network", "GescoDepthNet"),
}


@dataclass(frozen=True)
class PretrainedModel:
    """A shipped model: its name, what it is, where its folder is."""

    name: str
    kind: Kind
    path: Path

    @property
    def card(self) -> str:
        """The model card (Markdown): what it is, data, training, metrics, limits."""
        return (self.path / MODEL_CARD).read_text()


def _kind(folder: Path) -> Kind | None:
    if (folder / "receiver.json").is_file():
        return "receiver"
    config = folder / "config.json"
    return _CONFIG_KINDS.get(json.loads(config.read_text()).get("_class_name")) if config.is_file() else None


def available() -> list[str]:
    """Names of the shipped models, sorted."""
    return sorted(p.name for p in ROOT.iterdir() if p.is_dir() and _kind(p) is not None)


def info(name: str) -> PretrainedModel:
    """The shipped model called ``name``; ``KeyError`` listing the available names if there is none."""
    folder = ROOT / name
    kind = _kind(folder) if folder.is_dir() and "/" not in name and name not in (".", "..") else None
    if kind is None:
        raise KeyError(f"no shipped model named {name!r}; available: {available()}")
    return PretrainedModel(name, kind, folder)


def load(name: str):
    """Load a shipped model by name: a :class:`~gesco.receiver.pipeline.DiffusionReceiver` for receivers, a
    :class:`~gesco.evaluation.segmenter.GescoSegmenter` for segmenters, a
    :class:`~gesco.baselines.deep_jscc.DeepJSCC` for Deep JSCC, a
    :class:`~gesco.receiver.learned_denoiser.LearnedMapDenoiser` for map denoisers, a
    :class:`~gesco.evaluation.detector.GescoDetector` for detectors, a
    :class:`~gesco.evaluation.depth_network.GescoDepthNet` for depth networks (float32, eval mode)."""
    model = info(name)
    module, class_name = _LOADERS[model.kind]
    return getattr(importlib.import_module(module), class_name).from_pretrained(model.path)


def resolve(name_or_path: str | Path) -> Path:
    """A model folder given on a command line: an existing path as it is, else the folder of a shipped model.

    Raises:
        FileNotFoundError: neither a path nor a shipped model's name.
    """
    if not str(name_or_path).strip():
        # Path("") is the current folder: an empty name must not load whatever sits there
        raise FileNotFoundError(f"the model name {str(name_or_path)!r} is empty: neither a path nor a shipped model")
    path = Path(name_or_path)
    if path.exists():
        return path
    try:
        return info(str(name_or_path)).path
    except KeyError:
        raise FileNotFoundError(
            f"{str(name_or_path)!r} is neither an existing path nor a shipped model; shipped: {available()}"
        ) from None
