"""The one precision default: ``autocast_dtype="auto"`` resolves per device when sampling (bf16 where native)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gesco.receiver import guidance
from gesco.receiver.guidance import autocast_dtype_from_name, default_autocast_name, resolve_autocast_name
from gesco.receiver.pipeline import ReceiverConfig
from gesco.receiver.sampling import SamplerConfig, sample


class DtypeRecorder(nn.Module):
    """Epsilon 0 (and a variance value), recording whether each forward ran under CPU autocast and in which dtype."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.dtype | None] = []

    def forward(self, x, t, y):
        enabled = torch.is_autocast_enabled("cpu")
        self.seen.append(torch.get_autocast_dtype("cpu") if enabled else None)
        return torch.zeros(x.shape[0], 6, *x.shape[2:])


@pytest.fixture
def cpu_capability(monkeypatch):
    def set_capability(value: str) -> None:
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: value)

    return set_capability


def test_auto_is_the_default_everywhere():
    assert SamplerConfig().autocast_dtype == "auto"
    assert ReceiverConfig().sampler.autocast_dtype == "auto"


@pytest.mark.parametrize(
    ("capability", "expected"),
    [
        ("AVX512", "bfloat16"),
        ("AMX", "bfloat16"),
        ("AVX2", "float32"),
        ("DEFAULT", "float32"),
        ("NO AVX", "float32"),
    ],
)
def test_auto_on_cpu_follows_the_cpu_capability(cpu_capability, capability, expected):
    cpu_capability(capability)
    assert default_autocast_name("cpu") == expected
    assert resolve_autocast_name("auto", torch.device("cpu")) == expected
    assert autocast_dtype_from_name("auto") == guidance.AUTOCAST_DTYPES[expected]


def test_auto_elsewhere(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert default_autocast_name("cuda") == "bfloat16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert default_autocast_name("cuda:0") == "float32"
    assert default_autocast_name("meta") == "float32"


def test_explicit_names_are_kept_and_unknown_ones_named(cpu_capability):
    cpu_capability("AVX512")
    assert resolve_autocast_name("float32") == "float32" and autocast_dtype_from_name("float32") is None
    assert autocast_dtype_from_name("float16") == torch.float16
    with pytest.raises(ValueError, match="'auto', 'float32', 'bfloat16', 'float16'"):
        resolve_autocast_name("fp8")
    with pytest.raises(ValueError, match="autocast_dtype='fp8'"):
        SamplerConfig(autocast_dtype="fp8")


@pytest.mark.parametrize(
    ("capability", "autocast", "expected"),
    [
        ("AVX512", "auto", torch.bfloat16),
        ("AVX2", "auto", None),
        ("AVX512", "float32", None),
        ("AVX2", "bfloat16", torch.bfloat16),
    ],
)
def test_sample_resolves_the_precision_when_it_runs(cpu_capability, autocast, capability, expected):
    cpu_capability(capability)
    model = DtypeRecorder()
    y, x_T = torch.zeros(1, 2, 4, 4), torch.zeros(1, 3, 4, 4)
    sample(
        model,
        y,
        SamplerConfig(sampler="dpmpp", steps=2, guidance=1.0, autocast_dtype=autocast),
        x_T=x_T,
        progress=False,
    )
    assert model.seen == [expected, expected]
