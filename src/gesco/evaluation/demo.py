"""``gesco demo``: the whole idea on held-out synthetic scenes with the shipped models, in under a minute.

Scenes -> transmitter -> AWGN at each PSNR label -> FDS -> the shipped GESCO receiver, beside the SDM-style
receiver (trained on clean maps, fed the received map without FDS, as in the paper's comparison). The
regenerations are segmented by the shipped segmenter and compared with the transmitted map (mIoU) and with the
original image (SSIM). Every receiver starts from the same x_T and sees the same received map (the evaluation
sweep's seeding), so the rows differ only by the model.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from gesco.baselines.accounting import PayloadSizes, mean_payload_sizes, payload_sizes
from gesco.channel.awgn import AWGNChannel
from gesco.channel.quality import ChannelQuality, paper_sigma
from gesco.constants import DEMO_PSNRS, EVALUATION_SEED_OFFSET
from gesco.datasets.base import collate
from gesco.datasets.synthetic import SyntheticStreetsDataset
from gesco.evaluation.figures import condition_to_rgb, image_to_rgb, save_grid
from gesco.evaluation.metrics import EvaluationClasses, PairedImageMetrics, SegmentationConfusion
from gesco.evaluation.segmenter import GescoSegmenter
from gesco.evaluation.sweep import CHANNEL_STREAM, seeded_generator, starting_noise
from gesco.link import Link
from gesco.receiver.pipeline import DiffusionReceiver
from gesco.receiver.receiver import Receiver
from gesco.receiver.sampling import SamplerConfig
from gesco.semantics.maps import SemanticMap

GESCO_COLUMN, SDM_COLUMN, AWARE_COLUMN = "GESCO", "SDM-style", "channel-aware"


@dataclass(frozen=True)
class DemoRow:
    """Scores at one PSNR label over the demo's scenes (mIoU pooled over all their pixels; SSIM averaged)."""

    psnr: float
    sigma: float
    received_map_miou: float
    gesco_miou: float
    sdm_miou: float
    gesco_ssim: float
    sdm_ssim: float
    #: gesco's channel-aware receiver (noise-conditioned), when the demo runs one.
    aware_miou: float | None = None
    aware_ssim: float | None = None


@dataclass(frozen=True)
class DemoResult:
    scenes: int
    first_seed: int
    image_size: tuple[int, int]
    sampler: SamplerConfig
    real_image_miou: float
    #: Mean payload sizes per image (``gesco.baselines.accounting``).
    payload: PayloadSizes
    rows: list[DemoRow]
    seconds_per_image: dict[str, float]
    figure: Path


def _miou(predicted: torch.Tensor, labels: torch.Tensor, classes: EvaluationClasses) -> float:
    confusion = SegmentationConfusion(classes)
    confusion.update(predicted, labels)
    return confusion.compute().miou


def _ssim(images: torch.Tensor, reference: torch.Tensor) -> float:
    metrics = PairedImageMetrics(ms_ssim=False)
    metrics.update(images, reference)
    return metrics.compute().ssim


def sampler_for(receiver: DiffusionReceiver, sampler: SamplerConfig) -> SamplerConfig:
    """``sampler`` when it fits ``receiver``; else the receiver's own sampler in ``sampler``'s precision (the lcm
    sampler fits only consistency-distilled receivers, and only it fits them)."""
    if (sampler.sampler == "lcm") == (receiver.config.sampler.sampler == "lcm"):
        return sampler
    return receiver.config.sampler.replace(autocast_dtype=sampler.autocast_dtype)


def run_demo(
    out: str | Path,
    *,
    gesco: DiffusionReceiver,
    sdm: DiffusionReceiver,
    segmenter: GescoSegmenter,
    aware: DiffusionReceiver | None = None,
    scenes: int = 2,
    first_seed: int = EVALUATION_SEED_OFFSET,
    psnrs: Sequence[float] = DEMO_PSNRS,
    sampler: SamplerConfig | None = None,
    seed: int = 0,
    progress: bool = True,
) -> DemoResult:
    """Run the demo and write ``OUT/figure.png`` (a row per scene and PSNR label).

    Args:
        gesco, sdm: the noise-aware receiver and the clean-trained one (same class table and image size).
        aware: gesco's channel-aware receiver (told the channel's sigma), shown beside them when given.
        segmenter: scores the regenerations (mIoU against the transmitted map).
        scenes: held-out synthetic scenes, seeds ``first_seed ..``.
        psnrs: paper PSNR labels.
        sampler: default: the GESCO receiver's own sampler; a receiver it does not fit (a consistency-distilled one
            beside diffusion ones, or the other way round) keeps its own, in the same precision.
        seed: seeds the channel noise, x_T and the sampler's per-step noise.
    """
    if scenes < 1:
        raise ValueError(f"scenes must be >= 1, got {scenes}")
    if not psnrs:
        raise ValueError("give at least one PSNR label")
    for psnr in psnrs:
        paper_sigma(psnr)  # an unknown label fails before any work
    for other in (sdm, aware):
        if other is not None and (other.config.class_table, other.config.image_size) != (
            gesco.config.class_table,
            gesco.config.image_size,
        ):
            raise ValueError("every receiver must use the GESCO receiver's class table and image size")
    if segmenter.table.name != gesco.table.name:
        raise ValueError(f"the segmenter predicts {segmenter.table.name} classes, the receivers use {gesco.table.name}")
    sampler = sampler or gesco.config.sampler
    height, width = gesco.config.image_size
    dataset = SyntheticStreetsDataset(scenes, first_seed, height=height, width=width)
    batch = collate([dataset[i] for i in range(scenes)])
    table = gesco.table
    classes = EvaluationClasses.from_table(table)

    # All PSNR labels in one batch per receiver: rows are (psnr, scene), psnr-major; map i at label p gets the
    # channel noise and x_T of generators seeded by (seed, i, p), so every receiver sees the same received map.
    clean_maps = SemanticMap(batch.labels, table, batch.instances, gesco.config.edge_rule)
    repeated = SemanticMap(
        batch.labels.repeat(len(psnrs), 1, 1),
        table,
        None if batch.instances is None else batch.instances.repeat(len(psnrs), 1, 1),
        gesco.config.edge_rule,
    )
    quality = ChannelQuality.psnr_label([p for p in psnrs for _ in range(scenes)])

    def link(receiver: DiffusionReceiver | None, map_denoiser: str):
        return Link(channel=AWGNChannel(), receiver=Receiver(receiver, map_denoiser=map_denoiser))

    def channel_noise() -> list[torch.Generator]:
        return [seeded_generator(seed, i, p, CHANNEL_STREAM) for p in psnrs for i in range(scenes)]

    received = link(None, "none")(repeated, quality, generator=channel_noise()).condition
    filtered = link(None, "fds")(repeated, quality, generator=channel_noise()).condition
    x_T = torch.cat([starting_noise(seed, range(scenes), p, batch.image.shape[1:]) for p in psnrs])
    images, seconds = {}, {}
    receivers = [(GESCO_COLUMN, gesco), (SDM_COLUMN, sdm)] + ([(AWARE_COLUMN, aware)] if aware is not None else [])
    for name, receiver in receivers:
        if progress:
            print(f"{name} receiver: {len(x_T)} images ({scenes} scenes x {len(psnrs)} PSNR labels)", flush=True)
        started = time.perf_counter()
        # The same per-step noise for both receivers too (stochastic samplers), so only the model differs.
        images[name] = link(receiver, receiver.config.map_denoiser)(
            repeated,
            quality,
            generator=channel_noise(),
            receiver_generator=torch.Generator().manual_seed(seed),
            x_T=x_T,
            sampler=sampler_for(receiver, sampler),
            progress=progress,
        ).images
        seconds[name] = (time.perf_counter() - started) / len(x_T)

    labels = batch.labels
    rows = []
    for p, psnr in enumerate(psnrs):
        part = slice(p * scenes, (p + 1) * scenes)
        rows.append(
            DemoRow(
                psnr=psnr,
                sigma=paper_sigma(psnr),
                received_map_miou=_miou(filtered[part, : table.num_classes].argmax(dim=1), labels, classes),
                gesco_miou=_miou(segmenter.predict(images[GESCO_COLUMN][part]), labels, classes),
                sdm_miou=_miou(segmenter.predict(images[SDM_COLUMN][part]), labels, classes),
                gesco_ssim=_ssim(images[GESCO_COLUMN][part], batch.image),
                sdm_ssim=_ssim(images[SDM_COLUMN][part], batch.image),
                aware_miou=None
                if aware is None
                else _miou(segmenter.predict(images[AWARE_COLUMN][part]), labels, classes),
                aware_ssim=None if aware is None else _ssim(images[AWARE_COLUMN][part], batch.image),
            )
        )

    figure_rows, row_titles = [], []
    map_pictures = clean_maps.colorize().permute(0, 2, 3, 1).numpy()
    originals = image_to_rgb(batch.image)
    pictures = {
        "received": condition_to_rgb(received, table),
        "FDS": condition_to_rgb(filtered, table),
        **{name: image_to_rgb(x) for name, x in images.items()},
    }
    for i in range(scenes):
        for p, psnr in enumerate(psnrs):
            k = p * scenes + i
            figure_rows.append([originals[i], map_pictures[i], *(pictures[c][k] for c in pictures)])
            row_titles.append(f"seed {first_seed + i}\nPSNR {psnr:g}")
    figure = save_grid(
        Path(out) / "figure.png",
        figure_rows,
        [
            "image",
            "semantic map",
            "received map",
            "FDS output",
            *(f"{name} regeneration" for name in images),
        ],
        row_titles=row_titles,
        title=f"gesco demo: {sampler.sampler} {sampler.steps} steps, guidance {sampler.guidance:g}",
    )
    return DemoResult(
        scenes=scenes,
        first_seed=first_seed,
        image_size=(height, width),
        sampler=sampler,
        real_image_miou=_miou(segmenter.predict(batch.image), labels, classes),
        payload=mean_payload_sizes(payload_sizes(clean_maps, image_to_rgb(batch.image))),
        rows=rows,
        seconds_per_image=seconds,
        figure=figure,
    )


def demo_table(result: DemoResult) -> str:
    """The printed summary: payload sizes, then a Markdown table of scores per PSNR label."""
    payload = result.payload
    per_pixel = 1 / payload.pixels
    height, width = result.image_size
    lines = [
        f"gesco demo: {result.scenes} held-out synthetic scene(s) (seeds {result.first_seed}.."
        f"{result.first_seed + result.scenes - 1}), {height}x{width}, {result.sampler.sampler} "
        f"{result.sampler.steps} steps, guidance {result.sampler.guidance:g}",
        "",
        "payload per image (mean):",
        f"  analog map (GESCO, the paper): {payload.analog_real_values:,.0f} real values = "
        f"{payload.analog_complex_channel_uses:,.0f} complex channel uses "
        f"({payload.analog_complex_channel_uses * per_pixel:.2f} per pixel), + {payload.side_info_bits:.0f} bits of "
        "class list",
        f"  lossless map code:             {payload.lossless_map_bits:,.0f} bits "
        f"({payload.lossless_map_bits * per_pixel:.3f} per pixel)",
        f"  the image as PNG:              {payload.png_image_bits:,.0f} bits "
        f"({payload.png_image_bits * per_pixel:.2f} per pixel)",
        f"  the image as JPEG q75:         {payload.jpeg_image_bits:,.0f} bits "
        f"({payload.jpeg_image_bits * per_pixel:.2f} per pixel)",
        "",
        f"segmenter mIoU on the original images: {result.real_image_miou:.3f}",
        "",
    ]
    aware = result.rows[0].aware_miou is not None
    names = [GESCO_COLUMN, SDM_COLUMN] + ([AWARE_COLUMN] if aware else [])
    lines += [
        "| PSNR | sigma | mIoU received map (argmax of FDS) | "
        + " | ".join(f"mIoU {n}" for n in names)
        + " | "
        + " | ".join(f"SSIM {n}" for n in names)
        + " |",
        "|---|---|---|" + "---|" * (2 * len(names)),
    ]
    for row in result.rows:
        mious = [row.gesco_miou, row.sdm_miou] + ([row.aware_miou] if aware else [])
        ssims = [row.gesco_ssim, row.sdm_ssim] + ([row.aware_ssim] if aware else [])
        lines.append(
            f"| {row.psnr:g} | {row.sigma:g} | {row.received_map_miou:.3f} | "
            + " | ".join(f"{v:.3f}" for v in mious + ssims)
            + " |"
        )
    lines += ["", "seconds per image: " + ", ".join(f"{name} {s:.2f}" for name, s in result.seconds_per_image.items())]
    return "\n".join(lines) + "\n"


def demo_record(result: DemoResult) -> dict:
    """``results.json``: everything the table shows, as numbers."""
    return {
        "scenes": result.scenes,
        "first_seed": result.first_seed,
        "image_size": list(result.image_size),
        "sampler": result.sampler.to_dict(),
        "real_image_miou": result.real_image_miou,
        "payload_sizes": asdict(result.payload),
        "rows": [asdict(row) for row in result.rows],
        "seconds_per_image": result.seconds_per_image,
        "figure": result.figure.name,
    }
