"""Payload accounting, the one place gesco counts what crosses the link, in three units named as such:

- **real values**: analog map values sent (the paper's payload); two make one complex channel use;
- **complex channel uses**: complex baseband symbols (one I and one Q value), the bandwidth every method is
  compared at;
- **bits**: digital payloads (side information, the lossless map code, PNG / JPEG images).

``payload_sizes`` gives every size of one image's payload (``gesco transmit``, ``gesco demo``,
``gesco evaluate``); the ``*_uses`` functions give each method's channel uses at equal bandwidth
(``gesco compare``).

- GESCO-analog (the paper): every transmitted map value, (|present| + 1) x H x W of them, is
  one real value; two real values share a complex channel use, so it spends
  ceil((|present| + 1) H W / 2) channel uses. The present-class list (a bitmap of the class
  table, ``num_classes`` bits) is side information that the paper treats as error-free; it is
  reported in bits (``side_info_bits``), not in channel uses.
- GESCO-digital: the band codes of the map in whole link blocks:
  blocks x symbols per block (``gesco.channel.digital.map_channel``).
- JPEG over the digital link: the (length-prefixed) JPEG stream in whole link blocks; its
  quality is chosen to fit a budget (``gesco.baselines.jpeg_ldpc``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gesco.baselines.jpeg_ldpc import jpeg_message
from gesco.channel.digital.config import DigitalConfig
from gesco.channel.digital.map_channel import DEFAULT_BAND_ROWS, map_blocks
from gesco.channel.symbols import complex_channel_uses
from gesco.semantics.bits import encode_map, image_bytes
from gesco.semantics.maps import SemanticMap
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


@dataclass(frozen=True)
class PayloadSizes:
    """Every size of one image's payload (or their mean over a set: then the values are floats).

    Attributes:
        pixels: H x W.
        analog_real_values: map values GESCO-analog sends, (|present| + edge) x H x W.
        analog_complex_channel_uses: the complex channel uses they take, ceil(real values / 2).
        side_info_bits: the present-class list, a bitmap of the class table (assumed error-free).
        lossless_map_bits: the label and edge maps coded losslessly (``gesco.semantics.bits.encode_map``).
        png_image_bits, jpeg_image_bits: the image itself as PNG / JPEG, when an image was given.
    """

    pixels: int
    analog_real_values: float
    analog_complex_channel_uses: float
    side_info_bits: float
    lossless_map_bits: float
    png_image_bits: float | None = None
    jpeg_image_bits: float | None = None

    def per_pixel(self) -> dict[str, float]:
        """Every known size divided by the pixel count, keyed by field name (units in the name)."""
        sizes = {k: v for k, v in dataclasses.asdict(self).items() if k != "pixels" and v is not None}
        return {name: value / self.pixels for name, value in sizes.items()}


def payload_sizes(
    semantic_map: SemanticMap, images: np.ndarray | None = None, *, jpeg_quality: int = 75
) -> list[PayloadSizes]:
    """The payload sizes of every map of a batch; ``images`` uint8 (B, H, W, 3) adds PNG and JPEG sizes."""
    if images is not None and len(images) != semantic_map.batch_size:
        raise ValueError(f"{len(images)} images for {semantic_map.batch_size} maps")
    table = semantic_map.table
    present = semantic_map.present()
    edges = semantic_map.edges()[:, 0] if table.has_edge else None
    height, width = semantic_map.size
    sizes = []
    for b in range(semantic_map.batch_size):
        real_values = (int(present[b].sum()) + int(table.has_edge)) * height * width
        code = encode_map(semantic_map.labels[b].cpu(), None if edges is None else edges[b].cpu())
        sizes.append(
            PayloadSizes(
                pixels=height * width,
                analog_real_values=real_values,
                analog_complex_channel_uses=complex_channel_uses(real_values),
                side_info_bits=table.num_classes,
                lossless_map_bits=8 * len(code),
                png_image_bits=None if images is None else 8 * len(image_bytes(images[b], "PNG")),
                jpeg_image_bits=None
                if images is None
                else 8 * len(image_bytes(images[b], "JPEG", quality=jpeg_quality)),
            )
        )
    return sizes


def mean_payload_sizes(sizes: Sequence[PayloadSizes]) -> PayloadSizes:
    """The mean of each size over images of one pixel count (a size unknown for any image stays None)."""
    if not sizes:
        raise ValueError("no payload sizes to average")
    if len({s.pixels for s in sizes}) != 1:
        raise ValueError("payload sizes of images of different sizes cannot be averaged per image")
    mean = {}
    for field in dataclasses.fields(PayloadSizes):
        values = [getattr(s, field.name) for s in sizes]
        mean[field.name] = None if None in values else sum(values) / len(values)
    return PayloadSizes(**{**mean, "pixels": sizes[0].pixels})


def channel_use_budget(height: int, width: int, *, per_pixel: float) -> int:
    """Whole channel uses for an H x W image at ``per_pixel`` channel uses per pixel."""
    if not (per_pixel > 0 and math.isfinite(per_pixel)):
        raise ValueError(f"per_pixel={per_pixel} must be a positive number of channel uses per pixel")
    if height < 1 or width < 1:
        raise ValueError(f"an image of height={height} x width={width} has no pixels to budget for")
    return math.floor(per_pixel * height * width)


def gesco_analog_uses(payload: Payload) -> list[ChannelUses]:
    """GESCO-analog accounting of every map in ``payload``."""
    height, width = payload.size
    return [
        ChannelUses(GESCO_ANALOG, complex_channel_uses(int(values)), height * width, payload.table.num_classes)
        for values in payload.real_values
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
