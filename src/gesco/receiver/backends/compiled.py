"""The GESCO UNet exported to ONNX and run by ONNX Runtime or OpenVINO, in fp32, bf16 or int8.

Files are cached under a folder the caller names: one ONNX export per (weights, architecture, image size, torch),
and from it one file per (backend, int8 or float, runtime versions, calibration set). Each is built aside and moved
into place in one step, so a killed build never leaves a file that loads. Nothing is downloaded.

- ``fp32``: the exported graph as it is.
- ``bf16`` (OpenVINO only): OpenVINO's CPU plugin runs the same graph with bfloat16 kernels
  (``INFERENCE_PRECISION_HINT``) on CPUs with AVX512-BF16 or AMX. ONNX Runtime's CPU provider has no bfloat16
  convolutions, so it refuses bf16.
- ``int8``: post-training static quantisation with real int8 kernels (VNNI): NNCF for OpenVINO, ONNX Runtime's
  QDQ quantiser (convolutions and matrix products, per-channel weights) for ONNX Runtime, both calibrated on
  :func:`~gesco.receiver.backends.calibration.calibration_inputs`.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from gesco.config import Config
from gesco.io import output_folder
from gesco.receiver.backends.calibration import UNetInputs
from gesco.receiver.unet import GescoUNet, UNetConfig
from gesco.receiver.unet.config import check_image_size

BACKENDS = ("onnxruntime", "openvino")
PRECISIONS = ("fp32", "bf16", "int8")
#: The extra that installs both runtimes and NNCF.
FAST_EXTRA = "pip install 'gesco[fast]'"
#: The runtime modules each backend needs at each precision.
REQUIRED_MODULES = {
    ("onnxruntime", "fp32"): ("onnxruntime", "onnx"),
    ("onnxruntime", "int8"): ("onnxruntime", "onnx"),
    ("openvino", "fp32"): ("openvino", "onnx"),
    ("openvino", "bf16"): ("openvino", "onnx"),
    ("openvino", "int8"): ("openvino", "onnx", "nncf"),
}
OPSET = 17
#: Exported node names (ONNX scope paths) that int8 leaves in float: the timestep / noise-level embeddings and the
#: first and last convolutions, where the UNet's input and output errors are not averaged over many channels.
FLOAT_LAYERS = [".*time_embedding.*", ".*noise_embedding.*", ".*input_conv.*", ".*out_conv.*"]


class BackendUnavailableError(ImportError, ValueError):
    """A runtime the chosen backend needs is not installed; the message names the extra that installs it.

    Also a ``ValueError``, so that the command line reports it in one line as a choice the user can change."""


@dataclass(frozen=True)
class BackendConfig(Config):
    """Which runtime runs the UNet, in which precision, at which image size.

    Attributes:
        backend: "onnxruntime" or "openvino".
        precision: "fp32", "bf16" (OpenVINO only) or "int8" (needs calibration inputs).
        image_size: (height, width) the graph is exported for; the batch size stays free.
        threads: CPU threads of the runtime; None takes ``torch.get_num_threads()`` when compiling, so a backend
            keeps to the same thread budget as the torch UNet it replaces.
    """

    backend: Literal["onnxruntime", "openvino"] = "openvino"
    precision: Literal["fp32", "bf16", "int8"] = "fp32"
    image_size: tuple[int, int] = (64, 128)
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {list(BACKENDS)}, got {self.backend!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {self.precision!r}")
        if (self.backend, self.precision) not in REQUIRED_MODULES:
            raise ValueError(
                f"{self.backend} cannot run {self.precision}: ONNX Runtime's CPU provider has no bfloat16 "
                "convolution kernels; use backend='openvino' for bf16, or precision 'fp32' / 'int8'"
            )
        if self.threads is not None and (isinstance(self.threads, bool) or self.threads < 1):
            raise ValueError(f"threads must be a positive int or None, got {self.threads!r}")


def require_runtime(backend: str, precision: str) -> None:
    """Raise :class:`BackendUnavailableError` naming ``gesco[fast]`` if a module the path needs is missing."""
    BackendConfig(backend=backend, precision=precision)  # names a bad backend / precision first
    for module in REQUIRED_MODULES[backend, precision]:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise BackendUnavailableError(
                f"the {backend} backend in {precision} needs the Python package {module!r}, which is not "
                f"installed: {FAST_EXTRA}"
            ) from err


class _ExportedUNet(nn.Module):
    """The UNet with a positional argument list for tracing, in the order of :func:`input_names`."""

    def __init__(self, unet: GescoUNet):
        super().__init__()
        self.unet = unet
        self.names = input_names(unet.config)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        named = dict(zip(self.names, inputs, strict=True))
        return self.unet(named["x"], named["t"], named["y"], named.get("sigma"), guidance=named.get("guidance"))


def input_names(config: UNetConfig) -> tuple[str, ...]:
    """The exported graph's inputs: x, t, y, then sigma (a noise-conditioned network) and guidance (a
    guidance-distilled student, which takes the scale s as an input)."""
    optional = (("sigma", config.noise_conditioning), ("guidance", config.guidance_conditioning))
    return ("x", "t", "y", *(name for name, present in optional if present))


def export_onnx(unet: GescoUNet, path: Path, image_size: tuple[int, int]) -> Path:
    """Trace ``unet`` (in eval mode, unchanged) into an fp32 ONNX file with a free batch dimension.

    t, sigma and guidance enter as float32 (B,): the timestep embedding reads fractional timesteps as the torch
    UNet does.
    """
    config = unet.config
    height, width = image_size
    names = input_names(config)
    values = {
        "x": torch.zeros(1, config.in_channels, height, width),
        "t": torch.full((1,), 500.0),
        "y": torch.zeros(1, config.label_channels, height, width),
        "sigma": torch.full((1,), 0.1),
        "guidance": torch.full((1,), 2.0),
    }
    example = tuple(values[name] for name in names)
    was_training = unet.training
    unet.eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # the UNet's input checks become constants in the trace; the runtime wrapper re-checks each call
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _ExportedUNet(unet),
                example,
                str(path),
                input_names=list(names),
                output_names=["output"],
                dynamic_axes={name: {0: "batch"} for name in (*names, "output")},
                opset_version=OPSET,
                dynamo=False,
            )
    finally:
        unet.train(was_training)
    return path


def _bytes(tensor: torch.Tensor) -> bytes:
    # float32 covers every weight dtype exactly; the copy also drops channels_last strides
    return np.ascontiguousarray(tensor.detach().cpu().float().numpy()).tobytes()


def export_key(unet: GescoUNet, image_size: tuple[int, int]) -> str:
    """A hash of what the exported ONNX graph depends on: weights, architecture, image size, torch and opset.

    The architecture is the whole :class:`UNetConfig`, so a guidance-distilled student (whose graph takes the
    scale as an input) never shares an entry with its teacher, even before its guidance embedding is trained."""
    digest = hashlib.sha256()
    settings = {"unet": unet.config.to_dict(), "image_size": list(image_size), "torch": torch.__version__}
    digest.update(json.dumps({**settings, "opset": OPSET}, sort_keys=True).encode())
    for name, tensor in unet.state_dict().items():
        digest.update(name.encode())
        digest.update(_bytes(tensor))
    return digest.hexdigest()[:20]


def derived_key(key: str, config: BackendConfig, calibration: Sequence[UNetInputs] | None) -> str:
    """``key`` extended by what a backend's own files depend on: the runtime versions and the calibration set."""
    digest = hashlib.sha256(key.encode())
    for module in REQUIRED_MODULES[config.backend, config.precision]:
        digest.update(f"{module} {getattr(importlib.import_module(module), '__version__', '')}".encode())
    for item in calibration or ():
        for tensor in (item.x, item.t, item.y, item.sigma, item.guidance):
            if tensor is not None:
                digest.update(_bytes(tensor))
    return digest.hexdigest()[:20]


def _feeds(inputs: UNetInputs, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Runtime inputs: contiguous float32 arrays (channels_last tensors are copied to NCHW here)."""
    values = {"x": inputs.x, "t": inputs.t, "y": inputs.y, "sigma": inputs.sigma, "guidance": inputs.guidance}
    return {name: values[name].detach().to(torch.float32).contiguous().numpy() for name in names}


def _quantize_onnxruntime(onnx_path: Path, target: Path, calibration, names) -> None:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            item = next(self.items, None)
            return None if item is None else _feeds(item, names)

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    keep_float = [node.name for node in graph.node if any(re.fullmatch(p, node.name) for p in FLOAT_LAYERS)]
    # Convolutions and matrix products hold nearly all the FLOPs; quantising the element-wise ops too would only
    # add quantise / dequantise pairs around float work.
    quantize_static(
        str(onnx_path),
        str(target),
        Reader(),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["Conv", "MatMul", "Gemm"],
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=keep_float,
    )


def _convert_openvino(onnx_path: Path, target: Path, calibration, names) -> None:
    import openvino as ov

    model = ov.Core().read_model(str(onnx_path))
    if calibration is not None:
        import nncf

        dataset = nncf.Dataset(list(calibration), lambda item: _feeds(item, names))
        # Measured on the shipped receiver's calibration set: the transformer scheme (which leaves attention's
        # softmax path alone) and float embeddings and first / last convs halve the largest epsilon error
        # (0.73 -> 0.37) at no speed cost: those layers hold a tiny share of the FLOPs.
        model = nncf.quantize(
            model,
            dataset,
            preset=nncf.QuantizationPreset.MIXED,  # symmetric weights, asymmetric (one-sided SiLU) activations
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(calibration),
            ignored_scope=nncf.IgnoredScope(patterns=FLOAT_LAYERS, validate=False),
        )
    # fp16 weight compression would add its own drift to every precision
    ov.save_model(model, str(target), compress_to_fp16=False)


def _cached(folder: Path, name: str, make) -> Path:
    """``folder / name``, made by ``make(staging / name)`` unless there; built aside, moved in with ``name`` last
    (OpenVINO's ``.bin`` goes before its ``.xml``), so that a killed build leaves nothing that loads."""
    if not (folder / name).is_file():
        with output_folder(folder, last=[name]) as staging:
            make(staging / name)
    return folder / name


def build(unet: GescoUNet, cache: Path, config: BackendConfig, calibration: Sequence[UNetInputs] | None) -> Path:
    """The model file of ``config`` under ``cache``, exporting and converting what is not cached yet.

    One ONNX export per weights and size serves every backend and precision; OpenVINO's fp32 and bf16 share one
    IR (bf16 is a compile-time choice)."""
    names = input_names(unet.config)
    key = export_key(unet, config.image_size)
    exported = _cached(cache / f"onnx-{key}", "unet.onnx", lambda path: export_onnx(unet, path, config.image_size))
    int8 = config.precision == "int8"
    if config.backend == "onnxruntime":
        if not int8:
            return exported
        folder = cache / f"onnxruntime-int8-{derived_key(key, config, calibration)}"
        return _cached(folder, "unet.onnx", lambda path: _quantize_onnxruntime(exported, path, calibration, names))
    kind = "int8" if int8 else "float"
    folder = cache / f"openvino-{kind}-{derived_key(key, config, calibration)}"
    return _cached(folder, "unet.xml", lambda path: _convert_openvino(exported, path, calibration, names))


class CompiledUNet:
    """A drop-in for :class:`~gesco.receiver.unet.GescoUNet` in the samplers: ``model(x, t, y[, sigma])``, and
    ``model(x, t, y[, sigma], guidance=s)`` for a guidance-distilled student.

    Takes any batch size (the sampler's B, or 2B for one-pass guidance) at the exported image size, on the CPU,
    and returns float32 (B, out_channels, H, W) contiguous, as the fp32 torch UNet does.
    Made by :func:`gesco.receiver.backends.compile_unet`.
    """

    def __init__(self, model_path: Path, unet_config: UNetConfig, config: BackendConfig, *, keep: Any = None):
        self.config = unet_config
        self.backend_config = config
        self.model_path = model_path
        self._keep = keep  # a temporary cache folder lives as long as this object
        self._names = input_names(unet_config)
        threads = config.threads or torch.get_num_threads()
        if config.backend == "onnxruntime":
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            self._session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        else:
            import openvino as ov

            self._core = ov.Core()
            if config.precision == "bf16" and "BF16" not in self._core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
                raise RuntimeError(
                    "this CPU has no bfloat16 kernels for OpenVINO (AVX512-BF16 or AMX); use precision 'fp32' or 'int8'"
                )
            # int8 layers run int8 whatever the hint; the hint sets the precision of the rest of the graph.
            # One graph with a free batch: measured as fast as a graph compiled per batch size, at one compile.
            options = {
                "INFERENCE_PRECISION_HINT": "bf16" if config.precision == "bf16" else "f32",
                "INFERENCE_NUM_THREADS": threads,
                "PERFORMANCE_HINT": "LATENCY",
            }
            self._compiled = self._core.compile_model(str(model_path), "CPU", options)

    @property
    def guidance_distilled(self) -> bool:
        """As :attr:`GescoUNet.guidance_distilled`: the sampler then runs one pass with s as the graph's input."""
        return self.config.guidance_conditioning

    def eval(self) -> CompiledUNet:
        """Already an inference graph; kept so that ``DiffusionReceiver`` can call it as on a torch module."""
        return self

    def __repr__(self) -> str:
        return f"CompiledUNet({self.backend_config.backend}, {self.backend_config.precision}, {self.model_path})"

    def __call__(
        self,
        x: torch.Tensor,
        t: torch.Tensor | int | float,
        y: torch.Tensor,
        sigma: torch.Tensor | None = None,
        *,
        guidance: torch.Tensor | float | None = None,
    ) -> torch.Tensor:
        """Same arguments and checks as :meth:`GescoUNet.forward`; float32 output on the CPU."""
        inputs = self._check(x, t, y, sigma, guidance)
        feeds = _feeds(inputs, self._names)
        if self.backend_config.backend == "onnxruntime":
            output = self._session.run(None, feeds)[0]
        else:
            output = self._compiled(feeds)[0]
        return torch.from_numpy(np.ascontiguousarray(output, dtype=np.float32))

    def _check(self, x, t, y, sigma, guidance) -> UNetInputs:
        config, size = self.config, tuple(self.backend_config.image_size)
        if x.device.type != "cpu" or y.device.type != "cpu":
            raise ValueError(f"the {self.backend_config.backend} backend runs on the CPU; got x on {x.device}")
        if x.ndim != 4 or x.shape[1] != config.in_channels or tuple(x.shape[2:]) != size:
            raise ValueError(
                f"x must be (B, {config.in_channels}, {size[0]}, {size[1]}) (the size this UNet was exported for), "
                f"got {tuple(x.shape)}"
            )
        if tuple(y.shape) != (x.shape[0], config.label_channels, *size):
            raise ValueError(f"y must be {(x.shape[0], config.label_channels, *size)}, got {tuple(y.shape)}")
        t = torch.as_tensor(t)
        t = t.expand(x.shape[0]) if t.ndim == 0 else t
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must be a scalar or have shape ({x.shape[0]},), got {tuple(t.shape)}")
        if config.noise_conditioning:
            sigma = GescoUNet._check_sigma(sigma, x)
        elif sigma is not None:
            raise ValueError(
                "this network is not conditioned on the noise level (noise_conditioning=False): pass sigma=None"
            )
        if config.guidance_conditioning:
            guidance = GescoUNet._check_guidance(guidance, x)
        elif guidance is not None:
            raise ValueError(
                "this network is not guidance-distilled (guidance_conditioning=False): pass guidance=None and let "
                "the sampler combine its conditional and unconditional passes"
            )
        return UNetInputs(x, t, y, sigma, guidance)


def compile_unet(
    unet: GescoUNet,
    *,
    backend: str = "openvino",
    precision: str = "fp32",
    image_size: tuple[int, int] = (64, 128),
    calibration: Sequence[UNetInputs] | None = None,
    cache_dir: str | Path | None = None,
    threads: int | None = None,
) -> CompiledUNet:
    """Export ``unet`` to ``backend`` in ``precision`` and load it as a drop-in denoiser.

    Args:
        unet: the torch UNet (left unchanged).
        backend: "onnxruntime" or "openvino".
        precision: "fp32", "bf16" (OpenVINO) or "int8".
        image_size: (height, width) of the images the sampler will run (a receiver's ``config.image_size``).
        calibration: int8 only: the inputs the quantiser measures activation ranges on, e.g.
            :func:`~gesco.receiver.backends.calibration.calibration_inputs` of the receiver.
        cache_dir: folder of the exported files (one sub-folder per export / conversion), reused across runs; None
            exports into a temporary folder removed with the returned object.
        threads: CPU threads of the runtime (default: torch's).

    Raises:
        BackendUnavailableError: the runtime is not installed (``pip install 'gesco[fast]'``).
        ValueError: an unknown backend or precision, bf16 on ONNX Runtime, int8 without calibration inputs.

    Example:
        >>> fast = compile_unet(unet, backend="openvino", precision="bf16", image_size=(64, 128))  # doctest: +SKIP
        >>> fast(x, t, y).shape == unet(x, t, y).shape  # doctest: +SKIP
    """
    if not isinstance(unet, GescoUNet):
        raise TypeError(f"compile_unet exports a GescoUNet, got {type(unet).__name__}")
    image_size = check_image_size(tuple(image_size), unet.config)
    config = BackendConfig(backend=backend, precision=precision, image_size=image_size, threads=threads)
    require_runtime(backend, precision)
    if precision == "int8":
        if not calibration:
            raise ValueError(
                "int8 needs calibration inputs: pass calibration=calibration_inputs(receiver) "
                "(gesco.receiver.backends), noisy maps at the sampler's timesteps"
            )
    elif calibration is not None:
        raise ValueError(f"calibration inputs are for int8 only; {precision} takes calibration=None")
    keep = None
    if cache_dir is None:
        keep = tempfile.TemporaryDirectory(prefix="gesco-backend-")
        cache_dir = keep.name
    model_path = build(unet, Path(cache_dir).expanduser(), config, calibration)
    # threads are not part of the files: the cached graph serves any thread count
    return CompiledUNet(model_path, unet.config, config, keep=keep)
