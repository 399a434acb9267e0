"""Noise-aware training of the GESCO receiver (the diffusion model) on the shared loop.

What is the receiver's own is here: the UNet and the diffusion loss, the noisy training maps, the preview
grid and the export as a receiver folder. The steps, exact resume, checkpoints, EMA, learning-rate schedule
and multi-process training (``accelerate launch`` / ``torchrun``) are :mod:`gesco.training.loop`'s.

The draws of step ``s`` on process ``r``, all from ``step_generator(seed, s, r)``, in this order: the
flips, the noisy map (sigma, channel noise), the condition dropout, the timesteps t and the noise epsilon.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gesco.io import load_tensors
from gesco.receiver.diffusion import GaussianDiffusion
from gesco.receiver.noise_level import NoiseConditioned
from gesco.receiver.pipeline import ReceiverConfig, receiver_from_weights
from gesco.receiver.unet import GescoUNet
from gesco.receiver.unet.config import check_image_size
from gesco.semantics.classes import ClassTable
from gesco.training.conditioning import drop_condition, flipped_noisy_condition
from gesco.training.config import TrainConfig
from gesco.training.data import build_dataset, collate_samples, dataset_class_table
from gesco.training.loop import LoopResult, LoopSettings, NonFiniteLossError, StepInputs, StepOutput, TrainingLoop
from gesco.training.preview import write_sample_grid
from gesco.weights_folder import WEIGHTS_NAME

__all__ = ["NonFiniteLossError", "export_receiver", "loop_settings", "train"]


def loop_settings(config: TrainConfig) -> LoopSettings:
    """The shared loop's part of a receiver run."""
    return LoopSettings.from_config(config, name="train")


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
        sampler=config.sampler,
        training_noise=config.noise,
    )
    return receiver_from_weights(config.model, weights, receiver_config).save_pretrained(directory)


def load_initial_weights(model: GescoUNet, folder: Path) -> None:
    """Load a receiver or UNet folder's weights into ``model``; only the noise embedding may be missing from
    them (zero-initialised, so the model starts as the source network)."""
    weights_file = folder / "unet" / WEIGHTS_NAME if (folder / "unet").is_dir() else folder / WEIGHTS_NAME
    if not weights_file.is_file():
        raise FileNotFoundError(f"init_weights: no {WEIGHTS_NAME} in {folder} or {folder / 'unet'}")
    weights = {k: v.float() for k, v in load_tensors(weights_file).items()}
    own = model.state_dict()
    new = sorted(set(own) - set(weights))
    if any(not name.startswith("noise_embedding.") for name in new) or set(weights) - set(own):
        raise ValueError(
            f"init_weights {folder} does not fit the model: missing {new[:3]}, "
            f"unexpected {sorted(set(weights) - set(own))[:3]}"
        )
    bad = [k for k, v in weights.items() if v.shape != own[k].shape]
    if bad:
        raise ValueError(f"init_weights {folder}: shapes differ for {bad[:3]}")
    model.load_state_dict(weights, strict=False)


def train(config: TrainConfig, *, resume: bool = False, progress: bool = True) -> LoopResult:
    """Run (or continue, with ``resume``) the training described by ``config``; export ``output_dir/model``."""
    table = dataset_class_table(config)
    _check_model_fits_table(config, table)
    try:
        check_image_size(config.data.size, config.model)
    except ValueError as err:
        raise ValueError(f"data.size: {err}") from None
    diffusion = GaussianDiffusion(config.diffusion)

    def build_model() -> GescoUNet:
        try:
            model = GescoUNet(config.model)
        except RuntimeError as err:  # torch's allocator: "can't allocate memory", "size calculation overflowed"
            raise MemoryError(
                f"the model of TrainConfig.model (base_channels={config.model.base_channels}, channel_mult="
                f"{list(config.model.channel_mult)}) cannot be allocated: {err}"
            ) from err
        if config.init_weights:
            load_initial_weights(model, Path(config.init_weights))
        return model.to(memory_format=torch.channels_last) if config.channels_last else model

    loop = TrainingLoop(
        loop_settings(config),
        build_model,
        lambda parameters: torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay),
        config=config,
        resume=resume,
        progress=progress,
    )
    dataset = build_dataset(config.data, table)

    def step(inputs: StepInputs) -> StepOutput:
        generator, device = inputs.generator, inputs.device
        images, condition, sigma = flipped_noisy_condition(
            inputs.batch,
            table,
            flip=config.data.flip,
            edge_rule=config.data.edge_rule,
            mode=config.noise,
            sigmas=config.noise_sigmas,
            generator=generator,
        )
        condition = drop_condition(condition, config.condition_dropout, generator=generator)
        t = diffusion.sample_timesteps(images.shape[0], generator=generator)
        noise = torch.randn(images.shape, generator=generator)
        if config.channels_last:
            images, condition = (x.contiguous(memory_format=torch.channels_last) for x in (images, condition))
        # A noise-conditioned receiver also reads the channel's sigma (kept when the map is dropped, so the
        # unconditional model of guidance sees the same noise level as the conditional one).
        model = NoiseConditioned(inputs.model, sigma.to(device)) if config.model.noise_conditioning else inputs.model
        terms = diffusion.training_loss(
            model, images.to(device), t.to(device), condition.to(device), noise=noise.to(device)
        )
        metrics = {"mse": terms.mse} if terms.vb is None else {"mse": terms.mse, "vb": terms.vb}
        return StepOutput(terms.loss.mean(), metrics)

    def preview(done: int) -> None:
        if config.sample_every and done % config.sample_every == 0:
            write_sample_grid(loop.accelerator, loop.ema, config, diffusion, dataset, table, step=done)

    return loop.run(
        dataset,
        step,
        collate_fn=collate_samples,
        on_step_end=preview,
        export=lambda ema, directory: export_receiver(config, ema.state_dict(), directory),
    )
