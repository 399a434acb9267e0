"""``--backend`` / ``--precision``: which runtime runs the receiver's UNet, shared by every command that loads a
diffusion receiver (``gesco sample``, ``demo``, ``evaluate``, ``compare``, ``serve``).

Like :mod:`gesco.cli.options`, this imports nothing heavy at the top, so ``--help`` stays free of torch.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

BACKEND_CHOICES = ("torch", "onnxruntime", "openvino")
PRECISION_CHOICES = ("fp32", "bf16", "int8")
#: The sampler's torch autocast name of each precision on the torch backend.
TORCH_AUTOCAST = {"fp32": "float32", "bf16": "bfloat16"}


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/gesco/backends`` (``~/.cache/gesco/backends``): exported UNets, reused across runs."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gesco" / "backends"


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("UNet backend (onnxruntime / openvino need: pip install 'gesco[fast]')")
    group.add_argument(
        "--backend",
        choices=BACKEND_CHOICES,
        default="torch",
        help="runtime of the UNet (default torch); the others export it once into --backend-cache",
    )
    group.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        default=None,
        help="torch: fp32 or bf16 autocast (default: bf16 where the CPU has AVX512 / AMX); onnxruntime: fp32 "
        "(default) or int8; openvino: fp32 (default), bf16 or int8 (int8 is calibrated on training-range "
        "synthetic scenes sent through the link)",
    )
    group.add_argument(
        "--backend-cache",
        type=Path,
        default=None,
        help=f"folder of the exported UNets (default {default_cache_dir()})",
    )


def check_backend_options(args: argparse.Namespace) -> None:
    """Refuse contradictory or unavailable choices before any model is loaded.

    Raises:
        ValueError: int8 on torch, ``--fp32`` beside a lower ``--precision``, bf16 on onnxruntime.
        BackendUnavailableError: the runtime is not installed (names ``pip install 'gesco[fast]'``).
    """
    if args.fp32 and args.precision not in (None, "fp32"):
        raise ValueError(f"--fp32 contradicts --precision {args.precision}; give one of them")
    if args.backend == "torch":
        if args.precision == "int8":
            raise ValueError("--precision int8 needs an exported UNet: add --backend openvino or --backend onnxruntime")
        return
    from gesco.receiver.backends import require_runtime

    require_runtime(args.backend, args.precision or "fp32")


def backend_sampler(args: argparse.Namespace, sampler):
    """The sampler config for the chosen backend: torch takes ``--precision`` as its autocast; an exported UNet
    computes in its own precision, so the sampler runs it without autocast (and records float32 for torch)."""
    if args.backend != "torch":
        return sampler.replace(autocast_dtype="float32")
    if args.precision is None:
        return sampler
    return sampler.replace(autocast_dtype=TORCH_AUTOCAST[args.precision])


def check_student_guidance(receiver, scales, option: str = "--guidance") -> None:
    """Refuse a negative guidance scale for a guidance-distilled student before it samples.

    A student takes s as an input and learned it on s >= 0 only (its forward refuses the rest); a two-pass
    teacher follows the guidance formula for any s, so it is left alone.

    Raises:
        ValueError: ``receiver``'s UNet is a student and one of ``scales`` (None: the model's own) is negative.
    """
    from gesco.receiver.guidance import is_guidance_distilled

    negative = [s for s in scales if s is not None and s < 0]
    if negative and is_guidance_distilled(receiver.unet):
        raise ValueError(
            f"{option} {negative[0]:g}: this receiver is guidance-distilled (gesco distill-guidance) and takes "
            "guidance scales s >= 0 only (1 = the conditional model); give a scale >= 0"
        )


def apply_backend(args: argparse.Namespace, receiver):
    """``receiver`` itself on torch, else a copy whose UNet runs on ``--backend`` in ``--precision``.

    Every command hands each receiver it loads through here, so this is also where a student's ``--guidance``
    is checked (:func:`check_student_guidance`), before any export or sampling."""
    check_student_guidance(receiver, [args.guidance])
    if args.backend == "torch":
        return receiver
    from gesco.receiver.backends import with_backend

    return with_backend(
        receiver,
        backend=args.backend,
        precision=args.precision or "fp32",
        cache_dir=args.backend_cache or default_cache_dir(),
    )


def backend_record(args: argparse.Namespace, sampler) -> dict:
    """What records (``record.json``, ``results.json``) say about the UNet's runtime and precision."""
    if args.backend != "torch":
        return {"backend": args.backend, "precision": args.precision or "fp32"}
    names = {torch_name: name for name, torch_name in TORCH_AUTOCAST.items()}
    return {"backend": "torch", "precision": names.get(sampler.autocast_dtype, sampler.autocast_dtype)}
