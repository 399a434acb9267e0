"""Rayleigh block fading for the analog map, with or without receiver equalisation."""

from __future__ import annotations

import torch

from gesco.channel.awgn import AnalogChannel
from gesco.semantics.payload import Payload


class RayleighBlockFading(AnalogChannel):
    """Complex baseband Rayleigh block fading on the transmitted values.

    Each map's transmitted values (present channels, then edge, row-major) are paired into
    complex symbols s = x[2i] + j x[2i+1]; every block of ``block_length`` symbols sees one
    coefficient h ~ CN(0, 1) (E|h|^2 = 1), and y = h s + n with n ~ CN(0, 2 sigma^2), i.e.
    noise of standard deviation sigma per real value, as in the AWGN channel.

    With ``equalize=True`` the receiver knows h (perfect CSI) and divides it out
    (zero forcing): s_hat = y / h, whose noise is enhanced where |h| is small. Without
    equalisation the receiver reads y as it is, rotated and scaled by h.

    Args:
        block_length: complex symbols per fading block; ``None`` = one coefficient per map.
        equalize: apply zero-forcing equalisation with perfect CSI.
    """

    def __init__(self, *, block_length: int | None = None, equalize: bool = True):
        super().__init__()
        if block_length is not None and block_length < 1:
            raise ValueError(f"block_length must be a positive number of symbols or None, got {block_length}")
        self.block_length = block_length
        self.equalize = equalize

    def corrupt(self, payload: Payload, sigmas: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        values = payload.values.clone()
        for b in range(payload.batch_size):
            sent = payload.compact(b).flatten().double()
            count = sent.numel()
            symbols = torch.view_as_complex(torch.nn.functional.pad(sent, (0, count % 2)).reshape(-1, 2).contiguous())
            block = self.block_length or symbols.numel()
            n_blocks = -(-symbols.numel() // block)
            # CN(0, 1): real and imaginary parts each N(0, 1/2).
            h = torch.randn(n_blocks, 2, generator=generator, dtype=torch.float64) * 0.5**0.5
            h = torch.view_as_complex(h).repeat_interleave(block)[: symbols.numel()]
            n = torch.randn(symbols.numel(), 2, generator=generator, dtype=torch.float64) * float(sigmas[b])
            y = h * symbols + torch.view_as_complex(n)
            if self.equalize:
                y = y / h
            out = torch.view_as_real(y).flatten()[:count].to(values.dtype)
            values[b, payload.transmitted[b]] = out.reshape(payload.compact(b).shape)
        return values
