"""Receiver speed and memory, printed as JSON.

- small64 UNet (the official 46.9M-parameter configuration) at 64x128: one forward at batch 1
  and the guided batch of 2, in fp32 and in bf16 autocast + channels_last;
- seconds per image with guidance s = 2 for DDPM-1000 (timed over the first ``--ddpm-steps``
  steps and extrapolated, as the JSON says), DDIM-50 and DPM-Solver++-20;
- the paper's Cityscapes UNet at 256x512: one forward's time and the process's peak memory
  (measured in a child process so that the small model does not count).

The official code's figures on this machine (2 threads, fp32, batch 1, 64x128, small64):
0.53-0.62 s per forward; 62 s per DDIM-50 image; about 1,220 s per DDPM-1000 image.
With ``--backends`` (``pip install 'gesco[fast]'``), every UNet path -- torch fp32 and bf16 autocast, ONNX Runtime
fp32 / int8, OpenVINO fp32 / bf16 / int8 -- each in its own child process (so that its peak memory is its own):
forward seconds at batch 1 and 2 on the shipped receiver and on small64 (``configs/unet-small64.json``, seeded
random weights), their GFLOP/s (conv and matmul FLOPs counted on the torch UNet) against a bf16 3x3-conv roofline
timed in the same child process, the eps drift against the fp32 torch UNet on calibration-like inputs (training-range
scenes 900,100+ through transmitter, AWGN at PSNR 100/10/5/1 and FDS, noised to the sampler's timesteps), the
shipped receiver's images/s with its own sampler, and the child's peak RSS. int8 is calibrated on scenes
900,000+. Exports are cached in ``--backend-cache``; ``--backends-only`` skips the other sections.

Usage: python benchmarks/receiver.py [--threads 2] [--repeats 5] [--skip-cityscapes] [--backends [--backends-only]]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from gesco.receiver.sampling import SamplerConfig, sample
from gesco.receiver.unet import GescoUNet, UNetConfig

#: Every UNet path of ``--backends``: (backend, precision).
BACKEND_PATHS = (
    ("torch", "bf16"),
    ("openvino", "int8"),
    ("openvino", "bf16"),
    ("torch", "fp32"),
    ("onnxruntime", "int8"),
    ("openvino", "fp32"),
    ("onnxruntime", "fp32"),
)
SHIPPED = "synthetic-streets-64x128"

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


def conv_roofline(threads: int, repeats: int) -> dict:
    """GFLOP/s of one bf16 3x3 convolution (128 -> 128 channels, 32x64, batch 2, channels_last, oneDNN): the
    roofline that UNet forwards are measured against."""
    torch.set_num_threads(threads)
    conv = torch.nn.Conv2d(128, 128, 3, padding=1).to(memory_format=torch.channels_last)
    x = torch.randn(2, 128, 32, 64).contiguous(memory_format=torch.channels_last)

    @torch.no_grad()
    def run():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            conv(x)

    seconds = timed(run, max(repeats, 10))
    flops = 2 * 2 * 32 * 64 * 128 * 128 * 9
    return {
        "conv": "3x3, 128->128, 2x128x32x64, bf16 autocast, channels_last",
        "gflops": round(flops / seconds / 1e9, 1),
    }


def forward_flops(model: GescoUNet, size: tuple[int, int]) -> int:
    """FLOPs of one batch-1 forward (convolutions and matrix products, 2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    x, y = torch.zeros(1, 3, *size), torch.zeros(1, model.config.label_channels, *size)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x, torch.full((1,), 500), y)
    return counter.get_total_flops()


def small64_receiver(shipped):
    """small64 with seeded random weights (the same in every child process) behind the shipped receiver's config."""
    from gesco.receiver.pipeline import DiffusionReceiver

    torch.manual_seed(0)
    return DiffusionReceiver(GescoUNet(UNetConfig.from_preset_or_file("configs/unet-small64.json")), shipped.config)


def backend_child(path: str, threads: int, repeats: int, cache: str) -> dict:
    """One UNet path in this (fresh) process: forwards, eps drift, the shipped receiver's sampling, peak RSS."""
    import gesco.pretrained
    from gesco.receiver.backends import CalibrationConfig, calibration_inputs, with_backend

    torch.set_num_threads(threads)
    backend, precision = path.split("-")
    shipped = gesco.pretrained.load(SHIPPED)
    small = small64_receiver(shipped)
    result: dict = {"backend": backend, "precision": precision}
    bf16_torch = backend == "torch" and precision == "bf16"
    autocast = "bfloat16" if bf16_torch else "float32"
    started = time.perf_counter()
    receivers = {}
    for name, receiver, scenes in (("shipped", shipped, 8), ("small64", small, 4)):
        # int8 is calibrated on scenes 900,000+ (CalibrationConfig's default seeds)
        calibration = CalibrationConfig(scenes=scenes) if precision == "int8" else None
        receivers[name] = (
            receiver
            if backend == "torch"
            else with_backend(receiver, backend=backend, precision=precision, calibration=calibration, cache_dir=cache)
        )
    result["build_seconds"] = round(time.perf_counter() - started, 1)
    # measured beside this path's forwards: on a shared machine the load moves between child processes
    result["roofline"] = conv_roofline(threads, repeats)

    size = shipped.config.image_size
    for name, receiver in receivers.items():
        g = torch.Generator().manual_seed(0)
        timings = {}
        for batch in (1, 2):
            x, t = torch.randn(batch, 3, *size, generator=g), torch.full((batch,), 500)
            y = torch.rand(batch, receiver.unet.config.label_channels, *size, generator=g)

            @torch.no_grad()
            def run(unet=receiver.unet, x=x, t=t, y=y):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16_torch):
                    unet(x, t, y)

            timings[f"forward_b{batch}_seconds"] = round(timed(run, repeats), 4)
        result[name] = timings

    # eps drift against the fp32 torch UNet on calibration-like inputs (other scenes and noise than calibration's)
    inputs = calibration_inputs(shipped, CalibrationConfig(scenes=4, first_seed=900_100, seed=1))
    x, t, y = (torch.cat([getattr(item, k) for item in inputs]) for k in ("x", "t", "y"))
    with torch.no_grad():
        reference = shipped.unet(x, t, y)[:, :3]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16_torch):
            output = torch.cat(
                [receivers["shipped"].unet(x[i : i + 2], t[i : i + 2], y[i : i + 2]) for i in range(0, len(x), 2)]
            )
    error = (output.float()[:, :3] - reference).abs()
    result["shipped_eps_drift"] = {
        "inputs": len(x),
        "eps_std": round(float(reference.std()), 4),
        "max_abs": round(float(error.max()), 5),
        "mean_abs": round(float(error.mean()), 5),
    }

    # the shipped receiver's own sampler on one map, from a fixed x_T
    sampler = shipped.config.sampler.replace(autocast_dtype=autocast)
    condition, x_T = inputs[0].y, torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(2))
    started = time.perf_counter()
    receivers["shipped"](condition, x_T=x_T, sampler=sampler, generator=torch.Generator().manual_seed(3))
    seconds = time.perf_counter() - started
    result["shipped_sampling"] = {
        "sampler": f"{sampler.sampler} {sampler.steps} steps, guidance {sampler.guidance:g}, batch-2 forwards",
        "seconds_per_image": round(seconds, 2),
        "images_per_second": round(1 / seconds, 3),
    }
    result["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    return result


def backends_section(threads: int, repeats: int, cache: str) -> dict:
    """Every path of :data:`BACKEND_PATHS` in a child process, with GFLOP/s against the roofline timed beside it."""
    import gesco.pretrained

    torch.set_num_threads(threads)
    shipped = gesco.pretrained.load(SHIPPED)
    size = shipped.config.image_size
    flops = {
        "shipped": forward_flops(shipped.unet, size),
        "small64": forward_flops(small64_receiver(shipped).unet, size),
    }
    paths = {}
    for backend, precision in BACKEND_PATHS:
        command = [sys.executable, __file__, "--backend-child", f"{backend}-{precision}", "--threads", str(threads)]
        command += ["--repeats", str(repeats), "--backend-cache", cache]
        child = subprocess.run(command, capture_output=True, text=True)
        if child.returncode:
            paths[f"{backend}-{precision}"] = {"error": child.stderr.strip().splitlines()[-1:]}
            continue
        result = json.loads(child.stdout.strip().splitlines()[-1])
        for name in ("shipped", "small64"):
            for batch in (1, 2):
                gflops = batch * flops[name] / result[name][f"forward_b{batch}_seconds"] / 1e9
                result[name][f"gflops_b{batch}"] = round(gflops, 1)
                result[name][f"roofline_fraction_b{batch}"] = round(gflops / result["roofline"]["gflops"], 3)
        paths[f"{backend}-{precision}"] = result
        # each path as it finishes: a long run can be read before its end
        print(json.dumps({"flops": flops, "path": result}), file=sys.stderr, flush=True)
    base = paths.get("torch-fp32", {})
    for result in paths.values():
        if "error" in result or not base:
            continue
        result["speedup_vs_torch_fp32"] = {
            name: round(base[name]["forward_b2_seconds"] / result[name]["forward_b2_seconds"], 2)
            for name in ("shipped", "small64")
        }
        result["speedup_vs_torch_fp32"]["shipped_images_per_second"] = round(
            result["shipped_sampling"]["images_per_second"] / base["shipped_sampling"]["images_per_second"], 2
        )
    return {
        "roofline": "each path's own: a bf16 3x3 conv timed in its process (conv_roofline)",
        "forward_gflop_batch1": {name: round(f / 1e9, 2) for name, f in flops.items()},
        "image_size": list(size),
        "paths": paths,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ddpm-steps", type=int, default=100, help="DDPM steps timed before extrapolating to 1000")
    parser.add_argument("--skip-cityscapes", action="store_true")
    parser.add_argument("--cityscapes-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backends", action="store_true", help="add the exported-backend section (gesco[fast])")
    parser.add_argument("--backends-only", action="store_true", help="only the exported-backend section")
    parser.add_argument(
        "--backend-cache",
        default=str(Path(tempfile.gettempdir()) / "gesco-benchmark-backends"),
        help="folder of the exported UNets, reused by later runs",
    )
    parser.add_argument("--backend-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cityscapes_child:
        print(json.dumps(cityscapes_forward(args.threads)))
        return
    if args.backend_child:
        print(json.dumps(backend_child(args.backend_child, args.threads, args.repeats, args.backend_cache)))
        return
    if args.backends_only:
        report = {"threads": args.threads, "torch": torch.__version__}
        report["backends"] = backends_section(args.threads, args.repeats, args.backend_cache)
        print(json.dumps(report, indent=2))
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
    if args.backends:
        report["backends"] = backends_section(args.threads, args.repeats, args.backend_cache)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
