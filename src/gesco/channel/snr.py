"""Channel quality: the paper's PSNR labels, SNR in dB, and the noise standard deviation.

The paper names channel quality by a "PSNR" label and maps it to the noise standard
deviation sigma by a fixed table (``PAPER_PSNR_SIGMA``); results are reported by label.
A principled value comes from the map's peak amplitude 1 (a one-hot "on" value):

.. math::  \\mathrm{SNR_{dB}} = 10 \\log_{10}(P / \\sigma^2), \\qquad P = 1,

so the labels' true peak SNRs are 26.0, 21.9, 17.7, 13.2, 8.9, 4.4 and 0.9 dB for labels
30, 25, 20, 15, 10, 5 and 1 (label 100 is the noiseless channel). ``snr_db_to_sigma``
takes any value; pass ``signal_power`` to refer the SNR to another power, e.g. the mean
power of the transmitted map values.
"""

from __future__ import annotations

import math
from types import MappingProxyType

#: The official PSNR label (dB) -> noise standard deviation table.
PAPER_PSNR_SIGMA = MappingProxyType(
    {100: 0.0, 30: 0.05, 25: 0.08, 20: 0.13, 15: 0.22, 10: 0.36, 5: 0.6, 1: 0.9}
)

#: Noise-aware training: sigma drawn uniformly per mini-batch from this list (zeros repeated
#: as in the released code, so a third of the batches are clean).
NOISE_AWARE_TRAINING_SIGMAS = (0.6, 0.36, 0.22, 0.13, 0.08, 0.05, 0.0, 0.0, 0.0)


def paper_sigma(psnr_label: float) -> float:
    """Noise standard deviation of a PSNR label of the paper (100, 30, 25, 20, 15, 10, 5 or 1)."""
    label = int(psnr_label) if float(psnr_label).is_integer() else psnr_label
    if label not in PAPER_PSNR_SIGMA:
        raise ValueError(
            f"unknown PSNR label {psnr_label!r}; the paper's labels are {sorted(PAPER_PSNR_SIGMA, reverse=True)}. "
            "For any other channel quality give an SNR in dB instead (snr_db=..., CLI --snr-db)."
        )
    return PAPER_PSNR_SIGMA[label]


def snr_db_to_sigma(snr_db: float, *, signal_power: float = 1.0) -> float:
    """Noise standard deviation per real value for ``snr_db`` = 10 log10(signal_power / sigma^2)."""
    if not math.isfinite(snr_db):
        return 0.0 if snr_db > 0 else math.inf
    return math.sqrt(signal_power / 10 ** (snr_db / 10))


def sigma_to_snr_db(sigma: float, *, signal_power: float = 1.0) -> float:
    """Inverse of ``snr_db_to_sigma``; sigma 0 gives +inf."""
    return math.inf if sigma == 0 else 10 * math.log10(signal_power / sigma**2)


def resolve_sigma(*, sigma: float | None = None, psnr: float | None = None, snr_db: float | None = None) -> float:
    """The noise standard deviation from exactly one of sigma, a paper PSNR label, or an SNR in dB."""
    given = [name for name, value in (("sigma", sigma), ("psnr", psnr), ("snr_db", snr_db)) if value is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of sigma, psnr (a paper label) or snr_db; got {given or 'none'}")
    if psnr is not None:
        return paper_sigma(psnr)
    if snr_db is not None:
        return snr_db_to_sigma(snr_db)
    if not (sigma >= 0 and math.isfinite(sigma)):
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma}")
    return float(sigma)
