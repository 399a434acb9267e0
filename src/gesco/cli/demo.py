"""``gesco demo``: held-out synthetic scenes through the link with the shipped models, in under a minute on a CPU.

Each scene's map goes through the transmitter and the AWGN channel at each PSNR label, then FDS and the
shipped GESCO receiver (its own sampler: SDE-DPM-Solver++, 20 steps), beside the shipped SDM-style receiver
(trained on clean maps) and gesco's channel-aware receiver: by default the two-stage one (the learned map
denoiser, told the channel's noise level, then the SDM-style network on its clean map); ``--aware-model
synthetic-streets-64x128-channel-aware`` shows the noise-conditioned GESCO network instead, ``--aware-model
none`` leaves it out. The networks run under bfloat16 autocast where the CPU has AVX512 /
AMX (``--fp32``: float32). Writes ``OUT/figure.png`` (image | map | received | FDS | GESCO | SDM-style |
channel-aware, a row per scene and PSNR),
``OUT/table.md`` (printed too: payload bits against PNG / JPEG of the image, mIoU by the shipped segmenter,
SSIM, seconds) and ``OUT/results.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gesco.cli.backend_options import add_backend_options
from gesco.cli.options import add_sampler_options, sampler_of
from gesco.constants import DEMO_PSNRS, EVALUATION_SEED_OFFSET
from gesco.pretrained import GESCO_RECEIVER, SDM_RECEIVER, SEGMENTER, TWO_STAGE_RECEIVER


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the whole link on held-out synthetic scenes with the shipped models",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("gesco-demo"), help="output folder (default ./gesco-demo)")
    parser.add_argument(
        "--scene-seed",
        type=int,
        default=EVALUATION_SEED_OFFSET,
        help=f"seed of the first synthetic scene (default {EVALUATION_SEED_OFFSET}, held out of training)",
    )
    # one scene by default keeps three receivers x four PSNR labels under a minute on a 2-core CPU
    parser.add_argument("--scenes", type=int, default=1, help="number of scenes (default 1)")
    parser.add_argument(
        "--psnr",
        type=float,
        nargs="+",
        default=list(DEMO_PSNRS),
        help=f"paper PSNR labels (default {' '.join(f'{p:g}' for p in DEMO_PSNRS)})",
    )
    add_sampler_options(parser)
    add_backend_options(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of the channel noise, x_T and the sampler noise")
    parser.add_argument("--model", default=GESCO_RECEIVER, help="GESCO receiver: folder or shipped name")
    parser.add_argument("--sdm-model", default=SDM_RECEIVER, help="SDM-style receiver: folder or shipped name")
    parser.add_argument(
        "--aware-model",
        default=TWO_STAGE_RECEIVER,
        help=f"channel-aware receiver: folder, shipped name (default {TWO_STAGE_RECEIVER}), or 'none' to leave it out",
    )
    parser.add_argument("--segmenter", default=SEGMENTER, help="segmenter for mIoU: folder or shipped name")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gesco.cli.backend_options import apply_backend, backend_record, backend_sampler, check_backend_options
    from gesco.evaluation.demo import demo_record, demo_table, run_demo
    from gesco.evaluation.segmenter import GescoSegmenter
    from gesco.io import atomic_write_text, output_folder, write_json
    from gesco.pretrained import resolve
    from gesco.receiver.pipeline import DiffusionReceiver

    check_backend_options(args)
    gesco = apply_backend(args, DiffusionReceiver.from_pretrained(resolve(args.model)))
    sdm = apply_backend(args, DiffusionReceiver.from_pretrained(resolve(args.sdm_model)))
    aware = None
    if args.aware_model != "none":
        aware = apply_backend(args, DiffusionReceiver.from_pretrained(resolve(args.aware_model)))
    segmenter = GescoSegmenter.from_pretrained(resolve(args.segmenter))
    sampler = backend_sampler(args, sampler_of(args, gesco.config.sampler, "cpu"))
    # the figure, table and results are built aside and moved into --out together (results.json last)
    with output_folder(args.out, last=["results.json"]) as staging:
        result = run_demo(
            staging,
            gesco=gesco,
            sdm=sdm,
            aware=aware,
            segmenter=segmenter,
            scenes=args.scenes,
            first_seed=args.scene_seed,
            psnrs=args.psnr,
            sampler=sampler,
            seed=args.seed,
            progress=not args.no_progress,
        )
        table = demo_table(result)
        atomic_write_text(staging / "table.md", table)
        write_json(staging / "results.json", {**demo_record(result), **backend_record(args, sampler)})
    print()
    print(table, end="")
    figure = args.out / result.figure.relative_to(staging)
    print(f"\nwrote {figure}, {args.out / 'table.md'} and {args.out / 'results.json'}")
    return 0
