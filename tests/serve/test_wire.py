"""The wire format: round trips of both kinds, every typed refusal, and fuzzing (never an untyped error)."""

import struct

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gesco.channel.awgn import AWGNChannel
from gesco.channel.base import Received
from gesco.channel.quality import ChannelQuality
from gesco.semantics.maps import SemanticMap
from gesco.semantics.payload import Payload
from gesco.semantics.transmitter import Transmitter
from gesco.serve.wire import (
    InconsistentMessageError,
    MessageTooLargeError,
    NonFiniteValuesError,
    TruncatedMessageError,
    UnsupportedVersionError,
    WireFormatError,
    WireLimits,
    decode,
    encode,
)


def labels_of(seed: int, height: int = 8, width: int = 12) -> torch.Tensor:
    return torch.tensor([7, 11, 21, 26])[
        torch.randint(0, 4, (height, width), generator=torch.Generator().manual_seed(seed))
    ]


def analog_received(labels: torch.Tensor, psnr: float = 10) -> Received:
    payload = Transmitter()(SemanticMap(labels, "cityscapes"))
    return AWGNChannel()(payload, ChannelQuality.psnr_label(psnr), generator=torch.Generator().manual_seed(1))


def digital_received(labels: torch.Tensor, lost_rows: slice) -> Received:
    """What the digital link delivers when the band of ``lost_rows`` failed its CRC."""
    clean = Transmitter()(SemanticMap(labels, "cityscapes"))
    known = torch.ones(1, *labels.shape, dtype=torch.bool)
    known[0, lost_rows] = False
    values = clean.values * known[:, None]
    transmitted = torch.zeros_like(clean.transmitted)
    transmitted[0, labels[known[0]].unique()] = True
    transmitted[0, -1] = True
    return Received(
        Payload(values, transmitted, clean.table),
        torch.zeros(1),
        ChannelQuality.esn0_db(3.0),
        torch.tensor([777]),
        known=known,
    )


def test_analog_round_trip_rebuilds_the_received_map_exactly():
    received = analog_received(labels_of(0))
    message = decode(encode(received, 0, channel="awgn", tag=2**64 - 1))
    assert (message.kind, message.channel, message.tag) == ("analog", "awgn", 2**64 - 1)
    assert message.quality == ChannelQuality.psnr_label(10) and message.sigma == pytest.approx(0.36)
    rebuilt = message.to_received()
    assert torch.equal(rebuilt.payload.values, received.payload.values)
    assert torch.equal(rebuilt.payload.transmitted, received.payload.transmitted)
    assert rebuilt.known is None and int(rebuilt.complex_channel_uses) == int(received.complex_channel_uses)


def test_digital_round_trip_keeps_lost_pixels_unknown():
    received = digital_received(labels_of(1), slice(4, 8))
    data = encode(received, 0, channel="digital", tag=5)
    message = decode(data)
    assert message.kind == "digital" and (message.labels[4:] == -1).all() and (message.labels[:4] >= 0).all()
    rebuilt = message.to_received()
    assert torch.equal(rebuilt.known, received.known)
    assert torch.equal(rebuilt.payload.values, received.payload.values)
    assert torch.equal(rebuilt.payload.transmitted, received.payload.transmitted)
    # The lossless code is far smaller than the float values of the same map.
    assert len(data) < len(encode(analog_received(labels_of(1)), 0, channel="awgn")) / 4


def test_a_later_version_and_a_foreign_message_are_refused():
    data = bytearray(encode(analog_received(labels_of(0)), 0, channel="awgn"))
    data[4] = 2
    with pytest.raises(UnsupportedVersionError, match="version 2"):
        decode(bytes(data))
    with pytest.raises(UnsupportedVersionError, match="GSCW"):
        decode(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(UnsupportedVersionError):
        decode(b"")


def test_every_truncation_and_trailing_bytes_are_refused():
    data = encode(digital_received(labels_of(2), slice(0, 2)), 0, channel="digital")
    for end in range(len(data)):
        with pytest.raises(WireFormatError):
            decode(data[:end])
    with pytest.raises(TruncatedMessageError, match="ends inside the analog values"):
        decode(encode(analog_received(labels_of(0)), 0, channel="awgn")[:-1])
    with pytest.raises(TruncatedMessageError, match="follow the body"):
        decode(data + b"\0")


def header_offsets(data: bytes) -> dict[str, int]:
    """Byte offsets of the size and the present-id count in a cityscapes message sent over awgn."""
    size = 4 + 1 + 1 + 1 + len("cityscapes")
    return {"size": size, "count": size + 4}


def test_sizes_over_the_limits_are_refused_before_reading_the_body():
    data = bytearray(encode(analog_received(labels_of(0)), 0, channel="awgn"))
    offset = header_offsets(data)["size"]
    struct.pack_into("<HH", data, offset, 60000, 60000)
    with pytest.raises(MessageTooLargeError, match="60000x60000"):
        decode(bytes(data))
    with pytest.raises(MessageTooLargeError, match="8x12"):
        decode(encode(analog_received(labels_of(0)), 0, channel="awgn"), WireLimits(max_pixels=95))


def test_inconsistent_shapes_and_ids_are_refused():
    data = encode(analog_received(labels_of(0)), 0, channel="awgn")
    offsets = header_offsets(data)
    taller = bytearray(data)
    struct.pack_into("<HH", taller, offsets["size"], 9, 12)  # the values no longer fill the body
    with pytest.raises(TruncatedMessageError):
        decode(bytes(taller))
    unsorted = bytearray(data)
    struct.pack_into("<HH", unsorted, offsets["count"] + 2, 11, 7)
    with pytest.raises(InconsistentMessageError, match="increase strictly"):
        decode(bytes(unsorted))
    outside = bytearray(data)
    struct.pack_into("<H", outside, offsets["count"] + 2 + 3 * 2, 35)
    with pytest.raises(InconsistentMessageError, match="0..34"):
        decode(bytes(outside))
    # A digital message whose map code is of another size than its header.
    small = encode(digital_received(labels_of(3, 4, 12), slice(0, 1)), 0, channel="digital")
    with pytest.raises(InconsistentMessageError, match="map code is 4x12"):
        decode(small.replace(struct.pack("<HH", 4, 12), struct.pack("<HH", 8, 6), 1))


def test_nan_values_and_a_nan_quality_are_refused():
    received = analog_received(labels_of(0))
    data = bytearray(encode(received, 0, channel="awgn"))
    struct.pack_into("<f", data, len(data) - 4, float("nan"))
    with pytest.raises(NonFiniteValuesError, match="1 NaN"):
        decode(bytes(data))
    quality = bytes(encode(received, 0, channel="awgn")).replace(
        struct.pack("<Bd", 0, 10.0), struct.pack("<Bd", 0, float("inf"))
    )
    with pytest.raises(NonFiniteValuesError, match="quality"):
        decode(quality)


def test_a_compressed_bomb_in_the_map_code_is_refused_without_inflating():
    import lzma
    import tracemalloc

    data = encode(digital_received(labels_of(4), slice(0, 0)), 0, channel="digital")
    code_start = data.index(b"GSM1")
    code = bytearray(data[code_start:])
    ids = struct.unpack_from("<H", code, 8)[0]
    label_start = 4 + 2 + 2 + 2 + 1 + 2 * ids
    # The label part becomes an LZMA stream of 100 MB of zeros (flag bit 0: LZMA) and the edge part stays.
    bomb = lzma.compress(bytes(100 * 2**20), format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2, "preset": 9}])
    (label_length,) = struct.unpack_from("<I", code, label_start)
    code[10] |= 1
    forged = (
        bytes(code[:label_start]) + struct.pack("<I", len(bomb)) + bomb + bytes(code[label_start + 4 + label_length :])
    )
    message = data[: code_start - 4] + struct.pack("<I", len(forged)) + forged
    tracemalloc.start()
    try:
        with pytest.raises(InconsistentMessageError, match="LZMA part does not hold the 96 bytes"):
            decode(message)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # The decoder's own 64 MiB dictionary (preset 9) is the whole cost; inflating would add 100 MiB to it.
    assert peak < 80 * 2**20


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(1, 12),
    st.integers(1, 12),
    st.integers(0, 2**31),
    st.sampled_from([100, 30, 5, 1]),
    st.integers(0, 2**64 - 1),
)
def test_round_trip_of_random_maps(height, width, seed, psnr, tag):
    labels = labels_of(seed, height, width)
    received = analog_received(labels, psnr)
    message = decode(encode(received, 0, channel="rayleigh", tag=tag))
    assert message.tag == tag and message.size == (height, width)
    assert torch.equal(message.to_received().payload.values, received.payload.values)
    lost = slice(seed % height, seed % height + 1)
    digital = digital_received(labels, lost)
    assert torch.equal(
        decode(encode(digital, 0, channel="digital")).to_received().payload.values, digital.payload.values
    )


@pytest.fixture(scope="module")
def messages():
    return [
        encode(analog_received(labels_of(5, 4, 6)), 0, channel="awgn"),
        encode(digital_received(labels_of(6, 4, 6), slice(1, 2)), 0, channel="digital"),
    ]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_messages_raise_only_wire_format_errors(messages, data):
    message = bytearray(data.draw(st.sampled_from(messages)))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(message) - 1))
        message[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(message)))
    try:
        decoded = decode(bytes(message[:cut]))
    except WireFormatError:
        return
    # What parses must be a well-formed map the receiver can take.
    received = decoded.to_received()
    assert torch.isfinite(received.payload.values).all()


@given(st.binary(max_size=200))
def test_random_bytes_raise_only_wire_format_errors(data):
    with pytest.raises(WireFormatError):
        decode(data)


def test_known_mask_bits_are_row_major_most_significant_first():
    received = digital_received(labels_of(7, 3, 5), slice(1, 2))
    data = encode(received, 0, channel="digital")
    mask = np.packbits(received.known[0].numpy().reshape(-1)).tobytes()
    code_start = data.index(b"GSM1")
    assert data[code_start - 4 - len(mask) : code_start - 4] == mask
