"""Noise-level conditioning of the receiver and the blind noise estimate."""

import pytest
import torch

from gesco.channel import AWGNChannel, ChannelQuality
from gesco.datasets.synthetic import SyntheticStreets
from gesco.link import Link
from gesco.receiver.noise_level import NoiseConditioned, estimate_sigma
from gesco.receiver.pipeline import DiffusionReceiver, ReceiverConfig
from gesco.receiver.receiver import Receiver
from gesco.receiver.sampling import SamplerConfig
from gesco.receiver.unet import GescoUNet, UNetConfig
from gesco.semantics import SemanticMap, Transmitter
from helpers import TINY_UNET

TINY = TINY_UNET.replace(spade_hidden_channels=8)


def perturbed(config: UNetConfig) -> GescoUNet:
    torch.manual_seed(0)
    model = GescoUNet(config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model


def inputs(batch=2):
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 3, 16, 32, generator=generator)
    y = torch.rand(batch, 36, 16, 32, generator=generator)
    return x, torch.tensor([10, 600][:batch]), y


def test_a_new_noise_embedding_starts_as_the_network_it_extends():
    plain = perturbed(TINY)
    aware = GescoUNet(TINY.replace(noise_conditioning=True)).eval()
    missing = aware.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("noise_embedding.") for k in missing)
    x, t, y = inputs()
    with torch.no_grad():
        assert torch.equal(aware(x, t, y, sigma=torch.tensor([0.0, 0.9])), plain(x, t, y))


def test_the_noise_level_changes_the_prediction_and_is_required():
    model = perturbed(TINY.replace(noise_conditioning=True))
    x, t, y = inputs()
    with torch.no_grad():
        clean = model(x, t, y, sigma=torch.zeros(2))
        noisy = model(x, t, y, sigma=torch.full((2,), 0.6))
        assert not torch.allclose(clean, noisy)
        # per map: map 0's output depends on map 0's sigma only
        mixed = model(x, t, y, sigma=torch.tensor([0.0, 0.6]))
        assert torch.allclose(mixed[0], clean[0], atol=1e-5) and torch.allclose(mixed[1], noisy[1], atol=1e-5)
    with pytest.raises(ValueError, match="pass sigma"):
        model(x, t, y)
    with pytest.raises(ValueError, match="finite"):
        model(x, t, y, sigma=torch.tensor([0.1, float("nan")]))
    with pytest.raises(ValueError, match="not conditioned"):
        perturbed(TINY)(x, t, y, sigma=torch.zeros(2))


def test_guidance_batches_see_the_same_sigma_per_map():
    model = perturbed(TINY.replace(noise_conditioning=True))
    x, t, y = inputs()
    sigma = torch.tensor([0.1, 0.8])
    wrapped = NoiseConditioned(model, sigma)
    with torch.no_grad():
        doubled = wrapped(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, torch.zeros_like(y)]))
        assert torch.allclose(doubled[:2], model(x, t, y, sigma=sigma), atol=1e-5)
        assert torch.allclose(doubled[2:], model(x, t, torch.zeros_like(y), sigma=sigma), atol=1e-5)
    with pytest.raises(ValueError, match="noise levels"):
        wrapped(x[:1], t[:1], y[:1])


def test_the_receiver_hands_sigma_from_the_channel_or_its_blind_estimate():
    model = perturbed(TINY.replace(noise_conditioning=True))
    config = ReceiverConfig(image_size=(16, 32), sampler=SamplerConfig(sampler="ddim", steps=2, guidance=2.0))
    generator = DiffusionReceiver(model, config)
    labels = torch.full((1, 16, 32), 23)
    labels[:, 8:] = 7
    semantic_map = SemanticMap(labels, "cityscapes")
    quality = ChannelQuality.psnr_label(5)
    told = Link(receiver=Receiver(generator))(semantic_map, quality, generator=torch.Generator().manual_seed(0))
    blind = Link(receiver=Receiver(generator, sigma_source="blind"))(
        semantic_map, quality, generator=torch.Generator().manual_seed(0)
    )
    assert told.images.shape == (1, 3, 16, 32) and not torch.equal(told.images, blind.images)
    with pytest.raises(ValueError, match="give sigma"):
        generator(told.condition)
    with pytest.raises(ValueError, match="sigma_source"):
        Receiver(generator, sigma_source="guess")


@pytest.mark.parametrize("psnr", [30, 10, 5, 1])
def test_blind_estimate_tracks_the_true_noise(psnr):
    scene = SyntheticStreets(64, 128).scene(1_000_003)
    payload = Transmitter()(
        SemanticMap(
            torch.from_numpy(scene.labels).long()[None], "cityscapes", torch.from_numpy(scene.instances).long()[None]
        )
    )
    received = AWGNChannel()(payload, ChannelQuality.psnr_label(psnr), generator=torch.Generator().manual_seed(2))
    estimate = float(estimate_sigma(received.payload.values, received.payload.transmitted)[0])
    assert estimate == pytest.approx(float(received.sigma[0]), rel=0.1)


def test_blind_estimate_of_a_clean_map_is_zero():
    labels = torch.full((2, 16, 32), 23)
    labels[:, 8:] = 7
    payload = Transmitter()(SemanticMap(labels, "cityscapes"))
    assert estimate_sigma(payload.values, payload.transmitted).tolist() == [0.0, 0.0]
