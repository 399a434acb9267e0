import pytest
import torch

from gesco.channel import AWGNChannel, ChannelQuality
from gesco.link import Link
from gesco.receiver.learned_denoiser import LearnedMapDenoiser, MapDenoiserConfig, map_denoiser_loss
from gesco.receiver.receiver import Receiver
from gesco.semantics import SemanticMap, Transmitter


def scene(batch=2):
    labels = torch.full((batch, 16, 32), 23)
    labels[:, 8:] = 7
    labels[:, 10:14, 4:10] = 26
    instances = labels.clone()
    instances[:, 10:14, 4:7] = 26000
    instances[:, 10:14, 7:10] = 26001
    return SemanticMap(labels, "cityscapes", instances)


def test_probabilities_live_on_the_transmitted_channels_only():
    torch.manual_seed(0)
    denoiser = LearnedMapDenoiser(MapDenoiserConfig(hidden_channels=8, dilations=(1, 2)))
    out = Link(receiver=Receiver(None, map_denoiser=denoiser))(
        scene(), ChannelQuality.psnr_label(5), generator=torch.Generator().manual_seed(0)
    )
    probabilities = out.condition
    table = denoiser.table
    sent = out.payload.transmitted
    assert probabilities.shape == (2, 36, 16, 32)
    assert probabilities[~sent].abs().max() == 0
    torch.testing.assert_close(probabilities[:, : table.num_classes].sum(1), torch.ones(2, 16, 32))
    edge = probabilities[:, table.edge_channel]
    assert (edge >= 0).all() and (edge <= 1).all()


def test_a_few_steps_through_the_channel_lower_the_loss():
    torch.manual_seed(0)
    denoiser = LearnedMapDenoiser(MapDenoiserConfig(hidden_channels=16, dilations=(1, 2)))
    optimizer = torch.optim.Adam(denoiser.parameters(), lr=1e-2)
    semantic_map = scene(4)
    payload = Transmitter()(semantic_map)
    sigma = torch.full((4,), 0.6)
    losses = []
    for step in range(30):
        received = AWGNChannel()(
            payload, ChannelQuality.noise_std(sigma.tolist()), generator=torch.Generator().manual_seed(step)
        )
        loss = map_denoiser_loss(
            denoiser,
            received.payload.values,
            payload.transmitted,
            sigma,
            semantic_map.labels,
            semantic_map.edges()[:, 0],
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) < 0.5 * sum(losses[:5])


def test_bad_inputs_are_named():
    denoiser = LearnedMapDenoiser(MapDenoiserConfig(hidden_channels=8, dilations=(1,)))
    with pytest.raises(ValueError, match="expected a"):
        denoiser.logits(torch.zeros(1, 5, 8, 8), torch.ones(1, 5, dtype=torch.bool), torch.zeros(1))
    with pytest.raises(ValueError, match="dilations"):
        MapDenoiserConfig(dilations=())


def test_an_untrained_denoiser_is_fds():
    from gesco.receiver.map_denoisers import fast_denoise

    denoiser = LearnedMapDenoiser(MapDenoiserConfig(hidden_channels=8, dilations=(1,)))
    link = Link(receiver=Receiver(None, map_denoiser=denoiser))
    out = link(scene(), ChannelQuality.psnr_label(1), generator=torch.Generator().manual_seed(0))
    received = out.received.payload
    fds = fast_denoise(received.values, received.transmitted)
    assert torch.equal(out.condition[:, :35].argmax(1), fds[:, :35].argmax(1))
