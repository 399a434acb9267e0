"""The evaluation sweep: regenerate an evaluation set at each PSNR label with each method, then score it.

Methods (rows of the report):

- ``gesco``: the noise-aware model on the FDS-filtered received map (the paper's system);
- ``sdm``: the SDM-style ablation, a model trained on clean maps, on the received map without FDS;
- ``gesco-no-fds``: the noise-aware model on the unfiltered received map;
- ``oracle``: the noise-aware model on the noiseless map (generated once, the same at every PSNR);
- guidance and sampler variants of ``gesco`` (``gesco-g1.5``, ``gesco-ddim50``);
- references without a generator: ``real-images`` (the segmenter on the ground truth) and ``received-map``
  (the argmax of the FDS-filtered received map taken as the segmentation).

Randomness: image i at PSNR label p gets its channel noise and its starting noise x_T from generators seeded by
(seed, i, p), so every method sees the same received map and the same x_T (common random numbers), whatever the
batching or the number of processes. Stochastic samplers (ddpm, ddim with eta > 0) also draw per-step noise
from a generator seeded by the batch's first image, so their images depend on the batch size too.

Images go to ``OUT/images/<method>/psnr<label>/<name>.png`` (the oracle: ``OUT/images/oracle/clean/``); existing
images are kept, so a rerun resumes. With ``accelerate launch`` the missing images are split between processes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from PIL import Image
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from gesco.baselines.accounting import mean_payload_sizes, payload_sizes
from gesco.channel.awgn import AWGNChannel
from gesco.channel.quality import ChannelQuality
from gesco.datasets.base import Batch, collate
from gesco.evaluation.figures import image_to_rgb
from gesco.evaluation.scoring import SetScorer, SetScores, image_path
from gesco.io import atomic_save
from gesco.link import Link, LinkOutput
from gesco.receiver.pipeline import DiffusionReceiver
from gesco.receiver.receiver import Receiver
from gesco.receiver.sampling import SamplerConfig
from gesco.semantics.maps import SemanticMap

GESCO, SDM, NO_FDS, ORACLE, BLIND = "gesco", "sdm", "gesco-no-fds", "oracle", "gesco-blind"
REAL_IMAGES, RECEIVED_MAP = "real-images", "received-map"
CLEAN = "clean"
CHANNEL_STREAM, START_STREAM, STEP_STREAM = 0, 1, 2


@dataclass(frozen=True)
class Method:
    """One way of producing images from the transmitted maps.

    Attributes:
        name: key and folder name.
        label: the row label of the report.
        model: which receiver generates: ``"gesco"`` or ``"sdm"``.
        map_denoiser: the receiver's map denoiser ("fds", "none" or a learned one's folder or shipped name,
            ``gesco.receiver.map_denoisers``).
        sigma_source: the noise level a noise-conditioned receiver is told: "channel" or "blind" (estimated).
        clean_map: condition on the noiseless map (one set, shown at every PSNR).
        sampler: how to sample.
    """

    name: str
    label: str
    model: str
    map_denoiser: str
    clean_map: bool
    sampler: SamplerConfig
    sigma_source: str = "channel"


def psnr_label(psnr: float) -> str:
    """Folder / column label of a PSNR: 100 -> "100", 2.5 -> "2.5"."""
    return f"{psnr:g}"


def seeded_generator(seed: int, index: int, psnr: float | None, stream: int) -> torch.Generator:
    """A generator for (seed, image index, PSNR label or None = clean, stream), independent of everything else."""
    key = 0 if psnr is None else round(psnr * 1000) + 1
    # SeedSequence takes non-negative integers: negative SNRs (dB) get keys of their own beyond 2**40.
    key = key if key >= 0 else 2**40 - key
    state = np.random.SeedSequence([seed, index, key, stream]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed((int(state[0]) << 31) ^ int(state[1]))


def starting_noise(seed: int, indices: Sequence[int], psnr: float | None, shape: Sequence[int]) -> torch.Tensor:
    """x_T of images ``indices`` at ``psnr``, (len(indices), *shape): each from its own generator, so an image
    does not depend on its batch."""
    return torch.stack(
        [torch.randn(tuple(shape), generator=seeded_generator(seed, i, psnr, START_STREAM)) for i in indices]
    )


def send_batch(
    batch: Batch,
    indices: Sequence[int],
    receiver: DiffusionReceiver,
    *,
    psnr: float | None,
    map_denoiser: str,
    seed: int,
    generate: bool = False,
    sampler: SamplerConfig | None = None,
    sigma_source: str = "channel",
) -> LinkOutput:
    """A batch through the link: the transmitter, AWGN at PSNR label ``psnr`` (None: clean), the map denoiser and,
    with ``generate``, the receiver's image generator.

    Image i gets its channel noise and x_T from generators seeded by (seed, i, psnr), so it does not depend on
    its batch; the sampler's per-step noise comes from a generator seeded by the batch's first image.
    ``indices`` are the images' indices in the evaluation set."""
    semantic_map = SemanticMap(batch.labels, receiver.table, batch.instances, receiver.config.edge_rule)
    quality = ChannelQuality.noise_std(0.0) if psnr is None else ChannelQuality.psnr_label(psnr)
    link = Link(
        channel=AWGNChannel(),
        receiver=Receiver(receiver if generate else None, map_denoiser=map_denoiser, sigma_source=sigma_source),
    )
    device = receiver.device
    x_T = starting_noise(seed, indices, psnr, batch.image.shape[1:]).to(device) if generate else None
    return link(
        semantic_map,
        quality,
        generator=[seeded_generator(seed, i, psnr, CHANNEL_STREAM) for i in indices],
        receiver_generator=seeded_generator(seed, indices[0], psnr, STEP_STREAM),
        x_T=x_T,
        sampler=sampler,
    )


def conditioning_maps(
    batch: Batch, first_index: int, receiver: DiffusionReceiver, *, psnr: float | None, map_denoiser: str, seed: int
) -> torch.Tensor:
    """The conditioning maps (B, C, H, W) of a batch (see ``send_batch``); untransmitted channels 0."""
    indices = range(first_index, first_index + batch.labels.shape[0])
    return send_batch(batch, indices, receiver, psnr=psnr, map_denoiser=map_denoiser, seed=seed).condition


def received_map_labels(
    batch: Batch, first_index: int, receiver: DiffusionReceiver, *, psnr: float, seed: int
) -> torch.Tensor:
    """The FDS-filtered received maps read as segmentations: int64 (B, H, W) argmax over the class channels."""
    condition = conditioning_maps(batch, first_index, receiver, psnr=psnr, map_denoiser="fds", seed=seed)
    return condition[:, : receiver.table.num_classes].argmax(dim=1)


def generate_set(
    receiver: DiffusionReceiver,
    method: Method,
    psnr: float | None,
    dataset: Dataset,
    indices: Sequence[int],
    folder: Path,
    *,
    seed: int,
    batch_size: int,
    progress: bool = True,
) -> int:
    """Generate the images of ``indices`` into ``folder``; returns how many were made (the caller passes only
    the missing ones)."""
    made = 0
    chunks = [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
    description = f"{method.name} {CLEAN if psnr is None else 'psnr' + psnr_label(psnr)}"
    for chunk in tqdm(chunks, disable=not progress, desc=description, unit="batch"):
        batch = collate([dataset[i] for i in chunk])
        images = send_batch(
            batch,
            chunk,
            receiver,
            psnr=psnr,
            map_denoiser=method.map_denoiser,
            seed=seed,
            generate=True,
            sampler=method.sampler,
            sigma_source=method.sigma_source,
        ).images
        for name, picture in zip(batch.names, image_to_rgb(images), strict=True):
            atomic_save(image_path(folder, name), lambda tmp, p=picture: Image.fromarray(p).save(tmp, format="PNG"))
            made += 1
    return made


@dataclass(frozen=True)
class Cell:
    """The scores of one method at one PSNR label (for the oracle and the real images: the same at every PSNR)."""

    method: str
    psnr: str
    scores: SetScores


@dataclass(frozen=True)
class SweepResult:
    """Everything the report is written from."""

    methods: list[Method]
    psnrs: list[str]
    count: int
    cells: list[Cell]
    class_names: tuple[str, ...]
    #: Mean payload sizes per pixel, keyed by ``PayloadSizes`` field (real values, channel uses, bits).
    payload: dict[str, float]
    notes: dict[str, str]
    settings: dict
    generation_seconds: dict[str, float] = field(default_factory=dict)
    scoring_seconds: float = 0.0
    #: Class name of each ground-truth box label id, for the per-class detection keys.
    label_names: dict[int, str] = field(default_factory=dict)


def payload_summary(dataset: Dataset, count: int, receiver: DiffusionReceiver) -> dict[str, float]:
    """Mean payload sizes per pixel of the first ``count`` items (``gesco.baselines.accounting``)."""
    sizes = []
    for i in range(count):
        item = dataset[i]
        semantic_map = SemanticMap(
            item.labels[None],
            receiver.table,
            None if item.instances is None else item.instances[None],
            receiver.config.edge_rule,
        )
        sizes += payload_sizes(semantic_map, image_to_rgb(item.image[None]))
    return mean_payload_sizes(sizes).per_pixel()


def set_folder(images_root: Path, method: Method, psnr: float | None) -> Path:
    return images_root / method.name / (CLEAN if psnr is None else f"psnr{psnr_label(psnr)}")


def run_sweep(
    receivers: dict[str, DiffusionReceiver],
    methods: Sequence[Method],
    dataset: Dataset,
    *,
    count: int,
    psnrs: Sequence[float],
    out: Path,
    scorer: SetScorer,
    seed: int = 0,
    batch_size: int = 8,
    notes: dict[str, str] | None = None,
    settings: dict | None = None,
    accelerator: Accelerator | None = None,
    progress: bool = True,
) -> SweepResult | None:
    """Generate every (method, PSNR) set that is not complete, then score them all (main process only).

    Returns the result on the main process and None on the others.
    """
    gesco = receivers[GESCO]
    labels = [psnr_label(p) for p in psnrs]
    names = scorer.names
    generation_seconds: dict[str, float] = {}
    # Every process lists the missing images before any process writes one, so all split the same lists.
    plan = []
    for method in methods:
        for psnr in [None] if method.clean_map else psnrs:
            folder = set_folder(out / "images", method, psnr)
            missing = [i for i in range(count) if not image_path(folder, names[i]).is_file()]
            plan.append((method, psnr, folder, missing))
    split = accelerator is not None and accelerator.num_processes > 1
    if split:
        accelerator.wait_for_everyone()
    for method, psnr, folder, pending in plan:
        if not pending:
            continue
        started = time.perf_counter()
        if split:
            with accelerator.split_between_processes(pending) as mine:
                generate_set(
                    receivers[method.model],
                    method,
                    psnr,
                    dataset,
                    mine,
                    folder,
                    seed=seed,
                    batch_size=batch_size,
                    progress=progress and accelerator.is_main_process,
                )
        else:
            generate_set(
                receivers[method.model],
                method,
                psnr,
                dataset,
                pending,
                folder,
                seed=seed,
                batch_size=batch_size,
                progress=progress,
            )
        generation_seconds[f"{method.name}/{folder.name}"] = round(time.perf_counter() - started, 3)
    if accelerator is not None:
        accelerator.wait_for_everyone()
        if not accelerator.is_main_process:
            return None

    started = time.perf_counter()
    cells: list[Cell] = []
    real = scorer.score_real()
    cells += [Cell(REAL_IMAGES, label, real) for label in labels]
    for psnr, label in zip(psnrs, labels, strict=True):
        scores = scorer.score_maps(
            lambda batch, first, p=psnr: received_map_labels(batch, first, gesco, psnr=p, seed=seed),
            f"received map psnr{label}",
        )
        cells.append(Cell(RECEIVED_MAP, label, scores))
    for method in methods:
        if method.clean_map:
            scores = scorer.score_images(set_folder(out / "images", method, None), f"{method.name}/{CLEAN}")
            cells += [Cell(method.name, label, scores) for label in labels]
            continue
        for psnr, label in zip(psnrs, labels, strict=True):
            folder = set_folder(out / "images", method, psnr)
            cells.append(Cell(method.name, label, scorer.score_images(folder, f"{method.name}/{folder.name}")))
    return SweepResult(
        methods=list(methods),
        psnrs=labels,
        count=count,
        cells=cells,
        class_names=scorer.classes.names,
        payload=payload_summary(dataset, count, gesco),
        notes=dict(notes or {}),
        settings=dict(settings or {}),
        generation_seconds=generation_seconds,
        scoring_seconds=round(time.perf_counter() - started, 3),
        label_names=scorer.label_names,
    )


def sampler_variant(
    base: SamplerConfig, *, sampler: str | None = None, steps: int | None = None, guidance: float | None = None
) -> SamplerConfig:
    """``base`` with another sampler / step count / guidance; switching to a non-respaced sampler drops the
    DDIM/DDPM-only settings."""
    changes = {k: v for k, v in (("sampler", sampler), ("steps", steps), ("guidance", guidance)) if v is not None}
    if sampler is not None and sampler not in ("ddpm", "ddim"):
        base = base.replace(respacing=None, eta=0.0)
    return base.replace(**changes)


def build_methods(
    sampler: SamplerConfig,
    *,
    with_sdm: bool,
    guidance_sweep: Sequence[float] = (),
    sampler_sweep: Sequence[tuple[str, int]] = (),
    blind_sigma: bool = False,
    map_denoiser: str = "fds",
) -> list[Method]:
    """The report's methods: GESCO, the SDM ablation (if a model is given), no FDS, the oracle, and variants;
    ``blind_sigma`` adds GESCO told its blind noise estimate instead of the channel's sigma (for a
    noise-conditioned receiver); ``map_denoiser`` is GESCO's (the paper's FDS by default)."""
    label = "GESCO (noise-aware + FDS)" if map_denoiser == "fds" else f"receiver + map denoiser {map_denoiser}"
    methods = [Method(GESCO, label, GESCO, map_denoiser, False, sampler)]
    if blind_sigma:
        methods.append(Method(BLIND, "GESCO, blind sigma estimate", GESCO, map_denoiser, False, sampler, "blind"))
    if with_sdm:
        methods.append(Method(SDM, "SDM (clean-trained, no FDS)", SDM, "none", False, sampler))
    methods += [
        Method(NO_FDS, "GESCO without FDS", GESCO, "none", False, sampler),
        Method(ORACLE, "GESCO on the clean map (oracle)", GESCO, "none", True, sampler),
    ]
    for guidance in guidance_sweep:
        variant = sampler_variant(sampler, guidance=guidance)
        if variant != sampler:
            methods.append(
                Method(f"gesco-g{guidance:g}", f"GESCO, guidance {guidance:g}", GESCO, map_denoiser, False, variant)
            )
    for name, steps in sampler_sweep:
        variant = sampler_variant(sampler, sampler=name, steps=steps)
        if variant != sampler:
            label = f"GESCO, {name} {steps} steps"
            methods.append(Method(f"gesco-{name}{steps}", label, GESCO, map_denoiser, False, variant))
    return methods
