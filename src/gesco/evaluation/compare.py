"""GESCO against what a radio engineer would otherwise do, at equal channel uses, over SNR.

Methods (each image of the evaluation set, at each Es/N0 in dB, over AWGN or Rayleigh block
fading with perfect CSI, or over OFDM through a 3GPP TR 38.901 channel with estimated or perfect CSI,
``gesco.channel.ofdm``, where every method's complex symbols fill the data resource elements):

- ``classical``: the image as JPEG over the digital link (5G LDPC + CRC + QAM); its quality is
  the best that fits the channel-use budget; a failed block loses the image, which the receiver
  shows as mid-grey (the cliff);
- ``deep-jscc``: the Deep JSCC autoencoder (``gesco.baselines.deep_jscc``), whose fixed
  channel uses set the budget;
- ``gesco-analog``: the paper's link, the transmitted map values as unit-power channel symbols
  (``UnitPowerAnalogChannel``), then FDS and the GESCO receiver;
- ``gesco-digital``: the lossless map code over the digital link at the most robust code rate
  that fits the budget; lost bands become unknown pixels that the receiver fills in.

Channel uses are complex symbols. The budget per image is ``budget_per_pixel`` x H x W: JPEG
fills it, GESCO-digital stays within it; GESCO-analog spends (|present| + 1) H W / 2, whatever
the map needs (its mean over the set is reported beside the budget).

Randomness: image i at SNR s takes its channel noise from a generator seeded by (seed, i, s);
the diffusion receiver starts every SNR of image i from the same x_T (common random numbers),
and GESCO-digital regenerates a map it has already seen (the exact map above the cliff) once.
Images go to ``OUT/images/<method>/snr<s>/``, per-image records to ``records.json`` beside
them; a finished set is kept on a rerun.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from gesco.baselines.deep_jscc import DeepJSCC
from gesco.channel.digital.config import MIN_CODE_RATE, DigitalConfig
from gesco.channel.digital.symbol_channel import SymbolChannel
from gesco.channel.ofdm.config import OfdmConfig
from gesco.channel.quality import ChannelQuality
from gesco.channel.unit_power import UnitPowerAnalogChannel
from gesco.constants import COMPARE_METHODS, DEFAULT_COHERENCE_SYMBOLS
from gesco.datasets.base import collate
from gesco.evaluation.figures import image_to_rgb
from gesco.evaluation.scoring import SetScorer, SetScores, image_path
from gesco.evaluation.sweep import seeded_generator, starting_noise
from gesco.io import atomic_save, atomic_write_text
from gesco.link import Link, LinkOutput
from gesco.receiver.pipeline import DiffusionReceiver
from gesco.receiver.receiver import Receiver
from gesco.receiver.sampling import SamplerConfig
from gesco.semantics.maps import SemanticMap

CLASSICAL, DEEP_JSCC, GESCO_ANALOG, GESCO_DIGITAL, GESCO_ANALOG_AWARE = COMPARE_METHODS
METHOD_LABELS = {
    CLASSICAL: "Classical: JPEG + 5G LDPC + QAM",
    DEEP_JSCC: "Deep JSCC",
    GESCO_ANALOG: "GESCO-analog (the paper)",
    GESCO_DIGITAL: "GESCO-digital (lossless map + 5G LDPC)",
    GESCO_ANALOG_AWARE: "GESCO-analog, channel-aware receiver",
}
#: Code rates GESCO-digital may pick from, most robust first (5G LDPC spans 1/5 .. 0.92).
CODE_RATE_LADDER = (MIN_CODE_RATE, 1 / 4, 1 / 3, 2 / 5, 1 / 2, 2 / 3, 3 / 4, 5 / 6)
CHANNEL_STREAM, STEP_STREAM = 10, 11
RECORDS = "records.json"


def snr_label(snr: float) -> str:
    return f"{snr:g}"


def set_folder(out: Path, method: str, snr: float) -> Path:
    return out / "images" / method / f"snr{snr_label(snr)}"


def most_robust_config(base: DigitalConfig, blocks: int, budget: int) -> DigitalConfig | None:
    """``base`` at the lowest code rate of ``CODE_RATE_LADDER`` whose ``blocks`` codewords fit ``budget``
    channel uses; None if even the highest does not."""
    for rate in CODE_RATE_LADDER:
        config = base.replace(code_rate=rate)
        if blocks * config.symbols_per_block <= budget:
            return config
    return None


@dataclass(frozen=True)
class CompareCell:
    """One method at one SNR: its scores, mean complex channel uses per pixel, whether any image went over the
    budget, and the fraction delivered (classical: images decoded; GESCO-digital: pixels known; None for the
    analog methods)."""

    method: str
    snr: str
    scores: SetScores
    complex_channel_uses_per_pixel: float
    delivered: float | None
    over_budget: bool = False


@dataclass(frozen=True)
class CompareResult:
    methods: list[str]
    snrs: list[float]
    channel: str
    count: int
    budget_per_pixel: float
    cells: list[CompareCell]
    real: SetScores
    class_names: tuple[str, ...]
    settings: dict
    notes: dict[str, str] = field(default_factory=dict)
    generation_seconds: dict[str, float] = field(default_factory=dict)
    #: Class name of each ground-truth box label id, for the per-class detection keys.
    label_names: dict[int, str] = field(default_factory=dict)


class Comparison:
    """Generates and scores every (method, SNR) set of one comparison; see the module docstring.

    Args:
        receiver: the GESCO receiver (noise-aware), for both GESCO methods.
        deep_jscc: the Deep JSCC model; its channel uses per pixel are the budget.
        dataset: the evaluation set; items 0 .. count - 1 are used.
        channel: "awgn", "rayleigh" (block fading, ``coherence_symbols`` per coefficient, perfect CSI) or
            "ofdm" (the OFDM link of ``ofdm``, default ``OfdmConfig()``).
        coherence_symbols: complex symbols per fading coefficient, for every method alike.
        ofdm: the OFDM link's settings (channel model, speed, delay spread, CSI, ...) when ``channel="ofdm"``.
        digital: the digital link of the classical method (modulation, code rate, block length, CRC);
            GESCO-digital uses it at its most robust fitting code rate.
        sampler: how the receiver samples.
    """

    def __init__(
        self,
        receiver: DiffusionReceiver,
        deep_jscc: DeepJSCC,
        dataset: Dataset,
        *,
        count: int,
        channel: str,
        digital: DigitalConfig,
        sampler: SamplerConfig,
        seed: int = 0,
        batch_size: int = 16,
        coherence_symbols: int | None = DEFAULT_COHERENCE_SYMBOLS,
        aware: DiffusionReceiver | None = None,
        progress: bool = True,
        ofdm: OfdmConfig | None = None,
    ):
        if channel not in ("awgn", "rayleigh", "ofdm"):
            raise ValueError(f"channel must be 'awgn', 'rayleigh' or 'ofdm', got {channel!r}")
        if ofdm is not None and channel != "ofdm":
            raise ValueError(f"OFDM settings were given for channel={channel!r}; use channel='ofdm'")
        size = tuple(receiver.config.image_size)
        if tuple(deep_jscc.config.image_size) != size:
            raise ValueError(
                f"the Deep JSCC model codes {deep_jscc.config.image_size} images, the receiver makes {size}"
            )
        if aware is not None and tuple(aware.config.image_size) != size:
            raise ValueError(f"the channel-aware receiver makes {aware.config.image_size} images, the receiver {size}")
        self.receiver, self.deep_jscc, self.dataset, self.count = receiver, deep_jscc, dataset, count
        self.aware = aware
        self.channel, self.sampler, self.seed, self.batch_size = channel, sampler, seed, batch_size
        self.progress = progress
        if channel == "ofdm":
            from gesco.channel.ofdm.link import OfdmChannel
            from gesco.channel.ofdm.map_channels import OfdmAnalogChannel

            # One OFDM link for all: Deep JSCC's latent, the QAM symbols of both digital methods and the map.
            self.ofdm = ofdm or OfdmConfig()
            self.digital = digital
            self.symbol_channel = OfdmChannel(self.ofdm)
            analog_channel = OfdmAnalogChannel(config=self.ofdm)
        else:
            self.ofdm = None
            self.digital = digital.replace(fading=channel, coherence_symbols=coherence_symbols)
            self.symbol_channel = SymbolChannel(fading=channel, coherence_symbols=coherence_symbols)
            analog_channel = UnitPowerAnalogChannel(fading=channel, coherence_symbols=coherence_symbols)
        self.analog_link = Link(channel=analog_channel, receiver=Receiver(None, map_denoiser="fds"))
        # the channel-aware receiver meets the same channel draws through its own map denoiser (FDS, or a
        # learned one that reads sigma)
        self.aware_link = (
            None
            if aware is None
            else Link(channel=analog_channel, receiver=Receiver(None, map_denoiser=aware.config.map_denoiser))
        )
        self.pixels = size[0] * size[1]
        self.budget = deep_jscc.config.channel_uses
        self._links: dict[DigitalConfig, object] = {}

    @property
    def budget_per_pixel(self) -> float:
        return self.budget / self.pixels

    def _link(self, config: DigitalConfig):
        from gesco.channel.digital.phy import DigitalLink

        if config not in self._links:
            self._links[config] = DigitalLink(config, channel=self.symbol_channel if self.ofdm else None)
        return self._links[config]

    def _generator(self, index: int, snr: float) -> torch.Generator:
        return seeded_generator(self.seed, index, snr, CHANNEL_STREAM)

    def _semantic_map(self, index: int) -> SemanticMap:
        item = self.dataset[index]
        instances = None if item.instances is None else item.instances[None]
        return SemanticMap(item.labels[None], self.receiver.table, instances, self.receiver.config.edge_rule)

    def _send(self, link: Link, index: int, snr: float) -> LinkOutput:
        return link(self._semantic_map(index), ChannelQuality.esn0_db(snr), generator=self._generator(index, snr))

    # --- the methods: each returns (picture uint8 (H, W, 3) or condition, channel uses, delivered, sigma) ---

    def _classical(self, index: int, snr: float) -> tuple[np.ndarray, int, float, None]:
        from gesco.baselines.jpeg_ldpc import JpegOverDigital

        item = self.dataset[index]
        picture = image_to_rgb(item.image[None])[0]
        out = JpegOverDigital(self._link(self.digital))(
            picture, channel_uses=self.budget, snr_db=snr, generator=self._generator(index, snr)
        )
        return out.image, out.channel_uses, float(out.decoded), None

    @torch.no_grad()
    def _deep_jscc(self, index: int, snr: float) -> tuple[np.ndarray, int, None, None]:
        image = self.dataset[index].image[None]
        decoded = self.deep_jscc(image, snr_db=snr, channel=self.symbol_channel, generator=self._generator(index, snr))
        return image_to_rgb(decoded)[0], self.deep_jscc.config.channel_uses, None, None

    def _gesco_analog(self, index: int, snr: float, *, aware: bool = False) -> tuple[torch.Tensor, int, None, float]:
        out = self._send(self.aware_link if aware else self.analog_link, index, snr)
        return out.condition[0], int(out.received.complex_channel_uses[0]), None, float(out.received.sigma[0])

    def _gesco_digital(self, index: int, snr: float) -> tuple[torch.Tensor, int, float, float]:
        from gesco.channel.digital.map_channel import DEFAULT_BAND_ROWS, DigitalGesco, map_blocks
        from gesco.semantics.transmitter import Transmitter

        payload = Transmitter()(self._semantic_map(index))
        blocks = len(map_blocks(payload, 0, self.digital, band_rows=DEFAULT_BAND_ROWS))
        config = most_robust_config(self.digital, blocks, self.budget)
        if config is None:
            raise ValueError(
                f"the map of item {index} needs {blocks} blocks, more than the budget of {self.budget} "
                f"channel uses holds at code rate {CODE_RATE_LADDER[-1]:.2f}; use a larger Deep JSCC "
                "budget or a higher-order modulation"
            )
        link = Link(channel=DigitalGesco(self._link(config)), receiver=Receiver(None, map_denoiser="none"))
        out = self._send(link, index, snr)
        known = float(out.received.known.float().mean())
        return out.condition[0], int(out.received.complex_channel_uses[0]), known, float(out.received.sigma[0])

    # --- generation ---

    def _regenerate(
        self,
        conditions: dict[int, torch.Tensor],
        sigmas: dict[int, float],
        snr: float,
        folder: Path,
        made: dict[str, Path],
        receiver: DiffusionReceiver,
    ) -> None:
        """Sample ``receiver`` on ``conditions`` (index -> (C, H, W)), told each map's noise level ``sigmas``; a
        condition already sampled (same bytes) is copied from its first image instead."""
        names = {i: self.dataset[i].name for i in conditions}
        pending, copies = [], []
        for index, condition in conditions.items():
            key = hashlib.sha1(condition.float().contiguous().numpy().tobytes()).hexdigest()
            if key in made:
                copies.append((made[key], image_path(folder, names[index])))
            else:
                made[key] = image_path(folder, names[index])
                pending.append(index)
        device = receiver.device
        shape = (3, *receiver.config.image_size)
        chunks = [pending[i : i + self.batch_size] for i in range(0, len(pending), self.batch_size)]
        for chunk in tqdm(
            chunks, disable=not self.progress, desc=f"{folder.parent.name} {folder.name}", unit="batch", leave=False
        ):
            condition = torch.stack([conditions[i] for i in chunk]).to(device)
            start = starting_noise(self.seed, chunk, None, shape).to(device)
            images = receiver(
                condition,
                generator=seeded_generator(self.seed, chunk[0], snr, STEP_STREAM),
                x_T=start,
                sampler=self.sampler,
                sigma=torch.tensor([sigmas[i] for i in chunk]),
            )
            for index, picture in zip(chunk, image_to_rgb(images), strict=True):
                _save_png(image_path(folder, names[index]), picture)
        for source, target in copies:
            atomic_save(target, lambda tmp, s=source: shutil.copyfile(s, tmp))

    def generate(self, method: str, snr: float, out: Path, made: dict[str, Path]) -> list[dict]:
        """Write the images of ``method`` at ``snr`` into its set folder; return the per-image records."""
        folder = set_folder(out, method, snr)
        produce = {
            CLASSICAL: self._classical,
            DEEP_JSCC: self._deep_jscc,
            GESCO_ANALOG: self._gesco_analog,
            GESCO_DIGITAL: self._gesco_digital,
            GESCO_ANALOG_AWARE: partial(self._gesco_analog, aware=True),
        }[method]
        receiver = self.aware if method == GESCO_ANALOG_AWARE else self.receiver
        if receiver is None:
            raise ValueError(f"method {method!r} needs a channel-aware receiver (Comparison(aware=...))")
        records, conditions, sigmas = [], {}, {}
        for index in tqdm(
            range(self.count),
            disable=not self.progress,
            desc=f"{method} snr{snr_label(snr)}",
            unit="image",
            leave=False,
        ):
            output, uses, delivered, sigma = produce(index, snr)
            records.append({"name": self.dataset[index].name, "complex_channel_uses": uses, "delivered": delivered})
            if isinstance(output, np.ndarray):
                _save_png(image_path(folder, records[-1]["name"]), output)
            else:
                conditions[index], sigmas[index] = output, sigma
        if conditions:
            self._regenerate(conditions, sigmas, snr, folder, made, receiver)
        atomic_write_text(folder / RECORDS, json.dumps(records, indent=1) + "\n")
        return records

    def run(
        self,
        methods: Sequence[str],
        snrs: Sequence[float],
        out: Path,
        scorer: SetScorer,
        *,
        settings: dict | None = None,
        notes: dict[str, str] | None = None,
    ) -> CompareResult:
        """Generate every set that has no records yet, then score them all."""
        unknown = sorted(set(methods) - set(METHOD_LABELS))
        if unknown:
            raise ValueError(f"unknown methods {unknown}; choose from {list(METHOD_LABELS)}")
        out = Path(out)
        seconds: dict[str, float] = {}
        cells = []
        for method in methods:
            made: dict[str, Path] = {}
            for snr in snrs:
                folder = set_folder(out, method, snr)
                if (folder / RECORDS).is_file():
                    records = json.loads((folder / RECORDS).read_text())
                else:
                    started = time.perf_counter()
                    records = self.generate(method, snr, out, made)
                    seconds[f"{method}/snr{snr_label(snr)}"] = round(time.perf_counter() - started, 2)
                scores = scorer.score_images(folder, f"{self.channel}/{method}/snr{snr_label(snr)}")
                delivered = [r["delivered"] for r in records if r["delivered"] is not None]
                uses = [r["complex_channel_uses"] for r in records]
                cells.append(
                    CompareCell(
                        method,
                        snr_label(snr),
                        scores,
                        complex_channel_uses_per_pixel=float(np.mean(uses)) / self.pixels,
                        delivered=float(np.mean(delivered)) if delivered else None,
                        over_budget=max(uses) > self.budget,
                    )
                )
        return CompareResult(
            methods=list(methods),
            snrs=[float(s) for s in snrs],
            channel=self.channel,
            count=self.count,
            budget_per_pixel=self.budget_per_pixel,
            cells=cells,
            real=scorer.score_real(),
            class_names=scorer.classes.names,
            settings=dict(settings or {}),
            notes=dict(notes or {}),
            generation_seconds=seconds,
            label_names=scorer.label_names,
        )


def _save_png(path: Path, picture: np.ndarray) -> None:
    atomic_save(path, lambda tmp: Image.fromarray(picture).save(tmp, format="PNG"))


def example_rows(result: CompareResult, dataset: Dataset, out: Path, index: int) -> list[list[np.ndarray]]:
    """Rows of an example figure: per SNR, the ground truth then each method's picture of item ``index``."""
    item = dataset[index]
    truth = image_to_rgb(collate([item]).image)[0]
    rows = []
    for snr in result.snrs:
        pictures = [
            np.asarray(Image.open(image_path(set_folder(out, m, snr), item.name)).convert("RGB"))
            for m in result.methods
        ]
        rows.append([truth, *pictures])
    return rows
