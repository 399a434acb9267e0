"""Settings and slot geometry of the OFDM link (3GPP TR 38.901 TDL/CDL, pilots, estimated or perfect CSI).

The geometry is plain arithmetic on the config, so channel-use accounting works without Sionna installed.

One slot is ``ofdm_symbols`` OFDM symbols of ``fft_size`` subcarriers per stream. The OFDM symbols listed in
``pilot_symbols`` carry only pilots (a Kronecker pattern: with two streams, each stream's pilots sit on every
other subcarrier and the other stream is silent there), the others carry data. Channel uses count data
symbols only (one per stream per data resource element); pilots, the cyclic prefix and the padding of the last
slot are overhead, reported by :meth:`OfdmConfig.overhead_for`.
"""

from __future__ import annotations

import dataclasses
import math
from types import MappingProxyType
from typing import Literal

from gesco.config import Config
from gesco.constants import OFDM_MODEL_NAMES

#: Channel models by name: "awgn" is h = 1 on every resource element (the flat reference), the others are the
#: 3GPP TR 38.901 tapped-delay-line and clustered-delay-line profiles A to E (Sionna's ``TDL`` and ``CDL``).
OFDM_MODELS = MappingProxyType(
    {name: ("flat", "") if name == "awgn" else (name[:3], name[4:].upper()) for name in OFDM_MODEL_NAMES}
)

CSI_MODES = ("ls", "perfect")
EQUALIZERS = ("lmmse", "zf")
INTERPOLATIONS = ("lin", "nn")


def kmh_to_ms(speed_kmh: float) -> float:
    """km/h -> m/s (Sionna's channel models take m/s)."""
    return speed_kmh / 3.6


@dataclasses.dataclass(frozen=True)
class OfdmOverhead:
    """Resource spent on a message besides its data symbols, in symbol slots (one per stream per element).

    Attributes:
        slots: OFDM slots the message occupies (OFDM symbols, for the official bit channel).
        pilots: pilot resource elements (times streams).
        cyclic_prefix: cyclic-prefix samples (times streams).
        padding: unused data symbols of the last slot.
    """

    slots: int
    pilots: int
    cyclic_prefix: int
    padding: int


@dataclasses.dataclass(frozen=True)
class OfdmConfig(Config):
    """What the OFDM link does to a stream of complex symbols.

    Attributes:
        model: channel model, a key of ``OFDM_MODELS`` ("awgn", "tdl-a" .. "tdl-e", "cdl-a" .. "cdl-e").
        delay_spread_ns: RMS delay spread of the TDL/CDL profile, ns (TR 38.901 Table 7.7.3-1: 10 very short,
            30 short, 100 nominal, 300 long, 1000 very long).
        carrier_frequency_ghz: carrier frequency, GHz (sets the Doppler shift of a speed).
        speed_kmh: UE speed, km/h.
        csi: "ls" (least-squares estimates at the pilots, interpolated) or "perfect" (the true response).
        equalizer: "lmmse" or "zf" (Sionna's ``LMMSEEqualizer`` / ``ZFEqualizer``).
        antennas: 1 (SISO) or 2 (2x2 MIMO, two spatial streams, one per transmit antenna, no precoding); every
            stream's symbols have unit energy, so Es/N0 is per stream and per receive antenna.
        fft_size: subcarriers per OFDM symbol (all carry data or pilots; no guard band).
        subcarrier_spacing_khz: subcarrier spacing, kHz.
        ofdm_symbols: OFDM symbols per slot.
        cyclic_prefix: cyclic-prefix samples per OFDM symbol (overhead only: the link is simulated in the
            frequency domain, which assumes the prefix outlasts the channel).
        pilot_symbols: indices of the pilot-only OFDM symbols of a slot.
        interpolation: "lin" (linear in frequency and time) or "nn" (nearest pilot) for LS estimates.
    """

    model: str = "tdl-a"
    delay_spread_ns: float = 100.0
    carrier_frequency_ghz: float = 3.5
    speed_kmh: float = 3.0
    csi: Literal["ls", "perfect"] = "ls"
    equalizer: Literal["lmmse", "zf"] = "lmmse"
    antennas: int = 1
    fft_size: int = 612
    subcarrier_spacing_khz: float = 30.0
    ofdm_symbols: int = 14
    cyclic_prefix: int = 43
    pilot_symbols: tuple[int, ...] = (2, 11)
    interpolation: Literal["lin", "nn"] = "lin"

    def __post_init__(self) -> None:
        for name in ("delay_spread_ns", "carrier_frequency_ghz", "speed_kmh", "subcarrier_spacing_khz"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
        for name in ("antennas", "fft_size", "ofdm_symbols", "cyclic_prefix"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be a whole number, got {type(value).__name__} {value!r}")
        if self.ofdm_symbols < 1:
            raise ValueError(f"ofdm_symbols={self.ofdm_symbols} must be >= 1 OFDM symbol per slot")
        if self.model not in OFDM_MODELS:
            raise ValueError(f"model={self.model!r} is not an OFDM channel model; choose one of {list(OFDM_MODELS)}")
        for name, allowed in (("csi", CSI_MODES), ("equalizer", EQUALIZERS), ("interpolation", INTERPOLATIONS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r} is not supported; choose one of {list(allowed)}")
        for name in ("delay_spread_ns", "carrier_frequency_ghz", "subcarrier_spacing_khz"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}={value} must be a finite number > 0")
        if not (math.isfinite(self.speed_kmh) and self.speed_kmh >= 0):
            raise ValueError(f"speed_kmh={self.speed_kmh} must be a finite speed >= 0 km/h")
        if self.antennas not in (1, 2):
            raise ValueError(f"antennas={self.antennas} is not supported; use 1 (SISO) or 2 (2x2 MIMO)")
        if self.fft_size < 2 or self.fft_size % self.antennas:
            raise ValueError(f"fft_size={self.fft_size} must be >= 2 and a multiple of antennas={self.antennas}")
        if self.cyclic_prefix < 0 or self.cyclic_prefix > self.fft_size:
            raise ValueError(f"cyclic_prefix={self.cyclic_prefix} must lie in [0, fft_size={self.fft_size}]")
        pilots = self.pilot_symbols
        if len(set(pilots)) != len(pilots) or not all(0 <= i < self.ofdm_symbols for i in pilots):
            raise ValueError(f"pilot_symbols={pilots} must be distinct OFDM symbol indices in [0, {self.ofdm_symbols})")
        if self.csi == "ls" and not pilots:
            raise ValueError("LS channel estimation needs pilots: give pilot_symbols, or csi='perfect'")
        if len(pilots) >= self.ofdm_symbols:
            raise ValueError(f"pilot_symbols={pilots} leave no OFDM symbol of the {self.ofdm_symbols} for data")

    @property
    def family(self) -> str:
        """ "flat", "tdl" or "cdl"."""
        return OFDM_MODELS[self.model][0]

    @property
    def profile(self) -> str:
        """The TR 38.901 profile letter ("A" .. "E"; "" for the flat channel)."""
        return OFDM_MODELS[self.model][1]

    @property
    def data_symbols_per_slot(self) -> int:
        """Data symbols one slot carries, over all streams."""
        return self.antennas * self.fft_size * (self.ofdm_symbols - len(self.pilot_symbols))

    def slots_for(self, data_symbols: int) -> int:
        """Slots a message of ``data_symbols`` complex symbols occupies (the last one padded)."""
        if data_symbols < 0:
            raise ValueError(f"data_symbols={data_symbols} must be >= 0")
        return math.ceil(data_symbols / self.data_symbols_per_slot)

    def overhead_for(self, data_symbols: int) -> OfdmOverhead:
        """What a message of ``data_symbols`` symbols costs beyond them."""
        slots = self.slots_for(data_symbols)
        return OfdmOverhead(
            slots=slots,
            pilots=slots * self.antennas * self.fft_size * len(self.pilot_symbols),
            cyclic_prefix=slots * self.antennas * self.cyclic_prefix * self.ofdm_symbols,
            padding=slots * self.data_symbols_per_slot - data_symbols,
        )

    def describe(self) -> str:
        """A short label for plots and reports, e.g. "TDL-A 100 ns 30 km/h, LS CSI"."""
        csi = "perfect CSI" if self.csi == "perfect" else f"LS CSI ({self.interpolation})"
        mimo = ", 2x2" if self.antennas == 2 else ""
        if self.family == "flat":
            return f"OFDM AWGN, {csi}{mimo}"
        return f"{self.model.upper()} {self.delay_spread_ns:g} ns {self.speed_kmh:g} km/h, {csi}{mimo}"
