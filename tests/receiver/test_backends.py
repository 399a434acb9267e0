"""Exported UNet backends (ONNX Runtime, OpenVINO): same outputs as torch, int8 close, typed errors, CLI options."""

from __future__ import annotations

import sys

import pytest
import torch

from gesco.cli.main import build_parser
from gesco.receiver.backends import (
    BackendUnavailableError,
    CalibrationConfig,
    CompiledUNet,
    UNetInputs,
    calibration_inputs,
    compile_unet,
    require_runtime,
    with_backend,
)
from gesco.receiver.diffusion import GaussianDiffusion
from gesco.receiver.pipeline import DiffusionReceiver, ReceiverConfig
from gesco.receiver.sampling import SamplerConfig, build_scheduler
from gesco.receiver.unet import GescoUNet
from helpers import BACKEND_TEST_SIZE, TINY_UNET, label_map, tiny_unet

SIZE = BACKEND_TEST_SIZE
FLOAT_PATHS = [("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "bf16")]
#: Mean |backend - torch| allowed, as a share of the output's std: fp32 graphs agree to rounding, bf16 to its
#: 8-bit mantissa (0.018 measured). Swapping t or y moves the output by 0.18-0.28 of its std (checked below).
TOLERANCE = {"fp32": 1e-5, "bf16": 0.03}


@pytest.fixture(scope="module")
def unet() -> GescoUNet:
    return tiny_unet()


@pytest.fixture(scope="module")
def inputs() -> UNetInputs:
    generator = torch.Generator().manual_seed(1)
    return UNetInputs(torch.randn(2, 3, *SIZE, generator=generator), torch.tensor([10, 700]), label_map(2, 2))


@pytest.fixture(scope="module")
def calibration() -> list[UNetInputs]:
    generator = torch.Generator().manual_seed(3)
    return [
        UNetInputs(torch.randn(1, 3, *SIZE, generator=generator), torch.tensor([t]), label_map(1, 10 + t))
        for t in (0, 250, 500, 999)
    ]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("backends")


def has_bf16() -> bool:
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def reference(unet, x, t, y, sigma=None) -> torch.Tensor:
    with torch.no_grad():
        return unet(x, t, y, sigma)


def error(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor) -> float:
    return float((a - b).abs().mean() / scale.std())


@pytest.mark.slow  # one ONNX export, then a runtime compile per path
@pytest.mark.parametrize(("backend", "precision"), FLOAT_PATHS)
def test_backend_matches_torch_and_reads_every_input(unet, inputs, cache, backend, precision):
    pytest.importorskip(backend)
    if precision == "bf16" and not has_bf16():
        pytest.skip("no bfloat16 kernels on this CPU")
    fast = compile_unet(unet, backend=backend, precision=precision, image_size=SIZE, cache_dir=cache)
    x, t, y = inputs.x, inputs.t, inputs.y
    expected = reference(unet, x, t, y)
    output = fast(x, t, y)
    assert output.shape == expected.shape == (2, 6, *SIZE) and output.dtype == torch.float32
    tolerance = TOLERANCE[precision]
    assert error(output, expected, expected) < tolerance
    # the tolerance is far below what a dropped or swapped input would cost
    assert error(reference(unet, x, t.flip(0), y), expected, expected) > 5 * tolerance
    assert error(reference(unet, x, t, y.flip(0)), expected, expected) > 5 * tolerance
    # a changed map moves the backend's output as it moves torch's
    other = label_map(2, 7)
    torch_change = reference(unet, x, t, other) - expected
    assert error(fast(x, t, other) - output, torch_change, torch_change) < 3 * tolerance
    # batch 1 and the guided batch of 2B, scalar timesteps and channels_last inputs
    assert error(fast(x[:1], t[:1], y[:1]), expected[:1], expected) < tolerance
    both = fast(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, torch.zeros_like(y)]))
    assert both.shape == (4, 6, *SIZE)
    assert error(both[:2], expected, expected) < tolerance
    scalar_t = fast(x.contiguous(memory_format=torch.channels_last), 700, y)
    assert error(scalar_t[1], expected[1], expected) < tolerance


def test_noise_level_input_is_exported(cache):
    pytest.importorskip("onnxruntime")
    unet = tiny_unet(TINY_UNET.replace(noise_conditioning=True))
    fast = compile_unet(unet, backend="onnxruntime", image_size=SIZE, cache_dir=cache)
    x, t, y = torch.randn(2, 3, *SIZE), torch.tensor([5, 900]), label_map(2, 4)
    sigma = torch.tensor([0.0, 0.6])
    expected = reference(unet, x, t, y, sigma)
    assert error(fast(x, t, y, sigma), expected, expected) < TOLERANCE["fp32"]
    assert error(reference(unet, x, t, y, sigma.flip(0)), expected, expected) > 5 * TOLERANCE["fp32"]
    with pytest.raises(ValueError, match="sigma"):
        fast(x, t, y)


@pytest.mark.slow  # calibration and quantisation: NNCF compiles the graph several times
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_int8_runs_close_to_torch(unet, inputs, calibration, cache, backend):
    pytest.importorskip(backend)
    if backend == "openvino":
        pytest.importorskip("nncf")
    fast = compile_unet(
        unet, backend=backend, precision="int8", image_size=SIZE, calibration=calibration, cache_dir=cache
    )
    expected = reference(unet, inputs.x, inputs.t, inputs.y)
    output = fast(inputs.x, inputs.t, inputs.y)
    error = (output - expected).abs()
    assert output.shape == expected.shape
    assert float(error.mean() / expected.std()) < 0.1
    assert torch.corrcoef(torch.stack([output.flatten(), expected.flatten()]))[0, 1] > 0.98


def test_exports_are_cached_and_inputs_checked(unet, inputs, cache):
    first = compile_unet(unet, backend="onnxruntime", image_size=SIZE, cache_dir=cache)
    stamp = first.model_path.stat().st_mtime_ns
    again = compile_unet(unet, backend="onnxruntime", image_size=SIZE, cache_dir=cache)
    assert again.model_path == first.model_path and again.model_path.stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="exported for"):
        first(torch.zeros(1, 3, 32, 32), torch.tensor([1]), torch.zeros(1, 36, 32, 32))
    with pytest.raises(ValueError, match="noise_conditioning=False"):
        first(inputs.x, inputs.t, inputs.y, torch.zeros(2))


def test_with_backend_samples_like_torch(unet, cache):
    pytest.importorskip("openvino")
    config = ReceiverConfig(image_size=SIZE, sampler=SamplerConfig(sampler="dpmpp", steps=2, guidance=2.0))
    receiver = DiffusionReceiver(unet, config)
    fast = with_backend(receiver, backend="openvino", precision="fp32", cache_dir=cache)
    assert isinstance(fast.unet, CompiledUNet) and fast.config == config and receiver.unet is unet
    condition, x_T = label_map(1, 5), torch.randn(1, 3, *SIZE)
    exact = config.sampler.replace(autocast_dtype="float32")
    expected = receiver(condition, x_T=x_T, sampler=exact)
    assert (fast(condition, x_T=x_T, sampler=exact) - expected).abs().max() < 1e-3
    assert with_backend(receiver, backend="torch") is receiver


def test_calibration_goes_through_the_link_at_the_sampler_timesteps(unet):
    config = ReceiverConfig(image_size=SIZE, sampler=SamplerConfig(sampler="dpmpp", steps=4, guidance=2.0))
    items = calibration_inputs(DiffusionReceiver(unet, config), CalibrationConfig(scenes=2, psnrs=(100.0, 1.0)))
    assert len(items) == 2 * 2 * 2  # scenes x PSNRs x (conditional, unconditional)
    conditional, unconditional = items[0::2], items[1::2]
    assert all(not item.y.any() for item in unconditional)
    # the same scene at PSNR 100 and 1 (items run PSNR by PSNR): the channel noise reaches the FDS output
    assert float((conditional[2].y - conditional[0].y).abs().mean()) > 0.01
    scheduler, _ = build_scheduler(config.sampler, GaussianDiffusion(config.diffusion))
    assert {int(item.t) for item in items} <= set(scheduler.timesteps.tolist())
    assert all(item.x.shape == (1, 3, *SIZE) and item.sigma is None for item in items)
    with pytest.raises(ValueError, match="held-out"):
        CalibrationConfig(first_seed=999_999, scenes=2)


def test_choices_and_missing_runtime_are_typed_errors(unet, monkeypatch):
    with pytest.raises(ValueError, match="bfloat16"):
        compile_unet(unet, backend="onnxruntime", precision="bf16", image_size=SIZE)
    with pytest.raises(ValueError, match="backend must be one of"):
        compile_unet(unet, backend="tensorrt", image_size=SIZE)
    with pytest.raises(ValueError, match="calibration"):
        compile_unet(unet, backend="onnxruntime", precision="int8", image_size=SIZE)
    monkeypatch.setitem(sys.modules, "openvino", None)  # makes "import openvino" fail
    with pytest.raises(BackendUnavailableError, match=r"pip install 'gesco\[fast\]'"):
        require_runtime("openvino", "fp32")
    with pytest.raises(ImportError, match="openvino"):
        compile_unet(unet, backend="openvino", image_size=SIZE)


@pytest.mark.parametrize("command", ["sample", "demo"])
def test_cli_backend_options(command, capsys):
    required = ["--model", "m", "--labels", "l", "--out", "o", "--psnr", "10"] if command == "sample" else []
    args = build_parser(command).parse_args([command, *required, "--backend", "openvino", "--precision", "int8"])
    assert (args.backend, args.precision) == ("openvino", "int8")
    defaults = build_parser(command).parse_args([command, *required])
    assert (defaults.backend, defaults.precision, defaults.backend_cache) == ("torch", None, None)
    for bad in (["--backend", "tensorrt"], ["--precision", "fp16"]):
        with pytest.raises(SystemExit):
            build_parser(command).parse_args([command, *required, *bad])
        assert "invalid choice" in capsys.readouterr().err


def test_cli_refuses_contradictions():
    from gesco.cli.backend_options import check_backend_options

    parse = build_parser("demo").parse_args
    with pytest.raises(ValueError, match="int8 needs an exported UNet"):
        check_backend_options(parse(["demo", "--precision", "int8"]))
    with pytest.raises(ValueError, match="--fp32 contradicts"):
        check_backend_options(parse(["demo", "--fp32", "--backend", "openvino", "--precision", "bf16"]))
    with pytest.raises(ValueError, match="bfloat16"):
        check_backend_options(parse(["demo", "--backend", "onnxruntime", "--precision", "bf16"]))


def test_a_backend_receiver_runs_on_the_cpu_and_refuses_to_be_saved(unet, cache, tmp_path):
    receiver = DiffusionReceiver(unet, ReceiverConfig(image_size=SIZE))
    fast = with_backend(receiver, backend="onnxruntime", precision="fp32", cache_dir=cache)
    # evaluate and compare move their inputs to receiver.device: an exported UNet has no torch parameters
    assert fast.device == receiver.device == torch.device("cpu")
    with pytest.raises(TypeError, match="exported backend.*CompiledUNet"):
        fast.save_pretrained(tmp_path / "saved")
    assert not (tmp_path / "saved").exists()
