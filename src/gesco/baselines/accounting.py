"""Channel-use accounting: how many complex channel uses each method spends on one image, so
that methods can be compared at equal channel uses (bandwidth).

A channel use is one complex baseband symbol (one I and one Q real value).

- GESCO-analog (the paper): every transmitted map value, (|present| + 1) x H x W of them, is
  one real channel symbol; two real values share a complex channel use, so it spends
  ceil((|present| + 1) H W / 2) channel uses. The present-class list (a bitmap of the class
  table, ``num_classes`` bits) is side information that the paper treats as error-free; it is
  reported in bits (``side_info_bits``), not in channel uses.
- GESCO-digital: the band codes of the map in whole link blocks:
  blocks x symbols per block (``gesco.baselines.digital_gesco``).
- JPEG over the digital link: the (length-prefixed) JPEG stream in whole link blocks; its
  quality is chosen to fit a budget (``gesco.baselines.jpeg_ldpc``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gesco.baselines.digital_gesco import DEFAULT_BAND_ROWS, map_blocks
from gesco.baselines.jpeg_ldpc import jpeg_message
from gesco.channel.digital.config import DigitalConfig
from gesco.semantics.bits import image_bytes
from gesco.semantics.payload import Payload

GESCO_ANALOG, GESCO_DIGITAL, JPEG = "gesco-analog", "gesco-digital", "jpeg"


@dataclass(frozen=True)
class ChannelUses:
    """Channel uses one method spends on one image of ``pixels`` pixels.

    Attributes:
        method: e.g. "gesco-analog", "gesco-digital", "jpeg".
        channel_uses: complex channel uses.
        pixels: H x W of the image.
        side_info_bits: bits assumed to reach the receiver error-free, outside the channel uses.
    """

    method: str
    channel_uses: int
    pixels: int
    side_info_bits: int = 0

    @property
    def per_pixel(self) -> float:
        """Channel uses per pixel (the bandwidth ratio per pixel)."""
        return self.channel_uses / self.pixels


def complex_channel_uses(real_values: int) -> int:
    """Complex channel uses that carry ``real_values`` real symbols, two per use."""
    if real_values < 0:
        raise ValueError(f"real_values={real_values} must be >= 0")
    return math.ceil(real_values / 2)


def channel_use_budget(height: int, width: int, *, per_pixel: float) -> int:
    """Whole channel uses for an H x W image at ``per_pixel`` channel uses per pixel."""
    if not (per_pixel > 0 and math.isfinite(per_pixel)):
        raise ValueError(f"per_pixel={per_pixel} must be a positive number of channel uses per pixel")
    return math.floor(per_pixel * height * width)


def gesco_analog_uses(payload: Payload) -> list[ChannelUses]:
    """GESCO-analog accounting of every map in ``payload``."""
    height, width = payload.size
    return [
        ChannelUses(GESCO_ANALOG, complex_channel_uses(int(values)), height * width, payload.table.num_classes)
        for values in payload.channel_uses
    ]


def gesco_digital_uses(
    payload: Payload, config: DigitalConfig, *, band_rows: int = DEFAULT_BAND_ROWS
) -> list[ChannelUses]:
    """GESCO-digital accounting of every map in ``payload`` (codes the maps, no channel)."""
    height, width = payload.size
    uses = []
    for b in range(payload.batch_size):
        blocks = map_blocks(payload, b, config, band_rows=band_rows)
        uses.append(ChannelUses(GESCO_DIGITAL, len(blocks) * config.symbols_per_block, height * width))
    return uses


def jpeg_uses(image: np.ndarray, config: DigitalConfig, *, quality: int) -> ChannelUses:
    """JPEG-over-the-link accounting of one RGB uint8 (H, W, 3) image at a given quality."""
    message = jpeg_message(image_bytes(image, "JPEG", quality=quality))
    return ChannelUses(JPEG, config.channel_uses_for(8 * len(message)), image.shape[0] * image.shape[1])


def channel_use_report(
    payload: Payload,
    config: DigitalConfig,
    *,
    images: np.ndarray | None = None,
    band_rows: int = DEFAULT_BAND_ROWS,
    jpeg_quality: int = 75,
) -> list[tuple[ChannelUses, ...]]:
    """Per map: the channel uses of GESCO-analog, GESCO-digital and (with ``images``, uint8
    (B, H, W, 3)) JPEG at ``jpeg_quality``, all over the link of ``config``."""
    analog = gesco_analog_uses(payload)
    digital = gesco_digital_uses(payload, config, band_rows=band_rows)
    if images is not None and len(images) != payload.batch_size:
        raise ValueError(f"{len(images)} images for {payload.batch_size} maps")
    rows = []
    for b in range(payload.batch_size):
        jpeg = () if images is None else (jpeg_uses(images[b], config, quality=jpeg_quality),)
        rows.append((analog[b], digital[b], *jpeg))
    return rows
