"""The official OFDM bit channel: QPSK over a per-map frequency response, ZF, hard decisions; its file format."""

import math

import numpy as np
import pytest
import torch

from gesco.channel.digital.theory import gray_qam_ber_awgn, qpsk_ber_rayleigh
from gesco.channel.ofdm.official import (
    OFFICIAL_CYCLIC_PREFIX,
    OFFICIAL_FFT_SIZE,
    OfficialOfdmBits,
    load_frequency_responses,
    qpsk_hard_bits,
    qpsk_modulate,
    synthetic_frequency_response,
)
from gesco.channel.quality import ChannelQuality
from gesco.datasets.synthetic import SyntheticStreets
from gesco.semantics import SemanticMap, Transmitter

#: One torch thread: on this shared 2-core machine two OpenMP threads wait on each other.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def payload():
    streets = SyntheticStreets(32, 64)
    labels = torch.stack([torch.from_numpy(streets.scene(seed).labels).long() for seed in range(8)])
    return Transmitter()(SemanticMap(labels, "cityscapes"))


def bit_error_rate(channel, payload, esn0_db: float, seed: int = 0) -> float:
    received = channel(payload, ChannelQuality.esn0_db(esn0_db), generator=torch.Generator().manual_seed(seed))
    sent = payload.transmitted[:, :, None, None].expand_as(payload.values)
    return float((received.payload.values[sent] != payload.values[sent]).double().mean())


def test_qpsk_is_gray_and_unit_energy():
    bits = torch.tensor([0, 0, 0, 1, 1, 0, 1, 1], dtype=torch.uint8)
    symbols = qpsk_modulate(bits)
    torch.testing.assert_close(symbols.abs(), torch.ones(4))
    assert torch.equal(qpsk_hard_bits(symbols), bits)
    assert symbols[0] == complex(1, 1) / math.sqrt(2) and symbols[3] == complex(-1, -1) / math.sqrt(2)


def test_flat_response_file_gives_the_awgn_bit_error_rate(payload, tmp_path):
    path = tmp_path / "flat.npy"
    np.save(path, np.full(OFFICIAL_FFT_SIZE, 0.5 - 0.5j, dtype=np.complex64))  # scaled to |H| = 1 on loading
    channel = OfficialOfdmBits(frequency_response=path)
    # ~100k bits per point: within 6 % of Q(sqrt(2 Eb/N0)), Eb/N0 = Es/N0 - 3 dB for QPSK.
    for esn0_db in (2.0, 6.0):
        expected = gray_qam_ber_awgn(esn0_db - 10 * math.log10(2), 2)
        assert bit_error_rate(channel, payload, esn0_db) == pytest.approx(expected, rel=0.06)


def test_synthetic_response_gives_the_rayleigh_bit_error_rate(payload):
    # Each subcarrier's gain is CN(0, 1): averaged over maps, the BER of QPSK under Rayleigh fading with
    # perfect CSI, far above the AWGN one at 10 dB.
    ber = np.mean([bit_error_rate(OfficialOfdmBits(), payload, 10.0, seed) for seed in range(4)])
    assert ber == pytest.approx(qpsk_ber_rayleigh(10.0 - 10 * math.log10(2)), rel=0.15)
    assert ber > 10 * gray_qam_ber_awgn(10.0 - 10 * math.log10(2), 2)


def test_synthetic_response_is_frequency_selective_with_unit_power():
    responses = torch.stack(
        [synthetic_frequency_response(256, generator=torch.Generator().manual_seed(s)) for s in range(400)]
    )
    assert float(responses.abs().square().mean()) == pytest.approx(1.0, rel=0.05)
    # 16 taps of 4-sample decay: neighbours correlate, subcarriers 64 apart hardly do
    correlation = [float((responses[:, :-lag] * responses[:, lag:].conj()).mean().abs()) for lag in (1, 64)]
    assert correlation[0] > 0.9 and correlation[1] < 0.2
    with pytest.raises(ValueError, match="taps=300"):
        synthetic_frequency_response(256, taps=300)


def test_channel_uses_and_overhead(payload):
    received = OfficialOfdmBits()(payload, ChannelQuality.esn0_db(math.inf))
    for b in range(payload.batch_size):
        bits = int(payload.transmitted[b].sum()) * 32 * 64
        symbols = math.ceil(bits / 2)
        ofdm_symbols = math.ceil(symbols / OFFICIAL_FFT_SIZE)
        assert int(received.complex_channel_uses[b]) == symbols
        overhead = received.overhead[b]
        assert overhead.cyclic_prefix == OFFICIAL_CYCLIC_PREFIX * ofdm_symbols and overhead.pilots == 0
        assert overhead.padding == ofdm_symbols * OFFICIAL_FFT_SIZE - symbols


def test_soft_maps_are_refused(payload):
    noisy = payload.with_values(payload.values * 0.9)
    with pytest.raises(ValueError, match="map 0: the OFDM bit channel sends the clean one-hot map's bits"):
        OfficialOfdmBits()(noisy, ChannelQuality.esn0_db(10.0))


class TestFrequencyResponseFiles:
    def test_npy_and_npz_rows_scaled_to_unit_mean_power(self, tmp_path):
        rows = np.stack([np.full(8, 2.0 + 0j), np.full(8, 1j * 2.0 * math.sqrt(7))]).astype(np.complex128)
        np.save(tmp_path / "h.npy", rows)
        np.savez(tmp_path / "h.npz", h=rows, users=np.arange(2))
        for name in ("h.npy", "h.npz"):
            loaded = load_frequency_responses(tmp_path / name, fft_size=8)
            assert loaded.shape == (2, 8) and loaded.dtype == torch.complex64
            assert float(loaded.abs().square().mean()) == pytest.approx(1.0, rel=1e-6)
            # relative levels kept: row 1 is sqrt(7) times stronger than row 0
            assert float(loaded[1, 0].abs() / loaded[0, 0].abs()) == pytest.approx(math.sqrt(7), rel=1e-6)

    @pytest.mark.parametrize(
        "array, error, match",
        [
            (np.ones(8), TypeError, "complex array, got float64"),
            (np.ones(6, dtype=np.complex64), ValueError, r"shape \(6,\); expected \(8,\) or \(R, 8\)"),
            (np.array([1, 1, 0, 1, 1, 1, 1, 1], dtype=np.complex64), ValueError, "0 on subcarrier 2"),
            (np.full(8, np.nan, dtype=np.complex64), ValueError, "NaN or Inf"),
        ],
    )
    def test_bad_arrays_are_named(self, tmp_path, array, error, match):
        np.save(tmp_path / "h.npy", array)
        with pytest.raises(error, match=match):
            load_frequency_responses(tmp_path / "h.npy", fft_size=8)

    def test_bad_files_are_named(self, tmp_path):
        np.savez(tmp_path / "h.npz", channel=np.ones(8, dtype=np.complex64))
        with pytest.raises(ValueError, match="under the key 'h'"):
            load_frequency_responses(tmp_path / "h.npz", fft_size=8)
        with pytest.raises(ValueError, match=".npy or .npz"):
            load_frequency_responses(tmp_path / "h.mat", fft_size=8)
        with pytest.raises(FileNotFoundError, match="no frequency-response file"):
            load_frequency_responses(tmp_path / "missing.npy", fft_size=8)
