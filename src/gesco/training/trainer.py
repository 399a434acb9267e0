"""Noise-aware training of the GESCO receiver on HF accelerate.

The same loop runs on this CPU, on one GPU, and under ``accelerate launch`` / ``torchrun``
on many GPUs and nodes: accelerate wraps the model (DDP), mixed precision and the
gradient all-reduce; gesco owns only what makes a run exactly resumable.

Exact resume: every random draw of step ``s`` on process ``r`` (batch indices, flips,
timesteps, epsilon, channel noise, condition dropout) comes from a generator seeded by
(seed, s, r), and the checkpoint holds the weights, EMA, optimizer, LR scheduler and the
global RNG (dropout); so 10 steps + resume + 10 steps equal 20 steps straight.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from gesco.receiver.diffusion import GaussianDiffusion
from gesco.receiver.pipeline import ReceiverConfig, receiver_from_weights
from gesco.receiver.sampling import SamplerConfig
from gesco.receiver.unet import GescoUNet
from gesco.semantics.classes import ClassTable
from gesco.semantics.maps import SemanticMap
from gesco.training.checkpoint import TrainingState, list_checkpoints, restore_latest, save_checkpoint
from gesco.training.conditioning import drop_condition, noisy_condition
from gesco.training.config import TrainConfig
from gesco.training.data import build_dataset, collate_samples, dataset_class_table
from gesco.training.ema import EMA
from gesco.training.preview import write_sample_grid


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or Inf; training stopped before the weights were touched."""


@dataclass(frozen=True)
class TrainResult:
    """What a run did: the step it stopped at, per-step mean losses (over processes), and where it wrote."""

    step: int
    processes: int
    losses: list[float]
    output_dir: Path
    seconds: float


class StepBatchSampler(Sampler[list[int]]):
    """Batch indices of steps ``start_step .. max_steps - 1`` for one process.

    Each epoch is a permutation seeded by (seed, epoch); step ``s`` takes the slice of
    process ``rank`` from it, so any step's batch is known without replaying earlier ones.
    """

    def __init__(self, size: int, batch_size: int, *, seed: int, start_step: int, max_steps: int,
                 rank: int = 0, world_size: int = 1):
        per_step = batch_size * world_size
        if size < per_step:
            raise ValueError(f"the dataset has {size} items, fewer than one step needs ({per_step})")
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
                epoch = step_epoch
                order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 7919 + epoch))
            first = (position * self.world_size + self.rank) * self.batch_size
            yield order[first : first + self.batch_size].tolist()


def step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 1009 + rank)


def learning_rate_factor(config: TrainConfig, step: int) -> float:
    """Linear warm-up, then constant or cosine decay to zero at ``max_steps``."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.lr_schedule == "cosine":
        progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return 1.0


def _flat_hyperparameters(config: TrainConfig) -> dict[str, float | int | str | bool]:
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


def _check_model_fits_table(config: TrainConfig, table: ClassTable) -> None:
    if config.model.label_channels != table.num_channels:
        raise ValueError(
            f"the model takes {config.model.label_channels} label channels but the {table.name} maps have "
            f"{table.num_channels} ({table.num_classes} classes{' + edge' if table.has_edge else ''}); "
            "set model.label_channels accordingly"
        )


def export_receiver(config: TrainConfig, weights: dict[str, torch.Tensor], directory: Path) -> Path:
    """Save ``weights`` (the EMA weights) as a receiver folder usable by ``gesco sample`` / ``transmit``."""
    receiver_config = ReceiverConfig(
        class_table=config.class_table,
        edge_rule=config.data.edge_rule,
        image_size=config.data.size,
        diffusion=config.diffusion,
        sampler=SamplerConfig(sampler=config.sample_sampler, steps=config.sample_steps, guidance=config.sample_guidance),
        training_noise=config.noise,
    )
    return receiver_from_weights(config.model, weights, receiver_config).save_pretrained(directory)


def train(config: TrainConfig, *, resume: bool = False, progress: bool = True) -> TrainResult:
    """Run (or continue, with ``resume``) the training described by ``config``."""
    output = Path(config.output_dir)
    # Without cpu=True, accelerate on a machine without CUDA ignores a torchrun / accelerate-launch group.
    accelerator = Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=config.mixed_precision,
                              log_with="tensorboard", project_dir=output)
    table = dataset_class_table(config)
    _check_model_fits_table(config, table)
    checkpoints = output / "checkpoints"

    torch.manual_seed(config.seed)
    model = GescoUNet(config.model)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    diffusion = GaussianDiffusion(config.diffusion)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: learning_rate_factor(config, s))
    ema = EMA(model, decay=config.ema_decay, warmup=config.ema_warmup)

    start_step = 0
    if resume:
        start_step = restore_latest(checkpoints, model, ema, optimizer, lr_scheduler)
    elif list_checkpoints(checkpoints):
        raise ValueError(f"{output} already holds checkpoints: pass --resume to continue, or choose a new output_dir")
    if accelerator.is_main_process:
        config.save(output)

    model, optimizer = accelerator.prepare(model, optimizer)
    dataset = build_dataset(config.data, table)
    sampler = StepBatchSampler(len(dataset), config.batch_size, seed=config.seed, start_step=start_step,
                               max_steps=config.max_steps, rank=accelerator.process_index,
                               world_size=accelerator.num_processes)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_samples,
                        num_workers=config.data.num_workers)
    accelerator.init_trackers("tensorboard", config=_flat_hyperparameters(config))

    def checkpoint(step: int) -> None:
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            state = TrainingState(step, accelerator.unwrap_model(model).state_dict(), ema.state_dict(), ema.updates,
                                  optimizer.state_dict(), lr_scheduler.state_dict(), torch.get_rng_state())
            save_checkpoint(checkpoints, state, keep=config.keep_checkpoints)

    losses: list[float] = []
    started = time.perf_counter()
    bar = tqdm(total=config.max_steps, initial=start_step, disable=not (progress and accelerator.is_main_process),
               desc="train", unit="step")
    model.train()
    step = start_step
    for step, batch in enumerate(loader, start=start_step):
        generator = step_generator(config.seed, step, accelerator.process_index)
        images, labels = batch.image, batch.labels
        instances = batch.instances
        if config.data.flip:
            flip = torch.rand(images.shape[0], generator=generator) < 0.5
            images = torch.where(flip[:, None, None, None], images.flip(-1), images)
            labels = torch.where(flip[:, None, None], labels.flip(-1), labels)
            if instances is not None:
                instances = torch.where(flip[:, None, None], instances.flip(-1), instances)
        one_hot = SemanticMap(labels, table, instances, config.data.edge_rule).one_hot()
        condition, _ = noisy_condition(one_hot, mode=config.noise, sigmas=config.noise_sigmas, generator=generator)
        condition = drop_condition(condition, config.condition_dropout, generator=generator)
        t = diffusion.sample_timesteps(images.shape[0], generator=generator)
        noise = torch.randn(images.shape, generator=generator)
        device = accelerator.device
        if config.channels_last:
            images, condition = (x.contiguous(memory_format=torch.channels_last) for x in (images, condition))
        with accelerator.autocast():
            terms = diffusion.training_loss(model, images.to(device), t.to(device), condition.to(device),
                                            noise=noise.to(device))
        loss = terms.loss.mean()
        if not torch.isfinite(accelerator.reduce(loss.detach(), reduction="mean")):
            bar.close()
            accelerator.end_training()
            raise NonFiniteLossError(
                f"the loss became {loss.item()} at step {step}; weights not updated, the last good checkpoint "
                f"under {checkpoints} is intact (lower learning_rate or check the data)"
            )
        accelerator.backward(loss)
        if config.grad_clip > 0:
            accelerator.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        ema.update(accelerator.unwrap_model(model))

        mean_loss = accelerator.reduce(loss.detach(), reduction="mean").item()
        losses.append(mean_loss)
        done = step + 1
        bar.update(1)
        bar.set_postfix(loss=f"{mean_loss:.4f}")
        if done % config.log_every == 0:
            logged = {"loss": mean_loss, "mse": terms.mse.mean().item(), "lr": lr_scheduler.get_last_lr()[0]}
            if terms.vb is not None:
                logged["vb"] = terms.vb.mean().item()
            accelerator.log(logged, step=done)
        if config.sample_every and done % config.sample_every == 0 and accelerator.is_main_process:
            write_sample_grid(accelerator, ema, config, diffusion, dataset, table, step=done)
        if done % config.checkpoint_every == 0 or done == config.max_steps:
            checkpoint(done)
        step = done
    bar.close()
    if accelerator.is_main_process:
        export_receiver(config, ema.state_dict(), output / "model")
    # every rank leaves together, so none tears down the process group while another still uses it
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return TrainResult(step=step, processes=accelerator.num_processes, losses=losses, output_dir=output,
                       seconds=time.perf_counter() - started)
