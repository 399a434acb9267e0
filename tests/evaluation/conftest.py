"""Every evaluation test runs torch on one thread (the shared ``one_torch_thread`` fixture).

On a 2-core machine shared with other work, torch's two OpenMP threads wait on each other: measured here,
an Inception forward took 0.73 s per image with 2 threads and 0.19 s with 1, and a 2048-d FID 37 s against 3 s.
"""

import pytest
import torch

from gesco.evaluation.segmenter import GescoSegmenter, SegmenterConfig
from gesco.receiver.pipeline import DiffusionReceiver, ReceiverConfig
from gesco.receiver.sampling import SamplerConfig
from gesco.receiver.unet import GescoUNet
from helpers import TINY_UNET


@pytest.fixture(autouse=True)
def evaluation_on_one_thread(one_torch_thread):
    yield


SAMPLER = SamplerConfig(sampler="dpmpp", steps=2, guidance=1.0)


class ChannelStatistics(torch.nn.Module):
    """A cheap stand-in for the Inception file: per-channel mean, max and min of the 299 x 299 input."""

    def forward(self, x):
        return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3)), x.amin(dim=(2, 3))], dim=1)


@pytest.fixture(scope="session")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("assets")
    torch.manual_seed(0)
    config = ReceiverConfig(image_size=(32, 64), sampler=SAMPLER)
    DiffusionReceiver(GescoUNet(TINY_UNET), config).save_pretrained(root / "gesco")
    torch.manual_seed(1)
    DiffusionReceiver(GescoUNet(TINY_UNET), config.replace(training_noise="none")).save_pretrained(root / "sdm")
    GescoSegmenter(SegmenterConfig(widths=(4, 8))).save_pretrained(root / "segmenter")
    torch.jit.script(ChannelStatistics()).save(str(root / "features.pt"))
    return root
