"""The Sionna digital link: uncoded BER against theory, coded round trip, CRC verdicts, BLER waterfall."""

import doctest
import subprocess
import sys

import pytest
import torch

pytest.importorskip("sionna")

from gesco.channel.digital import (  # noqa: E402
    DigitalConfig,
    DigitalLink,
    QamModem,
    SymbolChannel,
    bits_to_bytes,
    ebn0_db_to_esn0_db,
    esn0_db_to_n0,
    gray_qam_ber_awgn,
    qpsk_ber_rayleigh,
)
from gesco.channel.digital.waterfall import bler_waterfall, plot_bler_waterfall  # noqa: E402

# the LDPC decoder runs many small tensor ops: a second intra-op thread only adds contention
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def small_link():
    return DigitalLink(DigitalConfig(block_bits=256, code_rate=0.5))


def measured_ber(modulation, ebn0_db, n_bits, generator, channel=None):
    modem = QamModem(modulation)
    bits = torch.randint(0, 2, (1, n_bits), generator=generator, dtype=torch.uint8)
    esn0_db = ebn0_db_to_esn0_db(ebn0_db, bits_per_symbol=modem.bits_per_symbol)
    channel = channel or SymbolChannel()
    received = channel(modem.modulate(bits.float()), n0=esn0_db_to_n0(esn0_db), generator=generator)
    return (modem.hard_bits(received.symbols, received.n0) != bits).double().mean().item()


@pytest.mark.parametrize(("modulation", "bits_per_symbol", "ebn0_db"), [("qpsk", 2, 6.8), ("16qam", 4, 10.5)])
def test_uncoded_ber_over_awgn_matches_theory(modulation, bits_per_symbol, ebn0_db, generator):
    theory = gray_qam_ber_awgn(ebn0_db, bits_per_symbol)
    assert 0.9e-3 < theory < 1.1e-3
    # 2e6 bits at BER 1e-3: ~2000 errors, relative std 2.2%; 10% is 4.5 standard deviations.
    assert measured_ber(modulation, ebn0_db, 2_000_000, generator) == pytest.approx(theory, rel=0.10)


def test_uncoded_qpsk_over_rayleigh_matches_theory(generator):
    theory = qpsk_ber_rayleigh(14.0)  # ~1e-2
    # one fading coefficient per symbol, 4e5 bits: ~4000 errors, relative std 1.6%; 10% is 6 std.
    measured = measured_ber("qpsk", 14.0, 400_000, generator, SymbolChannel(fading="rayleigh", coherence_symbols=1))
    assert measured == pytest.approx(theory, rel=0.10)


def test_coded_link_round_trip_and_channel_uses(small_link, generator):
    message = bytes(range(256)) * 2  # 4096 bits = 18 blocks of 232 message bits (CRC24A)
    out = small_link(message, snr_db=8.0, generator=generator)
    assert bits_to_bytes(out.bits) == message
    assert out.block_ok.dtype == torch.bool and out.block_ok.tolist() == [True] * 18
    # k = 256 at rate 1/2 on QPSK: 512 coded bits = 256 symbols per block
    assert out.channel_uses == 18 * 256 == small_link.config.channel_uses_for(4096)
    noiseless = small_link(torch.ones(5, dtype=torch.bool), snr_db=float("inf"), generator=generator)
    assert noiseless.bits.tolist() == [1] * 5 and noiseless.bits.dtype == torch.uint8


def test_crc_flags_blocks_lost_at_very_low_snr(small_link, generator):
    bits = torch.randint(0, 2, (2000,), generator=generator, dtype=torch.uint8)
    out = small_link(bits, snr_db=-6.0, generator=generator)
    assert not out.block_ok.any()
    assert out.bits.shape == bits.shape and not torch.equal(out.bits, bits)


def test_ebn0_and_snr_agree(small_link):
    bits = torch.randint(0, 2, (3000,), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    esn0 = small_link.config.esn0_db(2.0)
    by_ebn0 = small_link(bits, ebn0_db=2.0, generator=torch.Generator().manual_seed(2))
    by_snr = small_link(bits, snr_db=esn0, generator=torch.Generator().manual_seed(2))
    assert by_ebn0.esn0_db == pytest.approx(esn0)
    assert torch.equal(by_ebn0.bits, by_snr.bits) and torch.equal(by_ebn0.block_ok, by_snr.block_ok)


def test_same_generator_seed_same_output(small_link):
    bits = torch.randint(0, 2, (3000,), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    runs = [small_link(bits, snr_db=1.0, generator=torch.Generator().manual_seed(5)) for _ in range(2)]
    assert torch.equal(runs[0].bits, runs[1].bits) and torch.equal(runs[0].block_ok, runs[1].block_ok)


def test_bad_input_is_named(small_link):
    with pytest.raises(ValueError, match="0 and 1"):
        small_link(torch.tensor([0, 2], dtype=torch.uint8), snr_db=5.0)
    with pytest.raises(TypeError, match="uint8 or bool"):
        small_link(torch.tensor([0.0, 1.0]), snr_db=5.0)
    with pytest.raises(ValueError, match="exactly one"):
        small_link(b"x", snr_db=5.0, ebn0_db=5.0)
    with pytest.raises(ValueError, match="non-empty"):
        small_link(b"", snr_db=5.0)


def test_sionna_import_keeps_torch_rng_state():
    # Sionna re-seeds torch's global generator when first imported: check in a fresh process.
    code = (
        "import torch; from gesco.channel.digital import import_sionna\n"
        "torch.manual_seed(3); expected = torch.rand(3)\n"
        "torch.manual_seed(3); import_sionna(); print(torch.equal(torch.rand(3), expected))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True"


def test_bler_waterfall_falls_from_one_to_zero(small_link, generator, tmp_path):
    curve = bler_waterfall(small_link, [-4.0, 1.0, 6.0], blocks=30, generator=generator)
    assert curve.bler[0] >= 0.9 and curve.bler[-1] <= 0.05
    assert curve.bler[0] >= curve.bler[1] >= curve.bler[2]
    path = plot_bler_waterfall(tmp_path / "waterfall.png", [curve])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_docstring_examples_run():
    from gesco.channel.digital import phy, symbol_channel

    for module in (phy, symbol_channel):
        assert doctest.testmod(module, raise_on_error=True).attempted > 0
