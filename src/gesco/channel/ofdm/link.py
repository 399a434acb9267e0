"""The OFDM symbol channel on NVIDIA Sionna: complex symbols in, equalised symbols and their noise out.

``OfdmChannel`` has the call shape of :class:`~gesco.channel.digital.symbol_channel.SymbolChannel`
(``(x, n0=, generator=) -> EqualizedSymbols``), so every method that sends complex symbols (the coded digital
link, GESCO-analog's unit-power map, Deep JSCC) runs over it unchanged. Per call:

1. send the rows one after another (a message's codewords, say) in slots of ``config.data_symbols_per_slot``
   symbols, the last one zero-padded, each slot's data and pilots on a resource grid (Sionna
   ``ResourceGridMapper``, Kronecker pilots; data fill the subcarriers of one OFDM symbol, then the next);
2. draw one channel realisation per slot: a TR 38.901 TDL or CDL profile at the configured delay spread,
   carrier frequency and UE speed, sampled at every OFDM symbol and turned into a frequency response
   (``GenerateOFDMChannel``; slots are far apart in time, so their realisations are independent), or H = I
   (h = 1 per antenna) for the flat "awgn" model;
3. y = H x + n on every resource element, n ~ CN(0, N0) drawn from the caller's generator (a
   frequency-domain model: the cyclic prefix is assumed longer than the channel, so no inter-symbol
   interference; Doppler within an OFDM symbol, i.e. inter-carrier interference, is not modelled);
4. estimate H: least squares at the pilots, interpolated (``LSChannelEstimator``), or the true H;
5. equalise (``LMMSEEqualizer`` or ``ZFEqualizer``), which also returns each symbol's effective noise
   variance, estimation error included, for the demapper.

Sionna's channel models draw from Sionna's own generator; each call seeds it from the caller's generator and
restores it after, so a seeded ``torch.Generator`` fixes the fading as well as the noise.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from gesco.channel.digital.sionna_import import import_sionna
from gesco.channel.digital.symbol_channel import EqualizedSymbols, complex_gaussian
from gesco.channel.ofdm.config import OfdmConfig, kmh_to_ms

#: Sionna runs the OFDM blocks here: gesco's channels work on CPU tensors.
DEVICE = "cpu"
#: Noise variance the equaliser is told at least: Sionna's LMMSE whitens by 1 / sqrt(N0), which is NaN at N0 = 0;
#: this floor makes it zero forcing there, to float32 precision.
NOISELESS_N0 = 1e-10
#: Sionna's pilots are random QPSK drawn when the grid is built; this seed fixes them for every link.
PILOT_SEED = 0
SIONNA_MODULES = ("sionna.phy.ofdm", "sionna.phy.mimo", "sionna.phy.channel", "sionna.phy.channel.tr38901")


@contextmanager
def sionna_seeded(seed: int) -> Iterator[None]:
    """Run Sionna's draws from its CPU generator seeded with ``seed``, then restore the generator."""
    rng = import_sionna().config.torch_rng(DEVICE)
    state = rng.get_state()
    rng.manual_seed(seed)
    try:
        yield
    finally:
        rng.set_state(state)


def channel_model(config: OfdmConfig, phy):
    """The Sionna TDL or CDL model of ``config`` (None for the flat channel)."""
    tr38901 = phy.channel.tr38901
    common = {
        "delay_spread": config.delay_spread_ns * 1e-9,
        "carrier_frequency": config.carrier_frequency_ghz * 1e9,
        "min_speed": kmh_to_ms(config.speed_kmh),
        "max_speed": kmh_to_ms(config.speed_kmh),
        "device": DEVICE,
    }
    if config.family == "tdl":
        return tr38901.TDL(config.profile, num_rx_ant=config.antennas, num_tx_ant=config.antennas, **common)
    if config.family == "cdl":
        # One omnidirectional, vertically polarised element per antenna at both ends, in a row.
        array = tr38901.PanelArray(
            num_rows_per_panel=1,
            num_cols_per_panel=config.antennas,
            polarization="single",
            polarization_type="V",
            antenna_pattern="omni",
            carrier_frequency=common["carrier_frequency"],
            device=DEVICE,
        )
        return tr38901.CDL(config.profile, ut_array=array, bs_array=array, direction="downlink", **common)
    return None


class OfdmChannel(nn.Module):
    """Complex symbols over OFDM through a 3GPP channel, with LS-estimated or perfect CSI; see the module
    docstring.

    Args:
        config: model, delay spread, carrier, speed, CSI, equaliser, antennas and grid (default
            ``OfdmConfig()``: TDL-A, 100 ns, 3.5 GHz, 3 km/h, LS CSI, LMMSE, SISO, 72 x 14 grid).

    >>> import torch
    >>> channel = OfdmChannel(OfdmConfig(model="tdl-a", csi="perfect"))
    >>> x = torch.ones(2, 1000, dtype=torch.complex64)
    >>> out = channel(x, n0=0.0, generator=torch.Generator().manual_seed(0))
    >>> bool(torch.allclose(out.symbols, x, atol=1e-4)), tuple(out.n0.shape)
    (True, (2, 1000))
    """

    def __init__(self, config: OfdmConfig | None = None):
        super().__init__()
        self.config = config = config or OfdmConfig()
        phy = import_sionna(*SIONNA_MODULES)
        with sionna_seeded(PILOT_SEED):
            self.grid = phy.ofdm.ResourceGrid(
                num_ofdm_symbols=config.ofdm_symbols,
                fft_size=config.fft_size,
                subcarrier_spacing=config.subcarrier_spacing_khz * 1e3,
                num_tx=1,
                num_streams_per_tx=config.antennas,
                cyclic_prefix_length=config.cyclic_prefix,
                pilot_pattern="kronecker" if config.pilot_symbols else "empty",
                pilot_ofdm_symbol_indices=list(config.pilot_symbols),
                device=DEVICE,
            )
        if self.grid.num_data_symbols * config.antennas != config.data_symbols_per_slot:
            raise RuntimeError(
                f"Sionna's grid carries {self.grid.num_data_symbols} data symbols per stream, gesco's accounting "
                f"{config.data_symbols_per_slot // config.antennas}: the two disagree"
            )
        self.mapper = phy.ofdm.ResourceGridMapper(self.grid, device=DEVICE)
        model = channel_model(config, phy)
        self.generate = None if model is None else phy.channel.GenerateOFDMChannel(model, self.grid, device=DEVICE)
        self.apply_channel = phy.channel.ApplyOFDMChannel(device=DEVICE)
        self.estimator = (
            phy.ofdm.LSChannelEstimator(self.grid, interpolation_type=config.interpolation, device=DEVICE)
            if config.csi == "ls"
            else None
        )
        streams = phy.mimo.StreamManagement(np.ones((1, 1), dtype=int), config.antennas)
        equalizer = phy.ofdm.LMMSEEqualizer if config.equalizer == "lmmse" else phy.ofdm.ZFEqualizer
        self.equalizer = equalizer(self.grid, streams, device=DEVICE)

    def frequency_response(self, slots: int, generator: torch.Generator | None) -> torch.Tensor:
        """complex64 (slots, 1, antennas, 1, antennas, ofdm_symbols, fft_size): H of each slot."""
        c = self.config
        if self.generate is None:  # flat: each receive antenna hears its own transmit antenna only, gain 1
            identity = torch.eye(c.antennas, dtype=torch.complex64)[None, None, :, None, :, None, None]
            return identity.expand(slots, 1, c.antennas, 1, c.antennas, c.ofdm_symbols, c.fft_size)
        seed = int(torch.randint(0, 2**62, (), generator=generator))
        with sionna_seeded(seed):
            return self.generate(slots)

    def forward(self, x: torch.Tensor, *, n0: float, generator: torch.Generator | None = None) -> EqualizedSymbols:
        """x: complex (B, S) symbols of unit average energy, sent row after row; n0: noise variance per complex
        symbol (>= 0). Returns the equalised symbols (B, S) and the noise variance of each (B, S)."""
        if not x.is_complex() or x.dim() != 2:
            raise ValueError(f"x must be a complex (B, S) tensor, got {x.dtype} {tuple(x.shape)}")
        if not (n0 >= 0 and math.isfinite(n0)):
            raise ValueError(f"n0={n0} must be a finite noise variance >= 0")
        c = self.config
        rows, length = x.shape
        total = rows * length
        per_slot = c.data_symbols_per_slot
        slots = c.slots_for(total)
        # 1. The rows one after another, in slots on the resource grid: (slots, 1 transmitter, streams, data per
        #    stream); the last slot is zero-padded.
        data = nn.functional.pad(x.to(torch.complex64).flatten(), (0, slots * per_slot - total))
        grid = self.mapper(data.reshape(slots, 1, c.antennas, per_slot // c.antennas))
        # 2.-3. One channel realisation per slot, then y = H x + n.
        h = self.frequency_response(slots, generator)
        y = self.apply_channel(grid, h)
        y = y + complex_gaussian(tuple(y.shape), n0, dtype=y.dtype, generator=generator)
        no = torch.tensor(max(n0, NOISELESS_N0), dtype=torch.float32)
        # 4. CSI: (slots, 1, rx antennas, 1, streams, ofdm_symbols, fft_size), and its error variance.
        if self.estimator is None:
            h_hat, error_variance = h, torch.zeros((), dtype=torch.float32)
        else:
            h_hat, error_variance = self.estimator(y, no)
        # 5. Equalise: (slots, 1, streams, data symbols per stream) and the noise each one carries.
        x_hat, n0_eff = self.equalizer(y, h_hat, error_variance, no)
        symbols = x_hat.flatten()[:total].reshape(rows, length).to(x.dtype)
        return EqualizedSymbols(symbols, n0_eff.flatten()[:total].reshape(rows, length).to(x.real.dtype))
