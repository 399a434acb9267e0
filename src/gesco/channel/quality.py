"""Channel quality as a small named value, and the named formulas between its kinds.

Every channel takes its quality as a :class:`ChannelQuality` of one of four kinds:

========================  ==============================================================
``"psnr_label"``           the paper's PSNR label (100, 30, 25, 20, 15, 10, 5, 1), read in
                           the official table ``PAPER_PSNR_SIGMA``; 100 is noiseless
``"peak_snr_db"``          SNR in dB referred to the map's peak amplitude 1 (a one-hot "on"
                           value): sigma = 10^(-SNR/20)
``"esn0_db"``              Es/N0 in dB of unit-power complex channel symbols (what a radio
                           engineer calls SNR; digital links, Deep JSCC, GESCO-analog at
                           unit power)
``"noise_std"``            the noise standard deviation sigma per real value on the map's
                           own 0/1 scale, given directly (training draws it per map)
========================  ==============================================================

A channel lists the kinds it accepts (``Channel.accepts``); a kind it cannot interpret raises
:class:`UnsupportedQualityError`. The value is one number for the whole batch, or one per map.

The labels' true peak SNRs are 26.0, 21.9, 17.7, 13.2, 8.9, 4.4 and 0.9 dB for labels 30, 25,
20, 15, 10, 5 and 1 (``peak_snr_db_of_sigma(paper_sigma(label))``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType

import torch

#: The official PSNR label (dB) -> noise standard deviation table.
PAPER_PSNR_SIGMA = MappingProxyType({100: 0.0, 30: 0.05, 25: 0.08, 20: 0.13, 15: 0.22, 10: 0.36, 5: 0.6, 1: 0.9})

#: Noise-aware training (the released code): sigma drawn uniformly per mini-batch from this list (zeros
#: repeated, so a third of the batches are clean).
NOISE_AWARE_TRAINING_SIGMAS = (0.6, 0.36, 0.22, 0.13, 0.08, 0.05, 0.0, 0.0, 0.0)

QUALITY_KINDS = ("psnr_label", "peak_snr_db", "esn0_db", "noise_std")

#: How each kind is written in reports, plots and CLI output.
QUALITY_NAMES = MappingProxyType(
    {"psnr_label": "PSNR label", "peak_snr_db": "peak SNR (dB)", "esn0_db": "Es/N0 (dB)", "noise_std": "sigma"}
)

#: Below this many dB a channel carries nothing useful and 10^(-dB/10) overflows soon after.
MIN_DB = -100.0


class UnsupportedQualityError(TypeError):
    """A channel was given a quality kind it does not interpret (e.g. a PSNR label on a digital link)."""


def paper_sigma(psnr_label: float) -> float:
    """Noise standard deviation of a PSNR label of the paper (100, 30, 25, 20, 15, 10, 5 or 1)."""
    if not math.isfinite(psnr_label) or not float(psnr_label).is_integer() or int(psnr_label) not in PAPER_PSNR_SIGMA:
        raise ValueError(
            f"unknown PSNR label {psnr_label!r}; the paper's labels are {sorted(PAPER_PSNR_SIGMA, reverse=True)}. "
            "For any other channel quality give a peak SNR or an Es/N0 in dB instead."
        )
    return PAPER_PSNR_SIGMA[int(psnr_label)]


def _check_db(name: str, value: float) -> None:
    """Refuse a NaN, -inf or below-``MIN_DB`` level, which would turn into an infinite or NaN noise."""
    if math.isnan(value) or value < MIN_DB:
        raise ValueError(f"{name} {value!r} dB must be a number >= {MIN_DB:g} dB (+inf: noiseless)")


def peak_snr_db_to_sigma(snr_db: float) -> float:
    """sigma = sqrt(P / 10^(SNR/10)) with peak power P = 1; +inf dB gives 0 (noiseless)."""
    _check_db("the peak SNR", snr_db)
    return 0.0 if snr_db == math.inf else 10 ** (-snr_db / 20)


def peak_snr_db_of_sigma(sigma: float) -> float:
    """Inverse of ``peak_snr_db_to_sigma``; sigma 0 gives +inf."""
    return math.inf if sigma == 0 else -20 * math.log10(sigma)


def esn0_db_to_n0(esn0_db: float) -> float:
    """Noise variance per complex symbol N0 for an Es/N0 in dB at Es = 1 (+inf dB: 0)."""
    _check_db("Es/N0", esn0_db)
    return 0.0 if esn0_db == math.inf else 10 ** (-esn0_db / 10)


def esn0_db_to_sigma(esn0_db: float, *, mean_square: float) -> float:
    """Noise per real value on the map's scale when the map is sent as unit-power symbols.

    The transmitted real values x (mean square ``mean_square``) are paired into complex symbols
    s, scaled by a = 1 / sqrt(E|s|^2) = 1 / sqrt(2 mean_square) to unit power, sent at Es/N0 and
    divided by a again at the receiver. Each real dimension then carries noise N0 / 2 / a^2:

    .. math::  \\sigma = \\sqrt{N_0 / 2} / a = \\sqrt{\\overline{x^2} \\, 10^{-(E_s/N_0)_{dB}/10}}
    """
    return math.sqrt(mean_square * esn0_db_to_n0(esn0_db))


def _check_value(kind: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"a {QUALITY_NAMES[kind]} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"the {QUALITY_NAMES[kind]} is NaN; give a number")
    if kind == "psnr_label":
        paper_sigma(value)
    elif kind == "noise_std":
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"sigma must be a finite number >= 0, got {value}")
    elif value < MIN_DB:
        raise ValueError(f"{QUALITY_NAMES[kind]} {value:g} dB is below {MIN_DB:g} dB: the channel carries nothing")
    return value


@dataclass(frozen=True)
class ChannelQuality:
    """One channel quality: a kind (``QUALITY_KINDS``) and its value, one for the batch or one per map.

    >>> ChannelQuality.psnr_label(10).sigmas(2)
    tensor([0.3600, 0.3600])
    >>> ChannelQuality.esn0_db([0.0, 20.0]).values
    (0.0, 20.0)
    """

    kind: str
    values: tuple[float, ...]

    def __init__(self, kind: str, value: float | Sequence[float]):
        if kind not in QUALITY_KINDS:
            raise ValueError(f"unknown channel quality kind {kind!r}; choose one of {list(QUALITY_KINDS)}")
        if isinstance(value, torch.Tensor) and value.dim() > 1:
            raise ValueError(
                f"a channel quality tensor holds one value, or one per map; got shape {tuple(value.shape)}"
            )
        if isinstance(value, torch.Tensor) and value.dim() == 0:
            value = value.reshape(1)
        values = (
            tuple(value) if isinstance(value, (Sequence, torch.Tensor)) and not isinstance(value, str) else (value,)
        )
        if not values:
            raise ValueError("a channel quality needs at least one value")
        object.__setattr__(self, "kind", kind)
        object.__setattr__(
            self, "values", tuple(_check_value(kind, float(v) if isinstance(v, torch.Tensor) else v) for v in values)
        )

    @classmethod
    def psnr_label(cls, value: float | Sequence[float]) -> ChannelQuality:
        return cls("psnr_label", value)

    @classmethod
    def peak_snr_db(cls, value: float | Sequence[float]) -> ChannelQuality:
        return cls("peak_snr_db", value)

    @classmethod
    def esn0_db(cls, value: float | Sequence[float]) -> ChannelQuality:
        return cls("esn0_db", value)

    @classmethod
    def noise_std(cls, value: float | Sequence[float]) -> ChannelQuality:
        return cls("noise_std", value)

    def per_map(self, batch_size: int) -> tuple[float, ...]:
        """The value of each of ``batch_size`` maps."""
        if len(self.values) == 1:
            return self.values * batch_size
        if len(self.values) != batch_size:
            raise ValueError(
                f"{len(self.values)} quality values for a batch of {batch_size} maps; give one value, or one per map"
            )
        return self.values

    def sigmas(self, batch_size: int) -> torch.Tensor:
        """float32 (B,): sigma per real value on the map's scale, for the kinds that fix it without the map
        (``psnr_label``, ``peak_snr_db``, ``noise_std``); ``esn0_db`` depends on the map's power."""
        convert = {"psnr_label": paper_sigma, "peak_snr_db": peak_snr_db_to_sigma, "noise_std": float}.get(self.kind)
        if convert is None:
            raise UnsupportedQualityError(
                f"an {QUALITY_NAMES[self.kind]} fixes sigma only together with the map's power; "
                "use UnitPowerAnalogChannel, which normalises each map to unit-power symbols"
            )
        return torch.tensor([convert(v) for v in self.per_map(batch_size)], dtype=torch.float32)

    def describe(self) -> str:
        """e.g. "PSNR label 10", "Es/N0 (dB) 5"."""
        shown = ", ".join(f"{v:g}" for v in self.values)
        return f"{QUALITY_NAMES[self.kind]} {shown}"
