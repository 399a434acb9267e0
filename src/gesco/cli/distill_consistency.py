"""``gesco distill-consistency``: distil a receiver into a consistency model that samples in 2-8 steps.

Guided consistency distillation (Luo et al. 2023, "Latent Consistency Models", in pixel space): the student
takes the guidance scale as an input and learns to map any point of the guided teacher's sampling path to its
image, so the ``lcm`` sampler needs one network forward per step and a few steps. The teacher may be a
``distill-guidance`` student (one pass per guided prediction) or a two-pass receiver. The output's ``model/`` is a
receiver folder whose default sampler is ``lcm`` (``gesco sample --model OUT/model``, ``gesco evaluate --model
OUT/model --sampler lcm --steps 4``). The options override the fields of ``--config`` (default: the built-in
``ConsistencyDistillConfig``).
"""

from __future__ import annotations

import argparse

from gesco.cli.distill_guidance import add_distillation_options, apply_overrides, distillation_overrides, report
from gesco.cli.train import positive_int


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "distill-consistency",
        help="distil a receiver into a consistency model (lcm sampler, 2-8 steps of one forward)",
        description=__doc__,
    )
    add_distillation_options(parser, "ConsistencyDistillConfig", "must hold the teacher's default")
    parser.add_argument(
        "--num-ddim-timesteps",
        type=positive_int,
        help="points of the skip-step schedule (default 50; the lcm sampler's steps are a subset of it)",
    )
    parser.add_argument(
        "--student-init",
        help="a distill-guidance student of the same teacher to start from (default: the teacher's weights)",
    )
    parser.add_argument("--learning-rate", type=positive_float, help="override learning_rate (default 2e-5)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gesco.training.consistency_distillation import ConsistencyDistillConfig, distill_consistency

    config = ConsistencyDistillConfig.load(args.config) if args.config else ConsistencyDistillConfig()
    overrides = distillation_overrides(args) | {
        "num_ddim_timesteps": args.num_ddim_timesteps,
        "learning_rate": args.learning_rate,
        "student_init": args.student_init,
    }
    config = apply_overrides(config, overrides)
    result = distill_consistency(config, resume=args.resume, progress=not args.no_progress)
    return report(result, " (sampler lcm)")
