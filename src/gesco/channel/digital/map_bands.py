"""The semantic map in independently decodable pieces: horizontal bands of rows, each coded
losslessly by ``gesco.semantics.bits.encode_map`` and spread over whole link blocks.

Why bands: a digital block either passes its CRC or is lost. If the whole map were one
code, one lost block would lose the image; with bands, a lost block loses only its band,
whose pixels the receiver marks unknown.

Layout of one band: its code, prefixed by its length (4 bytes, big-endian), cut into pieces
of ``block_bytes - 4`` bytes. Every block starts with a 4-byte header (band index: 2 bytes,
piece position: 1 byte, pieces in the band: 1 byte), so a block that passed its CRC says
by itself where it belongs, and a band is decodable iff all its pieces arrived. The map
size and ``band_rows`` are system parameters both ends know (not sent).
"""

from __future__ import annotations

import lzma
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image

from gesco.semantics.bits import decode_map, encode_map

BLOCK_HEADER = struct.Struct(">HBB")
BAND_LENGTH = struct.Struct(">I")
MAX_PIECES = 255
#: What a damaged band that still passed its CRCs can raise while being decoded.
DECODE_ERRORS = (ValueError, OSError, EOFError, IndexError, struct.error, lzma.LZMAError, Image.DecompressionBombError)


@dataclass(frozen=True)
class BandLayout:
    """Rows [i * band_rows, (i + 1) * band_rows) form band i; the last band may be shorter."""

    height: int
    width: int
    band_rows: int

    def __post_init__(self) -> None:
        if self.band_rows < 1:
            raise ValueError(f"band_rows={self.band_rows} must be >= 1")
        if self.height < 1 or self.width < 1:
            raise ValueError(f"map size {self.height} x {self.width} must be positive")
        if self.n_bands > 2**16:
            raise ValueError(f"{self.n_bands} bands exceed the 65536 a block header can name; raise band_rows")

    @property
    def n_bands(self) -> int:
        return math.ceil(self.height / self.band_rows)

    def rows(self, band: int) -> slice:
        return slice(band * self.band_rows, min((band + 1) * self.band_rows, self.height))


@dataclass(frozen=True)
class UnpackedMap:
    """What the receiver recovers of one map.

    Attributes:
        labels: int64 (H, W): channel ids; -1 where unknown (the band was lost).
        edges: float32 (H, W) in {0, 1}, 0 where unknown; None for tables without edges.
        known: bool (H, W): pixels of decoded bands.
        band_ok: bool (n_bands,): which bands were decoded.
    """

    labels: torch.Tensor
    edges: torch.Tensor | None
    known: torch.Tensor
    band_ok: torch.Tensor


def pack_map_bands(
    labels: torch.Tensor, edges: torch.Tensor | None, *, band_rows: int, block_bytes: int
) -> list[bytes]:
    """Code a label map int (H, W) and its edge map (H, W) in {0, 1} (or None) into blocks of
    exactly ``block_bytes`` bytes, band after band."""
    height, width = labels.shape
    layout = BandLayout(height, width, band_rows)
    piece = block_bytes - BLOCK_HEADER.size
    if piece < 1:
        raise ValueError(f"blocks of {block_bytes} bytes leave no room after the {BLOCK_HEADER.size}-byte header")
    blocks = []
    for band in range(layout.n_bands):
        rows = layout.rows(band)
        code = encode_map(labels[rows].cpu(), None if edges is None else edges[rows].cpu())
        stream = BAND_LENGTH.pack(len(code)) + code
        pieces = math.ceil(len(stream) / piece)
        if pieces > MAX_PIECES:
            raise ValueError(
                f"band {band} needs {pieces} blocks, more than the {MAX_PIECES} a header can count; "
                "use fewer band_rows or longer blocks"
            )
        for position in range(pieces):
            chunk = stream[position * piece : (position + 1) * piece]
            blocks.append(BLOCK_HEADER.pack(band, position, pieces) + chunk.ljust(piece, b"\0"))
    return blocks


def _decode_band(pieces: list[bytes], rows: int, width: int, has_edges: bool):
    stream = b"".join(pieces)
    (length,) = BAND_LENGTH.unpack_from(stream)
    if BAND_LENGTH.size + length > len(stream):
        raise ValueError("band length exceeds its pieces")
    labels, edges = decode_map(stream[BAND_LENGTH.size : BAND_LENGTH.size + length])
    if tuple(labels.shape) != (rows, width) or (edges is not None) != has_edges:
        raise ValueError("decoded band has the wrong shape")
    return labels, edges


def unpack_map_bands(
    blocks: Sequence[bytes], block_ok: Sequence[bool], layout: BandLayout, *, has_edges: bool
) -> UnpackedMap:
    """Rebuild the map from the blocks whose CRC passed; a band with a missing piece, or whose
    pieces do not decode to a band of the right size, is lost (its pixels unknown)."""
    pieces: dict[int, dict[int, bytes]] = {}
    counts: dict[int, set[int]] = {}
    for block, ok in zip(blocks, block_ok, strict=True):
        if not ok or len(block) <= BLOCK_HEADER.size:
            continue
        band, position, count = BLOCK_HEADER.unpack_from(block)
        if band < layout.n_bands and position < count:
            pieces.setdefault(band, {})[position] = block[BLOCK_HEADER.size :]
            counts.setdefault(band, set()).add(count)
    labels = torch.full((layout.height, layout.width), -1, dtype=torch.int64)
    edges = torch.zeros(layout.height, layout.width) if has_edges else None
    band_ok = torch.zeros(layout.n_bands, dtype=torch.bool)
    for band, received in pieces.items():
        if len(counts[band]) != 1:  # pieces disagree on the band's size: damaged beyond the CRC
            continue
        count = next(iter(counts[band]))
        if len(received) != count:
            continue
        rows = layout.rows(band)
        try:
            band_labels, band_edges = _decode_band(
                [received[i] for i in range(count)], rows.stop - rows.start, layout.width, has_edges
            )
        except DECODE_ERRORS:
            continue
        labels[rows] = band_labels
        if edges is not None:
            edges[rows] = band_edges
        band_ok[band] = True
    return UnpackedMap(labels, edges, labels >= 0, band_ok)
