"""gesco: generative semantic communication.

Transmitter (semantic map -> payload) -> Channel (received map) -> Receiver (map denoiser + diffusion model ->
image), composed by :class:`gesco.link.Link`.

Layers, lowest first; a module imports only from its own layer and the ones before it
(``tests/test_layers.py`` keeps this true):

1. ``constants``, ``io``, ``config``, ``weights_folder``, ``images``: plain values, files, configs, pictures;
2. ``semantics``: class tables, label maps, the transmitter and its payload;
3. ``datasets``: real data set layouts and the synthetic street scenes;
4. ``channel``: the channel contract and every channel (analog, fading, unit-power, digital);
5. ``receiver``: map denoisers, the SPADE UNet, diffusion and its samplers;
6. ``link``: transmitter -> channel -> receiver;
7. ``training``: the one training loop and the receiver trainer;
8. ``baselines``: payload accounting, JPEG over the digital link, Deep JSCC;
9. ``evaluation``: metrics, the segmenter, demo, sweep and comparison;
10. ``pretrained``: the shipped models by name;
11. ``serve``: the receiver as a network service, its wire format and web demo (extra ``gesco[serve]``);
12. ``cli``: parses and calls.

The names a user reaches for first are importable from here (loaded on first use, so ``import gesco`` stays
light): ``Link``, ``SemanticMap``, ``Transmitter``, ``ChannelQuality``, the channels, ``Receiver``,
``SamplerConfig``, ``payload_sizes``, ``read_label_map`` and the image conversions. Images are float
tensors (B, 3, H, W) in [-1, 1]; ``image_to_rgb`` turns them into uint8 (B, H, W, 3) and ``image_to_tensor``
turns one uint8 (H, W, 3) picture back.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS = {
    "Link": "gesco.link",
    "LinkOutput": "gesco.link",
    "SemanticMap": "gesco.semantics.maps",
    "Transmitter": "gesco.semantics.transmitter",
    "Payload": "gesco.semantics.payload",
    "ChannelQuality": "gesco.channel.quality",
    "AWGNChannel": "gesco.channel.awgn",
    "RayleighBlockFading": "gesco.channel.fading",
    "UnitPowerAnalogChannel": "gesco.channel.unit_power",
    "build_channel": "gesco.channel.registry",
    "Receiver": "gesco.receiver.receiver",
    "DiffusionReceiver": "gesco.receiver.pipeline",
    "SamplerConfig": "gesco.receiver.sampling",
    "PayloadSizes": "gesco.baselines.accounting",
    "payload_sizes": "gesco.baselines.accounting",
    "read_label_map": "gesco.datasets.label_files",
    "image_to_rgb": "gesco.images",
    "image_to_tensor": "gesco.datasets.base",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gesco' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
