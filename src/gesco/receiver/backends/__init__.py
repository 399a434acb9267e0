"""Exported UNet backends: ONNX Runtime and OpenVINO in fp32, bf16 and int8 (``pip install 'gesco[fast]'``).

>>> fast = with_backend(receiver, backend="openvino", precision="int8", cache_dir="~/.cache/gesco")  # doctest: +SKIP
>>> images = fast(condition, generator=torch.Generator().manual_seed(0))  # doctest: +SKIP

:func:`with_backend` returns a new :class:`~gesco.receiver.pipeline.DiffusionReceiver` with the same config whose
UNet is a :class:`CompiledUNet`; int8 is calibrated on :func:`calibration_inputs` of the receiver unless
``calibration`` is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gesco.receiver.backends.calibration import CALIBRATION_SEED, CalibrationConfig, UNetInputs, calibration_inputs
from gesco.receiver.backends.compiled import (
    BACKENDS,
    FAST_EXTRA,
    PRECISIONS,
    BackendConfig,
    BackendUnavailableError,
    CompiledUNet,
    compile_unet,
    require_runtime,
)

if TYPE_CHECKING:
    from gesco.receiver.pipeline import DiffusionReceiver

__all__ = [
    "BACKENDS",
    "CALIBRATION_SEED",
    "FAST_EXTRA",
    "PRECISIONS",
    "BackendConfig",
    "BackendUnavailableError",
    "CalibrationConfig",
    "CompiledUNet",
    "UNetInputs",
    "calibration_inputs",
    "compile_unet",
    "require_runtime",
    "with_backend",
]


def with_backend(
    receiver: DiffusionReceiver,
    *,
    backend: str = "openvino",
    precision: str = "fp32",
    calibration: Sequence[UNetInputs] | CalibrationConfig | None = None,
    cache_dir: str | Path | None = None,
    threads: int | None = None,
) -> DiffusionReceiver:
    """A new receiver with ``receiver``'s config whose UNet runs on ``backend`` in ``precision``.

    ``backend="torch"`` returns ``receiver`` itself (the torch UNet, any precision being the sampler's autocast).
    For int8, ``calibration`` is a list of inputs or a :class:`CalibrationConfig` (default: ``CalibrationConfig()``,
    8 training-range scenes at PSNR 100, 10, 5 and 1 through the link).
    """
    from gesco.receiver.pipeline import DiffusionReceiver

    if backend == "torch":
        return receiver
    if not isinstance(receiver, DiffusionReceiver):
        raise TypeError(f"with_backend takes a DiffusionReceiver, got {type(receiver).__name__}")
    require_runtime(backend, precision)  # before the calibration set is made
    inputs = None
    if precision == "int8":
        if calibration is None or isinstance(calibration, CalibrationConfig):
            inputs = calibration_inputs(receiver, calibration)
        else:
            inputs = list(calibration)
    elif calibration is not None:
        raise ValueError(f"calibration is for int8 only; {precision} takes calibration=None")
    unet = compile_unet(
        receiver.unet,
        backend=backend,
        precision=precision,
        image_size=receiver.config.image_size,
        calibration=inputs,
        cache_dir=cache_dir,
        threads=threads,
    )
    return DiffusionReceiver(unet, receiver.config)
