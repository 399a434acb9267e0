"""The digital link: bits -> CRC -> 5G LDPC -> QAM -> channel -> APP demapper -> LDPC decoder -> CRC check.

Every block is Sionna's (``CRCEncoder``/``CRCDecoder``, ``LDPC5GEncoder``/``LDPC5GDecoder``,
``Mapper``/``Demapper``); this module is the glue. Sionna is imported when a ``DigitalLink``
is built, never when ``gesco`` is imported.

SNR convention: ``snr_db`` is Es/N0 per complex channel use (Es = 1, N0 the complex noise
variance, see ``gesco.channel.digital.theory``); ``ebn0_db`` is Eb/N0 per *message* bit
(the bits you pass in; CRC and code are overhead), converted by ``DigitalConfig.esn0_db``.
Relative to the analog channels of ``gesco.channel``, whose noise has standard deviation
sigma per real value, N0 = 2 sigma^2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from gesco.channel.digital.config import DigitalConfig
from gesco.channel.digital.modem import QamModem
from gesco.channel.digital.sionna_import import import_sionna
from gesco.channel.digital.symbol_channel import SymbolChannel
from gesco.channel.digital.theory import esn0_db_to_n0


@dataclass(frozen=True)
class DigitalOutput:
    """What comes out of the digital link.

    Attributes:
        bits: uint8 (N,) in {0, 1}: the decoded message, as long as the input. Bits of a
            block whose CRC failed are the decoder's best guess: do not trust them.
        block_ok: bool (n_blocks,): CRC check of each block; block i carries message bits
            [i * P, (i + 1) * P), P = ``config.payload_bits_per_block``.
        channel_uses: complex symbols sent (n_blocks * symbols per block).
        esn0_db: the Es/N0 the link ran at.
    """

    bits: torch.Tensor
    block_ok: torch.Tensor
    channel_uses: int
    esn0_db: float


def bytes_to_bits(data: bytes) -> torch.Tensor:
    """uint8 (8 * len(data),): most significant bit of each byte first."""
    return torch.from_numpy(np.unpackbits(np.frombuffer(data, dtype=np.uint8)).copy())


def bits_to_bytes(bits: torch.Tensor) -> bytes:
    """Inverse of ``bytes_to_bits`` (a partial last byte is zero-padded)."""
    return np.packbits(bits.to(torch.uint8).cpu().numpy()).tobytes()


def _as_bit_tensor(bits: torch.Tensor | bytes) -> torch.Tensor:
    if isinstance(bits, (bytes, bytearray)):
        bits = bytes_to_bits(bytes(bits))
    if not isinstance(bits, torch.Tensor):
        raise TypeError(f"bits must be a torch.Tensor or bytes, got {type(bits).__name__}")
    if bits.dim() != 1 or bits.numel() == 0:
        raise ValueError(f"bits must be a non-empty 1-D tensor (N,), got shape {tuple(bits.shape)}")
    if bits.dtype.is_floating_point or bits.dtype.is_complex:
        raise TypeError(f"bits must be uint8 or bool, got {bits.dtype}; use bits.to(torch.uint8)")
    bits = bits.to(torch.uint8)
    if int(bits.max()) > 1:
        raise ValueError(f"bits must hold only 0 and 1, found {int(bits.max())}")
    return bits


def resolve_esn0_db(config: DigitalConfig, snr_db: float | None, ebn0_db: float | None) -> float:
    """Es/N0 in dB from exactly one of ``snr_db`` (Es/N0) or ``ebn0_db`` (per message bit)."""
    if (snr_db is None) == (ebn0_db is None):
        raise ValueError(
            "give exactly one of snr_db (Es/N0 per channel use, dB) or ebn0_db (Eb/N0 per message bit, dB)"
        )
    value = snr_db if ebn0_db is None else config.esn0_db(ebn0_db)
    if math.isnan(value):
        raise ValueError("the SNR is NaN; give a number in dB (math.inf for a noiseless channel)")
    return float(value)


class DigitalLink(nn.Module):
    """Bits in, bits out with a CRC verdict per block; see the module docstring.

    Args:
        config: modulation, code rate, block length, CRC, decoder iterations, fading.
        channel: a symbol channel with ``SymbolChannel``'s call shape (``(x, n0=, generator=) ->
            EqualizedSymbols``) to send the QAM symbols over instead of ``config.fading``, e.g.
            ``gesco.channel.ofdm.link.OfdmChannel``.

    >>> import torch
    >>> link = DigitalLink(DigitalConfig(block_bits=128))
    >>> out = link(b"gesco", snr_db=10.0, generator=torch.Generator().manual_seed(0))
    >>> bits_to_bytes(out.bits), out.block_ok.tolist(), out.channel_uses
    (b'gesco', [True], 128)
    """

    def __init__(self, config: DigitalConfig | None = None, *, channel: nn.Module | None = None):
        super().__init__()
        self.config = config = config or DigitalConfig()
        phy = import_sionna()
        self.crc_encoder = phy.fec.crc.CRCEncoder(config.crc, k=config.payload_bits_per_block)
        self.crc_decoder = phy.fec.crc.CRCDecoder(self.crc_encoder)
        self.ldpc_encoder = phy.fec.ldpc.LDPC5GEncoder(
            config.block_bits, config.coded_bits_per_block, num_bits_per_symbol=config.bits_per_symbol
        )
        self.ldpc_decoder = phy.fec.ldpc.LDPC5GDecoder(
            self.ldpc_encoder, hard_out=True, num_iter=config.decoder_iterations
        )
        self.modem = QamModem(config.modulation)
        self.channel = channel or SymbolChannel(fading=config.fading, coherence_symbols=config.coherence_symbols)

    def forward(
        self,
        bits: torch.Tensor | bytes,
        *,
        snr_db: float | None = None,
        ebn0_db: float | None = None,
        generator: torch.Generator | None = None,
    ) -> DigitalOutput:
        """Send ``bits`` (uint8/bool (N,), or bytes, MSB first) at Es/N0 ``snr_db`` or Eb/N0 ``ebn0_db``."""
        bits = _as_bit_tensor(bits)
        esn0_db = resolve_esn0_db(self.config, snr_db, ebn0_db)
        per_block = self.config.payload_bits_per_block
        n_blocks = self.config.blocks_for(bits.numel())
        # 1. Segment the message into blocks, zero-padding the last one.
        message = torch.zeros(n_blocks * per_block, dtype=torch.float32)
        message[: bits.numel()] = bits.float()
        message = message.reshape(n_blocks, per_block)
        # 2. CRC, LDPC (rate-matched, bit-interleaved for the QAM order), QAM: (n_blocks, S) symbols.
        symbols = self.modem.modulate(self.ldpc_encoder(self.crc_encoder(message)))
        # 3. Channel and equalisation (perfect CSI, or whatever the given symbol channel estimates).
        received = self.channel(symbols, n0=esn0_db_to_n0(esn0_db), generator=generator)
        # 4. APP demapping to bit logits, belief-propagation decoding, CRC check.
        decoded = self.ldpc_decoder(self.modem.llrs(received.symbols, received.n0))
        message_hat, crc_ok = self.crc_decoder(decoded)
        return DigitalOutput(
            bits=message_hat.flatten()[: bits.numel()].to(torch.uint8),
            block_ok=crc_ok.reshape(n_blocks).bool(),
            channel_uses=symbols.numel(),
            esn0_db=esn0_db,
        )
