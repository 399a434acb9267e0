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
from pathlib import Path

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
    parser.add_argument("--teacher", help="receiver folder or shipped receiver name (default: the config's)")
    parser.add_argument("--out", type=Path, help="output folder (overrides the config's output_dir)")
    parser.add_argument("--config", type=Path, help="ConsistencyDistillConfig JSON (default: the built-in settings)")
    parser.add_argument("--steps", type=positive_int, help="override max_steps (training steps)")
    parser.add_argument("--batch-size", type=positive_int, help="override batch_size")
    parser.add_argument("--checkpoint-every", type=positive_int, help="override checkpoint_every")
    parser.add_argument(
        "--guidance-range",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        help="guidance scales drawn uniformly in training, 0 <= LO <= HI (must hold the teacher's default)",
    )
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
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast (mixed_precision='bf16')")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gesco.training.consistency_distillation import ConsistencyDistillConfig, distill_consistency

    config = ConsistencyDistillConfig.load(args.config) if args.config else ConsistencyDistillConfig()
    overrides = {
        "teacher": args.teacher,
        "output_dir": str(args.out) if args.out else None,
        "max_steps": args.steps,
        "batch_size": args.batch_size,
        "checkpoint_every": args.checkpoint_every,
        "guidance_range": tuple(args.guidance_range) if args.guidance_range else None,
        "num_ddim_timesteps": args.num_ddim_timesteps,
        "learning_rate": args.learning_rate,
        "student_init": args.student_init,
        "mixed_precision": "bf16" if args.bf16 else None,
    }
    config = config.replace(**{k: v for k, v in overrides.items() if v is not None})
    result = distill_consistency(config, resume=args.resume, progress=not args.no_progress)
    last = f"{result.losses[-1]:.4f}" if result.losses else "n/a"
    print(
        f"distilled to step {result.step} in {result.seconds:.0f} s (last loss {last}); "
        f"receiver in {result.output_dir}/model (sampler lcm)"
    )
    return 0
