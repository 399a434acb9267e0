"""``gesco train-deep-jscc``: train the Deep JSCC baseline of ``gesco compare`` through the AWGN channel.

The config (``configs/train-deep-jscc-synthetic.json``) fixes the data, the image size, the latent width
(hence the channel uses per pixel) and the training SNRs. ``OUT/model`` is the trained model (for
``gesco compare --deep-jscc``), ``OUT/checkpoints`` the resumable state, ``OUT/history.json`` the validation
PSNR per training SNR at every checkpoint.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gesco.cli.train import positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-deep-jscc",
        help="train the Deep JSCC baseline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, required=True, help="a DeepJSCCTrainConfig JSON file")
    parser.add_argument("--out", type=Path, help="override the config's output_dir")
    parser.add_argument("--max-steps", type=positive_int, help="override the config's max_steps")
    parser.add_argument(
        "--channel-uses-per-pixel", type=float, help="set the latent width for this many complex channel uses per pixel"
    )
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gesco.baselines.deep_jscc import latent_channels_for
    from gesco.baselines.deep_jscc_training import DeepJSCCTrainConfig, train_deep_jscc

    config = DeepJSCCTrainConfig.load(args.config)
    if args.out is not None:
        config = config.replace(output_dir=str(args.out))
    if args.max_steps is not None:
        config = config.replace(max_steps=args.max_steps)
    if args.channel_uses_per_pixel is not None:
        config = config.replace(
            model=config.model.replace(latent_channels=latent_channels_for(args.channel_uses_per_pixel))
        )
    result = train_deep_jscc(config, resume=args.resume, progress=not args.no_progress)
    psnr = ", ".join(f"{snr} dB: {value:.2f}" for snr, value in result.validation_psnr.items())
    print(
        f"trained Deep JSCC to step {result.step} in {result.seconds:.0f} s "
        f"({config.model.channel_uses_per_pixel:.3f} channel uses per pixel); validation PSNR {psnr}; "
        f"model in {Path(config.output_dir) / 'model'}"
    )
    return 0
