"""Channels by name, for the CLI and configs: adding a channel is its file plus one line in
``gesco.constants.CHANNELS`` (kept there so that the CLI lists channels without importing torch).

Each entry names the class as ``"module:Class"`` and is imported only when built, so listing the
channels costs nothing and the digital link's Sionna stays an optional extra.
"""

from __future__ import annotations

import importlib
import inspect
from types import MappingProxyType
from typing import Any

from gesco.channel.base import Channel
from gesco.constants import CHANNELS as CHANNEL_TABLE

#: name -> "module:Class" of every channel that implements ``gesco.channel.base.Channel``.
CHANNELS = MappingProxyType(dict(CHANNEL_TABLE))


def channel_class(name: str) -> type[Channel]:
    """The class registered as ``name``."""
    if name not in CHANNELS:
        raise ValueError(f"unknown channel {name!r}; choose one of {list(CHANNELS)}")
    module, _, attribute = CHANNELS[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def build_channel(name: str, **options: Any) -> Channel:
    """The channel ``name`` built with ``options``; an option left None takes the channel's documented default,
    and an option the channel does not take is an error naming the ones it does."""
    cls = channel_class(name)
    accepted = [
        name
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise ValueError(f"the {name!r} channel takes no option {unknown}; its options are {accepted or 'none'}")
    return cls(**given)
