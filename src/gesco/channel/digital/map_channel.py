"""GESCO-digital: the semantic map coded losslessly and sent over the digital link.

The label and edge maps are coded in horizontal bands (``gesco.channel.digital.map_bands``), each
band over whole CRC-protected LDPC blocks. At the receiver a band is either exact or lost:

- decoded bands give the exact one-hot map and edge channel;
- pixels of lost bands are unknown: every channel is 0 there, as in the unconditional input of
  classifier-free guidance, so the diffusion model fills them in;
- the transmitted mask holds the classes seen in decoded bands plus the edge channel (a class
  that only occurred in lost bands is unknown to the receiver).

``DigitalGesco`` implements the channel contract (``gesco.channel.base.Channel``: payload and an
Es/N0 in, ``Received`` out), so ``gesco.link.Link(channel=DigitalGesco(link), receiver=Receiver(None,
map_denoiser="none"))`` runs GESCO over the digital link unchanged. FDS is meant for noisy maps: on a
clean one-hot map it blurs class borders (3x3 mean then max), so the digital baseline runs the receiver
without a map denoiser; FDS stays available for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gesco.channel.base import Channel, Received
from gesco.channel.digital.config import DigitalConfig
from gesco.channel.digital.map_bands import BandLayout, pack_map_bands, unpack_map_bands
from gesco.channel.digital.phy import DigitalLink, bits_to_bytes, bytes_to_bits
from gesco.channel.quality import ChannelQuality
from gesco.semantics.payload import Payload

DEFAULT_BAND_ROWS = 16


@dataclass(frozen=True)
class DigitalReceived(Received):
    """A ``Received`` (full channel layout, transmitted mask; ``sigma`` is 0: a decoded band is
    exact; ``known``: the pixels of decoded bands, elsewhere every channel is 0) plus what the digital
    link tells about it.

    Attributes:
        band_ok: bool (B, n_bands): decoded bands of each map.
        block_ok: one bool (n_blocks,) per map: the CRC verdict of each of its blocks.
    """

    band_ok: torch.Tensor | None = None
    block_ok: tuple[torch.Tensor, ...] = ()


def labels_and_edges(payload: Payload, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The label map int64 (H, W) and edge map float32 (H, W) (None without an edge channel) of
    map ``index`` of a clean payload (one-hot classes, binary edges)."""
    table = payload.table
    values = payload.values[index].detach().cpu()
    classes = values[: table.num_classes]
    if not (((classes == 0) | (classes == 1)).all() and (classes.sum(0) == 1).all()):
        raise ValueError(
            f"map {index}: digital GESCO codes a clean one-hot map (exactly one class channel at 1 per pixel), "
            "as the Transmitter produces; it got noisy or soft values"
        )
    edges = None
    if table.has_edge:
        edges = values[table.edge_channel]
        if not ((edges == 0) | (edges == 1)).all():
            raise ValueError(f"map {index}: the edge channel must hold 0 and 1 only")
    return classes.argmax(0), edges


def map_blocks(payload: Payload, index: int, config: DigitalConfig, *, band_rows: int) -> list[bytes]:
    """The link blocks of map ``index``: whole bytes of each block's message bits."""
    labels, edges = labels_and_edges(payload, index)
    return pack_map_bands(labels, edges, band_rows=band_rows, block_bytes=config.payload_bits_per_block // 8)


class DigitalGesco(Channel):
    """Semantic map -> band codes -> digital link -> map with lost bands zeroed, at an Es/N0.

    Args:
        link: the digital link (modulation, code rate, block length, channel), or its config
            (default ``DigitalConfig()``), from which the link is built (needs Sionna).
        band_rows: rows per independently coded band. Fewer rows lose less per failed block
            but code less compactly (each band carries its own header and class list).
    """

    def __init__(self, link: DigitalLink | DigitalConfig | None = None, *, band_rows: int = DEFAULT_BAND_ROWS):
        super().__init__()
        if link is None or isinstance(link, DigitalConfig):
            link = DigitalLink(link)
        if band_rows < 1:
            raise ValueError(f"band_rows={band_rows} must be >= 1")
        if link.config.payload_bits_per_block < 64:
            raise ValueError(
                f"blocks of {link.config.payload_bits_per_block} message bits are too short for band codes; "
                f"use block_bits >= {64 + link.config.crc_bits}"
            )
        self.link = link
        self.band_rows = band_rows

    accepts = ("esn0_db",)

    def quality_hint(self) -> str:
        return "; PSNR labels, peak SNRs and sigma name the analog map's noise, which a digital link does not have"

    def transmit(
        self, payload: Payload, quality: ChannelQuality, generators: list[torch.Generator | None]
    ) -> DigitalReceived:
        table, (height, width) = payload.table, payload.size
        layout = BandLayout(height, width, self.band_rows)
        message_bits = self.link.config.payload_bits_per_block
        block_bytes = message_bits // 8
        values = torch.zeros_like(payload.values)
        transmitted = torch.zeros_like(payload.transmitted)
        known, band_ok, block_ok, channel_uses = [], [], [], []
        for b in range(payload.batch_size):
            blocks = map_blocks(payload, b, self.link.config, band_rows=self.band_rows)
            # Each block's bytes fill the front of its message bits; leftover bits stay 0.
            bits = torch.zeros(len(blocks), message_bits, dtype=torch.uint8)
            for i, block in enumerate(blocks):
                block_bits = bytes_to_bits(block)
                bits[i, : block_bits.numel()] = block_bits
            out = self.link(bits.flatten(), snr_db=quality.per_map(payload.batch_size)[b], generator=generators[b])
            received_blocks = [bits_to_bytes(row)[:block_bytes] for row in out.bits.reshape(len(blocks), -1)]
            unpacked = unpack_map_bands(received_blocks, out.block_ok.tolist(), layout, has_edges=table.has_edge)
            # Ids outside the table can only come from a damaged block that fooled its CRC.
            mask = unpacked.known & (unpacked.labels < table.num_classes)
            one_hot = torch.nn.functional.one_hot(unpacked.labels.clamp(0, table.num_classes - 1), table.num_classes)
            values[b, : table.num_classes] = (one_hot.permute(2, 0, 1) * mask).to(values.dtype)
            transmitted[b, unpacked.labels[mask].unique()] = True
            if table.has_edge:
                values[b, table.edge_channel] = unpacked.edges * mask
                transmitted[b, table.edge_channel] = True
            known.append(mask)
            band_ok.append(unpacked.band_ok)
            block_ok.append(out.block_ok)
            channel_uses.append(out.channel_uses)
        return DigitalReceived(
            payload=Payload(values, transmitted, table),
            sigma=torch.zeros(payload.batch_size),
            quality=quality,
            complex_channel_uses=torch.tensor(channel_uses, dtype=torch.int64),
            known=torch.stack(known),
            band_ok=torch.stack(band_ok),
            block_ok=tuple(block_ok),
        )
