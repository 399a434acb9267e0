"""The transmitter's side of ``gesco send``: map -> payload -> channel -> wire message -> server -> answer.

Only the standard library speaks HTTP here (``urllib``), so a sender needs nothing of the ``serve`` extra.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import numpy as np
import torch

from gesco.channel.base import Channel, Received
from gesco.channel.quality import ChannelQuality
from gesco.semantics.maps import SemanticMap
from gesco.semantics.transmitter import Transmitter
from gesco.serve.wire import encode


class ServerAnswerError(OSError):
    """The server answered with an error status; ``status`` is the HTTP code, the message its explanation."""

    def __init__(self, status: int, detail: str):
        super().__init__(f"the server answered {status}: {detail}")
        self.status = status


def transmit(
    semantic_map: SemanticMap, channel: Channel, quality: ChannelQuality, *, channel_name: str, seed: int, tag: int = 0
) -> tuple[bytes, Received]:
    """Send one map through the simulated channel; the wire message of what arrived, and the arrival itself."""
    if semantic_map.batch_size != 1:
        raise ValueError(f"gesco send sends one map at a time, got a batch of {semantic_map.batch_size}")
    received = channel(Transmitter()(semantic_map), quality, generator=torch.Generator().manual_seed(seed))
    return encode(received, 0, channel=channel_name, tag=tag), received


def post_message(url: str, message: bytes, *, seed: int = 0, token: str | None = None, timeout: float = 600) -> dict:
    """POST a wire message to ``url`` (the server's ``/v1/regenerate``); its JSON answer, or
    :class:`ServerAnswerError` naming the status and the server's reason."""
    headers = {"Content-Type": "application/octet-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"{url}?seed={seed}", data=message, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:
        body = err.read()
        try:
            detail = json.loads(body).get("detail", body.decode(errors="replace"))
        except ValueError:
            detail = body.decode(errors="replace")[:500]
        raise ServerAnswerError(err.code, str(detail)) from None


def get_json(url: str, *, token: str | None = None, timeout: float = 30) -> dict:
    """GET ``url``'s JSON (e.g. ``/healthz``, which tells the served table and image size)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:
        raise ServerAnswerError(err.code, err.read().decode(errors="replace")[:500]) from None


def answer_image(answer: dict) -> np.ndarray:
    """The regenerated image of a ``/v1/regenerate`` answer: uint8 (H, W, 3)."""
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(answer["image_png"]))).convert("RGB"))
