"""``--backend`` / ``--precision`` in ``gesco evaluate``, ``compare`` and ``serve``: every diffusion receiver runs on
the backend, images match torch's, results.json records it; a student refuses a negative ``--guidance`` early."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gesco.baselines.deep_jscc import DeepJSCC, DeepJSCCConfig
from gesco.cli.backend_options import check_student_guidance
from gesco.cli.main import build_parser, main
from gesco.evaluation.segmenter import GescoSegmenter, SegmenterConfig
from gesco.receiver.pipeline import DiffusionReceiver, ReceiverConfig
from gesco.receiver.sampling import SamplerConfig
from gesco.receiver.unet import GescoUNet, UNetConfig
from helpers import TINY_UNET

SIZE = (16, 32)
SAMPLER = SamplerConfig(sampler="dpmpp", steps=2, guidance=2.0)
#: Largest grey-level difference allowed between a backend's images and torch's: fp32 graphs agree to rounding
#: (outputs within 1e-5 of the std), which moves a pixel across a uint8 boundary at most.
GREY_LEVELS = 1


@pytest.fixture(autouse=True)
def on_one_thread(one_torch_thread):
    yield


def tiny_receiver(folder: Path, seed: int, config: UNetConfig = TINY_UNET, **options) -> Path:
    """A tiny receiver whose zero-initialised layers carry weights too, so that its images depend on the UNet."""
    torch.manual_seed(seed)
    unet = GescoUNet(config).eval()
    with torch.no_grad():
        for parameter in unet.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    DiffusionReceiver(unet, ReceiverConfig(image_size=SIZE, sampler=SAMPLER, **options)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("assets")
    tiny_receiver(root / "gesco", 0)
    tiny_receiver(root / "sdm", 1, training_noise="none")
    tiny_receiver(root / "student", 2, TINY_UNET.replace(guidance_conditioning=True))
    torch.manual_seed(3)
    DeepJSCC(DeepJSCCConfig(image_size=SIZE, hidden_channels=(4, 4, 4, 4))).save_pretrained(root / "djscc")
    GescoSegmenter(SegmenterConfig(widths=(4, 8))).save_pretrained(root / "segmenter")
    labels = root / "labels"
    labels.mkdir()
    Image.fromarray(np.full(SIZE, 7, dtype=np.uint8)).save(labels / "scene.png")
    return root


def images(out: Path) -> dict[Path, np.ndarray]:
    return {p.relative_to(out): np.asarray(Image.open(p), dtype=np.int16) for p in sorted(out.glob("images/**/*.png"))}


def runs_alike(torch_out: Path, backend_out: Path) -> int:
    """The largest grey-level difference between two runs' images (which must be the same files)."""
    expected, got = images(torch_out), images(backend_out)
    assert expected and expected.keys() == got.keys()
    return max(int(np.abs(expected[name] - got[name]).max()) for name in expected)


@pytest.fixture
def backend_calls(monkeypatch) -> list[int]:
    """The batch sizes the exported UNets are called with: proof that the images came from the backend."""
    from gesco.receiver.backends import CompiledUNet

    calls, call = [], CompiledUNet.__call__

    def counted(self, x, *args, **kwargs):
        calls.append(x.shape[0])
        return call(self, x, *args, **kwargs)

    monkeypatch.setattr(CompiledUNet, "__call__", counted)
    return calls


def settings(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())["settings"]


def evaluate_args(assets: Path, out: Path, *extra: str) -> list[str]:
    return [
        "evaluate",
        *("--model", str(assets / "gesco"), "--sdm-model", str(assets / "sdm"), "--data", "synthetic"),
        *("--n", "2", "--psnr", "5", "--methods", "gesco", "sdm", "--batch-size", "2", "--samples", "0"),
        *("--no-fid", "--fp32", "--backend-cache", str(assets / "cache"), "--out", str(out), "--no-progress"),
        *extra,
    ]


def compare_args(assets: Path, out: Path, *extra: str) -> list[str]:
    return [
        "compare",
        *("--model", str(assets / "gesco"), "--aware-model", str(assets / "sdm"), "--deep-jscc", str(assets / "djscc")),
        *("--methods", "gesco-analog", "gesco-analog-aware", "--n", "2", "--snr", "10", "--batch-size", "2"),
        *("--segmenter", str(assets / "segmenter"), "--no-fid", "--examples", "0", "--fp32"),
        *("--backend-cache", str(assets / "cache"), "--out", str(out), "--no-progress"),
        *extra,
    ]


@pytest.mark.parametrize("command", ["evaluate", "compare", "serve"])
def test_the_commands_take_the_backend_options(command, capsys):
    required = {"evaluate": ["--model", "m", "--data", "synthetic", "--out", "o"], "compare": ["--out", "o"]}
    parse = build_parser(command).parse_args
    args = parse([command, *required.get(command, []), "--backend", "openvino", "--precision", "int8"])
    assert (args.backend, args.precision) == ("openvino", "int8")
    defaults = parse([command, *required.get(command, [])])
    assert (defaults.backend, defaults.precision, defaults.backend_cache) == ("torch", None, None)
    with pytest.raises(SystemExit):
        parse([command, *required.get(command, []), "--backend", "tensorrt"])
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.slow  # two tiny UNets exported to ONNX, four short evaluations
def test_evaluate_on_onnxruntime_matches_torch_and_records_the_backend(assets, tmp_path, backend_calls):
    pytest.importorskip("onnxruntime")
    assert main(evaluate_args(assets, tmp_path / "torch")) == 0
    assert not backend_calls  # the default stays on torch
    assert main(evaluate_args(assets, tmp_path / "ort", "--backend", "onnxruntime")) == 0
    # 2 steps of guidance 2 (one batch of 2 conditional + 2 unconditional) for each of GESCO and SDM
    assert backend_calls == [4] * 4
    # both receivers (GESCO and SDM) made images, on the backend within rounding of torch's
    assert {p.parts[1] for p in images(tmp_path / "ort")} == {"gesco", "sdm"}
    assert runs_alike(tmp_path / "torch", tmp_path / "ort") <= GREY_LEVELS
    assert settings(tmp_path / "ort")["backend"] == "onnxruntime"
    assert settings(tmp_path / "ort")["precision"] == "fp32"
    assert settings(tmp_path / "ort")["sampler"]["autocast_dtype"] == "float32"
    assert (settings(tmp_path / "torch")["backend"], settings(tmp_path / "torch")["precision"]) == ("torch", "fp32")


@pytest.mark.slow  # the exported UNets of the evaluate test are cached; two short comparisons
def test_compare_on_onnxruntime_matches_torch_and_records_the_backend(assets, tmp_path, backend_calls):
    pytest.importorskip("onnxruntime")
    assert main(compare_args(assets, tmp_path / "torch")) == 0
    assert not backend_calls
    assert main(compare_args(assets, tmp_path / "ort", "--backend", "onnxruntime")) == 0
    assert len(backend_calls) == 2 * 2  # 2 steps for each of gesco-analog and gesco-analog-aware
    assert {p.parts[1] for p in images(tmp_path / "ort")} == {"gesco-analog", "gesco-analog-aware"}
    assert runs_alike(tmp_path / "torch", tmp_path / "ort") <= GREY_LEVELS
    recorded = settings(tmp_path / "ort")
    assert (recorded["backend"], recorded["precision"]) == ("onnxruntime", "fp32")
    assert settings(tmp_path / "torch")["backend"] == "torch"


def test_every_receiver_of_compare_gets_the_backend(assets, tmp_path, monkeypatch):
    """gesco-analog and gesco-digital share the --model receiver; the aware one is the other: both are handed
    through apply_backend before the comparison starts."""
    import gesco.cli.backend_options as backend_options
    import gesco.evaluation.compare as compare

    handed = []
    monkeypatch.setattr(backend_options, "apply_backend", lambda args, receiver: handed.append(receiver) or receiver)

    def stop(self, receiver, deep_jscc, *rest, aware=None, **options):
        assert receiver is handed[0] and aware is handed[1]
        raise ValueError("stopped before sampling")

    monkeypatch.setattr(compare.Comparison, "__init__", stop)
    assert main(compare_args(assets, tmp_path / "out", "--backend", "onnxruntime")) == 2
    assert len(handed) == 2


@pytest.mark.parametrize("command", ["sample", "evaluate", "compare", "demo"])
def test_a_student_refuses_a_negative_guidance_before_its_first_forward(assets, tmp_path, monkeypatch, capsys, command):
    def forward(*args, **kwargs):
        raise AssertionError("the network ran before the options were checked")

    monkeypatch.setattr(GescoUNet, "forward", forward)
    student, out = str(assets / "student"), tmp_path / "out"
    extra = {
        "sample": ["--labels", str(assets / "labels"), "--psnr", "10"],
        "evaluate": ["--data", "synthetic", "--no-fid"],
        "compare": ["--deep-jscc", str(assets / "djscc"), "--no-fid"],
        "demo": [],
    }[command]
    assert main([command, "--model", student, "--guidance", "-1", "--out", str(out), *extra]) == 2
    assert "--guidance -1: this receiver is guidance-distilled" in capsys.readouterr().err
    assert not out.exists()


def test_evaluate_refuses_a_negative_guidance_sweep_for_a_student(assets, tmp_path, capsys):
    args = ["evaluate", "--model", str(assets / "student"), "--data", "synthetic", "--out", str(tmp_path / "out")]
    assert main([*args, "--no-fid", "--guidance-sweep", "2", "-0.5"]) == 2
    assert "--guidance-sweep -0.5" in capsys.readouterr().err


def test_a_teacher_takes_any_guidance_and_the_check_names_the_option(assets):
    teacher = DiffusionReceiver.from_pretrained(assets / "gesco")
    check_student_guidance(teacher, [-1.0])  # a two-pass teacher follows the formula for any s
    student = DiffusionReceiver.from_pretrained(assets / "student")
    check_student_guidance(student, [None, 0.0, 3.0])
    with pytest.raises(ValueError, match=r"--scale -2: .*s >= 0"):
        check_student_guidance(student, [1.0, -2.0], "--scale")
