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


V2 = dict(hidden_channels=8, dilations=(1, 2, 1), residual=True, skip="received", fds_input=True)


def test_an_untrained_denoiser_with_the_received_skip_is_the_plain_argmax():
    # at initialisation the correction is zero, so the argmax is the received map's: exact on a clean map,
    # where FDS's max filter widens thin classes
    denoiser = LearnedMapDenoiser(MapDenoiserConfig(**V2))
    out = Link(receiver=Receiver(None, map_denoiser=denoiser))(
        scene(), ChannelQuality.psnr_label(100), generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(out.condition[:, :35].argmax(1), scene().labels)


def test_the_residual_stack_and_fds_features_change_the_network():
    torch.manual_seed(0)
    plain = LearnedMapDenoiser(MapDenoiserConfig(hidden_channels=8, dilations=(1, 2, 1), skip="received"))
    torch.manual_seed(0)
    residual = LearnedMapDenoiser(
        MapDenoiserConfig(hidden_channels=8, dilations=(1, 2, 1), skip="received", residual=True)
    )
    features = torch.randn(1, 2 * 36 + 1, 16, 32)
    assert not torch.allclose(plain.hidden(features), residual.hidden(features))
    assert LearnedMapDenoiser(MapDenoiserConfig(**V2)).body[0].in_channels == 3 * 36 + 1


def test_one_hot_output_is_a_clean_looking_map_of_the_transmitted_classes():
    torch.manual_seed(0)
    denoiser = LearnedMapDenoiser(MapDenoiserConfig(**V2, output="one_hot"))
    with torch.no_grad():  # a non-zero correction, so the argmax is not just the received map's
        denoiser.head.weight.normal_(0, 0.5)
    out = Link(receiver=Receiver(None, map_denoiser=denoiser))(
        scene(), ChannelQuality.psnr_label(1), generator=torch.Generator().manual_seed(0)
    )
    condition, sent = out.condition, out.payload.transmitted
    assert set(condition.unique().tolist()) <= {0.0, 1.0}
    assert condition[~sent].abs().max() == 0
    torch.testing.assert_close(condition[:, :35].sum(1), torch.ones(2, 16, 32))
    table = denoiser.table
    probabilities = denoiser.probabilities(out.received.payload.values, sent, out.received.sigma)
    assert torch.equal(condition[:, :35].argmax(1), probabilities[:, :35].argmax(1))
    assert torch.equal(condition[:, table.edge_channel] == 1, probabilities[:, table.edge_channel] > 0.5)


def test_the_dice_term_counts_classes_not_pixels():
    denoiser = LearnedMapDenoiser(MapDenoiserConfig(**V2))
    semantic_map = scene(1)
    payload = Transmitter()(semantic_map)
    labels = semantic_map.labels
    sigma = torch.zeros(1)
    without = map_denoiser_loss(denoiser, payload.values, payload.transmitted, sigma, labels, None)
    with_dice = map_denoiser_loss(denoiser, payload.values, payload.transmitted, sigma, labels, None, dice_weight=1.0)
    assert with_dice > without
    # a map that loses the small class entirely: cross-entropy barely moves, the Dice term jumps by ~1/3
    wrong = payload.values.clone()
    wrong[:, 26], wrong[:, 7] = 0.0, payload.values[:, 7] + payload.values[:, 26]
    ce_gap = map_denoiser_loss(denoiser, wrong, payload.transmitted, sigma, labels, None) - without
    dice_gap = map_denoiser_loss(denoiser, wrong, payload.transmitted, sigma, labels, None, dice_weight=1.0) - with_dice
    assert dice_gap > ce_gap + 0.2


@pytest.mark.parametrize(("field", "value"), [("skip", "mean"), ("output", "logits")])
def test_unknown_skip_or_output_is_refused(field, value):
    with pytest.raises(ValueError, match=field):
        MapDenoiserConfig(**{field: value})


def test_a_learned_denoiser_is_named_by_its_folder(tmp_path):
    from gesco.receiver.map_denoisers import build_map_denoiser
    from gesco.receiver.pipeline import ReceiverConfig

    torch.manual_seed(0)
    denoiser = LearnedMapDenoiser(MapDenoiserConfig(**V2, output="one_hot"))
    folder = denoiser.save_pretrained(tmp_path / "denoiser")
    loaded = build_map_denoiser(str(folder))
    assert isinstance(loaded, LearnedMapDenoiser) and loaded.config == denoiser.config
    assert ReceiverConfig(map_denoiser=str(folder)).map_denoiser == str(folder)
    with pytest.raises(ValueError, match="unknown map denoiser 'nonsense'"):
        build_map_denoiser("nonsense")
    with pytest.raises(ValueError, match="unknown map denoiser"):
        ReceiverConfig(map_denoiser=str(tmp_path / "missing"))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text('{"_class_name": "SegmenterConfig"}')
    with pytest.raises(ValueError, match="not a learned map denoiser"):
        build_map_denoiser(str(tmp_path / "other"))


def test_a_blind_receiver_hands_its_estimate_to_the_map_denoiser():
    from gesco.receiver.noise_level import estimate_sigma

    seen = []

    class Spy(torch.nn.Module):
        def forward(self, received):
            seen.append(received.sigma.clone())
            return received.payload.values

    for source in ("channel", "blind"):
        out = Link(receiver=Receiver(None, map_denoiser=Spy(), sigma_source=source))(
            scene(), ChannelQuality.psnr_label(5), generator=torch.Generator().manual_seed(0)
        )
    received = out.received
    torch.testing.assert_close(seen[0], received.sigma)
    torch.testing.assert_close(seen[1], estimate_sigma(received.payload.values, received.payload.transmitted))
    assert not torch.allclose(seen[0], seen[1])
