"""Deep JSCC: the power constraint, the channel-use accounting, the channel layer, files and training."""

import json
import math

import pytest
import torch

from gesco.baselines.deep_jscc import DeepJSCC, DeepJSCCConfig, latent_channels_for, normalize_power
from gesco.baselines.deep_jscc_training import DeepJSCCTrainConfig, train_deep_jscc
from gesco.channel.digital.symbol_channel import SymbolChannel
from gesco.io import load_tensors, save_tensors
from gesco.training.config import DataConfig

SMALL = DeepJSCCConfig(image_size=(16, 32), hidden_channels=(4, 4, 4, 4), latent_channels=6)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return DeepJSCC(SMALL).eval()


def images(batch=3, generator=None):
    return torch.rand(batch, 3, 16, 32, generator=generator) * 2 - 1


def test_every_image_meets_the_average_power_constraint(model, generator):
    # very different images, SNRs and scales: each image's symbols still average |s|^2 = 1
    batch = torch.cat([images(2, generator), torch.full((1, 3, 16, 32), 0.99), torch.full((1, 3, 16, 32), -1.0)])
    symbols = model.encode(batch, snr_db=torch.tensor([-5.0, 0.0, 10.0, 20.0]))
    assert symbols.is_complex() and symbols.shape == (4, SMALL.channel_uses)
    torch.testing.assert_close(symbols.abs().square().mean(dim=1), torch.ones(4), rtol=1e-5, atol=1e-5)
    latent = torch.randn(2, 6, 4, 8, generator=generator) * torch.tensor([0.01, 100.0])[:, None, None, None]
    torch.testing.assert_close(normalize_power(latent).square().flatten(1).sum(1) / (6 * 4 * 8 / 2), torch.ones(2))


def test_channel_uses_by_hand():
    # 6 real values per 4x4-pixel position -> 3 complex symbols per 16 pixels
    assert SMALL.channel_uses == 3 * 4 * 8 == 96
    assert SMALL.channel_uses_per_pixel == 96 / (16 * 32)
    assert math.isclose(SMALL.bandwidth_ratio, 96 / (3 * 16 * 32))
    default = DeepJSCCConfig()
    assert default.channel_uses_per_pixel == 6.0  # the most GESCO-analog spends on the synthetic scenes (12 channels)
    assert latent_channels_for(6.0) == 192 and latent_channels_for(5.65) == 180
    with pytest.raises(ValueError, match="minimum"):
        latent_channels_for(0.05)


@pytest.mark.parametrize(
    "field, value",
    [
        ("image_size", (18, 32)),
        ("latent_channels", 7),
        ("hidden_channels", (4, 4, 4)),
        ("train_snrs_db", (0.0, math.inf)),
    ],
)
def test_bad_configs_are_named(field, value):
    with pytest.raises(ValueError, match=field):
        SMALL.replace(**{field: value})


def test_noiseless_channel_is_decode_of_encode_and_noise_changes_the_image(model, generator):
    batch = images(2, generator)
    with torch.no_grad():
        clean = model.decode(model.encode(batch, snr_db=10.0), snr_db=10.0)
        through = model(batch, snr_db=10.0, channel=SymbolChannel(), generator=torch.Generator().manual_seed(1))
        again = model(batch, snr_db=10.0, generator=torch.Generator().manual_seed(1))
        noisier = model(batch, snr_db=-10.0, generator=torch.Generator().manual_seed(1))
    assert clean.shape == batch.shape and clean.abs().max() <= 1
    torch.testing.assert_close(through, again)  # seeded: reproducible
    assert (noisier - clean).abs().mean() > (through - clean).abs().mean() > 0


def test_rayleigh_channel_with_perfect_csi_is_differentiable(model, generator):
    batch = images(2, generator).requires_grad_()
    out = model(batch, snr_db=5.0, channel=SymbolChannel(fading="rayleigh", coherence_symbols=16), generator=generator)
    out.square().mean().backward()
    assert batch.grad is not None and torch.isfinite(batch.grad).all()


def test_bad_inputs_are_named(model):
    with pytest.raises(ValueError, match=r"\(B, 3, 16, 32\)"):
        model.encode(torch.zeros(1, 3, 16, 16), snr_db=0.0)
    with pytest.raises(ValueError, match="NaN"):
        model.encode(torch.full((1, 3, 16, 32), math.nan), snr_db=0.0)
    with pytest.raises(ValueError, match="snr_db"):
        model.encode(torch.zeros(2, 3, 16, 32), snr_db=torch.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="complex"):
        model.decode(torch.zeros(1, SMALL.channel_uses), snr_db=0.0)
    symbols = torch.full((1, SMALL.channel_uses), complex(math.nan, 0))
    with pytest.raises(ValueError, match="NaN"):
        model.decode(symbols, snr_db=0.0)


def test_save_and_load_round_trip_upcasting_float16(model, tmp_path, generator):
    folder = model.save_pretrained(tmp_path / "model")
    assert json.loads((folder / "config.json").read_text())["_class_name"] == "DeepJSCCConfig"
    weights = load_tensors(folder / "model.safetensors")
    save_tensors(folder / "model.safetensors", {k: v.half() for k, v in weights.items()})
    loaded = DeepJSCC.from_pretrained(folder)
    assert loaded.config == SMALL and all(p.dtype == torch.float32 for p in loaded.parameters())
    batch = images(1, generator)
    with torch.no_grad():
        torch.testing.assert_close(
            loaded.encode(batch, snr_db=0.0), model.encode(batch, snr_db=0.0), atol=2e-2, rtol=2e-2
        )
    save_tensors(folder / "model.safetensors", {k: v for k, v in list(weights.items())[1:]})
    with pytest.raises(ValueError, match="missing"):
        DeepJSCC.from_pretrained(folder)


def tiny_training(tmp_path, **changes):
    data = DataConfig(kind="synthetic", size=(16, 32), num_scenes=64)
    return DeepJSCCTrainConfig(
        output_dir=str(tmp_path),
        data=data,
        validation=data.replace(num_scenes=4, seed_offset=2_000_000),
        model=SMALL,
        batch_size=4,
        max_steps=4,
        warmup_steps=1,
        checkpoint_every=2,
    ).replace(**changes)


def test_training_lowers_the_loss_exports_and_resumes_exactly(tmp_path):
    torch.set_num_threads(1)
    result = train_deep_jscc(
        tiny_training(tmp_path / "a", max_steps=30, checkpoint_every=30, learning_rate=3e-3), progress=False
    )
    assert sum(result.losses[-5:]) < sum(result.losses[:5])
    assert set(result.validation_psnr) == {f"{s:g}" for s in SMALL.train_snrs_db}
    assert DeepJSCC.from_pretrained(tmp_path / "a" / "model").config == SMALL
    # 2 steps, then resume to 4, equals 4 steps straight; the resume falls inside the warm-up of 3 steps, then
    # the rate is constant (the cosine depends on max_steps)
    constant = {"lr_schedule": "constant", "warmup_steps": 3}
    first = train_deep_jscc(tiny_training(tmp_path / "b", max_steps=2, **constant), progress=False)
    resumed = train_deep_jscc(tiny_training(tmp_path / "b", **constant), resume=True, progress=False)
    straight = train_deep_jscc(tiny_training(tmp_path / "c", **constant), progress=False)
    assert first.losses + resumed.losses == straight.losses and resumed.step == straight.step == 4
    assert resumed.validation_psnr == straight.validation_psnr
    exported_b = DeepJSCC.from_pretrained(tmp_path / "b" / "model").state_dict()
    exported_c = DeepJSCC.from_pretrained(tmp_path / "c" / "model").state_dict()
    assert all(torch.equal(value, exported_c[name]) for name, value in exported_b.items())
    history = json.loads((tmp_path / "b" / "history.json").read_text())
    assert [h["step"] for h in history] == [2, 4] and set(history[-1]["validation_psnr_db"]) == set(
        result.validation_psnr
    )
    with pytest.raises(ValueError, match="--resume"):
        train_deep_jscc(tiny_training(tmp_path / "c"), progress=False)


def test_training_refuses_evaluation_seeds_and_mismatched_sizes(tmp_path):
    with pytest.raises(ValueError, match="evaluation seeds"):
        tiny_training(tmp_path, data=DataConfig(kind="synthetic", size=(16, 32), seed_offset=999_990, num_scenes=20))
    with pytest.raises(ValueError, match="image_size"):
        tiny_training(tmp_path, data=DataConfig(kind="synthetic", size=(32, 64)))
