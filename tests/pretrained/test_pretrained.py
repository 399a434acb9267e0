"""The shipped models: found by name, stored small, loaded as float32, and doing their job on held-out scenes."""

import json

import pytest
import torch
from safetensors import safe_open

import gesco.pretrained as pretrained
from gesco.baselines.deep_jscc import DeepJSCC
from gesco.constants import EVALUATION_SEED_OFFSET
from gesco.datasets.base import collate
from gesco.datasets.synthetic import SyntheticStreetsDataset
from gesco.evaluation.metrics import EvaluationClasses, SegmentationConfusion
from gesco.evaluation.segmenter import GescoSegmenter
from gesco.evaluation.sweep import conditioning_maps
from gesco.receiver.pipeline import DiffusionReceiver
from gesco.receiver.sampling import SamplerConfig

SHIPPED = (pretrained.GESCO_RECEIVER, pretrained.SDM_RECEIVER, pretrained.SEGMENTER, pretrained.DEEP_JSCC)
MAX_SHIPPED_BYTES = 50 * 2**20


@pytest.fixture(autouse=True)
def on_one_thread(one_torch_thread):
    yield


@pytest.fixture(scope="module")
def held_out():
    dataset = SyntheticStreetsDataset(4, EVALUATION_SEED_OFFSET + 500)
    return collate([dataset[i] for i in range(len(dataset))])


def miou(predicted, labels, table) -> float:
    confusion = SegmentationConfusion(EvaluationClasses.from_table(table))
    confusion.update(predicted, labels)
    return confusion.compute().miou


def check_adapted(shipped: str, adapted: str) -> None:
    """An adapted model: of the shipped one's kind, trained with half its images regenerations of training scenes
    (its card names the evaluation seeds it stayed clear of), and holding other weights than the shipped one."""
    info = pretrained.info(adapted)
    assert info.kind == pretrained.info(shipped).kind and "1,000,000" in info.card
    training = json.loads((info.path / "training-config.json").read_text())
    assert training["regenerated"] and training["regenerated_share"] == 0.5
    assert 0 <= training["data"]["seed_offset"] < EVALUATION_SEED_OFFSET
    first, second = pretrained.load(shipped).state_dict(), pretrained.load(adapted).state_dict()
    assert first.keys() == second.keys()
    assert any(not torch.equal(first[key], second[key]) for key in first if first[key].is_floating_point())


def test_every_shipped_model_is_listed_with_a_card():
    assert set(SHIPPED) <= set(pretrained.available())
    for name in SHIPPED:
        card = pretrained.info(name).card
        assert card.startswith("# ") and "mIoU" in card and "seed" in card


def test_shipped_weights_are_float16_and_small():
    total = 0
    for name in SHIPPED:
        files = list(pretrained.info(name).path.rglob("*.safetensors"))
        assert files, name
        for path in files:
            total += path.stat().st_size
            with safe_open(str(path), framework="pt") as weights:
                dtypes = {weights.get_slice(key).get_dtype() for key in weights.keys()}
            # Floating tensors in half precision; integer buffers (batch-norm counters) stay as they are.
            assert "F16" in dtypes and not dtypes & {"F32", "F64", "BF16"}, (path, dtypes)
    assert total <= MAX_SHIPPED_BYTES


def test_receivers_load_as_float32_and_differ_only_by_training_noise_and_map_denoiser():
    gesco, sdm = pretrained.load(pretrained.GESCO_RECEIVER), pretrained.load(pretrained.SDM_RECEIVER)
    assert isinstance(gesco, DiffusionReceiver) and isinstance(sdm, DiffusionReceiver)
    assert gesco.config.training_noise == "channel" and sdm.config.training_noise == "none"
    assert gesco.unet.config == sdm.unet.config
    # the SDM-style receiver is fed the received map as it is, as in the paper's comparison
    assert gesco.config.map_denoiser == "fds" and sdm.config.map_denoiser == "none"
    assert gesco.config.replace(training_noise="none", map_denoiser="none") == sdm.config
    assert all(p.dtype == torch.float32 for p in gesco.unet.parameters())
    first = next(iter(gesco.unet.state_dict()))
    assert not torch.equal(gesco.unet.state_dict()[first], sdm.unet.state_dict()[first])


def test_unknown_names_are_clear_errors(tmp_path):
    with pytest.raises(KeyError, match="no shipped model named 'nope'.*synthetic-streets-64x128"):
        pretrained.info("nope")
    with pytest.raises(KeyError):
        pretrained.info("..")
    with pytest.raises(FileNotFoundError, match="neither an existing path nor a shipped model"):
        pretrained.resolve("nope")
    assert pretrained.resolve(tmp_path) == tmp_path
    assert pretrained.resolve(pretrained.SEGMENTER) == pretrained.info(pretrained.SEGMENTER).path


def test_a_folder_that_is_not_a_model_is_not_listed(monkeypatch, tmp_path):
    (tmp_path / "half-copied").mkdir()
    (tmp_path / "half-copied" / "config.json").write_text(json.dumps({"_class_name": "UNetConfig"}))
    monkeypatch.setattr(pretrained, "ROOT", tmp_path)
    assert pretrained.available() == []


def test_shipped_segmenter_reads_held_out_scenes(held_out):
    segmenter = pretrained.load(pretrained.SEGMENTER)
    assert isinstance(segmenter, GescoSegmenter)
    with torch.no_grad():
        score = miou(segmenter.predict(held_out.image), held_out.labels, segmenter.table)
    assert score >= 0.85


def test_shipped_gesco_receiver_regenerates_what_the_segmenter_recognises(held_out):
    """From the clean map, 10 DPM-Solver++ steps: the regenerations are segmented back to the map.

    ``"auto"`` precision: bf16 autocast is emulated, and several times slower, on CPUs without AVX512."""
    receiver = pretrained.load(pretrained.GESCO_RECEIVER)
    segmenter = pretrained.load(pretrained.SEGMENTER)
    condition = conditioning_maps(held_out, 0, receiver, psnr=100, map_denoiser="fds", seed=0)
    sampler = receiver.config.sampler.replace(steps=10, autocast_dtype="auto")
    assert isinstance(sampler, SamplerConfig)
    images = receiver(condition, generator=torch.Generator().manual_seed(0), sampler=sampler)
    assert images.shape == held_out.image.shape and images.abs().max() <= 1
    with torch.no_grad():
        score = miou(segmenter.predict(images), held_out.labels, receiver.table)
    assert score >= 0.6


@pytest.mark.parametrize(
    ("name", "forwards", "floor"),
    # measured on these 4 scenes (the teacher at 10 two-pass steps: 0.737 bf16, 0.738 fp32): one-pass 0.704,
    # lcm 0.699 in both precisions; the teacher given an all-zero map scores 0.09
    [(pretrained.ONE_PASS_RECEIVER, 10, 0.6), (pretrained.LCM_RECEIVER, 4, 0.6)],
)
def test_shipped_distilled_receivers_regenerate_in_one_forward_per_step(held_out, name, forwards, floor):
    """The distilled students of the GESCO receiver: one network call per step, with s as an input, and the
    regenerations from the clean map are segmented back to it."""
    teacher, receiver = pretrained.load(pretrained.GESCO_RECEIVER), pretrained.load(name)
    assert receiver.unet.config == teacher.unet.config.replace(guidance_conditioning=True)
    assert receiver.config.sampler.guidance == teacher.config.sampler.guidance
    segmenter = pretrained.load(pretrained.SEGMENTER)
    condition = conditioning_maps(held_out, 0, receiver, psnr=100, map_denoiser="fds", seed=0)
    sampler = receiver.config.sampler.replace(steps=forwards, autocast_dtype="auto")
    calls = []
    forward = receiver.unet.forward
    receiver.unet.forward = lambda *args, **kwargs: calls.append(kwargs["guidance"]) or forward(*args, **kwargs)
    images = receiver(condition, generator=torch.Generator().manual_seed(0), sampler=sampler)
    assert len(calls) == forwards and all(torch.equal(s, torch.full((4,), 5.0)) for s in calls)
    with torch.no_grad():
        score = miou(segmenter.predict(images), held_out.labels, receiver.table)
    assert score >= floor


def test_deep_jscc_spends_six_channel_uses_per_pixel_at_unit_power_and_reconstructs(held_out):
    model = pretrained.load(pretrained.DEEP_JSCC)
    assert isinstance(model, DeepJSCC) and all(p.dtype == torch.float32 for p in model.parameters())
    assert model.config.channel_uses_per_pixel == 6.0
    with torch.no_grad():
        symbols = model.encode(held_out.image, snr_db=0.0)
        torch.testing.assert_close(symbols.abs().square().mean(dim=1), torch.ones(len(symbols)))
        psnr = {}
        for snr in (-5.0, 20.0):
            decoded = model(held_out.image, snr_db=snr, generator=torch.Generator().manual_seed(0))
            mse = ((decoded - held_out.image) / 2).square().flatten(1).mean(1)
            psnr[snr] = float((-10 * torch.log10(mse)).mean())
    # measured on held-out scenes at shipping: 22.9 dB at -5 dB, 23.7 dB at 20 dB
    assert psnr[20.0] > psnr[-5.0] and psnr[20.0] > 22.0


def test_shipped_channel_aware_receiver_reads_sigma_and_regenerates_a_noisy_map(held_out):
    """At PSNR label 10, told the channel's sigma, 10 steps: the regenerations are segmented back to the map."""
    from gesco.channel import ChannelQuality
    from gesco.link import Link
    from gesco.receiver.receiver import Receiver
    from gesco.semantics import SemanticMap

    aware = pretrained.load(pretrained.CHANNEL_AWARE_RECEIVER)
    assert aware.unet.config.noise_conditioning and aware.config.map_denoiser == "fds"
    gesco = pretrained.load(pretrained.GESCO_RECEIVER)
    # the same architecture as the paper's receiver, plus the noise embedding
    assert aware.unet.config.replace(noise_conditioning=False) == gesco.unet.config
    segmenter = pretrained.load(pretrained.SEGMENTER)
    semantic_map = SemanticMap(held_out.labels, aware.table, held_out.instances, aware.config.edge_rule)
    out = Link(receiver=Receiver(aware))(
        semantic_map,
        ChannelQuality.psnr_label(10),
        generator=torch.Generator().manual_seed(0),
        sampler=aware.config.sampler.replace(steps=10),
    )
    assert out.images.shape == held_out.image.shape and out.images.abs().max() <= 1
    with torch.no_grad():
        assert miou(segmenter.predict(out.images), held_out.labels, aware.table) >= 0.6
    with pytest.raises(ValueError, match="give sigma"):
        aware(out.condition)


def received_maps(held_out, psnr: float, denoiser):
    """The held-out maps through the AWGN link at ``psnr``, once through FDS and once through ``denoiser``."""
    from gesco.channel import ChannelQuality
    from gesco.link import Link
    from gesco.receiver.receiver import Receiver
    from gesco.semantics import SemanticMap

    semantic_map = SemanticMap(held_out.labels, "cityscapes", held_out.instances)
    return [
        Link(receiver=Receiver(None, map_denoiser=choice))(
            semantic_map, ChannelQuality.psnr_label(psnr), generator=torch.Generator().manual_seed(0)
        ).condition
        for choice in ("fds", denoiser)
    ]


def test_shipped_map_denoiser_beats_fds_on_held_out_maps(held_out):
    from gesco.receiver.learned_denoiser import LearnedMapDenoiser

    denoiser = pretrained.load(pretrained.MAP_DENOISER)
    assert isinstance(denoiser, LearnedMapDenoiser) and not denoiser.training
    assert denoiser.config.output == "one_hot" and denoiser.config.skip == "received"
    table = denoiser.table
    for psnr, margin in ((100, 0.05), (1, 0.08)):
        with torch.no_grad():
            fds, learned = received_maps(held_out, psnr, denoiser)
        # a clean-looking map: one class per pixel
        assert set(learned.unique().tolist()) <= {0.0, 1.0}
        fds_miou = miou(fds[:, : table.num_classes].argmax(1), held_out.labels, table)
        learned_miou = miou(learned[:, : table.num_classes].argmax(1), held_out.labels, table)
        assert learned_miou >= fds_miou + margin, (psnr, learned_miou, fds_miou)


def test_shipped_two_stage_receiver_is_the_learned_denoiser_then_the_sdm_network(held_out):
    from gesco.channel import ChannelQuality
    from gesco.link import Link
    from gesco.receiver.receiver import Receiver
    from gesco.semantics import SemanticMap

    two_stage = pretrained.load(pretrained.TWO_STAGE_RECEIVER)
    sdm = pretrained.load(pretrained.SDM_RECEIVER)
    assert two_stage.config == sdm.config.replace(map_denoiser=pretrained.MAP_DENOISER)
    for name, tensor in sdm.unet.state_dict().items():
        assert torch.equal(tensor, two_stage.unet.state_dict()[name]), name
    receiver = Receiver.from_pretrained(pretrained.resolve(pretrained.TWO_STAGE_RECEIVER))
    assert receiver.map_denoiser.config == pretrained.load(pretrained.MAP_DENOISER).config
    semantic_map = SemanticMap(held_out.labels, two_stage.table, held_out.instances, two_stage.config.edge_rule)
    out = Link(receiver=receiver)(
        semantic_map,
        ChannelQuality.psnr_label(1),
        generator=torch.Generator().manual_seed(0),
        sampler=two_stage.config.sampler.replace(steps=10),
    )
    segmenter = pretrained.load(pretrained.SEGMENTER)
    with torch.no_grad():
        # at PSNR label 1 the paper's receiver scores about 0.64 on 200 scenes
        assert miou(segmenter.predict(out.images), held_out.labels, two_stage.table) >= 0.7


def test_lower_layers_find_the_shipped_models_where_the_package_keeps_them():
    # gesco.weights_folder cannot import gesco.pretrained (a higher layer, and --help must stay torch-free)
    from gesco.weights_folder import SHIPPED_MODELS, model_folder

    assert SHIPPED_MODELS == pretrained.ROOT
    assert model_folder(pretrained.MAP_DENOISER) == pretrained.resolve(pretrained.MAP_DENOISER)
    assert model_folder("no-such-model") is None and model_folder("../pretrained") is None


def test_shipped_detector_finds_the_things_of_held_out_scenes():
    from gesco.evaluation.detector import GescoDetector
    from gesco.evaluation.detector_training import evaluate_detector

    detector = pretrained.load(pretrained.DETECTOR)
    assert isinstance(detector, GescoDetector) and not detector.training
    assert pretrained.info(pretrained.DETECTOR).kind == "detector"
    scores = evaluate_detector(detector, SyntheticStreetsDataset(16, EVALUATION_SEED_OFFSET + 700), min_area=16)
    # an untrained or mis-decoded detector scores near 0; the shipped one about 0.8 on 200 scenes
    assert scores.map50 >= 0.6, scores.map50
    with_cyclists = SyntheticStreetsDataset(16, EVALUATION_SEED_OFFSET + 700, riders=True)
    scores = evaluate_detector(detector, with_cyclists, min_area=16)
    # riders: AP50 0.96 over 200 scenes; bicycles, mostly a 1-2 px wheel seen head-on, 0.48
    assert scores.per_class[25].ap50 >= 0.6 and scores.per_class[33].ap50 >= 0.15, scores.per_class
    # the adapted detector: half its training images regenerations of training scenes; still finds real objects
    check_adapted(pretrained.DETECTOR, pretrained.DETECTOR_ADAPTED)
    scores = evaluate_detector(pretrained.load(pretrained.DETECTOR_ADAPTED), with_cyclists, min_area=16)
    assert scores.map50 >= 0.6 and scores.per_class[25].ap50 >= 0.6, scores.per_class


def test_shipped_depth_network_estimates_the_depth_of_held_out_scenes():
    from gesco.evaluation.depth_network import GescoDepthNet
    from gesco.evaluation.depth_training import evaluate_depth

    network = pretrained.load(pretrained.DEPTH)
    assert isinstance(network, GescoDepthNet) and not network.training
    assert pretrained.info(pretrained.DEPTH).kind == "depth"
    held_out = SyntheticStreetsDataset(16, EVALUATION_SEED_OFFSET + 700)
    scores = evaluate_depth(network, held_out)
    # on 200 held-out scenes the median depth everywhere scores delta1 0.19, the training scenes' median depth
    # of each image row (the ground plane) 0.60; the shipped network more than 0.9
    assert scores.delta1 >= 0.8 and scores.abs_rel <= 0.2, scores
    # the adapted network: half its training images regenerations of training scenes; still reads real images
    check_adapted(pretrained.DEPTH, pretrained.DEPTH_ADAPTED)
    scores = evaluate_depth(pretrained.load(pretrained.DEPTH_ADAPTED), held_out)
    assert scores.delta1 >= 0.8 and scores.abs_rel <= 0.2, scores
