"""Dynamic batching: concurrent requests share the receiver's network passes, through a bounded queue.

One worker thread owns the receiver. It takes the oldest waiting request, then every request that arrives within
``max_wait_s`` up to ``max_batch``, and regenerates them as one batch: each map goes through its own map
denoiser (the receiver's for analog maps, none for the digital link's exact ones), then the image generator
samples the stacked conditions in one call. A request starts from its own x_T, drawn from its own seed, so with a
deterministic sampler (DDIM with eta 0, DPM-Solver++, UniPC) its image does not depend on its batch mates.

The queue holds at most ``max_queue`` requests: :meth:`Batcher.submit` raises :class:`QueueFullError` at once
rather than letting memory grow, and the server answers 503.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from gesco.images import image_to_rgb
from gesco.receiver.map_denoisers import build_map_denoiser
from gesco.receiver.noise_level import received_sigma
from gesco.receiver.pipeline import DiffusionReceiver
from gesco.receiver.sampling import SamplerConfig
from gesco.serve.wire import WireMessage

log = logging.getLogger("gesco.serve")


class QueueFullError(RuntimeError):
    """The batcher's queue holds ``max_queue`` requests already; try again later."""


class BatcherClosedError(RuntimeError):
    """The batcher is shutting down and takes no new request."""


class IncompatibleMessageError(ValueError):
    """A well-formed message this receiver cannot regenerate (another class table or image size)."""


@dataclass(frozen=True)
class BatchSettings:
    """Attributes:
    max_batch: requests regenerated together at most.
    max_wait_s: how long the worker waits for batch mates after the first request.
    max_queue: requests waiting at most; beyond, ``submit`` refuses.
    """

    max_batch: int = 8
    max_wait_s: float = 0.01
    max_queue: int = 64

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.max_queue < 1:
            raise ValueError(f"max_batch ({self.max_batch}) and max_queue ({self.max_queue}) must be positive")
        if not self.max_wait_s >= 0:
            raise ValueError(f"max_wait_s must be >= 0 seconds, got {self.max_wait_s}")


@dataclass(frozen=True)
class Regeneration:
    """The answer to one request.

    Attributes:
        image: uint8 (H, W, 3).
        condition: float (C, H, W): the map denoiser's output that conditioned the image.
        sigma: the noise level the image generator was told (reported by the channel or estimated blindly).
        sigma_source: "channel" or "blind".
        map_denoiser: "fds" or "none".
        batch_size: how many requests shared the network passes.
        queued_seconds: from submission to the start of its batch.
        seconds: of its batch's regeneration.
    """

    image: np.ndarray
    condition: torch.Tensor
    sigma: float
    sigma_source: str
    map_denoiser: str
    batch_size: int
    queued_seconds: float
    seconds: float


@dataclass
class _Request:
    message: WireMessage
    seed: int
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)
    submitted: float = field(default_factory=time.perf_counter)


@dataclass
class BatcherStats:
    """Running totals for the metrics endpoint."""

    images: int = 0
    batches: int = 0
    failed: int = 0
    rejected_full: int = 0
    busy_seconds: float = 0.0


class Batcher:
    """The receiver behind a bounded queue, batched by one worker thread.

    Args:
        receiver: the image generator (a trained receiver folder's :class:`DiffusionReceiver`).
        sampler: how it samples (default its own).
        map_denoiser: for analog maps (default the receiver's own); digital maps are exact and take none.
        sigma_source: "channel" (the sigma the message reports) or "blind" (estimated from the received map).
    """

    def __init__(
        self,
        receiver: DiffusionReceiver,
        *,
        sampler: SamplerConfig | None = None,
        map_denoiser: str | None = None,
        sigma_source: str = "channel",
        settings: BatchSettings = BatchSettings(),
    ):
        self.receiver = receiver
        self.sampler = sampler or receiver.config.sampler
        self.map_denoiser = map_denoiser or receiver.config.map_denoiser
        self._denoisers = {"analog": build_map_denoiser(self.map_denoiser), "digital": build_map_denoiser("none")}
        if sigma_source not in ("channel", "blind"):
            raise ValueError(f"sigma_source must be 'channel' or 'blind', got {sigma_source!r}")
        self.sigma_source = sigma_source
        self.settings = settings
        self.stats = BatcherStats()
        self._queue: queue.Queue[_Request] = queue.Queue(maxsize=settings.max_queue)
        self._closing = threading.Event()
        self._in_flight = 0
        self._thread = threading.Thread(target=self._work, name="gesco-batcher", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def check(self, message: WireMessage) -> None:
        """Raise :class:`IncompatibleMessageError` unless this receiver can regenerate ``message``."""
        table, size = self.receiver.table, tuple(self.receiver.config.image_size)
        if message.table.name != table.name:
            raise IncompatibleMessageError(f"the map uses the {message.table.name} table; this receiver {table.name}")
        if message.size != size:
            raise IncompatibleMessageError(
                f"the map is {message.size[0]}x{message.size[1]}; this receiver makes {size[0]}x{size[1]} images"
            )

    def submit(self, message: WireMessage, *, seed: int = 0) -> concurrent.futures.Future:
        """Queue ``message``; the future's result is its :class:`Regeneration`. Raises :class:`QueueFullError`,
        :class:`BatcherClosedError` or :class:`IncompatibleMessageError` at once."""
        if self._closing.is_set():
            raise BatcherClosedError("the server is shutting down")
        self.check(message)
        request = _Request(message, seed)
        try:
            self._queue.put_nowait(request)
        except queue.Full:
            self.stats.rejected_full += 1
            raise QueueFullError(f"{self.settings.max_queue} requests are waiting already") from None
        return request.future

    def close(self, timeout: float | None = None) -> None:
        """Take no new request, finish every queued one, then stop the worker."""
        self._closing.set()
        self._thread.join(timeout)
        # A request queued while the worker was leaving would wait forever: refuse it.
        while not self._queue.empty():
            self._queue.get_nowait().future.set_exception(BatcherClosedError("the server shut down"))

    # --- the worker ---

    def _next_batch(self) -> list[_Request]:
        try:
            first = self._queue.get(timeout=0.1)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.perf_counter() + self.settings.max_wait_s
        while len(batch) < self.settings.max_batch:
            try:
                batch.append(self._queue.get(timeout=max(0.0, deadline - time.perf_counter())))
            except queue.Empty:
                break
        return batch

    def _work(self) -> None:
        while not (self._closing.is_set() and self._queue.empty()):
            # A request whose caller gave up (its future cancelled) is dropped before it costs a network pass.
            batch = [request for request in self._next_batch() if request.future.set_running_or_notify_cancel()]
            if not batch:
                continue
            self._in_flight = len(batch)
            try:
                self._run(batch)
            except Exception as err:  # the worker must outlive a failing batch; each caller gets the error
                log.exception("a batch of %d failed", len(batch))
                self.stats.failed += len(batch)
                for request in batch:
                    request.future.set_exception(err)
            finally:
                self._in_flight = 0

    def _run(self, batch: list[_Request]) -> None:
        started = time.perf_counter()
        conditions, sigmas, starts = [], [], []
        height, width = self.receiver.config.image_size
        for request in batch:
            received = request.message.to_received()
            conditions.append(self._denoisers[request.message.kind](received))
            sigmas.append(received_sigma(received, self.sigma_source))
            starts.append(torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(request.seed)))
        images = self.receiver(
            torch.cat(conditions), x_T=torch.cat(starts), sampler=self.sampler, sigma=torch.cat(sigmas)
        )
        pictures = image_to_rgb(images)
        seconds = time.perf_counter() - started
        self.stats.images += len(batch)
        self.stats.batches += 1
        self.stats.busy_seconds += seconds
        log.info("regenerated a batch of %d in %.2f s", len(batch), seconds)
        for i, request in enumerate(batch):
            kind = request.message.kind
            request.future.set_result(
                Regeneration(
                    image=pictures[i],
                    condition=conditions[i][0],
                    sigma=float(sigmas[i][0]),
                    sigma_source=self.sigma_source,
                    map_denoiser=self.map_denoiser if kind == "analog" else "none",
                    batch_size=len(batch),
                    queued_seconds=started - request.submitted,
                    seconds=seconds,
                )
            )
