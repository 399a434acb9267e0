"""Exported backends run guidance-distilled students: the scale is a graph input, outputs match torch, the cache
keeps students and teachers apart, and int8 calibrates on the student's one-pass inputs."""

from __future__ import annotations

import pytest
import torch

from gesco.receiver.backends import CalibrationConfig, CompiledUNet, calibration_inputs, compile_unet, with_backend
from gesco.receiver.backends.compiled import export_key
from gesco.receiver.pipeline import DiffusionReceiver, ReceiverConfig
from gesco.receiver.sampling import SamplerConfig
from gesco.training.guidance_distillation import student_from_teacher
from helpers import BACKEND_TEST_SIZE, TINY_UNET, label_map, tiny_unet

SIZE = BACKEND_TEST_SIZE
#: The fp32 tolerance of tests/receiver/test_backends.py: mean |backend - torch| as a share of the output's std.
FP32_TOLERANCE = 1e-5
STUDENT = TINY_UNET.replace(guidance_conditioning=True)


def error(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor) -> float:
    return float((a - b).abs().mean() / scale.std())


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("student-backends")


@pytest.mark.slow  # an ONNX export, then a runtime compile, per case
@pytest.mark.parametrize(
    ("backend", "noise_conditioning"), [("onnxruntime", False), ("onnxruntime", True), ("openvino", False)]
)
def test_an_exported_student_matches_torch_and_reads_the_scale(cache, backend, noise_conditioning):
    pytest.importorskip(backend)
    student = tiny_unet(STUDENT.replace(noise_conditioning=noise_conditioning))
    fast = compile_unet(student, backend=backend, image_size=SIZE, cache_dir=cache)
    assert fast.guidance_distilled
    generator = torch.Generator().manual_seed(1)
    x, t, y = torch.randn(2, 3, *SIZE, generator=generator), torch.tensor([10, 700]), label_map(2, 2)
    sigma = torch.tensor([0.0, 0.6]) if noise_conditioning else None
    scales = torch.tensor([1.0, 4.0])
    with torch.no_grad():
        expected = student(x, t, y, sigma, guidance=scales)
        swapped = student(x, t, y, sigma, guidance=scales.flip(0))
    output = fast(x, t, y, sigma, guidance=scales)
    assert output.shape == expected.shape and output.dtype == torch.float32
    assert error(output, expected, expected) < FP32_TOLERANCE
    # the tolerance is far below what a dropped or swapped scale would cost
    assert error(swapped, expected, expected) > 5 * FP32_TOLERANCE
    assert error(fast(x, t, y, sigma, guidance=scales.flip(0)), swapped, swapped) < FP32_TOLERANCE
    # a scalar scale is broadcast over the batch, as the torch student does
    with torch.no_grad():
        scalar = student(x, t, y, sigma, guidance=2.5)
    assert error(fast(x, t, y, sigma, guidance=2.5), scalar, scalar) < FP32_TOLERANCE
    with pytest.raises(ValueError, match="pass guidance"):
        fast(x, t, y, sigma)
    with pytest.raises(ValueError, match=">= 0"):
        fast(x, t, y, sigma, guidance=-1.0)


def test_a_teacher_graph_refuses_a_scale(cache):
    pytest.importorskip("onnxruntime")
    fast = compile_unet(tiny_unet(TINY_UNET), backend="onnxruntime", image_size=SIZE, cache_dir=cache)
    assert not fast.guidance_distilled
    with pytest.raises(ValueError, match="not guidance-distilled"):
        fast(torch.zeros(1, 3, *SIZE), torch.tensor([5]), label_map(1, 3), guidance=2.0)


def test_with_backend_samples_a_student_like_torch(cache):
    pytest.importorskip("onnxruntime")
    config = ReceiverConfig(image_size=SIZE, sampler=SamplerConfig(sampler="dpmpp", steps=2, guidance=3.0))
    receiver = DiffusionReceiver(tiny_unet(STUDENT), config)
    fast = with_backend(receiver, backend="onnxruntime", precision="fp32", cache_dir=cache)
    assert isinstance(fast.unet, CompiledUNet) and fast.unet.guidance_distilled
    condition, x_T = label_map(1, 5), torch.randn(1, 3, *SIZE, generator=torch.Generator().manual_seed(6))
    exact = config.sampler.replace(autocast_dtype="float32")
    expected = receiver(condition, x_T=x_T, sampler=exact)
    drift = float((fast(condition, x_T=x_T, sampler=exact) - expected).abs().max())
    assert drift < 1e-3
    # the scale reaches the exported graph through the sampler: another scale gives another image
    other = receiver(condition, x_T=x_T, sampler=exact.replace(guidance=0.0))
    assert float((other - expected).abs().max()) > 100 * drift


def test_a_student_and_its_teacher_never_share_a_cache_entry(cache):
    pytest.importorskip("onnxruntime")
    teacher = tiny_unet(TINY_UNET)
    # copied from the teacher, the student's guidance embedding gives zero: the same outputs, not the same graph
    student = student_from_teacher(teacher).eval()
    assert export_key(student, SIZE) != export_key(teacher, SIZE)
    paths = {
        compile_unet(unet, backend="onnxruntime", image_size=SIZE, cache_dir=cache).model_path
        for unet in (teacher, student)
    }
    assert len(paths) == 2


def test_a_students_calibration_carries_the_scale_and_no_unconditional_pass():
    config = ReceiverConfig(image_size=SIZE, sampler=SamplerConfig(sampler="dpmpp", steps=4, guidance=2.0))
    student = DiffusionReceiver(tiny_unet(STUDENT), config)
    items = calibration_inputs(student, CalibrationConfig(scenes=2, psnrs=(100.0,)))
    assert len(items) == 2  # one pass per step: no all-zero maps
    assert all(item.y.any() and item.guidance.tolist() == [2.0] for item in items)
    teacher = DiffusionReceiver(tiny_unet(TINY_UNET), config)
    assert all(item.guidance is None for item in calibration_inputs(teacher, CalibrationConfig(scenes=1)))


@pytest.mark.slow  # quantisation
def test_an_int8_student_runs_close_to_torch(cache):
    pytest.importorskip("onnxruntime")
    config = ReceiverConfig(image_size=SIZE, sampler=SamplerConfig(sampler="dpmpp", steps=4, guidance=2.0))
    receiver = DiffusionReceiver(tiny_unet(STUDENT), config)
    fast = with_backend(
        receiver,
        backend="onnxruntime",
        precision="int8",
        calibration=CalibrationConfig(scenes=2, psnrs=(100.0, 5.0)),
        cache_dir=cache,
    )
    x, t, y = torch.randn(2, 3, *SIZE), torch.tensor([10, 700]), label_map(2, 2)
    with torch.no_grad():
        expected = receiver.unet(x, t, y, guidance=2.0)
    output = fast.unet(x, t, y, guidance=2.0)
    assert float((output - expected).abs().mean() / expected.std()) < 0.1
