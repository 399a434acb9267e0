"""Receiver speed and memory, printed as JSON.

- small64 UNet (the official 46.9M-parameter configuration) at 64x128: one forward at batch 1
  and the guided batch of 2, in fp32 and in bf16 autocast + channels_last;
- seconds per image with guidance s = 2 for DDPM-1000 (timed over the first ``--ddpm-steps``
  steps and extrapolated, as the JSON says), DDIM-50 and DPM-Solver++-20;
- the paper's Cityscapes UNet at 256x512: one forward's time and the process's peak memory
  (measured in a child process so that the small model does not count).

The official code's figures on this machine (2 threads, fp32, batch 1, 64x128, small64):
0.53-0.62 s per forward; 62 s per DDIM-50 image; about 1,220 s per DDPM-1000 image.
Usage: python benchmarks/receiver.py [--threads 2] [--repeats 5] [--skip-cityscapes]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

from gesco.receiver.sampling import SamplerConfig, sample
from gesco.receiver.unet import GescoUNet, UNetConfig

OFFICIAL_FORWARD_SECONDS = (0.53, 0.62)
OFFICIAL_SECONDS_PER_IMAGE = {"ddim50": 62.0, "ddpm1000": 1220.0}


def timed(fn, repeats: int) -> float:
    fn()  # warm-up: first calls allocate and pick kernels
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def forward_seconds(model: GescoUNet, batch: int, size: tuple[int, int], *, bf16: bool, repeats: int) -> float:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, *size, generator=g)
    y = torch.rand(batch, model.config.label_channels, *size, generator=g)
    t = torch.full((batch,), 500)
    if bf16:
        x, y = x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last)

    @torch.no_grad()
    def run():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model(x, t, y)

    return timed(run, repeats)


def sampling_seconds(
    model: GescoUNet, config: SamplerConfig, size: tuple[int, int], *, stop_after: int | None
) -> float:
    """Seconds for one guided image; with ``stop_after`` the loop is cut after that many network calls."""
    y = torch.rand(1, model.config.label_channels, *size, generator=torch.Generator().manual_seed(1))
    calls = {"n": 0}

    class Budget(torch.nn.Module):
        def forward(self, x, t, c):
            calls["n"] += 1
            if stop_after is not None and calls["n"] > stop_after:
                raise StopIteration
            return model(x, t, c)

    start = time.perf_counter()
    try:
        with torch.no_grad():
            sample(Budget(), y, config, generator=torch.Generator().manual_seed(0), progress=False)
    except StopIteration:
        pass
    return time.perf_counter() - start


def cityscapes_forward(threads: int) -> dict:
    torch.set_num_threads(threads)
    model = GescoUNet(UNetConfig.cityscapes()).eval()
    seconds = forward_seconds(model, 1, (256, 512), bf16=True, repeats=1)
    return {
        "forward_seconds_bf16": round(seconds, 3),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ddpm-steps", type=int, default=100, help="DDPM steps timed before extrapolating to 1000")
    parser.add_argument("--skip-cityscapes", action="store_true")
    parser.add_argument("--cityscapes-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cityscapes_child:
        print(json.dumps(cityscapes_forward(args.threads)))
        return
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    size = (64, 128)
    model = GescoUNet(UNetConfig.small64()).eval()
    report: dict = {"threads": args.threads, "torch": torch.__version__, "small64_64x128": {}}
    small = report["small64_64x128"]
    for precision, bf16 in (("fp32", False), ("bf16_channels_last", True)):
        model_p = model.to(memory_format=torch.channels_last) if bf16 else model
        small[f"forward_b1_{precision}"] = round(forward_seconds(model_p, 1, size, bf16=bf16, repeats=args.repeats), 4)
        small[f"forward_b2_{precision}"] = round(forward_seconds(model_p, 2, size, bf16=bf16, repeats=args.repeats), 4)
    best = min(small["forward_b1_fp32"], small["forward_b1_bf16_channels_last"])
    small["official_forward_seconds"] = OFFICIAL_FORWARD_SECONDS
    small["forward_vs_official_fast_end"] = round(best / OFFICIAL_FORWARD_SECONDS[0], 3)
    small["guided_step_b2_vs_two_official_forwards"] = round(
        min(small["forward_b2_fp32"], small["forward_b2_bf16_channels_last"]) / (2 * OFFICIAL_FORWARD_SECONDS[0]), 3
    )

    model = model.to(memory_format=torch.channels_last)
    per_image = {}
    for name, config, stop in (
        (
            "dpmpp20",
            SamplerConfig(sampler="dpmpp", steps=20, guidance=2.0, autocast_dtype="bfloat16", two_pass_guidance=True),
            None,
        ),
        (
            "ddim50",
            SamplerConfig(sampler="ddim", steps=50, guidance=2.0, autocast_dtype="bfloat16", two_pass_guidance=True),
            None,
        ),
        (
            "ddpm1000",
            SamplerConfig(sampler="ddpm", steps=1000, guidance=2.0, autocast_dtype="bfloat16", two_pass_guidance=True),
            2 * args.ddpm_steps,
        ),
    ):
        seconds = sampling_seconds(model, config, size, stop_after=stop)
        if stop is not None:
            seconds *= 1000 / args.ddpm_steps
        per_image[name] = round(seconds, 2)
    per_image["ddpm1000_note"] = (
        f"extrapolated x{1000 // args.ddpm_steps} from the first {args.ddpm_steps} guided steps"
    )
    per_image["settings"] = "guidance 2 (two forwards per step), bf16 autocast + channels_last, batch 1"
    per_image["official_seconds_per_image"] = OFFICIAL_SECONDS_PER_IMAGE
    per_image["speedup_dpmpp20_vs_official_ddpm1000"] = round(
        OFFICIAL_SECONDS_PER_IMAGE["ddpm1000"] / per_image["dpmpp20"], 1
    )
    report["seconds_per_image_64x128"] = per_image

    if not args.skip_cityscapes:
        child = subprocess.run(
            [sys.executable, __file__, "--cityscapes-child", "--threads", str(args.threads)],
            capture_output=True,
            text=True,
            check=True,
        )
        report["cityscapes_256x512"] = json.loads(child.stdout.strip().splitlines()[-1])
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
