import doctest

import pytest
import torch

import gesco.channel.awgn
import gesco.link
import gesco.semantics.transmitter
from gesco.channel import RayleighBlockFading
from gesco.link import Link
from gesco.receiver.fds import fast_denoise
from gesco.receiver.receiver import Receiver
from gesco.semantics import SemanticMap


def scene(batch=2):
    labels = torch.full((batch, 8, 16), 23)
    labels[:, 4:] = 7
    labels[:, 5:7, 3:6] = 26
    return SemanticMap(labels, "cityscapes")


class MeanColour:
    """A stand-in image generator: paints each pixel by its strongest channel."""

    def __call__(self, condition, *, generator=None):
        return (condition[:, :35].argmax(1, keepdim=True).float() / 17 - 1).expand(-1, 3, -1, -1)


def test_docstring_examples_run():
    for module in (gesco.link, gesco.channel.awgn, gesco.semantics.transmitter):
        failed, attempted = doctest.testmod(module)
        assert attempted > 0 and failed == 0


def test_link_composes_the_blocks(generator):
    link = Link(receiver=Receiver(MeanColour()))
    out = link(scene(), psnr=5, generator=generator)
    assert out.images.shape == (2, 3, 8, 16)
    assert torch.equal(out.output.condition, fast_denoise(out.received.payload.values, out.payload.transmitted))
    assert out.received.sigma.tolist() == [0.6000000238418579] * 2


def test_receiver_without_fds_passes_the_received_map(generator):
    out = Link(receiver=Receiver(use_fds=False))(scene(), sigma=0.3, generator=generator)
    assert torch.equal(out.output.condition, out.received.payload.values)


def test_channel_block_is_swappable(generator):
    out = Link(channel=RayleighBlockFading(block_length=8))(scene(), snr_db=30.0, generator=generator)
    assert out.output.condition.shape == (2, 36, 8, 16)
    assert out.received.sigma[0].item() > 0


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
