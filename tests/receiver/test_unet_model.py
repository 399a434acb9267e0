"""GescoUNet contract: shapes, blocks against their formulas, checkpoints, checkpointing, bf16, channels_last."""

from __future__ import annotations

import doctest
import math

import pytest
import torch
import torch.nn.functional as F

import gesco.receiver.unet.model as model_module
from gesco.receiver.unet import GescoUNet, StateDictMismatchError, UNetConfig
from gesco.receiver.unet.attention import AttentionBlock
from gesco.receiver.unet.blocks import timestep_embedding
from gesco.receiver.unet.spade import SPADEGroupNorm

TINY = UNetConfig.official_tiny()


def _randomized(model: GescoUNet, generator: torch.Generator) -> GescoUNet:
    """Give the zero-initialised output convs random values so every branch affects the output."""
    with torch.no_grad():
        for parameter in model.parameters():
            if not parameter.any():
                parameter.normal_(0.0, 0.05, generator=generator)
    return model


def _inputs(config: UNetConfig, generator: torch.Generator, *, batch: int = 2, size=(32, 64)):
    x = torch.randn(batch, config.in_channels, *size, generator=generator)
    classes = torch.randint(0, config.label_channels, (batch, *size), generator=generator)
    y = F.one_hot(classes, config.label_channels).permute(0, 3, 1, 2).float()
    t = torch.randint(0, 1000, (batch,), generator=generator)
    return x, t, y


@pytest.fixture(scope="module")
def tiny_model() -> GescoUNet:
    return _randomized(GescoUNet(TINY), torch.Generator().manual_seed(1)).eval()


def test_docstring_example_runs():
    result = doctest.testmod(model_module)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("learn_sigma", [True, False])
def test_output_shape_and_timestep_forms(learn_sigma, generator):
    config = TINY.replace(learn_sigma=learn_sigma, label_channels=4)
    model = _randomized(GescoUNet(config), generator).eval()
    x, t, y = _inputs(config, generator)
    with torch.no_grad():
        out = model(x, t, y)
        assert out.shape == (2, 6 if learn_sigma else 3, 32, 64) and out.dtype == torch.float32
        assert torch.allclose(model(x, t.float(), y), out)
        assert torch.allclose(model(x, torch.tensor(7), y), model(x, torch.tensor([7, 7]), y))


def test_label_map_conditions_output_and_the_encoder_ignores_it(tiny_model, generator):
    x, t, y = _inputs(TINY, generator)
    deepest_encoder_block = tiny_model.encoder[-1].res_blocks[-1]
    seen = []
    handle = deepest_encoder_block.register_forward_hook(lambda module, args, out: seen.append(out))
    with torch.no_grad():
        out_a, out_b = tiny_model(x, t, y), tiny_model(x, t, torch.zeros_like(y))
    handle.remove()
    assert torch.equal(seen[0], seen[1])  # encoder features of the two calls
    assert (out_a - out_b).abs().max() > 1e-3


def test_timestep_embedding_is_cos_then_sin_with_geometric_frequencies():
    t = torch.tensor([0, 3, 999])
    embedding = timestep_embedding(t, 8)
    frequencies = [10_000 ** (-i / 4) for i in range(4)]
    expected = [[math.cos(s * f) for f in frequencies] + [math.sin(s * f) for f in frequencies] for s in (0, 3, 999)]
    assert torch.allclose(embedding, torch.tensor(expected), atol=1e-5)
    assert timestep_embedding(t, 9)[:, -1].eq(0).all()


def test_spade_group_norm_matches_its_formula(generator):
    norm = SPADEGroupNorm(64, 5, hidden_channels=16)
    x = torch.randn(2, 64, 8, 16, generator=generator)
    label_map = torch.rand(2, 5, 32, 64, generator=generator)
    resized = label_map[:, :, ::4, ::4]  # nearest resize by an integer factor keeps every 4th pixel
    hidden = F.relu(norm.shared(resized))
    expected = F.group_norm(x, 32) * (1 + norm.gamma(hidden)) + norm.beta(hidden)
    assert torch.allclose(norm(x, label_map), expected, atol=1e-5)


@pytest.mark.parametrize("qkv_layout", ["per_head", "split"])
def test_attention_matches_guided_diffusion_channel_orders(qkv_layout, generator):
    block = AttentionBlock(64, head_channels=16, qkv_layout=qkv_layout)
    torch.nn.init.normal_(block.proj_out.weight, generator=generator)
    x = torch.randn(2, 64, 4, 6, generator=generator)
    qkv = block.qkv(F.group_norm(x, 32, block.norm.weight, block.norm.bias).flatten(2).transpose(1, 2)).transpose(1, 2)
    heads, d, tokens = 4, 16, 24
    if qkv_layout == "per_head":  # (B, heads * 3 * d, T), each head's q, k, v together
        q, k, v = qkv.reshape(2 * heads, 3 * d, tokens).split(d, dim=1)
    else:  # (B, 3 * heads * d, T), all q first
        q, k, v = (part.reshape(2 * heads, d, tokens) for part in qkv.chunk(3, dim=1))
    weights = torch.softmax(torch.einsum("bct,bcs->bts", q, k) / math.sqrt(d), dim=-1)
    attended = torch.einsum("bts,bcs->bct", weights, v).reshape(2, 64, tokens)
    expected = x + (block.proj_out(attended.transpose(1, 2)).transpose(1, 2)).reshape(x.shape)
    assert torch.allclose(block(x), expected, atol=1e-5)


def test_save_and_load_give_identical_outputs(tiny_model, tmp_path, generator):
    tiny_model.save_pretrained(tmp_path / "tiny")
    loaded = GescoUNet.from_pretrained(tmp_path / "tiny").eval()
    assert loaded.config == tiny_model.config
    x, t, y = _inputs(TINY, generator)
    with torch.no_grad():
        assert torch.equal(loaded(x, t, y), tiny_model(x, t, y))


def test_loading_weights_of_another_architecture_fails(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path / "tiny")
    TINY.replace(num_res_blocks=2).save(tmp_path / "tiny")  # config and weights disagree now
    with pytest.raises(StateDictMismatchError, match=r"missing keys: decoder\.0\.res_blocks\.2\."):
        GescoUNet.from_pretrained(tmp_path / "tiny")
    TINY.replace(label_channels=35).save(tmp_path / "tiny")
    with pytest.raises(StateDictMismatchError, match=r"shape mismatches: .*norm_in\.shared\.weight"):
        GescoUNet.from_pretrained(tmp_path / "tiny")


def test_truncated_weights_file_fails_with_value_error(tiny_model, tmp_path):
    folder = tiny_model.save_pretrained(tmp_path / "tiny")
    weights = folder / model_module.WEIGHTS_NAME
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated"):
        GescoUNet.from_pretrained(folder)


def test_gradient_checkpointing_gives_the_same_gradients(tiny_model, generator):
    checkpointed = GescoUNet.from_state_dict(tiny_model.state_dict(), TINY.replace(gradient_checkpointing=True))
    x, t, y = _inputs(TINY, generator)
    gradients = []
    for model in (tiny_model, checkpointed):
        model.train().zero_grad()
        model(x, t, y).square().mean().backward()
        gradients.append({name: p.grad.clone() for name, p in model.named_parameters()})
        model.eval()
    assert gradients[0].keys() == gradients[1].keys()
    for name, grad in gradients[0].items():
        assert torch.allclose(grad, gradients[1][name], rtol=1e-4, atol=1e-7), name


def test_gradient_checkpointing_recomputes_in_backward(tiny_model, generator):
    checkpointed = GescoUNet.from_state_dict(tiny_model.state_dict(), TINY.replace(gradient_checkpointing=True)).train()
    calls = []
    checkpointed.middle.attention.register_forward_pre_hook(lambda module, args: calls.append(1))
    x, t, y = _inputs(TINY, generator)
    checkpointed(x, t, y).mean().backward()
    assert len(calls) == 2  # once forward, once recomputed for the backward pass


@pytest.mark.parametrize("memory_format", [torch.channels_last, torch.contiguous_format])
def test_bf16_autocast_is_close_to_fp32(tiny_model, generator, memory_format):
    x, t, y = _inputs(TINY, generator)
    tiny_model.to(memory_format=memory_format)
    try:
        with torch.no_grad():
            reference = tiny_model(x, t, y)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                low = tiny_model(x, t, y)
    finally:
        tiny_model.to(memory_format=model_module.DEFAULT_MEMORY_FORMAT)
    assert low.dtype == torch.bfloat16
    error = (low.float() - reference).abs()
    assert error.max() < 0.1 * reference.abs().max() and error.mean() < 0.02 * reference.abs().mean() + 1e-3


def test_weights_are_channels_last_and_both_layouts_agree(tiny_model, generator, tmp_path):
    loaded = GescoUNet.from_pretrained(tiny_model.save_pretrained(tmp_path / "tiny"))
    for model in (GescoUNet(TINY), tiny_model, loaded):
        assert model.input_conv.weight.is_contiguous(memory_format=torch.channels_last)
    x, t, y = _inputs(TINY, generator)
    with torch.no_grad():
        reference = tiny_model(x, t, y)
        tiny_model.to(memory_format=torch.contiguous_format)
        try:
            out = tiny_model(x.contiguous(memory_format=torch.channels_last), t, y)
        finally:
            tiny_model.to(memory_format=model_module.DEFAULT_MEMORY_FORMAT)
    assert out.is_contiguous() and reference.is_contiguous()
    assert torch.allclose(out, reference, atol=1e-5)


@pytest.mark.parametrize(
    "shape_change, message",
    [({"x": (2, 3, 31, 64)}, "divisible by 2"), ({"y": (2, 35, 32, 64)}, "label_channels"), ({"t": (3,)}, "t must")],
)
def test_bad_inputs_raise_value_errors(tiny_model, generator, shape_change, message):
    x, t, y = _inputs(TINY, generator)
    tensors = {"x": x, "t": t, "y": y}
    for name, shape in shape_change.items():
        tensors[name] = torch.zeros(shape)
    with pytest.raises(ValueError, match=message):
        tiny_model(tensors["x"], tensors["t"], tensors["y"])


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"attention_ds": (3,)}, "attention_ds"),
        ({"head_channels": 24}, "head_channels"),
        ({"base_channels": 48}, "multiples of 32"),
        ({"qkv_layout": "interleaved"}, "qkv_layout"),
        ({"channel_mult": ()}, "channel_mult"),
    ],
)
def test_invalid_configs_raise_value_errors(changes, message):
    with pytest.raises(ValueError, match=message):
        TINY.replace(**changes)


def test_presets_round_trip_through_json(tmp_path):
    for name in ("cityscapes", "coco-stuff", "ade20k", "small64", "official-tiny"):
        config = UNetConfig.preset(name)
        assert UNetConfig.from_preset_or_file(config.save(tmp_path / f"{name}.json")) == config
    assert (UNetConfig.coco_stuff().label_channels, UNetConfig.ade20k().label_channels) == (184, 151)
    with pytest.raises(ValueError, match="unknown UNet preset"):
        UNetConfig.preset("imagenet")
