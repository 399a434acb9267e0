"""The web page's transmissions: the whole link on the server, one job at a time, with its progress.

A job sends one map (a synthetic scene or an uploaded label map) through the chosen channel, then regenerates it
with every receiver the server holds, stage by stage, so the page can show where it is:

1. the transmitter and the channel (the received map);
2. GESCO through the server's own batcher, as a ``gesco send`` request would go (the denoised map, the image);
3. the SDM-style receiver (trained on clean maps, fed the received map without a map denoiser);
4. at an Es/N0 on a scene with its picture: Deep JSCC, and JPEG + LDPC over the digital link (``gesco[digital]``)
   at Deep JSCC's channel-use budget.

Every image generator starts from the job's x_T, so the columns differ by the receiver only. At most
``max_jobs`` jobs wait or run; the oldest finished ones are forgotten beyond ``keep``.
"""

from __future__ import annotations

import base64
import io
import itertools
import logging
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from gesco.channel.quality import ChannelQuality
from gesco.channel.registry import build_channel
from gesco.datasets.label_files import read_label_map
from gesco.datasets.synthetic import SyntheticStreets
from gesco.evaluation.figures import condition_to_rgb
from gesco.images import image_to_rgb
from gesco.link import Link
from gesco.receiver.noise_level import received_sigma
from gesco.receiver.pipeline import DiffusionReceiver
from gesco.receiver.receiver import Receiver
from gesco.semantics.maps import SemanticMap
from gesco.serve.batching import Batcher, QueueFullError
from gesco.serve.wire import decode, encode

log = logging.getLogger("gesco.serve")

#: Column names, in the page's order.
RECEIVED, DENOISED, GESCO, SDM, DEEP_JSCC, CLASSICAL, ORIGINAL = (
    "received map",
    "denoised map",
    "GESCO",
    "SDM-style",
    "Deep JSCC",
    "JPEG + LDPC",
    "original",
)


def png_base64(picture: np.ndarray) -> str:
    """uint8 (H, W, 3) -> base64 of its PNG."""
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


@dataclass(frozen=True)
class DemoRequest:
    """One transmission of the page.

    Attributes:
        scene: a synthetic scene's seed, or None when ``label_png`` is given.
        label_png: a label map PNG as stored by the receiver's data set (resized to the receiver's size, nearest).
        channel: a channel name (``gesco.constants.CHANNEL_NAMES``).
        fading: medium of the unit-power and digital channels ("awgn" or "rayleigh"), None for their default.
        quality: the channel quality.
        seed: the channel noise's and x_T's seed.
    """

    scene: int | None
    label_png: bytes | None
    channel: str
    fading: str | None
    quality: ChannelQuality
    seed: int = 0


@dataclass
class DemoJob:
    """A transmission's state, read by the page while it runs: ``done`` of ``total`` stages, at ``stage``.

    The worker replaces ``images`` and ``notes`` instead of changing them in place (:meth:`show`, :meth:`note`),
    so a reader on another thread never iterates a dict or list that is growing.
    """

    id: str
    state: str = "queued"
    stage: str = "waiting for the receiver"
    done: int = 0
    total: int = 1
    images: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    sigma: float | None = None
    seconds: float | None = None
    error: str | None = None

    def show(self, column: str, picture: np.ndarray) -> None:
        self.images = {**self.images, column: png_base64(picture)}

    def note(self, text: str) -> None:
        self.notes = [*self.notes, text]


class DemoRunner:
    """Runs the page's jobs on one thread beside the batcher.

    Args:
        batcher: the served GESCO receiver.
        sdm: the SDM-style receiver, or None.
        deep_jscc: the Deep JSCC model, or None; its channel uses are the classical method's budget too.
        max_jobs: jobs waiting or running at most; beyond, ``start`` raises :class:`QueueFullError`.
    """

    def __init__(
        self,
        batcher: Batcher,
        *,
        sdm: DiffusionReceiver | None = None,
        deep_jscc=None,
        max_jobs: int = 4,
        keep: int = 32,
    ):
        self.batcher, self.sdm, self.deep_jscc = batcher, sdm, deep_jscc
        self.max_jobs, self.keep = max_jobs, keep
        size = tuple(batcher.receiver.config.image_size)
        if sdm is not None and (tuple(sdm.config.image_size) != size or sdm.table != batcher.receiver.table):
            raise ValueError(
                f"the SDM-style receiver makes {sdm.config.image_size} {sdm.table.name} images, not {size}"
            )
        if deep_jscc is not None and tuple(deep_jscc.config.image_size) != size:
            raise ValueError(f"the Deep JSCC model codes {deep_jscc.config.image_size} images, not {size}")
        self.jobs: OrderedDict[str, DemoJob] = OrderedDict()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._pending: list[tuple[DemoJob, DemoRequest]] = []
        self._wake = threading.Condition(self._lock)
        self._closing = False
        self._thread = threading.Thread(target=self._work, name="gesco-demo", daemon=True)
        self._thread.start()

    @property
    def columns(self) -> list[str]:
        """The columns this server can fill."""
        columns = [RECEIVED, DENOISED, GESCO]
        if self.sdm is not None:
            columns.append(SDM)
        if self.deep_jscc is not None:
            columns.append(DEEP_JSCC)
            if _has_digital():
                columns.append(CLASSICAL)
        return columns

    def start(self, request: DemoRequest) -> DemoJob:
        with self._lock:
            if self._closing:
                raise QueueFullError("the server is shutting down")
            if len(self._pending) >= self.max_jobs:
                raise QueueFullError(f"{self.max_jobs} page transmissions are waiting already")
            job = DemoJob(id=str(next(self._ids)))
            self.jobs[job.id] = job
            while len(self.jobs) > self.keep:
                self.jobs.popitem(last=False)
            self._pending.append((job, request))
            self._wake.notify()
        return job

    def get(self, job_id: str) -> DemoJob | None:
        with self._lock:
            return self.jobs.get(job_id)

    def close(self, timeout: float | None = None) -> None:
        """Finish the waiting jobs, then stop."""
        with self._lock:
            self._closing = True
            self._wake.notify()
        self._thread.join(timeout)

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._closing:
                    self._wake.wait()
                if not self._pending:
                    return
                job, request = self._pending.pop(0)
            job.state = "running"
            started = time.perf_counter()
            try:
                self._run(job, request)
                job.state = "done"
            except Exception as err:  # one bad job must not end the page's worker; the page shows the error
                log.warning("page transmission %s failed: %s", job.id, err)
                job.error, job.state = f"{type(err).__name__}: {err}", "failed"
            job.seconds = round(time.perf_counter() - started, 3)

    def _step(self, job: DemoJob, stage: str) -> None:
        """The previous stage is done; ``stage`` starts."""
        job.done, job.stage = job.done + 1, stage

    def _semantic_map(self, request: DemoRequest) -> tuple[SemanticMap, np.ndarray | None]:
        receiver = self.batcher.receiver
        table, (height, width) = receiver.table, receiver.config.image_size
        if request.scene is not None:
            if table.name != "cityscapes":
                raise ValueError(f"synthetic scenes use Cityscapes classes; this receiver uses {table.name}")
            scene = SyntheticStreets(height, width).scene(request.scene)
            labels = torch.from_numpy(scene.labels.astype(np.int64))
            instances = torch.from_numpy(scene.instances.astype(np.int64))
            return SemanticMap(labels, table, instances, receiver.config.edge_rule), scene.image
        if request.label_png is None:
            raise ValueError("give a synthetic scene or a label map PNG")
        with tempfile.NamedTemporaryFile(suffix=".png") as file:
            file.write(request.label_png)
            file.flush()
            labels = read_label_map(file.name, table)
        if labels.shape != (height, width):
            resized = Image.fromarray(labels.astype(np.int32)).resize((width, height), Image.Resampling.NEAREST)
            labels = np.asarray(resized).astype(np.int64)
        return SemanticMap(torch.from_numpy(labels), table, None, receiver.config.edge_rule), None

    def _run(self, job: DemoJob, request: DemoRequest) -> None:
        baselines = self.deep_jscc is not None and request.quality.kind == "esn0_db" and request.scene is not None
        job.total = 2 + (self.sdm is not None) + (baselines * (1 + _has_digital()))
        job.stage = "transmitting"
        semantic_map, picture = self._semantic_map(request)
        table = semantic_map.table
        if request.channel == "digital":
            from gesco.channel.digital.config import DigitalConfig

            channel = build_channel("digital", link=DigitalConfig(fading=request.fading or "awgn"))
        else:
            channel = build_channel(request.channel, fading=request.fading if request.channel == "unit-power" else None)
        generator = torch.Generator().manual_seed(request.seed)
        out = Link(channel=channel, receiver=Receiver(None, map_denoiser="none"))(
            semantic_map, request.quality, generator=generator
        )
        received = out.received
        job.sigma = float(received.sigma[0])
        if picture is not None:
            job.show(ORIGINAL, picture)
        job.show(RECEIVED, condition_to_rgb(received.payload.values, table)[0])

        self._step(job, "regenerating with GESCO")
        regeneration = self.batcher.submit(decode(encode(received, 0, channel=request.channel)), seed=request.seed)
        result = regeneration.result()
        job.show(DENOISED, condition_to_rgb(result.condition[None], table)[0])
        job.show(GESCO, result.image)

        height, width = self.batcher.receiver.config.image_size
        x_T = torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(request.seed))
        if self.sdm is not None:
            self._step(job, "regenerating with the SDM-style receiver")
            sdm = self.sdm(received.payload.values, x_T=x_T, sigma=received_sigma(received, "channel"))
            job.show(SDM, image_to_rgb(sdm)[0])
        if self.deep_jscc is not None and not baselines:
            job.note("Deep JSCC and JPEG + LDPC run on a synthetic scene at an Es/N0 (unit-power or digital)")
        if baselines:
            self._baselines(job, request, picture)
        self._step(job, "done")

    def _baselines(self, job: DemoJob, request: DemoRequest, picture: np.ndarray) -> None:
        from gesco.channel.digital.symbol_channel import SymbolChannel
        from gesco.datasets.base import image_to_tensor

        fading = request.fading or "awgn"
        snr = request.quality.values[0]
        self._step(job, "Deep JSCC")
        with torch.no_grad():
            decoded = self.deep_jscc(
                image_to_tensor(picture)[None],
                snr_db=snr,
                channel=SymbolChannel(fading=fading),
                generator=torch.Generator().manual_seed(request.seed),
            )
        job.show(DEEP_JSCC, image_to_rgb(decoded)[0])
        if not _has_digital():
            job.note("JPEG + LDPC needs the digital extra: pip install 'gesco[digital]'")
            return
        from gesco.baselines.jpeg_ldpc import JpegOverDigital
        from gesco.channel.digital.config import DigitalConfig
        from gesco.channel.digital.phy import DigitalLink

        self._step(job, "JPEG + LDPC")
        classical = JpegOverDigital(DigitalLink(DigitalConfig(fading=fading)))(
            picture,
            channel_uses=self.deep_jscc.config.channel_uses,
            snr_db=snr,
            generator=torch.Generator().manual_seed(request.seed),
        )
        job.show(CLASSICAL, classical.image)
        if not classical.decoded:
            job.note("JPEG + LDPC: a block failed its CRC, the image is lost (grey)")


def _has_digital() -> bool:
    import importlib.util

    return importlib.util.find_spec("sionna") is not None
