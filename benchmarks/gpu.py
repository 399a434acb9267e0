"""The paper's UNet and the shipped receiver on a GPU: speed and drift per precision, as JSON.

For a machine with CUDA (gesco's defaults are built for the CPU; this is the check of the paper presets
elsewhere). In one run:

- the paper's Cityscapes UNet (``UNetConfig.cityscapes()``, 256x512, seeded random weights: the time does not
  depend on them) as the official receiver runs it (two passes: conditional and unconditional as one batch of 2)
  and as a one-pass guidance-conditioned student runs it (batch 1): forward seconds in float32 (cuDNN's TF32
  convolutions, PyTorch's default), bfloat16 and float16 autocast, and each half precision's relative drift of
  the output against float32; one whole image with DPM-Solver++ 20 (two passes) and with lcm 4 (one pass), and
  DDPM-1000's estimate (1,000 two-pass forwards);
- the shipped receiver's UNet on a batch of 400 maps (200 guided images), forward seconds and drift per
  precision;
- peak GPU memory.

Zero-initialised layers (each block's output convolution, the guidance embedding's last layer) are re-drawn at
random first, so that the network's output, and so its drift, is not zero.

Usage: python benchmarks/gpu.py [--repeats 10] [--size 256 512]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from gesco.pretrained import GESCO_RECEIVER, resolve
from gesco.receiver.pipeline import DiffusionReceiver
from gesco.receiver.sampling import SamplerConfig, sample
from gesco.receiver.unet import GescoUNet, UNetConfig

DEVICE = torch.device("cuda")
PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}


def gpu_seconds(fn, repeats: int) -> float:
    """Mean seconds of ``fn`` by CUDA events, after one warm-up call (which picks the kernels)."""
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1000 / repeats


def image_seconds(model: torch.nn.Module, y: torch.Tensor, config: SamplerConfig) -> float:
    """Wall seconds of one whole sampled image, after a warm-up image."""

    def one_image():
        sample(model, y, config, generator=torch.Generator().manual_seed(0), progress=False)
        torch.cuda.synchronize()

    one_image()
    started = time.perf_counter()
    one_image()
    return time.perf_counter() - started


def redraw_zero_layers(model: torch.nn.Module, generator: torch.Generator) -> None:
    """Give every all-zero parameter small random values (a fresh network's output is exactly zero)."""
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.numel() and not parameter.any():
                parameter.copy_(0.02 * torch.randn(parameter.shape, generator=generator))


def precision_rows(model, inputs: tuple, options: dict, repeats: int) -> dict:
    """Forward seconds per precision and each half precision's relative drift against float32."""
    rows, outputs = {}, {}
    for name, dtype in PRECISIONS.items():

        @torch.no_grad()
        def forward(dtype=dtype):
            with torch.autocast(DEVICE.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                return model(*inputs, **options)

        rows[name] = {"forward_seconds": round(gpu_seconds(forward, repeats), 5)}
        outputs[name] = forward().float()
    reference = outputs["float32"]
    for name in ("bfloat16", "float16"):
        rows[name]["relative_drift"] = float((outputs[name] - reference).norm() / reference.norm())
    return rows


def paper_unet(size: tuple[int, int], *, one_pass: bool, repeats: int) -> dict:
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = GescoUNet(UNetConfig.cityscapes().replace(guidance_conditioning=one_pass))
    redraw_zero_layers(model, generator)
    model = model.to(DEVICE).eval().to(memory_format=torch.channels_last)
    batch = 1 if one_pass else 2
    x = torch.randn(batch, 3, *size, generator=generator)
    y = torch.rand(batch, model.config.label_channels, *size, generator=generator)
    x, y = (v.to(DEVICE).contiguous(memory_format=torch.channels_last) for v in (x, y))
    t = torch.full((batch,), 500, device=DEVICE)
    options = {"guidance": torch.full((batch,), 5.0, device=DEVICE)} if one_pass else {}
    torch.cuda.reset_peak_memory_stats()
    report = {"parameters": sum(p.numel() for p in model.parameters()), "forward_batch": batch}
    report.update(precision_rows(model, (x, t, y), options, repeats))
    if one_pass:
        for precision in ("bfloat16", "float16"):
            config = SamplerConfig(sampler="lcm", steps=4, guidance=5.0, autocast_dtype=precision)
            report[f"lcm4_image_seconds_{precision}"] = round(image_seconds(model, y[:1], config), 3)
    else:
        for precision in PRECISIONS:
            config = SamplerConfig(sampler="dpmpp", steps=20, guidance=5.0, autocast_dtype=precision)
            report[f"dpmpp20_image_seconds_{precision}"] = round(image_seconds(model, y[:1], config), 3)
        report["ddpm1000_image_seconds_float32_estimate"] = round(1000 * report["float32"]["forward_seconds"], 1)
    report["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return report


def shipped_receiver(repeats: int, images: int = 200) -> dict:
    receiver = DiffusionReceiver.from_pretrained(resolve(GESCO_RECEIVER))
    unet = receiver.unet.float().to(DEVICE).eval()
    generator = torch.Generator().manual_seed(1)
    size = tuple(receiver.config.image_size)
    x = torch.randn(2 * images, 3, *size, generator=generator).to(DEVICE)
    # one-hot-like maps: a tenth of the channels on per pixel, as sparse as a real map's
    y = (torch.rand(2 * images, unet.config.label_channels, *size, generator=generator) > 0.9).float().to(DEVICE)
    t = torch.full((2 * images,), 500, device=DEVICE)
    return {"forward_batch": 2 * images, **precision_rows(unet, (x, t, y), {}, repeats)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--size", type=int, nargs=2, default=(256, 512), metavar=("H", "W"))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("benchmarks/gpu.py needs a CUDA GPU (torch.cuda.is_available() is False)")
    report = {
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cudnn_tf32": torch.backends.cudnn.allow_tf32,
        "paper_unet_two_pass": paper_unet(tuple(args.size), one_pass=False, repeats=args.repeats),
        "paper_unet_one_pass": paper_unet(tuple(args.size), one_pass=True, repeats=args.repeats),
        "shipped_receiver_unet": shipped_receiver(args.repeats),
    }
    print(json.dumps(report, indent=2, allow_nan=False))


if __name__ == "__main__":
    main()
