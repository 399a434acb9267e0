"""Closed-form references for the digital link: SNR conversions and uncoded bit error rates.

SNR convention: the QAM constellations have unit average energy (Es = 1), and the complex
noise n ~ CN(0, N0) has variance N0 / 2 per real dimension, so

.. math::  N_0 = 10^{-(E_s/N_0)_{dB} / 10}, \\qquad
           (E_b/N_0)_{dB} = (E_s/N_0)_{dB} - 10 \\log_{10}(m r),

for m bits per symbol and r information bits per coded bit (r = 1 uncoded).
"""

from __future__ import annotations

import math

from gesco.channel.quality import esn0_db_to_n0

__all__ = ["ebn0_db_to_esn0_db", "esn0_db_to_n0", "gray_qam_ber_awgn", "qpsk_ber_rayleigh"]


def ebn0_db_to_esn0_db(ebn0_db: float, *, bits_per_symbol: int, code_rate: float = 1.0) -> float:
    """Es/N0 in dB of Eb/N0 in dB for ``bits_per_symbol`` coded bits per symbol at ``code_rate``."""
    return ebn0_db + 10 * math.log10(bits_per_symbol * code_rate)


def gray_qam_ber_awgn(ebn0_db: float, bits_per_symbol: int) -> float:
    """Exact bit error rate of uncoded Gray-labelled square M-QAM over AWGN with
    minimum-distance detection (K. Cho and D. Yoon, IEEE Trans. Commun. 50(7), 2002, eq. 14):

    .. math::
        P_b = \\frac{1}{\\log_2 \\sqrt M} \\sum_{k=1}^{\\log_2 \\sqrt M} \\frac{1}{\\sqrt M}
              \\sum_{i=0}^{(1 - 2^{-k}) \\sqrt M - 1} (-1)^{\\lfloor i 2^{k-1} / \\sqrt M \\rfloor}
              \\Big(2^{k-1} - \\big\\lfloor i 2^{k-1} / \\sqrt M + \\tfrac12 \\big\\rfloor\\Big)
              \\operatorname{erfc}\\Big((2i + 1) \\sqrt{\\tfrac{3 \\log_2 M}{2 (M - 1)} \\tfrac{E_b}{N_0}}\\Big)

    QPSK (M = 4) reduces to Q(sqrt(2 Eb/N0)).

    Args:
        ebn0_db: energy per bit over noise density, dB.
        bits_per_symbol: log2 M, even (2 = QPSK, 4 = 16-QAM, 6 = 64-QAM).
    """
    if bits_per_symbol < 2 or bits_per_symbol % 2:
        raise ValueError(f"square QAM needs an even bits_per_symbol >= 2, got {bits_per_symbol}")
    m_side = 2 ** (bits_per_symbol // 2)
    order = m_side**2
    ebn0 = 10 ** (ebn0_db / 10)
    scale = math.sqrt(3 * bits_per_symbol * ebn0 / (2 * (order - 1)))
    total = 0.0
    for k in range(1, bits_per_symbol // 2 + 1):
        per_bit = 0.0
        for i in range(int((1 - 2**-k) * m_side)):
            step = i * 2 ** (k - 1) / m_side
            weight = (-1) ** math.floor(step) * (2 ** (k - 1) - math.floor(step + 0.5))
            per_bit += weight * math.erfc((2 * i + 1) * scale)
        total += per_bit / m_side
    return total / (bits_per_symbol // 2)


def qpsk_ber_rayleigh(ebn0_db: float) -> float:
    """Bit error rate of uncoded Gray QPSK over Rayleigh fading (E|h|^2 = 1) with perfect CSI:
    (1 - sqrt(g / (1 + g))) / 2, g = mean Eb/N0 (Proakis, Digital Communications, eq. 14.3-7)."""
    gain = 10 ** (ebn0_db / 10)
    return 0.5 * (1 - math.sqrt(gain / (1 + gain)))
