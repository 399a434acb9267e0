import doctest

import pytest
import torch

import gesco.channel.awgn
import gesco.link
import gesco.semantics.transmitter
from gesco.channel import AWGNChannel, ChannelQuality, RayleighBlockFading, UnitPowerAnalogChannel
from gesco.link import Link
from gesco.receiver.map_denoisers import fast_denoise
from gesco.receiver.receiver import Receiver
from gesco.semantics import SemanticMap


def scene(batch=2):
    labels = torch.full((batch, 8, 16), 23)
    labels[:, 4:] = 7
    labels[:, 5:7, 3:6] = 26
    return SemanticMap(labels, "cityscapes")


class MeanColour:
    """A stand-in image generator: paints each pixel by its strongest channel."""

    def __init__(self):
        self.calls = []

    def __call__(self, condition, *, generator=None, x_T=None, sampler=None, sigma=None, progress=False):
        self.calls.append({"x_T": x_T, "sampler": sampler, "generator": generator})
        return (condition[:, :35].argmax(1, keepdim=True).float() / 17 - 1).expand(-1, 3, -1, -1)


def test_docstring_examples_run():
    for module in (gesco.link, gesco.channel.awgn, gesco.semantics.transmitter):
        failed, attempted = doctest.testmod(module)
        assert attempted > 0 and failed == 0


def test_link_composes_the_blocks(generator):
    painter = MeanColour()
    link = Link(receiver=Receiver(painter))
    out = link(scene(), ChannelQuality.psnr_label(5), generator=generator, sampler="a sampler", x_T="noise")
    assert out.images.shape == (2, 3, 8, 16)
    assert torch.equal(out.condition, fast_denoise(out.received.payload.values, out.payload.transmitted))
    assert out.received.sigma.tolist() == [0.6000000238418579] * 2
    # the per-call sampler and x_T reach the image generator, with the link's generator
    assert painter.calls == [{"x_T": "noise", "sampler": "a sampler", "generator": generator}]


def test_receiver_without_fds_passes_the_received_map(generator):
    out = Link(receiver=Receiver(map_denoiser="none"))(scene(), ChannelQuality.noise_std(0.3), generator=generator)
    assert torch.equal(out.condition, out.received.payload.values)


class Halve(torch.nn.Module):
    """A custom map denoiser: any module received -> condition fits the slot."""

    def forward(self, received):
        return received.payload.values / 2


def test_any_module_fits_the_map_denoiser_slot(generator):
    out = Link(receiver=Receiver(map_denoiser=Halve()))(scene(), ChannelQuality.noise_std(0.0), generator=generator)
    assert torch.equal(out.condition, out.payload.values / 2)
    with pytest.raises(ValueError, match="fds"):
        Receiver(map_denoiser="median")


@pytest.mark.parametrize(
    "channel, quality",
    [
        (RayleighBlockFading(coherence_symbols=8), ChannelQuality.peak_snr_db(30.0)),
        (UnitPowerAnalogChannel(fading="rayleigh"), ChannelQuality.esn0_db(10.0)),
    ],
)
def test_channel_block_is_swappable(channel, quality, generator):
    out = Link(channel=channel)(scene(), quality, generator=generator)
    assert out.condition.shape == (2, 36, 8, 16)
    assert out.received.sigma[0].item() > 0


def test_link_takes_only_channels_and_semantic_maps():
    with pytest.raises(TypeError, match="Channel"):
        Link(channel=torch.nn.Identity())
    with pytest.raises(TypeError, match="SemanticMap"):
        Link()(torch.zeros(1, 8, 16), ChannelQuality.psnr_label(10))


def test_one_seed_drives_the_whole_link_and_per_map_generators_give_common_random_numbers():
    painter = MeanColour()
    link = Link(channel=AWGNChannel(), receiver=Receiver(painter))
    first = link(scene(), ChannelQuality.psnr_label(10), generator=torch.Generator().manual_seed(1))
    again = link(scene(), ChannelQuality.psnr_label(10), generator=torch.Generator().manual_seed(1))
    assert torch.equal(first.condition, again.condition)
    assert painter.calls[0]["generator"] is not None
    per_map = link(scene(), ChannelQuality.psnr_label(10), generator=[torch.Generator().manual_seed(s) for s in (1, 2)])
    assert painter.calls[-1]["generator"] is None  # a list of channel generators: the sampler uses the global one
    assert not torch.equal(per_map.condition[0], per_map.condition[1])


def test_readme_link_example_runs_with_the_shipped_receiver(one_torch_thread):
    """The README's first Python block, run as written."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    out = namespace["out"]
    assert out.images.shape == (1, 3, 64, 128) and out.images.abs().max() <= 1
    assert float(out.received.sigma[0]) == pytest.approx(0.36)
