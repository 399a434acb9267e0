"""The one mapping between a map's real values and complex channel symbols.

A complex channel use carries two real values (I and Q): the transmitted values of a map, in
``Payload.compact`` order (present classes, then edge, row-major), are paired as
s_i = x_{2i} + j x_{2i+1}; an odd count is padded with one zero, which is sent but dropped again
at the receiver.
"""

from __future__ import annotations

import math

import torch


def complex_channel_uses(real_values: int) -> int:
    """Complex channel uses that carry ``real_values`` real values, two per use."""
    if real_values < 0:
        raise ValueError(f"real_values={real_values} must be >= 0")
    return math.ceil(real_values / 2)


def reals_to_symbols(values: torch.Tensor) -> torch.Tensor:
    """Real values of any shape -> complex (ceil(n / 2),) symbols, in float64 precision."""
    flat = values.flatten().double()
    return torch.view_as_complex(torch.nn.functional.pad(flat, (0, flat.numel() % 2)).reshape(-1, 2).contiguous())


def symbols_to_reals(symbols: torch.Tensor, shape: torch.Size | tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """Inverse of ``reals_to_symbols``: complex (S,) -> real values of ``shape`` (padding dropped)."""
    count = math.prod(shape)
    return torch.view_as_real(symbols).flatten()[:count].reshape(shape).to(dtype)
