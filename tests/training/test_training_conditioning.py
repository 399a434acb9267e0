import pytest
import torch

from gesco.channel import AWGNChannel, ChannelQuality
from gesco.receiver.map_denoisers import fast_denoise
from gesco.semantics import SemanticMap, Transmitter
from gesco.training.conditioning import noisy_condition


def road_and_sky(batch=4, height=16, width=16) -> SemanticMap:
    labels = torch.full((batch, height, width), 23)  # sky
    labels[:, height // 2 :] = 7  # road
    return SemanticMap(labels, "cityscapes")  # no instances: the edge map is all zero


def test_paper_noise_is_one_map_shared_by_all_channels(generator):
    semantic_map = road_and_sky()
    noisy, sigma = noisy_condition(semantic_map, mode="paper", sigmas=[0.5], generator=generator)
    noise = noisy - semantic_map.one_hot()
    assert torch.all(sigma == 0.5)
    # every channel, present or absent, got the same per-pixel value
    assert torch.allclose(noise, noise[:, :1].expand_as(noise), atol=1e-6)
    assert noise.std().item() == pytest.approx(0.5, rel=0.1)


def test_paper_sigma_is_drawn_per_batch(generator):
    sigmas = set()
    for _ in range(30):
        _, sigma = noisy_condition(road_and_sky(), mode="paper", sigmas=[0.1, 0.2, 0.3], generator=generator)
        assert sigma.unique().numel() == 1
        sigmas.add(round(sigma[0].item(), 3))
    assert sigmas == {0.1, 0.2, 0.3}


def test_channel_mode_is_the_test_time_link_edge_channel_included(generator):
    semantic_map = road_and_sky()
    edge = semantic_map.table.edge_channel
    noisy, sigma = noisy_condition(semantic_map, mode="channel", sigmas=[0.3, 0.6], generator=generator)
    sent = [7, 23, edge]
    absent = [c for c in range(semantic_map.table.num_channels) if c not in sent]
    assert noisy[:, absent].abs().max() == 0
    # the transmitter always sends the edge channel, so training sees its noise even where the map has no edge
    assert noisy[:, edge].abs().sum() > 0
    assert {round(s, 4) for s in sigma.tolist()} <= {0.3, 0.6} and sigma.unique().numel() == 2

    # bit for bit what the transmitter, AWGN channel and FDS make at test time with the same draws
    replay = torch.Generator().manual_seed(0)
    again, sigma_again = noisy_condition(semantic_map, mode="channel", sigmas=[0.3, 0.6], generator=replay)
    replay = torch.Generator().manual_seed(0)
    drawn = sigma_again.clone()
    torch.randint(2, (semantic_map.batch_size,), generator=replay)  # the sigma draw
    received = AWGNChannel()(Transmitter()(semantic_map), ChannelQuality.noise_std(drawn.tolist()), generator=replay)
    assert torch.equal(again, fast_denoise(received.payload.values, received.payload.transmitted))


def test_no_noise_mode_is_the_clean_map(generator):
    semantic_map = road_and_sky()
    noisy, sigma = noisy_condition(semantic_map, mode="none", sigmas=[0.3], generator=generator)
    assert torch.equal(noisy, semantic_map.one_hot()) and torch.all(sigma == 0)
    with pytest.raises(ValueError, match="noise mode"):
        noisy_condition(semantic_map, mode="loud", sigmas=[0.3], generator=generator)
