"""The wire format: what a transmitter process sends to ``gesco serve``, as versioned bytes.

One message carries one received semantic map, as the channel delivered it, with everything the receiver needs
to rebuild the :class:`~gesco.channel.base.Received` it would have got in-process. All numbers little-endian.

Header (every message)::

    magic            4 bytes  b"GSCW"
    version          u8       WIRE_VERSION (1); a parser refuses any other
    kind             u8       0 = analog (the paper's link), 1 = digital (the lossless map code)
    table            u8 n + n ASCII bytes: the class table's name ("cityscapes", "coco-stuff", "ade20k")
    height, width    u16, u16
    present          u16 k + k x u16: the transmitted class ids (the side information), strictly increasing
    channel          u8 n + n ASCII bytes: the channel's name ("awgn", "rayleigh", "unit-power", "digital")
    quality          u8 kind (index into ``QUALITY_KINDS``) + f64 value
    sigma            f32      the channel's noise std per real value on the map's 0/1 scale (0 on a digital link)
    channel uses     u64      complex channel uses spent on the map
    tag              u64      the sender's request id, echoed by the server

Body, analog: float32 values of the transmitted channels, (k + edge) x height x width in C order: the
present classes in id order, then the edge channel when the table has one (``Payload.compact``).

Body, digital: the pixels whose band was decoded, as ``ceil(height x width / 8)`` bytes of packed bits
(row-major, most significant bit first), then u32 n + n bytes of the map code
(:func:`gesco.semantics.bits.encode_map`) of the received label and edge maps; unknown pixels are coded with
the smallest present id and no edge, and the receiver zeroes them again.

Nothing may follow the body. :func:`decode` checks every field against its own range, the message's sizes
against :class:`WireLimits` before allocating anything, and the values for NaN and Inf, and raises a
:class:`WireFormatError` subclass that names the field.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np
import torch

from gesco.channel.base import Received
from gesco.channel.digital.map_bands import DECODE_ERRORS
from gesco.channel.quality import QUALITY_KINDS, ChannelQuality
from gesco.constants import CHANNEL_NAMES
from gesco.semantics.bits import decode_map, encode_map
from gesco.semantics.classes import ClassTable, class_table
from gesco.semantics.payload import Payload

MAGIC = b"GSCW"
WIRE_VERSION = 1
KINDS = ("analog", "digital")
#: Table names a message may carry (``gesco.semantics.classes.class_table``).
TABLE_NAMES = ("cityscapes", "coco-stuff", "ade20k")
_U8, _U16, _U32, _F32 = struct.Struct("<B"), struct.Struct("<H"), struct.Struct("<I"), struct.Struct("<f")
_SIZE = struct.Struct("<HH")
_QUALITY = struct.Struct("<Bd")
_TAIL = struct.Struct("<fQQ")  # sigma, complex channel uses, tag
#: The map code's own header (gesco.semantics.bits): magic, height, width, id count, flags.
_MAP_CODE_HEADER = struct.Struct("<4sHHHB")


class WireFormatError(ValueError):
    """The bytes are not a valid message of this wire format; the message names the field."""


class UnsupportedVersionError(WireFormatError):
    """Not a gesco message, or one of a version this parser does not read."""


class TruncatedMessageError(WireFormatError):
    """The message ends inside a field, or bytes follow its body."""


class MessageTooLargeError(WireFormatError):
    """A size in the header exceeds the parser's :class:`WireLimits`."""


class InconsistentMessageError(WireFormatError):
    """Fields that must agree do not (ids outside the table, unsorted ids, a map code of another size, ...)."""


class NonFiniteValuesError(WireFormatError):
    """The analog values, the quality or sigma hold NaN or Inf."""


@dataclass(frozen=True)
class WireLimits:
    """What a parser accepts at most; checked from the header before any body is read.

    Attributes:
        max_side: height and width, each.
        max_pixels: height x width.
        max_map_code_bytes: the digital body's map code.
    """

    max_side: int = 1024
    max_pixels: int = 512 * 512
    max_map_code_bytes: int = 4 * 1024 * 1024


@dataclass(frozen=True)
class WireMessage:
    """One decoded message.

    Attributes:
        kind: "analog" or "digital".
        table: the class table.
        size: (height, width).
        present_ids: transmitted class ids, increasing.
        channel: the channel's name (``gesco.constants.CHANNEL_NAMES``).
        quality: the quality the channel ran at.
        sigma: the channel's noise std (>= 0).
        complex_channel_uses: spent on the map.
        tag: the sender's request id.
        values: float32 (k + edge, H, W) received values of the transmitted channels (analog; None for digital).
        labels: int64 (H, W) received label map, -1 where unknown (digital; None for analog).
        edges: float32 (H, W) edge map in {0, 1}, 0 where unknown (digital on a table with edges, else None).
    """

    kind: str
    table: ClassTable
    size: tuple[int, int]
    present_ids: tuple[int, ...]
    channel: str
    quality: ChannelQuality
    sigma: float
    complex_channel_uses: int
    tag: int
    values: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    edges: torch.Tensor | None = None

    def to_received(self) -> Received:
        """The :class:`Received` of one map (batch 1) that the channel handed the receiver in-process."""
        table = self.table
        if self.kind == "analog":
            payload = Payload.from_compact(table, [list(self.present_ids)], [self.values])
            known = None
        else:
            known = self.labels >= 0
            one_hot = torch.nn.functional.one_hot(self.labels.clamp(min=0), table.num_classes).permute(2, 0, 1)
            values = torch.zeros(1, table.num_channels, *self.size)
            values[0, : table.num_classes] = one_hot * known
            transmitted = torch.zeros(1, table.num_channels, dtype=torch.bool)
            transmitted[0, list(self.present_ids)] = True
            if table.has_edge:
                values[0, table.edge_channel] = self.edges * known
                transmitted[0, table.edge_channel] = True
            payload, known = Payload(values, transmitted, table), known[None]
        return Received(
            payload=payload,
            sigma=torch.tensor([self.sigma], dtype=torch.float32),
            quality=self.quality,
            complex_channel_uses=torch.tensor([self.complex_channel_uses], dtype=torch.int64),
            known=known,
        )


def _name(text: str, field: str) -> bytes:
    data = text.encode("ascii")
    if not 0 < len(data) < 256:
        raise ValueError(f"{field} {text!r} must be 1..255 ASCII characters")
    return _U8.pack(len(data)) + data


def encode(received: Received, index: int, *, channel: str, tag: int = 0) -> bytes:
    """Map ``index`` of ``received`` as one message.

    A received map whose ``known`` mask is set (the digital link's) goes as the digital kind, any other as
    analog. ``channel`` names the channel that made ``received``; ``tag`` (0 .. 2^64 - 1) is echoed back.
    """
    payload, table = received.payload, received.payload.table
    if table.name not in TABLE_NAMES:
        raise ValueError(f"the wire format carries the tables {list(TABLE_NAMES)}, not {table.name!r}")
    if channel not in CHANNEL_NAMES:
        raise ValueError(f"unknown channel {channel!r}; the wire format names one of {list(CHANNEL_NAMES)}")
    if not 0 <= tag < 2**64:
        raise ValueError(f"tag {tag} must fit in 64 unsigned bits")
    height, width = payload.size
    present = payload.present_ids(index)
    quality = ChannelQuality(received.quality.kind, received.quality.per_map(payload.batch_size)[index])
    digital = received.known is not None
    header = [
        MAGIC,
        _U8.pack(WIRE_VERSION),
        _U8.pack(KINDS.index("digital" if digital else "analog")),
        _name(table.name, "table name"),
        _SIZE.pack(height, width),
        _U16.pack(len(present)),
        np.asarray(present, dtype="<u2").tobytes(),
        _name(channel, "channel name"),
        _QUALITY.pack(QUALITY_KINDS.index(quality.kind), quality.values[0]),
        _TAIL.pack(float(received.sigma[index]), int(received.complex_channel_uses[index]), tag),
    ]
    if not digital:
        values = payload.compact(index).detach().cpu().float().contiguous()
        return b"".join(header) + values.numpy().astype("<f4").tobytes()
    known = received.known[index].cpu()
    classes = payload.values[index, : table.num_classes].cpu()
    labels = torch.where(known, classes.argmax(0), present[0] if present else 0)
    edges = None
    if table.has_edge:
        edges = payload.values[index, table.edge_channel].cpu() * known
    code = encode_map(labels, edges)
    mask = np.packbits(known.numpy().reshape(-1)).tobytes()
    return b"".join(header) + mask + _U32.pack(len(code)) + code


class _Reader:
    """Reads fields off the front of a message; running out is a :class:`TruncatedMessageError`."""

    def __init__(self, data: bytes):
        self.data, self.offset = memoryview(data), 0

    def take(self, count: int, field: str) -> bytes:
        if self.offset + count > len(self.data):
            raise TruncatedMessageError(
                f"the message ends inside {field}: {count} bytes needed at offset {self.offset}, "
                f"{len(self.data) - self.offset} left"
            )
        chunk = bytes(self.data[self.offset : self.offset + count])
        self.offset += count
        return chunk

    def unpack(self, layout: struct.Struct, field: str) -> tuple:
        return layout.unpack(self.take(layout.size, field))

    def name(self, field: str) -> str:
        (length,) = self.unpack(_U8, f"the length of {field}")
        raw = self.take(length, field)
        if not raw or not raw.isascii() or not raw.decode().isprintable():
            raise InconsistentMessageError(f"{field} must be 1..255 printable ASCII characters, got {raw[:32]!r}")
        return raw.decode()


def decode(data: bytes, limits: WireLimits = WireLimits()) -> WireMessage:
    """Parse one message (see the module docstring); raise a :class:`WireFormatError` subclass naming the field."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"decode takes bytes, got {type(data).__name__}")
    reader = _Reader(data)
    if reader.take(min(len(MAGIC), len(data)), "the magic") != MAGIC:
        raise UnsupportedVersionError(f"not a gesco wire message: it must start with {MAGIC!r}")
    (version,) = reader.unpack(_U8, "the version")
    if version != WIRE_VERSION:
        raise UnsupportedVersionError(f"wire format version {version}; this parser reads version {WIRE_VERSION}")
    (kind_index,) = reader.unpack(_U8, "the kind")
    if kind_index >= len(KINDS):
        raise InconsistentMessageError(f"kind {kind_index} is none of {dict(enumerate(KINDS))}")
    kind = KINDS[kind_index]
    table_name = reader.name("the table name")
    if table_name not in TABLE_NAMES:
        raise InconsistentMessageError(f"unknown class table {table_name!r}; one of {list(TABLE_NAMES)}")
    table = class_table(table_name)
    height, width = reader.unpack(_SIZE, "the map size")
    if min(height, width) < 1:
        raise InconsistentMessageError(f"map size {height}x{width}: each side must be at least 1")
    if max(height, width) > limits.max_side or height * width > limits.max_pixels:
        raise MessageTooLargeError(
            f"map size {height}x{width} exceeds the limits ({limits.max_side} a side, {limits.max_pixels} pixels)"
        )
    (count,) = reader.unpack(_U16, "the present id count")
    if count > table.num_classes:
        raise InconsistentMessageError(f"{count} present ids, but the {table.name} table has {table.num_classes}")
    present = tuple(int(i) for i in np.frombuffer(reader.take(2 * count, "the present ids"), dtype="<u2"))
    if any(b <= a for a, b in zip(present, present[1:])) or (present and present[-1] >= table.num_classes):
        raise InconsistentMessageError(
            f"present ids {list(present)[:20]} must increase strictly and lie in 0..{table.num_classes - 1}"
        )
    channel = reader.name("the channel name")
    if channel not in CHANNEL_NAMES:
        raise InconsistentMessageError(f"unknown channel {channel!r}; one of {list(CHANNEL_NAMES)}")
    quality_kind, quality_value = reader.unpack(_QUALITY, "the quality")
    sigma, channel_uses, tag = reader.unpack(_TAIL, "sigma, channel uses and tag")
    if not (math.isfinite(quality_value) and math.isfinite(sigma)):
        raise NonFiniteValuesError(f"the quality ({quality_value}) and sigma ({sigma}) must be finite")
    if quality_kind >= len(QUALITY_KINDS):
        raise InconsistentMessageError(f"quality kind {quality_kind} is none of {dict(enumerate(QUALITY_KINDS))}")
    if sigma < 0:
        raise InconsistentMessageError(f"sigma {sigma} must be >= 0")
    try:
        quality = ChannelQuality(QUALITY_KINDS[quality_kind], quality_value)
    except ValueError as err:
        raise InconsistentMessageError(f"the quality: {err}") from None
    fields = dict(
        kind=kind,
        table=table,
        size=(height, width),
        present_ids=present,
        channel=channel,
        quality=quality,
        sigma=sigma,
        complex_channel_uses=channel_uses,
        tag=tag,
    )
    if kind == "analog":
        message = WireMessage(**fields, values=_analog_body(reader, count + int(table.has_edge), height, width))
    else:
        labels, edges = _digital_body(reader, table, present, height, width, limits)
        message = WireMessage(**fields, labels=labels, edges=edges)
    if reader.offset != len(data):
        raise TruncatedMessageError(f"{len(data) - reader.offset} bytes follow the body; a message ends there")
    return message


def _analog_body(reader: _Reader, channels: int, height: int, width: int) -> torch.Tensor:
    raw = reader.take(4 * channels * height * width, f"the analog values ({channels}x{height}x{width} float32)")
    values = torch.from_numpy(np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(channels, height, width))
    if not torch.isfinite(values).all():
        raise NonFiniteValuesError(
            f"the analog values hold {int(values.isnan().sum())} NaN and {int(values.isinf().sum())} Inf"
        )
    return values


def _digital_body(
    reader: _Reader, table: ClassTable, present: tuple[int, ...], height: int, width: int, limits: WireLimits
) -> tuple[torch.Tensor, torch.Tensor | None]:
    mask = reader.take(math.ceil(height * width / 8), "the known-pixel mask")
    known = torch.from_numpy(np.unpackbits(np.frombuffer(mask, dtype=np.uint8))[: height * width].astype(bool))
    known = known.reshape(height, width)
    (length,) = reader.unpack(_U32, "the map code length")
    if length > limits.max_map_code_bytes:
        raise MessageTooLargeError(f"a map code of {length} bytes exceeds the limit {limits.max_map_code_bytes}")
    code = reader.take(length, "the map code")
    if len(code) < _MAP_CODE_HEADER.size:
        raise InconsistentMessageError(f"the map code has {len(code)} bytes, less than its own header")
    _, code_height, code_width, _, flags = _MAP_CODE_HEADER.unpack_from(code)
    # Sizes first: the code's own header decides how much its decompressors may produce.
    if (code_height, code_width) != (height, width):
        raise InconsistentMessageError(f"the map code is {code_height}x{code_width}, the message {height}x{width}")
    if bool(flags & 2) != table.has_edge:
        raise InconsistentMessageError(f"the map code's edge map presence disagrees with the {table.name} table")
    try:
        labels, edges = decode_map(code)
    except DECODE_ERRORS as err:
        raise InconsistentMessageError(f"the map code does not decode: {type(err).__name__}: {err}") from None
    if tuple(labels.shape) != (height, width):
        raise InconsistentMessageError(f"the map code decodes to {tuple(labels.shape)}, not {(height, width)}")
    seen = set(labels[known].unique().tolist())
    if not seen <= set(present):
        raise InconsistentMessageError(f"known pixels carry ids {sorted(seen - set(present))} outside the present ids")
    labels = torch.where(known, labels, -1)
    if edges is not None:
        edges = edges * known
    return labels, edges
