"""Digital link pieces that need no Sionna: geometry, SNR conventions, theory, the symbol channel, lazy import."""

import math
import subprocess
import sys

import pytest
import torch
from scipy.stats import norm

from gesco.channel.digital import (
    DigitalConfig,
    SymbolChannel,
    ebn0_db_to_esn0_db,
    esn0_db_to_n0,
    gray_qam_ber_awgn,
    import_sionna,
    qpsk_ber_rayleigh,
)


def test_block_geometry_by_hand():
    # k = 1024 with CRC24A: 1000 message bits; rate 1/2 QPSK: n = 2048 bits = 1024 symbols.
    config = DigitalConfig(modulation="qpsk", code_rate=0.5, block_bits=1024, crc="CRC24A")
    assert (config.payload_bits_per_block, config.coded_bits_per_block, config.symbols_per_block) == (1000, 2048, 1024)
    assert config.blocks_for(1000) == 1 and config.blocks_for(1001) == 2
    assert config.channel_uses_for(2500) == 3 * 1024
    assert config.message_bits_within(3 * 1024 - 1) == 2000
    # 16-QAM rate 3/4, k = 100 with CRC16: n = ceil(100 / 0.75 / 4) * 4 = 136 bits = 34 symbols.
    config = DigitalConfig(modulation="16qam", code_rate=0.75, block_bits=100, crc="CRC16")
    assert (config.payload_bits_per_block, config.coded_bits_per_block, config.symbols_per_block) == (84, 136, 34)
    assert config.actual_code_rate == pytest.approx(100 / 136)
    assert config.payload_bits_per_channel_use == pytest.approx(84 / 34)


def test_ebn0_refers_to_message_bits():
    config = DigitalConfig(modulation="qpsk", code_rate=0.5, block_bits=1024)
    # 1000 message bits in 1024 symbols: Es/N0 = Eb/N0 + 10 log10(1000 / 1024).
    assert config.esn0_db(3.0) == pytest.approx(3.0 + 10 * math.log10(1000 / 1024))
    assert ebn0_db_to_esn0_db(0.0, bits_per_symbol=4, code_rate=0.5) == pytest.approx(10 * math.log10(2))
    assert esn0_db_to_n0(10.0) == pytest.approx(0.1)
    assert esn0_db_to_n0(math.inf) == 0.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("modulation", "8psk"),
        ("code_rate", 0.1),
        ("code_rate", 0.99),
        ("block_bits", 9000),
        ("block_bits", 20),
        ("crc", "CRC32"),
        ("decoder_iterations", 0),
        ("fading", "rician"),
        ("coherence_symbols", 0),
    ],
)
def test_bad_settings_name_the_value(field, value):
    with pytest.raises((ValueError, TypeError), match=field):
        DigitalConfig(**{field: value})


def test_config_round_trips_through_json(tmp_path):
    config = DigitalConfig(modulation="64qam", code_rate=2 / 3, fading="rayleigh", coherence_symbols=12)
    assert DigitalConfig.load(config.save(tmp_path)) == config


def test_theory_matches_hand_formulas():
    q = norm.sf
    for ebn0_db in (0.0, 6.8, 10.0):
        ebn0 = 10 ** (ebn0_db / 10)
        assert gray_qam_ber_awgn(ebn0_db, 2) == pytest.approx(q(math.sqrt(2 * ebn0)), rel=1e-9)
        # Gray 4-PAM per dimension, levels +-d, +-3d, Eb = 2.5 d^2: a = d / sigma = sqrt(0.8 Eb/N0).
        a = math.sqrt(0.8 * ebn0)
        assert gray_qam_ber_awgn(ebn0_db, 4) == pytest.approx((3 * q(a) + 2 * q(3 * a) - q(5 * a)) / 4, rel=1e-9)
    assert qpsk_ber_rayleigh(10.0) == pytest.approx(0.5 * (1 - math.sqrt(10 / 11)))
    with pytest.raises(ValueError, match="even"):
        gray_qam_ber_awgn(5.0, 3)


def test_awgn_noise_has_the_requested_variance(generator):
    x = torch.zeros(4, 50_000, dtype=torch.complex64)
    out = SymbolChannel()(x, n0=0.5, generator=generator)
    # 200k complex samples: the sample variance is within 2% of N0 (its std is 0.2%).
    assert out.symbols.abs().square().mean().item() == pytest.approx(0.5, rel=0.02)
    assert out.symbols.real.var().item() == pytest.approx(0.25, rel=0.02)
    assert torch.all(out.n0 == 0.5)


def test_rayleigh_equalisation_scales_noise_by_the_gain(generator):
    x = torch.ones(2, 12, dtype=torch.complex64)
    channel = SymbolChannel(fading="rayleigh", coherence_symbols=4)
    clean = channel(x, n0=0.0, generator=generator)
    assert torch.allclose(clean.symbols, x) and clean.n0.max() == 0
    # n0 / |h|^2 is constant over each 4-symbol fading block and differs between blocks.
    noisy = channel(x, n0=1.0, generator=generator)
    per_block = noisy.n0.reshape(2, 3, 4)
    assert torch.allclose(per_block, per_block[..., :1].expand_as(per_block))
    assert per_block[..., 0].unique().numel() == 6
    # E|h|^2 = 1: the mean of |h|^2 = 1 / n0_eff over many blocks is 1.
    many = channel(torch.ones(1, 400_000, dtype=torch.complex64), n0=1.0, generator=generator)
    assert (1 / many.n0).mean().item() == pytest.approx(1.0, rel=0.03)


def test_symbol_channel_rejects_bad_input(generator):
    with pytest.raises(ValueError, match="complex"):
        SymbolChannel()(torch.zeros(2, 3), n0=1.0, generator=generator)
    with pytest.raises(ValueError, match="n0"):
        SymbolChannel()(torch.zeros(2, 3, dtype=torch.complex64), n0=-1.0, generator=generator)
    with pytest.raises(ValueError, match="fading"):
        SymbolChannel(fading="rician")


def test_importing_gesco_does_not_import_sionna():
    code = "import sys, gesco, gesco.channel.digital, gesco.baselines; print('sionna' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_missing_sionna_says_how_to_install(monkeypatch):
    for name in [n for n in sys.modules if n == "sionna" or n.startswith("sionna.")] + ["sionna", "sionna.phy"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"gesco\[digital\]"):
        import_sionna()
