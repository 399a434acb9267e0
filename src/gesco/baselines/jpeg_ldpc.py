"""The classical baseline: the image as JPEG over the digital link (separate source and
channel coding).

The JPEG stream (Pillow), prefixed by its length (4 bytes, big-endian), is cut into link
blocks. Its quality is the highest in 1..95 whose message fits a channel-use budget at the
link's rate (binary search, taking size to grow with quality). A JPEG stream has no
resynchronisation: if any block fails its CRC, or the received stream does not decode to an
image of the right size, the image is lost and the receiver shows a uniform mid-grey image
(128 in every channel). That all-or-nothing loss is the "cliff" of separate coding.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from gesco.channel.digital.config import DigitalConfig
from gesco.channel.digital.phy import DigitalLink, bits_to_bytes, bytes_to_bits
from gesco.semantics.bits import image_bytes

LENGTH_PREFIX = struct.Struct(">I")
MIN_QUALITY, MAX_QUALITY = 1, 95
#: The receiver's picture of a lost image.
MID_GREY = 128


@dataclass(frozen=True)
class JpegChoice:
    """Attributes:
    quality: Pillow JPEG quality (1..95).
    data: the JPEG stream.
    message_bits: bits sent: the length prefix and the stream.
    """

    quality: int
    data: bytes

    @property
    def message_bits(self) -> int:
        return 8 * len(jpeg_message(self.data))


@dataclass(frozen=True)
class JpegOutput:
    """Attributes:
    image: uint8 (H, W, 3): the decoded image, or mid-grey if it was lost.
    decoded: whether the image arrived (every CRC passed and the stream decoded).
    quality: the JPEG quality sent.
    channel_uses: complex channel uses spent.
    block_ok: bool (n_blocks,): CRC verdict of each block.
    """

    image: np.ndarray
    decoded: bool
    quality: int
    channel_uses: int
    block_ok: torch.Tensor


def jpeg_message(data: bytes) -> bytes:
    """What crosses the link for a JPEG stream: its length, then the stream."""
    return LENGTH_PREFIX.pack(len(data)) + data


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise TypeError(f"image must be an RGB uint8 numpy array (H, W, 3), got {type(image).__name__} {shape}")


def choose_jpeg_quality(image: np.ndarray, *, max_bits: int) -> JpegChoice:
    """The highest JPEG quality in 1..95 (binary search) whose message fits ``max_bits`` bits.

    Raises:
        ValueError: even quality 1 does not fit; the message names the bits it needs.
    """
    _check_image(image)
    low, high, best = MIN_QUALITY, MAX_QUALITY, None
    while low <= high:
        quality = (low + high) // 2
        choice = JpegChoice(quality, image_bytes(image, "JPEG", quality=quality))
        if choice.message_bits <= max_bits:
            best, low = choice, quality + 1
        else:
            high = quality - 1
    if best is None:
        needed = JpegChoice(MIN_QUALITY, image_bytes(image, "JPEG", quality=MIN_QUALITY)).message_bits
        raise ValueError(
            f"the image does not fit {max_bits} bits even as JPEG quality {MIN_QUALITY} ({needed} bits); "
            "give a larger channel-use budget or a faster link (higher code rate or modulation)"
        )
    return best


def decode_jpeg_message(message: bytes, height: int, width: int) -> np.ndarray | None:
    """The RGB uint8 (H, W, 3) image of a received message, or None if it does not decode to
    an image of that size."""
    if len(message) < LENGTH_PREFIX.size:
        return None
    (length,) = LENGTH_PREFIX.unpack_from(message)
    data = message[LENGTH_PREFIX.size : LENGTH_PREFIX.size + length]
    if len(data) != length:
        return None
    try:
        with Image.open(io.BytesIO(data)) as decoded:
            image = np.asarray(decoded.convert("RGB"))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    return image if image.shape == (height, width, 3) else None


class JpegOverDigital(nn.Module):
    """Image -> JPEG at the quality that fits the budget -> digital link -> image or grey.

    Args:
        link: the digital link.
    """

    def __init__(self, link: DigitalLink):
        super().__init__()
        self.link = link

    @property
    def config(self) -> DigitalConfig:
        return self.link.config

    def fit(self, image: np.ndarray, *, channel_uses: int) -> JpegChoice:
        """The JPEG stream sent within a budget of ``channel_uses`` complex channel uses."""
        return choose_jpeg_quality(image, max_bits=self.config.message_bits_within(channel_uses))

    def forward(
        self,
        image: np.ndarray,
        *,
        channel_uses: int,
        snr_db: float | None = None,
        ebn0_db: float | None = None,
        generator: torch.Generator | None = None,
    ) -> JpegOutput:
        """Send one RGB uint8 (H, W, 3) image within ``channel_uses`` at Es/N0 ``snr_db`` (or Eb/N0)."""
        choice = self.fit(image, channel_uses=channel_uses)
        message = jpeg_message(choice.data)
        out = self.link(bytes_to_bits(message), snr_db=snr_db, ebn0_db=ebn0_db, generator=generator)
        height, width = image.shape[:2]
        received = decode_jpeg_message(bits_to_bytes(out.bits), height, width) if bool(out.block_ok.all()) else None
        decoded = received is not None
        if received is None:
            received = np.full((height, width, 3), MID_GREY, dtype=np.uint8)
        return JpegOutput(received, decoded, choice.quality, out.channel_uses, out.block_ok)
