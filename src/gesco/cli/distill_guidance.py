"""``gesco distill-guidance``: distil a receiver's classifier-free guidance into a one-pass student.

The student takes the guidance scale as an input, so each sampler step costs one network forward instead of
two; ``--guidance`` means the same for it as for its teacher. The output's ``model/`` is a receiver folder
(``gesco sample --model OUT/model``). The options override the fields of ``--config`` (default: the built-in
``GuidanceDistillConfig``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gesco.cli.train import positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "distill-guidance",
        help="distil a receiver's guidance into a one-pass student (one forward per sampler step)",
        description=__doc__,
    )
    add_distillation_options(parser, "GuidanceDistillConfig", "1 = conditional model")
    parser.set_defaults(func=run)


def add_distillation_options(parser: argparse.ArgumentParser, config_name: str, guidance_note: str) -> None:
    """The options every distillation command takes; ``distillation_overrides`` reads them back."""
    parser.add_argument("--teacher", help="receiver folder or shipped receiver name (default: the config's)")
    parser.add_argument("--out", type=Path, help="output folder (overrides the config's output_dir)")
    parser.add_argument("--config", type=Path, help=f"{config_name} JSON (default: the built-in settings)")
    parser.add_argument("--steps", type=positive_int, help="override max_steps (training steps)")
    parser.add_argument("--batch-size", type=positive_int, help="override batch_size")
    parser.add_argument("--checkpoint-every", type=positive_int, help="override checkpoint_every")
    parser.add_argument(
        "--guidance-range",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        help=f"guidance scales drawn uniformly in training, 0 <= LO <= HI ({guidance_note})",
    )
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast (mixed_precision='bf16')")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def distillation_overrides(args: argparse.Namespace) -> dict:
    """The config fields the shared options set (None: the option was not given)."""
    return {
        "teacher": args.teacher,
        "output_dir": str(args.out) if args.out else None,
        "max_steps": args.steps,
        "batch_size": args.batch_size,
        "checkpoint_every": args.checkpoint_every,
        "guidance_range": tuple(args.guidance_range) if args.guidance_range else None,
        "mixed_precision": "bf16" if args.bf16 else None,
    }


def apply_overrides(config, overrides: dict):
    return config.replace(**{k: v for k, v in overrides.items() if v is not None})


def report(result, note: str = "") -> int:
    last = f"{result.losses[-1]:.4f}" if result.losses else "n/a"
    print(
        f"distilled to step {result.step} in {result.seconds:.0f} s (last loss {last}); "
        f"receiver in {result.output_dir}/model{note}"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    from gesco.training.guidance_distillation import GuidanceDistillConfig, distill_guidance

    config = GuidanceDistillConfig.load(args.config) if args.config else GuidanceDistillConfig()
    config = apply_overrides(config, distillation_overrides(args))
    return report(distill_guidance(config, resume=args.resume, progress=not args.no_progress))
