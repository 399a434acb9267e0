"""A lossless digital code for the label and edge maps, and the image codecs it is compared with.

Payload sizes (real values, channel uses, bits) are counted in one place, ``gesco.baselines.accounting``.

``encode_map`` writes a small header (magic, size, present ids), then the label map as
indices into the present-id list and the edge map, the latter as its difference (XOR)
from the class boundaries the decoder can draw itself (mostly empty), each compressed both as PNG (row
prediction + deflate) and with LZMA, keeping whichever is shorter.
"""

from __future__ import annotations

import io
import lzma
import struct

import numpy as np
import torch
from PIL import Image

from gesco.semantics.edges import instance_edges

_MAGIC = b"GSM1"
_HEADER = struct.Struct("<4sHHHB")  # magic, height, width, number of present ids, codec flags
_PNG, _LZMA = 0, 1


def _png_bytes(array: np.ndarray, bits: int) -> bytes:
    if bits == 1:
        image = Image.fromarray(array.astype(np.uint8) * 255, mode="L").convert("1")
    else:
        image = Image.fromarray(array.astype(np.uint8), mode="L")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _compress(array: np.ndarray, bits: int) -> tuple[int, bytes]:
    png = _png_bytes(array, bits)
    packed = lzma.compress(
        np.packbits(array).tobytes() if bits == 1 else array.astype(np.uint8).tobytes(),
        format=lzma.FORMAT_RAW,
        filters=[{"id": lzma.FILTER_LZMA2, "preset": 9}],
    )
    return (_PNG, png) if len(png) <= len(packed) else (_LZMA, packed)


def _decompress(codec: int, data: bytes, shape: tuple[int, int], bits: int) -> np.ndarray:
    # Both decoders stop at the size the header states: a few damaged or hostile bytes must not inflate to
    # gigabytes (codes arrive from the network, ``gesco serve``).
    if codec == _PNG:
        image = Image.open(io.BytesIO(data))
        if image.size != (shape[1], shape[0]):
            raise ValueError(f"the PNG part is {image.size[1]}x{image.size[0]}, the header says {shape[0]}x{shape[1]}")
        decoded = np.asarray(image.convert("L"))
        return decoded > 0 if bits == 1 else decoded
    expected = -(-shape[0] * shape[1] // 8) if bits == 1 else shape[0] * shape[1]
    decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "preset": 9}])
    raw = decompressor.decompress(data, max_length=expected)
    if len(raw) != expected or (not decompressor.eof and decompressor.decompress(b"", max_length=1)):
        raise ValueError(f"the LZMA part does not hold the {expected} bytes the header's size needs")
    flat = np.frombuffer(raw, dtype=np.uint8)
    if bits == 1:
        flat = np.unpackbits(flat)[: shape[0] * shape[1]].astype(bool)
    return flat.reshape(shape)


def _class_boundaries(labels: torch.Tensor) -> torch.Tensor:
    return instance_edges(labels.long().unsqueeze(0))[0, 0].bool()


def encode_map(labels: torch.Tensor, edges: torch.Tensor | None) -> bytes:
    """Losslessly code one label map (H, W) of channel ids < 65536 and its edge map (H, W) in {0, 1}."""
    if labels.dim() != 2:
        raise ValueError(f"encode_map takes one label map of shape (H, W), got {tuple(labels.shape)}")
    height, width = labels.shape
    ids, indices = torch.unique(labels.long(), return_inverse=True)
    if len(ids) > 256:
        raise ValueError(f"a map with {len(ids)} distinct classes cannot be coded (at most 256)")
    label_codec, label_data = _compress(indices.numpy().astype(np.uint8), 8)
    flags = label_codec
    parts = [np.asarray(ids.numpy(), dtype="<u2").tobytes(), struct.pack("<I", len(label_data)), label_data]
    if edges is not None:
        if edges.shape != labels.shape:
            raise ValueError(f"edge map shape {tuple(edges.shape)} differs from label map shape {tuple(labels.shape)}")
        residual = edges.bool() ^ _class_boundaries(labels)
        edge_codec, edge_data = _compress(residual.numpy(), 1)
        flags |= 2 | (edge_codec << 2)
        parts.append(edge_data)
    return _HEADER.pack(_MAGIC, height, width, len(ids), flags) + b"".join(parts)


def decode_map(data: bytes) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Inverse of ``encode_map``: (labels int64 (H, W), edges float32 (H, W) or None)."""
    if len(data) < _HEADER.size or data[:4] != _MAGIC:
        raise ValueError("not a gesco map code (bad magic or too short)")
    _, height, width, count, flags = _HEADER.unpack_from(data)
    offset = _HEADER.size
    ids = np.frombuffer(data, dtype="<u2", count=count, offset=offset).astype(np.int64)
    offset += 2 * count
    (label_length,) = struct.unpack_from("<I", data, offset)
    offset += 4
    indices = _decompress(flags & 1, data[offset : offset + label_length], (height, width), 8)
    labels = torch.from_numpy(ids[indices.astype(np.int64)])
    edges = None
    if flags & 2:
        residual = _decompress((flags >> 2) & 1, data[offset + label_length :], (height, width), 1)
        edges = (torch.from_numpy(np.ascontiguousarray(residual)) ^ _class_boundaries(labels)).float()
    return labels, edges


def image_bytes(image: np.ndarray, format: str, *, quality: int = 75) -> bytes:
    """An RGB uint8 (H, W, 3) image coded as PNG or JPEG by Pillow."""
    buffer = io.BytesIO()
    kwargs = {"optimize": True} if format == "PNG" else {"quality": quality}
    Image.fromarray(image).save(buffer, format=format, **kwargs)
    return buffer.getvalue()
