"""The OFDM link on Sionna: its accounting, its physics against AWGN and theory, estimated vs perfect CSI, speed."""

import importlib.util
import math

import numpy as np
import pytest
import torch

from gesco.channel.ofdm import OFDM_MODELS, OfdmConfig
from gesco.channel.ofdm.official import qpsk_hard_bits, qpsk_modulate
from gesco.config import ConfigError

HAS_SIONNA = importlib.util.find_spec("sionna") is not None
needs_sionna = pytest.mark.skipif(not HAS_SIONNA, reason="the OFDM link needs the 'digital' extra (Sionna)")
#: One torch thread: on this shared 2-core machine two OpenMP threads wait on each other.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


class TestOfdmConfig:
    def test_slot_geometry_and_overhead(self):
        config = OfdmConfig(fft_size=12, ofdm_symbols=14, pilot_symbols=(2, 11), cyclic_prefix=1)
        assert config.data_symbols_per_slot == 12 * 12
        overhead = config.overhead_for(150)
        assert (overhead.slots, overhead.pilots, overhead.cyclic_prefix, overhead.padding) == (2, 48, 28, 138)
        mimo = OfdmConfig(fft_size=12, antennas=2, cyclic_prefix=1)
        assert mimo.data_symbols_per_slot == 2 * 12 * 12 and mimo.overhead_for(1).pilots == 2 * 2 * 12

    def test_round_trip_and_labels(self):
        config = OfdmConfig(model="cdl-c", speed_kmh=120.0, csi="perfect")
        assert OfdmConfig.from_dict(config.to_dict()) == config
        assert config.describe() == "CDL-C 100 ns 120 km/h, perfect CSI"
        assert OfdmConfig(model="awgn").describe() == "OFDM AWGN, LS CSI (lin)"
        assert (OfdmConfig(model="tdl-e").family, OfdmConfig(model="tdl-e").profile) == ("tdl", "E")

    @pytest.mark.parametrize(
        "options, match",
        [
            ({"model": "tdl-z"}, "not an OFDM channel model"),
            ({"antennas": 4}, "antennas=4"),
            ({"csi": "mmse"}, "csi='mmse'"),
            ({"speed_kmh": -3.0}, "speed_kmh=-3.0"),
            ({"delay_spread_ns": 0.0}, "delay_spread_ns=0.0"),
            ({"pilot_symbols": (2, 14)}, r"pilot_symbols=\(2, 14\)"),
            ({"pilot_symbols": ()}, "LS channel estimation needs pilots"),
            ({"fft_size": 71, "antennas": 2}, "fft_size=71"),
        ],
    )
    def test_wrong_values_are_named(self, options, match):
        with pytest.raises(ValueError, match=match):
            OfdmConfig(**options)

    def test_from_dict_checks_literals(self):
        with pytest.raises(ConfigError, match="equalizer"):
            OfdmConfig.from_dict({"equalizer": "mmse"})

    def test_every_model_is_a_3gpp_profile_or_flat(self):
        assert set(OFDM_MODELS) == {"awgn"} | {f"{f}-{p}" for f in ("tdl", "cdl") for p in "abcde"}


@pytest.fixture(scope="module")
def qpsk():
    """Eight slots of random Gray QPSK: (bits (2 S,), symbols complex (1, S))."""
    bits = torch.randint(
        0, 2, (2 * 8 * OfdmConfig().data_symbols_per_slot,), generator=torch.Generator().manual_seed(1)
    )
    return bits.to(torch.uint8), qpsk_modulate(bits.to(torch.uint8))[None]


def send(config: OfdmConfig, symbols: torch.Tensor, esn0_db: float, seed: int = 0):
    from gesco.channel.ofdm.link import OfdmChannel

    return OfdmChannel(config)(symbols, n0=10 ** (-esn0_db / 10), generator=torch.Generator().manual_seed(seed))


def bit_error_rate(bits: torch.Tensor, out) -> float:
    return float((qpsk_hard_bits(out.symbols[0]) != bits).double().mean())


@needs_sionna
class TestOfdmPhysics:
    @pytest.mark.parametrize("antennas", [1, 2])
    def test_flat_channel_with_perfect_csi_is_awgn(self, qpsk, antennas):
        from gesco.channel.digital.theory import gray_qam_ber_awgn

        bits, symbols = qpsk
        out = send(OfdmConfig(model="awgn", csi="perfect", antennas=antennas), symbols, 4.0)
        n0 = 10 ** (-0.4)
        # ~117k symbols: the error's variance within 2 %, the reported noise exact, the BER within 5 % of Q(.)
        assert float((out.symbols - symbols).abs().square().mean()) == pytest.approx(n0, rel=0.02)
        torch.testing.assert_close(out.n0, torch.full_like(out.n0, n0), rtol=1e-4, atol=0)
        assert bit_error_rate(bits, out) == pytest.approx(gray_qam_ber_awgn(4.0 - 10 * math.log10(2), 2), rel=0.05)

    def test_ls_estimates_cost_against_perfect_csi(self, qpsk):
        bits, symbols = qpsk
        # Same seed, so the same fading and noise: only the receiver's knowledge of H differs.
        perfect = send(OfdmConfig(csi="perfect"), symbols, 10.0)
        estimated = send(OfdmConfig(csi="ls"), symbols, 10.0)
        assert bit_error_rate(bits, estimated) > 1.3 * bit_error_rate(bits, perfect)
        # LS on single pilots: its error adds about N0 to the post-equalisation noise the demapper is told.
        assert float(estimated.n0.median()) > 1.5 * float(perfect.n0.median())

    def test_speed_hurts_only_through_the_estimates(self, qpsk):
        _, symbols = qpsk

        def median_error(speed_kmh: float, csi: str) -> float:
            out = send(OfdmConfig(speed_kmh=speed_kmh, csi=csi), symbols, 30.0)
            return float((out.symbols - symbols).abs().square().median())

        # At 30 dB the interpolation between the two pilot symbols dominates: Doppler at 120 km/h (389 Hz at
        # 3.5 GHz) bends H within the slot, which linear interpolation follows only in part.
        assert median_error(120.0, "ls") > 1.5 * median_error(3.0, "ls")
        assert median_error(120.0, "perfect") < 1.2 * median_error(3.0, "perfect")

    def test_fading_comes_from_the_callers_generator(self, qpsk):
        from gesco.channel.digital.sionna_import import import_sionna

        _, symbols = qpsk
        state = import_sionna().config.torch_rng("cpu").get_state()
        first, again, other = (send(OfdmConfig(model="cdl-a"), symbols[:, :5000], 10.0, s) for s in (0, 0, 1))
        assert torch.equal(first.symbols, again.symbols) and not torch.equal(first.symbols, other.symbols)
        assert torch.equal(import_sionna().config.torch_rng("cpu").get_state(), state)

    def test_noiseless_perfect_csi_inverts_every_model(self, qpsk):
        _, symbols = qpsk
        for model in ("tdl-c", "cdl-b"):
            for antennas in (1, 2):
                out = send(OfdmConfig(model=model, csi="perfect", antennas=antennas), symbols[:, :3000], math.inf)
                torch.testing.assert_close(out.symbols, symbols[:, :3000], atol=2e-3, rtol=0)

    def test_bad_calls_are_typed_errors(self):
        from gesco.channel.ofdm.link import OfdmChannel

        channel = OfdmChannel(OfdmConfig(model="awgn"))
        with pytest.raises(ValueError, match="complex"):
            channel(torch.ones(1, 4), n0=0.1)
        with pytest.raises(ValueError, match="n0=-1"):
            channel(torch.ones(1, 4, dtype=torch.complex64), n0=-1.0)


def crossing_db(esn0_db: np.ndarray, bler: np.ndarray, level: float = 0.5) -> float:
    """Es/N0 where the falling BLER curve crosses ``level`` (linear interpolation)."""
    above = np.nonzero(bler >= level)[0].max()
    x0, x1, y0, y1 = esn0_db[above], esn0_db[above + 1], bler[above], bler[above + 1]
    return float(x0 + (y0 - level) * (x1 - x0) / (y0 - y1))


@needs_sionna
def test_flat_perfect_csi_waterfall_matches_awgn(one_torch_thread):
    """The coded link over flat OFDM with perfect CSI is the AWGN link: BLER 50 % within 0.3 dB."""
    from gesco.channel.digital.config import DigitalConfig
    from gesco.channel.digital.phy import DigitalLink
    from gesco.channel.digital.waterfall import bler_waterfall
    from gesco.channel.ofdm.link import OfdmChannel

    config = DigitalConfig(block_bits=256)
    snrs = np.arange(-0.5, 2.51, 0.5)
    awgn = bler_waterfall(DigitalLink(config), snrs, blocks=100, generator=torch.Generator().manual_seed(0))
    flat = OfdmChannel(OfdmConfig(model="awgn", csi="perfect"))
    ofdm = bler_waterfall(
        DigitalLink(config, channel=flat), snrs, blocks=100, generator=torch.Generator().manual_seed(1)
    )
    assert awgn.bler[0] > 0.5 > awgn.bler[-1] and ofdm.bler[0] > 0.5 > ofdm.bler[-1]
    assert crossing_db(ofdm.esn0_db, ofdm.bler) == pytest.approx(crossing_db(awgn.esn0_db, awgn.bler), abs=0.3)


@needs_sionna
def test_docstring_examples_run():
    import doctest

    from gesco.channel.ofdm import link, map_channels, official

    for module in (link, map_channels, official):
        failed, attempted = doctest.testmod(module)
        assert attempted > 0 and failed == 0


def test_esn0_at_a_bler_is_interpolated_in_log_bler():
    from gesco.channel.digital.config import DigitalConfig
    from gesco.channel.digital.waterfall import BlerCurve

    curve = BlerCurve(DigitalConfig(), np.array([0.0, 2.0, 4.0, 6.0]), np.array([1.0, 0.5, 0.05, 0.0]), 100)
    # log10(0.1) lies 0.301 / 1.0 of the way from log10(0.5) down to log10(0.05)
    assert curve.esn0_db_at(0.1) == pytest.approx(2.0 + 2.0 * math.log10(5) / 1.0)
    assert curve.esn0_db_at(0.01) == 6.0  # the first zero count
    assert (
        curve.esn0_db_at(1e-4) == 6.0
        and BlerCurve(curve.config, curve.esn0_db[:2], curve.bler[:2], 100).esn0_db_at(0.1) is None
    )
    with pytest.raises(ValueError, match="bler=1.5"):
        curve.esn0_db_at(1.5)
