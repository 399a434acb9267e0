r"""The one training loop of gesco: the receiver, the segmenter and Deep JSCC all train through it.

A trainer brings what is its own: the model and optimizer (as factories), the dataset, a step function that
computes the loss of one batch, validation at checkpoints and the export of the EMA weights. The loop owns the
rest, on HF accelerate, so it runs the same on this CPU, on one GPU, and under ``accelerate launch`` /
``torchrun`` on many processes (accelerate does DDP, mixed precision and the gradient all-reduce):

1. seed torch with ``seed`` and build the model, so that the seed fixes the initial weights;
2. remove the temporary folders of checkpoint writes a killed run left; with ``resume``, restore the newest
   intact checkpoint (weights, EMA, optimizer, LR scheduler, every global RNG); without it, refuse a folder that
   already holds checkpoints;
3. for step s = start .. max_steps - 1: take the batch of :class:`StepBatchSampler`, compute the loss with
   every other draw from ``step_generator(seed, s, rank)``, stop if the loss is not finite, back-propagate,
   clip, step the optimizer and the learning rate (:func:`learning_rate_factor`), update the EMA;
4. every ``checkpoint_every`` steps and after the last one: write a checkpoint, then validate (main process)
   and append the result to ``history.json``;
5. export the EMA weights to ``output_dir/model``.

Exact resume: step s sees the same batch, the same draws, the same weights, optimizer moments and learning
rate whether the run reached s straight or through resumes, so 10 steps + resume + 10 steps equal 20 steps
straight. The hooks (preview, validation, export) run under a forked global RNG, so that building or
sampling a model there cannot shift the draws of later steps (dropout).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from gesco.config import Config
from gesco.io import write_json
from gesco.training.checkpoint import (
    TrainingState,
    capture_rng,
    list_checkpoints,
    remove_partial_checkpoints,
    restore_latest,
    save_checkpoint,
)
from gesco.training.config import LR_SCHEDULES, MIXED_PRECISION
from gesco.training.ema import EMA

DEVICES = ("auto", "cpu")
#: First word of the seed of each kind of stream, so that a step's draws and an epoch's order never coincide.
_STEP_STREAM, _EPOCH_STREAM = 0, 1


class NonFiniteLossError(RuntimeError, ValueError):
    """The loss became NaN or Inf; training stopped before the weights were touched.

    Also a ``ValueError``: a diverged run is the data's or the settings' fault, which the command line reports in
    one line like every other bad value."""


def _seeded_generator(*words: int) -> torch.Generator:
    """A CPU generator seeded by a hash (numpy ``SeedSequence``) of the non-negative ints ``words``."""
    if any(word < 0 for word in words):
        raise ValueError(f"seeds, steps and ranks must be >= 0, got {words}")
    seed = int(np.random.SeedSequence(words).generate_state(1, dtype=np.uint64)[0])
    return torch.Generator().manual_seed(seed)


def step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """The CPU generator of every random draw of step ``step`` on process ``rank``.

    Flips, augmentations, timesteps, noise and channel draws of a step all come from it, in a fixed order, so
    that knowing ``step`` is enough to redo the step: this is what makes resume exact.

    Args:
        seed: the run's seed (>= 0).
        step: the 0-based index of the step.
        rank: the process index under data-parallel training (0 in a single process). Each process draws
            its own flips and noise for its own share of the batch.

    Returns:
        A fresh generator seeded by a hash of (seed, step, rank): no two triples share a stream.

    >>> same = torch.rand(2, generator=step_generator(0, 5, 1)) == torch.rand(2, generator=step_generator(0, 5, 1))
    >>> bool(same.all())
    True
    """
    return _seeded_generator(_STEP_STREAM, seed, step, rank)


def epoch_order(size: int, *, seed: int, epoch: int) -> torch.Tensor:
    """int64 (size,): the permutation of the dataset that epoch ``epoch`` walks through."""
    return torch.randperm(size, generator=_seeded_generator(_EPOCH_STREAM, seed, epoch))


class StepBatchSampler(Sampler[list[int]]):
    """Batch indices of steps ``start_step .. max_steps - 1`` for process ``rank`` of ``world_size``.

    Epoch e walks :func:`epoch_order` ``(seed, e)``; step s takes, at its position in the epoch, the slice of
    process ``rank``. So any step's batch is known without replaying the earlier ones, the processes see
    disjoint items, and an epoch uses each item at most once (the ``size % (batch_size * world_size)`` left
    over sit that epoch out).
    """

    def __init__(
        self,
        size: int,
        batch_size: int,
        *,
        seed: int,
        start_step: int,
        max_steps: int,
        rank: int = 0,
        world_size: int = 1,
    ):
        per_step = batch_size * world_size
        if size < per_step:
            raise ValueError(
                f"the dataset has {size} items, fewer than one step needs ({batch_size} x "
                f"{world_size} processes = {per_step}); lower batch_size or add data"
            )
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.start_step, self.max_steps = start_step, max_steps
        self.rank, self.world_size = rank, world_size
        self.steps_per_epoch = size // per_step

    def __len__(self) -> int:
        return max(0, self.max_steps - self.start_step)

    def __iter__(self):
        epoch, order = None, None
        for step in range(self.start_step, self.max_steps):
            step_epoch, position = divmod(step, self.steps_per_epoch)
            if step_epoch != epoch:
                epoch, order = step_epoch, epoch_order(self.size, seed=self.seed, epoch=step_epoch)
            first = (position * self.world_size + self.rank) * self.batch_size
            yield order[first : first + self.batch_size].tolist()


def learning_rate_factor(step: int, *, warmup_steps: int, max_steps: int, schedule: str) -> float:
    r"""The factor of the peak learning rate at 0-based step ``step``: a linear warm-up, then constant or cosine.

    .. math::

        f(s) = \begin{cases}
            (s + 1) / W & s < W \\
            1 & s \ge W,\ \text{constant} \\
            \tfrac12 \left(1 + \cos\left(\pi \min\left(1, \frac{s - W}{\max(1, S - W)}\right)\right)\right)
              & s \ge W,\ \text{cosine}
        \end{cases}

    with W = ``warmup_steps`` and S = ``max_steps``: the first step already trains at 1/W of the peak, step
    W - 1 reaches it, and the cosine comes down to 0 at S.

    >>> [learning_rate_factor(s, warmup_steps=4, max_steps=8, schedule="cosine") for s in (0, 3, 4, 6, 8)]
    [0.25, 1.0, 1.0, 0.5, 0.0]
    """
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {schedule!r}; choose one of {list(LR_SCHEDULES)}")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@dataclass(frozen=True)
class LoopSettings:
    """What the loop reads from a run's config; each trainer maps its own config onto it.

    Attributes:
        output_dir: the run folder: ``config.json``, ``checkpoints/``, ``history.json``, ``model/`` and,
            when logging, ``tensorboard/``.
        seed: fixes the initial weights, the batch order and every per-step draw.
        batch_size: items per step and process (the effective batch is batch_size x processes).
        max_steps: the number of steps after which the run ends.
        checkpoint_every: write a checkpoint (then validate) every N steps, and after the last step.
        keep_checkpoints: how many checkpoints stay on disk (0: all).
        warmup_steps, lr_schedule: the learning-rate factor, see :func:`learning_rate_factor`.
        ema_decay, ema_warmup: the weight average, see :class:`gesco.training.ema.EMA`.
        grad_clip: clip the gradient norm to this (0: no clipping).
        log_every: log loss, learning rate and the step's metrics to TensorBoard every N steps (0: no TensorBoard).
        mixed_precision: "no", "bf16" or "fp16" (accelerate's autocast, and loss scaling for fp16).
        device: "auto" (the GPU of each process when CUDA is available, else the CPU) or "cpu".
        num_workers: data-loader worker processes.
        name: the progress bar's label.
    """

    output_dir: str | Path
    seed: int
    batch_size: int
    max_steps: int
    checkpoint_every: int
    keep_checkpoints: int = 2
    warmup_steps: int = 0
    lr_schedule: str = "constant"
    ema_decay: float = 0.999
    ema_warmup: bool = True
    grad_clip: float = 0.0
    log_every: int = 0
    mixed_precision: str = "no"
    device: str = "auto"
    num_workers: int = 0
    name: str = "train"

    def __post_init__(self) -> None:
        for name, allowed in (("lr_schedule", LR_SCHEDULES), ("mixed_precision", MIXED_PRECISION), ("device", DEVICES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"LoopSettings.{name} must be one of {list(allowed)}, got {getattr(self, name)!r}")
        for name in ("batch_size", "max_steps", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("seed", "keep_checkpoints", "warmup_steps", "log_every", "num_workers", "grad_clip"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @classmethod
    def from_config(cls, config, *, name: str, device: str = "auto") -> LoopSettings:
        """The settings a trainer's config shares with the loop, read by field name (a field the config lacks
        keeps the loop's default); the data loader's workers come from ``config.data``."""
        shared = {f.name: getattr(config, f.name) for f in fields(cls) if hasattr(config, f.name)}
        return cls(**{**shared, "device": device, "num_workers": config.data.num_workers, "name": name})


@dataclass(frozen=True)
class StepInputs:
    """What the step function gets.

    Attributes:
        step: the 0-based index of the step being taken.
        batch: what ``collate_fn`` made of the step's items (on the CPU).
        generator: ``step_generator(seed, step, rank)``; draw every random number of the step from it.
        model: the model to call (wrapped for DDP under several processes).
        device: where the model lives; move the batch there.
    """

    step: int
    batch: Any
    generator: torch.Generator
    model: nn.Module
    device: torch.device


@dataclass(frozen=True)
class StepOutput:
    """What a step function may return instead of the bare loss.

    Attributes:
        loss: the scalar to minimise.
        metrics: tensors logged (their mean) beside the loss every ``log_every`` steps, e.g. {"mse": ...}.
    """

    loss: torch.Tensor
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class LoopResult:
    """What a run did.

    Attributes:
        step: the number of steps done when it stopped.
        processes: how many processes trained together.
        losses: the loss of each step taken by this call (mean over the processes).
        history: the entries of ``history.json`` (one per checkpoint, resumed runs included).
        output_dir: the run folder.
        seconds: wall time of this call.
    """

    step: int
    processes: int
    losses: list[float]
    history: list[dict[str, Any]]
    output_dir: Path
    seconds: float


StepFunction = Callable[[StepInputs], "torch.Tensor | StepOutput"]


class TrainingLoop:
    """One run: the constructor does steps 1-2 of the module docstring, :meth:`run` steps 3-5.

    Args:
        settings: the loop's part of the run's config.
        build_model: makes the model, called right after ``torch.manual_seed(settings.seed)``.
        build_optimizer: makes the optimizer from the model's parameters (peak learning rate included).
        config: the run's config, saved as ``output_dir/config.json`` (and its flat fields logged to TensorBoard).
        resume: continue from the newest checkpoint of ``output_dir/checkpoints``.
        progress: show a progress bar (main process only).

    Attributes:
        accelerator: the run's ``accelerate.Accelerator``.
        model: the model to train (wrapped by accelerate); ``unwrapped_model`` is the bare one.
        optimizer: the optimizer (wrapped by accelerate).
        lr_scheduler: ``LambdaLR`` of :func:`learning_rate_factor`, stepped once per step.
        ema: the :class:`EMA` of the weights, the ones exported.
        start_step: 0, or the step of the restored checkpoint.

    Raises:
        ValueError: ``output_dir`` holds checkpoints but ``resume`` is off.
        FileNotFoundError: ``resume`` is on but there is no checkpoint.
    """

    def __init__(
        self,
        settings: LoopSettings,
        build_model: Callable[[], nn.Module],
        build_optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer],
        *,
        config: Config | None = None,
        resume: bool = False,
        progress: bool = True,
    ):
        self.settings = settings
        self.output_dir = Path(settings.output_dir)
        self.checkpoints = self.output_dir / "checkpoints"
        self.progress = progress
        self.accelerator = _accelerator(settings)

        torch.manual_seed(settings.seed)
        model = build_model()
        optimizer = build_optimizer(model.parameters())
        self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self.learning_rate_factor)
        self.ema = EMA(model, decay=settings.ema_decay, warmup=settings.ema_warmup)
        self.start_step = 0
        if self.accelerator.is_main_process:
            remove_partial_checkpoints(self.checkpoints)
        if resume:
            self.start_step = restore_latest(self.checkpoints, model, self.ema, optimizer, self.lr_scheduler)
        elif list_checkpoints(self.checkpoints):
            raise ValueError(
                f"{self.output_dir} already holds checkpoints: pass --resume to continue, or choose a new output_dir"
            )
        if config is not None and self.accelerator.is_main_process:
            config.save(self.output_dir)
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        if settings.log_every:
            hyperparameters = {} if config is None else _flat_fields(config)
            self.accelerator.init_trackers("tensorboard", config=hyperparameters)

    def learning_rate_factor(self, step: int) -> float:
        """:func:`learning_rate_factor` of this run's settings."""
        s = self.settings
        return learning_rate_factor(step, warmup_steps=s.warmup_steps, max_steps=s.max_steps, schedule=s.lr_schedule)

    @property
    def is_main_process(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def unwrapped_model(self) -> nn.Module:
        return self.accelerator.unwrap_model(self.model)

    def run(
        self,
        dataset: Dataset,
        step_function: StepFunction,
        *,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        on_step_end: Callable[[int], None] | None = None,
        on_checkpoint: Callable[[int], dict[str, Any] | None] | None = None,
        export: Callable[[EMA, Path], object] | None = None,
    ) -> LoopResult:
        """Take the steps from ``start_step`` to ``max_steps``, checkpointing, validating and exporting.

        Args:
            dataset: the training items; the loop picks each step's batch (:class:`StepBatchSampler`).
            step_function: ``StepInputs -> loss`` (a scalar tensor, or a :class:`StepOutput` with metrics).
                It runs under accelerate's autocast.
            collate_fn: items -> batch, as for a ``DataLoader``.
            on_step_end: called with the number of steps done after each step, main process only, before that
                step's checkpoint (previews).
            on_checkpoint: called with the step after each checkpoint, main process only; the dict it returns
                (JSON values, e.g. validation scores) joins that step's entry of ``history.json``.
            export: called with the EMA and ``output_dir/model`` at the end, main process only.

        Raises:
            NonFiniteLossError: the loss became NaN or Inf; the weights of that step were not updated and
                the checkpoints on disk are intact.
        """
        s, accelerator = self.settings, self.accelerator
        sampler = StepBatchSampler(
            len(dataset),
            s.batch_size,
            seed=s.seed,
            start_step=self.start_step,
            max_steps=s.max_steps,
            rank=accelerator.process_index,
            world_size=accelerator.num_processes,
        )
        # The loader seeds its workers from its own generator, not the global RNG the checkpoint restored.
        loader = DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=collate_fn,
            num_workers=s.num_workers,
            generator=torch.Generator().manual_seed(s.seed),
        )
        history_path = self.output_dir / "history.json"
        history = [entry for entry in _read_history(history_path) if entry["step"] <= self.start_step]
        losses: list[float] = []
        started = time.perf_counter()
        bar = tqdm(
            total=s.max_steps,
            initial=self.start_step,
            desc=s.name,
            unit="step",
            disable=not (self.progress and accelerator.is_main_process),
        )
        step = self.start_step
        self.model.train()
        try:
            for step, batch in enumerate(loader, start=self.start_step):
                generator = step_generator(s.seed, step, accelerator.process_index)
                with accelerator.autocast():
                    output = step_function(StepInputs(step, batch, generator, self.model, accelerator.device))
                if not isinstance(output, StepOutput):
                    output = StepOutput(output)
                loss = accelerator.reduce(output.loss.detach(), reduction="mean")
                if not torch.isfinite(loss):
                    raise NonFiniteLossError(
                        f"the loss became {loss.item()} at step {step}; the weights were not updated and the "
                        f"checkpoints under {self.checkpoints} are intact (lower the learning rate or check the data)"
                    )
                learning_rate = self.lr_scheduler.get_last_lr()[0]
                accelerator.backward(output.loss)
                if s.grad_clip > 0:
                    accelerator.clip_grad_norm_(self.model.parameters(), s.grad_clip)
                self.optimizer.step()
                self.lr_scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.ema.update(self.unwrapped_model)

                losses.append(loss.item())
                done = step + 1
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.4f}")
                if s.log_every and done % s.log_every == 0:
                    metrics = {name: value.detach().float().mean().item() for name, value in output.metrics.items()}
                    accelerator.log({"loss": losses[-1], "lr": learning_rate, **metrics}, step=done)
                if on_step_end is not None and accelerator.is_main_process:
                    with torch.random.fork_rng(devices=[]):
                        on_step_end(done)
                if done % s.checkpoint_every == 0 or done == s.max_steps:
                    self._save_checkpoint(done)
                    if accelerator.is_main_process:
                        record = {}
                        if on_checkpoint is not None:
                            with torch.random.fork_rng(devices=[]):
                                record = on_checkpoint(done) or {}
                        seconds = round(time.perf_counter() - started, 1)
                        history.append({"step": done, "loss": losses[-1], "seconds": seconds, **record})
                        write_json(history_path, history)
                        shown = {k: f"{v:.3f}" for k, v in record.items() if isinstance(v, float)}
                        bar.set_postfix(loss=f"{losses[-1]:.4f}", **shown)
                step = done
            bar.close()
            if export is not None and accelerator.is_main_process:
                with torch.random.fork_rng(devices=[]):
                    export(self.ema, self.output_dir / "model")
            # every process leaves together, so none tears down the process group while another still uses it
            accelerator.wait_for_everyone()
        finally:
            bar.close()
            accelerator.end_training()
        return LoopResult(
            step=step,
            processes=accelerator.num_processes,
            losses=losses,
            history=history,
            output_dir=self.output_dir,
            seconds=time.perf_counter() - started,
        )

    def _save_checkpoint(self, step: int) -> None:
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            state = TrainingState(
                step,
                self.unwrapped_model.state_dict(),
                self.ema.state_dict(),
                self.ema.updates,
                self.optimizer.state_dict(),
                self.lr_scheduler.state_dict(),
                capture_rng(),
            )
            save_checkpoint(self.checkpoints, state, keep=self.settings.keep_checkpoints)


def _read_history(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    try:
        history = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not JSON ({err}); delete it to resume without the earlier entries") from err
    if not isinstance(history, list) or not all(isinstance(e, dict) and "step" in e for e in history):
        raise ValueError(f"{path} must be a JSON list of entries with a 'step'; delete it to resume without them")
    return history


def _flat_fields(config: Config) -> dict[str, float | int | str | bool]:
    """``{"data.size": "(64, 128)", "learning_rate": 0.0001, ...}``: a config as TensorBoard hyperparameters."""
    flat: dict[str, float | int | str | bool] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if not key.startswith("_"):
                    walk(f"{prefix}{key}.", item)
        else:
            flat[prefix[:-1]] = value if isinstance(value, (int, float, str, bool)) else str(value)

    walk("", config.to_dict())
    return flat


def _launched_on_several_processes() -> bool:
    initialized = torch.distributed.is_available() and torch.distributed.is_initialized()
    return initialized or int(os.environ.get("WORLD_SIZE", "1")) > 1


def _accelerator(settings: LoopSettings) -> Accelerator:
    """The run's Accelerator, on the CPU when asked or when there is no CUDA.

    Without ``cpu=True``, accelerate on a machine without CUDA ignores a torchrun / accelerate-launch group.
    accelerate keeps one state per process and refuses other settings once it is set; a single process that
    trains twice with different settings (a GPU receiver, then a CPU segmenter, in one test session) gets it
    afresh. Under several processes the launcher fixed the settings, and the state is left alone.
    """
    cpu = settings.device == "cpu" or not torch.cuda.is_available()
    if len(AcceleratorState._shared_state) and not _launched_on_several_processes():
        state = AcceleratorState()
        if (state.device.type == "cpu") != cpu or state.mixed_precision != settings.mixed_precision:
            AcceleratorState._reset_state(reset_partial_state=True)
            GradientState._reset_state()
    return Accelerator(
        cpu=cpu,
        mixed_precision=settings.mixed_precision,
        log_with="tensorboard" if settings.log_every else None,
        project_dir=settings.output_dir,
    )
