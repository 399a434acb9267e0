"""The official GESCO OFDM bit channel as a named preset: the one-hot map's bits as QPSK over OFDM through a
per-image frequency response, zero forcing and hard decisions.

Per map, at an Es/N0 (unit-energy QPSK, E|H|^2 = 1):

1. the transmitted channels' 0/1 values (``Payload.compact`` order) are the bits; pairs (b0, b1) become Gray
   QPSK s = ((1 - 2 b0) + j (1 - 2 b1)) / sqrt(2), filling OFDM symbols of ``fft_size`` subcarriers (the
   last one zero-padded);
2. each subcarrier k sees the map's frequency response H_k (one response for all its OFDM symbols), with a
   cyclic prefix of ``cyclic_prefix`` samples assumed longer than the channel: y_k = H_k s_k + n_k,
   n_k ~ CN(0, N0);
3. the receiver knows H (perfect CSI) and divides by it (zero forcing), then decides each bit by the sign of
   the real or imaginary part.

The received map holds those hard bits (0 or 1) on the transmitted channels; ``Received.sigma`` is 0 since
the errors are flipped bits, not Gaussian noise. Channel uses count the QPSK data symbols; the cyclic prefix
and the padding are reported in ``OfdmReceived.overhead``.

Frequency responses: measured ones from a file (:func:`load_frequency_responses`), one row drawn per map
from its generator; by default a fresh synthetic one per map (:func:`synthetic_frequency_response`).

Frequency-response file format (``.npy`` or ``.npz``):

- a complex array of shape (fft_size,) (one response) or (R, fft_size) (R responses, e.g. one per user
  position); in an ``.npz`` it is stored under the key ``"h"``;
- entry [r, k] is the complex gain of subcarrier k, subcarriers in FFT order (k = 0 is DC, as ``numpy.fft``);
- every entry finite and non-zero (zero forcing divides by it);
- the gains are scaled on loading so that their mean power over the whole file is 1, keeping their relative
  levels: Es/N0 is then the mean received SNR.

DeepMIMO, for instance, gives each user's channel as an array (users, rx antennas, tx antennas, subcarriers);
with 256 subcarriers, ``np.save("h.npy", channel[:, 0, 0, :])`` writes a file of this format.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from gesco.channel.base import Channel
from gesco.channel.digital.symbol_channel import complex_gaussian
from gesco.channel.ofdm.config import OfdmOverhead
from gesco.channel.ofdm.map_channels import OfdmReceived
from gesco.channel.quality import ChannelQuality, esn0_db_to_n0
from gesco.semantics.payload import Payload

#: The official script's OFDM: FFT size and cyclic-prefix length in samples.
OFFICIAL_FFT_SIZE = 256
OFFICIAL_CYCLIC_PREFIX = 32
#: The synthetic response: taps of an exponential power-delay profile, all within the cyclic prefix.
SYNTHETIC_TAPS = 16
SYNTHETIC_DECAY_SAMPLES = 4.0


def synthetic_frequency_response(
    fft_size: int,
    *,
    taps: int = SYNTHETIC_TAPS,
    decay_samples: float = SYNTHETIC_DECAY_SAMPLES,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """complex64 (fft_size,): a frequency-selective Rayleigh response with E|H_k|^2 = 1.

    Tap l (l = 0 .. taps - 1, one sample apart) is CN(0, p_l) with p_l proportional to exp(-l / decay_samples)
    and sum p_l = 1; H is the taps' FFT over ``fft_size`` subcarriers.
    """
    if not 1 <= taps <= fft_size:
        raise ValueError(f"taps={taps} must lie in [1, fft_size={fft_size}]")
    if not (math.isfinite(decay_samples) and decay_samples > 0):
        raise ValueError(f"decay_samples={decay_samples} must be a finite number > 0")
    power = torch.exp(-torch.arange(taps, dtype=torch.float64) / decay_samples)
    power = power / power.sum()
    impulse = complex_gaussian((taps,), 1.0, dtype=torch.complex128, generator=generator) * power.sqrt()
    return torch.fft.fft(impulse, n=fft_size).to(torch.complex64)


def load_frequency_responses(path: str | Path, *, fft_size: int = OFFICIAL_FFT_SIZE) -> torch.Tensor:
    """complex64 (R, fft_size): the responses of a file in the format of the module docstring, scaled to
    mean power 1."""
    path = Path(path)
    if path.suffix not in (".npy", ".npz"):
        raise ValueError(f"a frequency-response file is .npy or .npz, got {path}")
    if not path.is_file():
        raise FileNotFoundError(f"no frequency-response file at {path}")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (EOFError, ValueError, OSError) as err:  # empty (EOFError), truncated or not a NumPy file
        raise ValueError(
            f"cannot read frequency responses from {path} (empty, truncated or not .npy/.npz): {err}"
        ) from err
    if path.suffix == ".npz":
        with loaded:
            if "h" not in loaded.files:
                raise ValueError(f"{path} holds {loaded.files}; store the responses under the key 'h'")
            array = loaded["h"]
    else:
        array = loaded
    if not np.iscomplexobj(array):
        raise TypeError(f"{path}: frequency responses must be a complex array, got {array.dtype}")
    shape = array.shape
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[1] != fft_size or array.shape[0] == 0:
        raise ValueError(
            f"{path}: responses of shape {shape}; expected ({fft_size},) or (R, {fft_size}) for {fft_size} subcarriers"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{path}: the responses hold NaN or Inf values")
    zero = np.argwhere(array == 0)
    if len(zero):
        row, k = zero[0]
        raise ValueError(
            f"{path}: response {row} is 0 on subcarrier {k} ({len(zero)} zeros); zero forcing needs H != 0"
        )
    responses = torch.from_numpy(array.astype(np.complex128))
    return (responses / responses.abs().square().mean().sqrt()).to(torch.complex64)


def qpsk_modulate(bits: torch.Tensor) -> torch.Tensor:
    """uint8 (2 N,) -> complex64 (N,): Gray QPSK ((1 - 2 b0) + j (1 - 2 b1)) / sqrt(2)."""
    signs = 1.0 - 2.0 * bits.reshape(-1, 2).to(torch.float32)
    return torch.complex(signs[:, 0], signs[:, 1]) / math.sqrt(2)


def qpsk_hard_bits(symbols: torch.Tensor) -> torch.Tensor:
    """complex (N,) -> uint8 (2 N,): bit 1 where the real (even bits) or imaginary (odd bits) part is negative."""
    return torch.stack([symbols.real < 0, symbols.imag < 0], dim=1).flatten().to(torch.uint8)


class OfficialOfdmBits(Channel):
    """The official OFDM bit channel (see the module docstring), at an Es/N0 in dB.

    Args:
        frequency_response: a frequency-response file (.npy/.npz, format in the module docstring), one row
            drawn per map; None: a synthetic response per map.
        fft_size: subcarriers per OFDM symbol (official: 256).
        cyclic_prefix: cyclic-prefix samples per OFDM symbol (official: 32; overhead only).

    >>> import math, torch
    >>> from gesco.semantics import SemanticMap, Transmitter
    >>> payload = Transmitter()(SemanticMap(torch.tensor([[7, 26]]), "cityscapes"))
    >>> received = OfficialOfdmBits()(payload, ChannelQuality.esn0_db(math.inf))
    >>> bool(torch.equal(received.payload.values, payload.values)), received.overhead[0].cyclic_prefix
    (True, 32)
    """

    accepts = ("esn0_db",)

    def __init__(
        self,
        *,
        frequency_response: str | Path | None = None,
        fft_size: int = OFFICIAL_FFT_SIZE,
        cyclic_prefix: int = OFFICIAL_CYCLIC_PREFIX,
    ):
        super().__init__()
        if fft_size < 1 or not 0 <= cyclic_prefix <= fft_size:
            raise ValueError(f"fft_size={fft_size} must be >= 1 and cyclic_prefix={cyclic_prefix} in [0, fft_size]")
        self.fft_size, self.cyclic_prefix = fft_size, cyclic_prefix
        self.frequency_response = None if frequency_response is None else str(frequency_response)
        self.responses = (
            None if frequency_response is None else load_frequency_responses(frequency_response, fft_size=fft_size)
        )

    def quality_hint(self) -> str:
        return "; the OFDM bit channel sends QPSK symbols at an Es/N0"

    def describe(self) -> str:
        """The link for plots and reports, e.g. "one-hot bits, QPSK, OFDM N_FFT 256 CP 32, synthetic response, ZF"."""
        source = "synthetic response" if self.frequency_response is None else f"responses of {self.frequency_response}"
        return f"one-hot bits, QPSK, OFDM N_FFT {self.fft_size} CP {self.cyclic_prefix}, {source}, ZF, hard decisions"

    def response(self, generator: torch.Generator | None) -> torch.Tensor:
        """complex64 (fft_size,): one map's frequency response."""
        if self.responses is None:
            return synthetic_frequency_response(self.fft_size, generator=generator)
        row = int(torch.randint(0, self.responses.shape[0], (), generator=generator))
        return self.responses[row]

    def transmit(
        self, payload: Payload, quality: ChannelQuality, generators: list[torch.Generator | None]
    ) -> OfdmReceived:
        values = payload.values.clone()
        uses, overhead = [], []
        for b, (esn0_db, generator) in enumerate(zip(quality.per_map(payload.batch_size), generators, strict=True)):
            sent = payload.compact(b)
            if not ((sent == 0) | (sent == 1)).all():
                raise ValueError(
                    f"map {b}: the OFDM bit channel sends the clean one-hot map's bits (0 and 1), as the Transmitter "
                    "produces; it got other values"
                )
            # 1. Bits -> QPSK on whole OFDM symbols: (ofdm_symbols, fft_size).
            bits = sent.flatten().to(torch.uint8)
            bits = torch.nn.functional.pad(bits, (0, bits.numel() % 2))
            symbols = qpsk_modulate(bits)
            ofdm_symbols = math.ceil(symbols.numel() / self.fft_size)
            grid = torch.nn.functional.pad(symbols, (0, ofdm_symbols * self.fft_size - symbols.numel()))
            grid = grid.reshape(ofdm_symbols, self.fft_size)
            # 2. y = H s + n on every subcarrier, one response for the whole map.
            h = self.response(generator)
            noise = complex_gaussian(tuple(grid.shape), esn0_db_to_n0(esn0_db), dtype=grid.dtype, generator=generator)
            y = h * grid + noise
            # 3. Zero forcing with the known H, hard decisions.
            decided = qpsk_hard_bits((y / h).flatten()[: symbols.numel()])[: sent.numel()]
            values[b, payload.transmitted[b]] = decided.reshape(sent.shape).to(values.dtype)
            uses.append(symbols.numel())
            overhead.append(
                OfdmOverhead(
                    slots=ofdm_symbols,
                    pilots=0,
                    cyclic_prefix=ofdm_symbols * self.cyclic_prefix,
                    padding=ofdm_symbols * self.fft_size - symbols.numel(),
                )
            )
        return OfdmReceived(
            payload=payload.with_values(values),
            sigma=torch.zeros(payload.batch_size),
            quality=quality,
            complex_channel_uses=torch.tensor(uses, dtype=torch.int64),
            overhead=tuple(overhead),
        )
