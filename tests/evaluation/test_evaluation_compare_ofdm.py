"""gesco compare over OFDM: one OFDM link carries every method's symbols (tiny models, no sampling)."""

import numpy as np
import pytest
import torch

from gesco.baselines.deep_jscc import DeepJSCC, DeepJSCCConfig
from gesco.channel.digital.config import DigitalConfig
from gesco.channel.ofdm import OfdmConfig
from gesco.datasets import SyntheticStreetsDataset
from gesco.evaluation.compare import Comparison
from gesco.receiver.pipeline import DiffusionReceiver

pytest.importorskip("sionna")


def comparison(assets, channel: str, ofdm: OfdmConfig | None = None) -> Comparison:
    receiver = DiffusionReceiver.from_pretrained(assets / "gesco")
    torch.manual_seed(2)
    deep_jscc = DeepJSCC(DeepJSCCConfig(image_size=(32, 64), hidden_channels=(4, 4, 4, 4)))
    dataset = SyntheticStreetsDataset(1, 1_000_000, height=32, width=64)
    return Comparison(
        receiver,
        deep_jscc,
        dataset,
        count=1,
        channel=channel,
        digital=DigitalConfig(block_bits=512),
        sampler=receiver.config.sampler,
        ofdm=ofdm,
    )


def test_every_method_crosses_the_one_ofdm_link(assets):
    from gesco.channel.ofdm.link import OfdmChannel

    ofdm = OfdmConfig(model="tdl-a", speed_kmh=120.0)
    compared = comparison(assets, "ofdm", ofdm)
    link = compared.symbol_channel
    assert isinstance(link, OfdmChannel) and link.config == ofdm
    assert compared.analog_link.channel.config == ofdm and compared._link(compared.digital).channel is link
    budget = compared.budget
    # far above every cliff: the digital methods deliver everything within the budget, Deep JSCC spends it
    _, uses, delivered, _ = compared._classical(0, 40.0)
    assert delivered == 1.0 and 0 < uses <= budget
    _, uses, known, _ = compared._gesco_digital(0, 40.0)
    assert known == 1.0 and 0 < uses <= budget
    _, uses, _, _ = compared._deep_jscc(0, 40.0)
    assert uses == budget
    _, _, _, sigma = compared._gesco_analog(0, 40.0)
    assert 0 < sigma < 0.01


def test_deep_jscc_sees_the_ofdm_channel_not_awgn(assets):
    over_awgn = comparison(assets, "awgn")._deep_jscc(0, 5.0)[0]
    over_ofdm = comparison(assets, "ofdm", OfdmConfig(model="tdl-c"))._deep_jscc(0, 5.0)[0]
    assert not np.array_equal(over_awgn, over_ofdm)


def test_ofdm_settings_need_the_ofdm_channel(assets):
    with pytest.raises(ValueError, match="OFDM settings were given for channel='rayleigh'"):
        comparison(assets, "rayleigh", OfdmConfig())
    with pytest.raises(ValueError, match="'awgn', 'rayleigh' or 'ofdm', got 'tdl-a'"):
        comparison(assets, "tdl-a")


def test_reports_name_the_ofdm_link():
    from gesco.evaluation.compare import CompareResult
    from gesco.evaluation.compare_report import channel_title

    label = OfdmConfig(speed_kmh=120.0).describe()
    over_ofdm = CompareResult(["deep-jscc"], [0.0], "ofdm", 1, 6.0, [], None, (), {"ofdm": {"label": label}})
    assert channel_title(over_ofdm) == "OFDM TDL-A 100 ns 120 km/h, LS CSI (lin)"
    assert channel_title(CompareResult(["deep-jscc"], [0.0], "awgn", 1, 6.0, [], None, (), {"ofdm": None})) == "AWGN"
