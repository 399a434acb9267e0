"""``gesco compare``: GESCO against the classical digital link and Deep JSCC, at equal channel uses, over SNR.

For every image of the evaluation set and every Es/N0 (``--snr``, dB) over ``--channel`` (AWGN, or
Rayleigh block fading with ``--coherence-symbols`` symbols per coefficient and perfect CSI):

- classical: JPEG at the best quality that fits the budget, over 5G LDPC + CRC + QAM (``--modulation``,
  ``--code-rate``, ``--block-bits``); a failed block loses the image (shown mid-grey);
- Deep JSCC (``--deep-jscc``): its fixed channel uses are the budget;
- GESCO-analog (the paper): the map values as unit-power symbols, FDS, the diffusion receiver;
- GESCO-digital: the lossless map code over the same link at the most robust code rate that fits.

Writes ``OUT/report.md`` (tables per metric, channel uses, crossovers), ``results.json``, ``results.csv``,
``plots/<metric>.png``, ``figures/examples_<scene>.png`` and, with ``--detector`` or ``--depth``,
``figures/objects_depth_<scene>.png`` (each method's picture with the boxes found and the depth estimated).
Needs the ``digital`` extra (Sionna) for the two digital methods. Finished image sets are kept on a rerun; the
report moves in as one set, ``results.json`` last, so a failed run leaves the previous report whole.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gesco.cli.backend_options import add_backend_options
from gesco.cli.common import add_ofdm_options, ofdm_options
from gesco.cli.options import (
    add_data_options,
    add_sampler_options,
    add_scoring_options,
    build_scoring,
    evaluation_dataset,
    finite_float,
    geometry_settings,
    parse_seed,
    require_non_negative,
    require_positive,
    sampler_of,
)
from gesco.constants import COMPARE_METHODS, DEFAULT_COHERENCE_SYMBOLS
from gesco.pretrained import DEEP_JSCC, GESCO_RECEIVER, SEGMENTER, TWO_STAGE_RECEIVER

DEFAULT_SNRS = (-5.0, 0.0, 5.0, 10.0, 15.0, 20.0)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="GESCO vs JPEG+LDPC and Deep JSCC at equal channel uses over SNR",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--channel",
        choices=("awgn", "rayleigh", "ofdm"),
        default="awgn",
        help="ofdm: every method over the OFDM link (--ofdm-model, --speed, --delay-spread, --csi, ...)",
    )
    parser.add_argument("--snr", type=finite_float, nargs="+", default=list(DEFAULT_SNRS), help="Es/N0 values in dB")
    parser.add_argument("--n", type=int, default=200, help="images (default 200)")
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=COMPARE_METHODS,
        help="default: all, without gesco-analog-aware when --aware-model is none",
    )
    parser.add_argument("--model", default=GESCO_RECEIVER, help="GESCO receiver: folder or shipped name")
    parser.add_argument(
        "--aware-model",
        default=TWO_STAGE_RECEIVER,
        help=f"receiver of gesco-analog-aware: folder, shipped name (default {TWO_STAGE_RECEIVER}), or 'none'",
    )
    parser.add_argument("--deep-jscc", default=DEEP_JSCC, help="Deep JSCC model: folder or shipped name")
    add_data_options(parser, required=False)
    parser.add_argument("--modulation", choices=("qpsk", "16qam", "64qam"), default="qpsk")
    parser.add_argument("--code-rate", type=float, default=0.5, help="LDPC rate of the classical link (default 1/2)")
    parser.add_argument("--block-bits", type=int, default=1024, help="LDPC information bits per block, CRC included")
    parser.add_argument(
        "--coherence-symbols",
        type=int,
        default=DEFAULT_COHERENCE_SYMBOLS,
        help=f"Rayleigh: symbols per fading coefficient (default {DEFAULT_COHERENCE_SYMBOLS})",
    )
    add_ofdm_options(parser)
    add_sampler_options(parser)
    add_backend_options(parser)
    add_scoring_options(parser, default_segmenter=SEGMENTER)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--examples", type=int, default=2, help="example figures (scenes) to draw (0: none)")
    parser.add_argument("--seed", type=parse_seed, default=0, help="seed of the channel noise and the samplers")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from gesco.baselines.deep_jscc import DeepJSCC
    from gesco.channel.digital.config import DigitalConfig
    from gesco.channel.ofdm.config import OfdmConfig
    from gesco.cli.backend_options import apply_backend, backend_record, backend_sampler, check_backend_options
    from gesco.evaluation.compare import Comparison
    from gesco.evaluation.compare_report import write_compare_report
    from gesco.evaluation.geometry_figure import ObjectsDepthFigure
    from gesco.io import check_output_path
    from gesco.pretrained import resolve
    from gesco.receiver.pipeline import DiffusionReceiver

    require_positive(args, "n", "batch_size", "kid_subsets", "block_bits", "coherence_symbols")
    require_non_negative(args, "examples")
    check_output_path(args.out)  # the report comes after hours of work: refuse an unusable --out now
    digital = DigitalConfig(modulation=args.modulation, code_rate=args.code_rate, block_bits=args.block_bits)
    ofdm_given = {k: v for k, v in ofdm_options(args).items() if v is not None}
    if ofdm_given and args.channel != "ofdm":
        raise ValueError(f"OFDM options {sorted(ofdm_given)} need --channel ofdm, not --channel {args.channel}")
    ofdm = OfdmConfig(**ofdm_given) if args.channel == "ofdm" else None
    check_backend_options(args)
    # gesco-analog and gesco-digital share this receiver
    receiver = apply_backend(args, DiffusionReceiver.from_pretrained(resolve(args.model)))
    deep_jscc = DeepJSCC.from_pretrained(resolve(args.deep_jscc))
    aware = None
    if args.aware_model != "none":
        aware = apply_backend(args, DiffusionReceiver.from_pretrained(resolve(args.aware_model)))
    methods = args.methods or [m for m in COMPARE_METHODS if aware is not None or m != "gesco-analog-aware"]
    sampler = backend_sampler(args, sampler_of(args, receiver.config.sampler, "cpu"))
    dataset = evaluation_dataset(args, tuple(receiver.config.image_size))
    count = min(args.n, len(dataset))
    notes: dict[str, str] = {}
    if count < args.n:
        notes["n"] = f"the data set holds {len(dataset)} items, fewer than --n {args.n}"
    torch.manual_seed(args.seed)
    comparison = Comparison(
        receiver,
        deep_jscc,
        dataset,
        count=count,
        channel=args.channel,
        digital=digital,
        sampler=sampler,
        seed=args.seed,
        batch_size=args.batch_size,
        coherence_symbols=args.coherence_symbols,
        aware=aware,
        progress=not args.no_progress,
        ofdm=ofdm,
    )
    scoring = build_scoring(args, dataset, count, receiver.table, feature_dir=args.out / "features", device="cpu")
    notes.update(scoring.notes)
    settings = {
        "model": str(args.model),
        "deep_jscc": str(args.deep_jscc),
        "aware_model": None if aware is None else str(args.aware_model),
        "data": str(args.data),
        "n": count,
        "channel": args.channel,
        "snr_db": args.snr,
        "digital_link": digital.to_dict(),
        "coherence_symbols": args.coherence_symbols if args.channel == "rayleigh" else None,
        "ofdm": None if ofdm is None else {**ofdm.to_dict(), "label": ofdm.describe()},
        "sampler": sampler.to_dict(),
        **backend_record(args, sampler),
        "segmenter": args.segmenter,
        **geometry_settings(args),
        "seed": args.seed,
    }
    if args.data == "synthetic":
        settings["data_first_seed"] = dataset.seed_offset
        settings["data_riders"] = args.riders
    result = comparison.run(methods, args.snr, args.out, scoring.scorer, settings=settings, notes=notes)
    written = write_compare_report(
        result,
        args.out,
        dataset=dataset,
        examples=args.examples,
        geometry=ObjectsDepthFigure.from_scorer(scoring.scorer),
    )
    print((args.out / "report.md").read_text())
    print(f"wrote {len(written)} files to {args.out}")
    return 0
