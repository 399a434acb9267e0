import pytest
import torch

from gesco.receiver.unet import GescoUNet
from gesco.training.trainer import load_initial_weights
from helpers import TINY_UNET

TINY = TINY_UNET.replace(spade_hidden_channels=8)


def test_fine_tuning_starts_from_the_source_network_with_only_the_noise_embedding_new(tmp_path):
    torch.manual_seed(0)
    source = GescoUNet(TINY).eval()
    with torch.no_grad():
        for parameter in source.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    source.save_pretrained(tmp_path / "unet")
    aware = GescoUNet(TINY.replace(noise_conditioning=True)).eval()
    load_initial_weights(aware, tmp_path)  # a receiver-style folder: weights under unet/
    x, t, y = torch.randn(1, 3, 16, 32), torch.tensor([300]), torch.rand(1, 36, 16, 32)
    with torch.no_grad():
        assert torch.equal(aware(x, t, y, sigma=torch.tensor([0.5])), source(x, t, y))


def test_weights_of_another_network_are_refused(tmp_path):
    GescoUNet(TINY.replace(channel_mult=(1, 1))).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="shapes differ|does not fit"):
        load_initial_weights(GescoUNet(TINY), tmp_path)
    with pytest.raises(FileNotFoundError, match="init_weights"):
        load_initial_weights(GescoUNet(TINY), tmp_path / "missing")
