"""Receiver speed and memory, printed as JSON.

- small64 UNet (the official 46.9M-parameter configuration) at 64x128: one forward at batch 1
  and the guided batch of 2, in fp32 and in bf16 autocast + channels_last;
- seconds per image with guidance s = 2 for DDPM-1000 (timed over the first ``--ddpm-steps``
  steps and extrapolated, as the JSON says), DDIM-50 and DPM-Solver++-20;
- the paper's Cityscapes UNet at 256x512: one forward's time, one whole image by the fast recipe (one forward
  per step, ``--cityscapes-image-steps`` lcm steps) and the process's peak memory (measured in a child process so
  that the small model does not count).

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

With ``--receiver-paths``: images/s of the shipped receiver's whole sampler on each path -- first the
official-equivalent one (DDPM-1000, two fp32 forwards per step, timed over ``--ddpm-steps`` steps and
extrapolated), then its own sampler on torch bf16 and OpenVINO int8, and the ``--guidance-student`` /
``--consistency-student`` receivers on torch bf16, OpenVINO bf16 and int8 -- each in its own child process, with
the speed-up against the first.

Usage: python benchmarks/receiver.py [--threads 2] [--repeats 5] [--skip-cityscapes] [--backends [--backends-only]]
    [--receiver-paths[-only] --guidance-student DIR --consistency-student DIR --consistency-steps 2 4]
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

    # a guidance-conditioned network takes the scale as one more input
    options = {"guidance": torch.full((batch,), 5.0)} if model.config.guidance_conditioning else {}

    @torch.no_grad()
    def run():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model(x, t, y, **options)

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


def cityscapes_forward(threads: int, image_steps: int) -> dict:
    """The paper's Cityscapes UNet at 256x512 under bf16: one forward, and with ``image_steps`` one whole image
    regenerated by the fast recipe (a guidance-conditioned UNet, one forward per step, lcm sampler; seeded random
    weights: the time does not depend on them)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = GescoUNet(UNetConfig.cityscapes().replace(guidance_conditioning=bool(image_steps))).eval()
    model = model.to(memory_format=torch.channels_last)
    seconds = forward_seconds(model, 1, (256, 512), bf16=True, repeats=1)
    report = {
        "forward_seconds_bf16": round(seconds, 3),
        "parameters": sum(p.numel() for p in model.parameters()),
        "two_pass_dpmpp20_image_seconds_estimate": round(40 * seconds, 1),
    }
    if image_steps:
        y = torch.rand(1, model.config.label_channels, 256, 512, generator=torch.Generator().manual_seed(1))
        config = SamplerConfig(sampler="lcm", steps=image_steps, guidance=5.0, autocast_dtype="bfloat16")
        started = time.perf_counter()
        sample(model, y, config, generator=torch.Generator().manual_seed(0), progress=False)
        report[f"one_pass_lcm{image_steps}_image_seconds"] = round(time.perf_counter() - started, 1)
    report["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    return report


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


def link_conditions(receiver, scenes: int, psnr: float = 10.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Conditioning maps and channel sigmas of ``scenes`` tuning-range scenes (seeds 900,300+) sent at ``psnr``."""
    from gesco.channel.awgn import AWGNChannel
    from gesco.channel.quality import ChannelQuality
    from gesco.datasets.base import collate
    from gesco.datasets.synthetic import SyntheticStreetsDataset
    from gesco.receiver.receiver import Receiver
    from gesco.semantics.maps import SemanticMap
    from gesco.semantics.transmitter import Transmitter

    height, width = receiver.config.image_size
    dataset = SyntheticStreetsDataset(scenes, 900_300, height=height, width=width)
    batch = collate([dataset[i] for i in range(scenes)])
    payload = Transmitter()(SemanticMap(batch.labels, receiver.table, batch.instances, receiver.config.edge_rule))
    received = AWGNChannel()(payload, ChannelQuality.psnr_label(psnr), generator=torch.Generator().manual_seed(0))
    return Receiver(None, map_denoiser=receiver.config.map_denoiser)(received).condition, received.sigma


def receiver_path_child(spec: dict, threads: int, cache: str) -> dict:
    """Images/s of one receiver path in this (fresh) process: a model, a UNet backend and precision, a sampler.

    ``spec``: label, model (shipped name or folder), backend, precision, sampler, steps, two_pass, batch and
    ``stop_after`` (network calls after which the loop is cut and the time extrapolated to the full sampler)."""
    from gesco.evaluation.sweep import sampler_variant
    from gesco.receiver.backends import CalibrationConfig, with_backend
    from gesco.receiver.pipeline import DiffusionReceiver
    from gesco.weights_folder import model_folder

    torch.set_num_threads(threads)
    receiver = DiffusionReceiver.from_pretrained(model_folder(spec["model"]))
    backend, precision = spec["backend"], spec["precision"]
    torch_bf16 = backend == "torch" and precision == "bf16"
    sampler = sampler_variant(receiver.config.sampler, sampler=spec["sampler"], steps=spec["steps"]).replace(
        autocast_dtype="bfloat16" if torch_bf16 else "float32", two_pass_guidance=spec["two_pass"]
    )
    started = time.perf_counter()
    if backend != "torch":
        calibration = CalibrationConfig(scenes=8) if precision == "int8" else None
        receiver = with_backend(
            receiver, backend=backend, precision=precision, calibration=calibration, cache_dir=cache
        )
    build_seconds = time.perf_counter() - started
    condition, sigma = link_conditions(receiver, spec["batch"])
    passes = 1 if receiver.unet.config.guidance_conditioning or sampler.guidance == 1 else 2
    stop_after = spec.get("stop_after")

    class Counted:
        """The UNet, counting its calls and cutting the sampler after ``stop_after`` of them."""

        def __init__(self, unet) -> None:
            self.unet, self.calls = unet, 0

        def __getattr__(self, name):
            return getattr(self.unet, name)

        def __call__(self, *args, **kwargs):
            self.calls += 1
            if stop_after is not None and self.calls > stop_after:
                raise StopIteration
            return self.unet(*args, **kwargs)

    counted = receiver.unet = Counted(receiver.unet)

    def run(images: int) -> float:
        counted.calls = 0
        start = time.perf_counter()
        try:
            receiver(
                condition[:images], sigma=sigma[:images], sampler=sampler, generator=torch.Generator().manual_seed(1)
            )
        except StopIteration:
            pass
        return time.perf_counter() - start

    run(1)  # warm-up: the first calls allocate and pick kernels
    seconds = run(spec["batch"])
    network_calls = min(counted.calls, stop_after) if stop_after is not None else counted.calls
    full_calls = sampler.steps * (1 if passes == 1 or not sampler.two_pass_guidance else 2)
    seconds *= full_calls / network_calls
    return {
        **spec,
        "sampler_settings": f"{sampler.sampler} {sampler.steps} steps, guidance {sampler.guidance:g}",
        "forwards_per_image": sampler.steps * passes,
        "extrapolated_from_calls": network_calls if network_calls < full_calls else None,
        "build_seconds": round(build_seconds, 1),
        "seconds_per_batch": round(seconds, 3),
        "images_per_second": round(spec["batch"] / seconds, 4),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }


def receiver_path_specs(args: argparse.Namespace) -> list[dict]:
    """The official-equivalent path first (DDPM-1000, two fp32 forwards per step, as the official sampler runs),
    then the shipped receiver's own sampler and each distilled student on torch and the exported backends."""

    def path(label, model, backend, precision, sampler, steps, *, two_pass=False, batch=1, stop_after=None):
        return dict(
            label=label,
            model=model,
            backend=backend,
            precision=precision,
            sampler=sampler,
            steps=steps,
            two_pass=two_pass,
            batch=batch,
            stop_after=stop_after,
        )

    specs = [
        path(
            "official-equivalent DDPM-1000, fp32",
            SHIPPED,
            "torch",
            "fp32",
            "ddpm",
            1000,
            two_pass=True,
            stop_after=2 * args.ddpm_steps,
        ),
        path("shipped dpmpp-sde 20, torch bf16", SHIPPED, "torch", "bf16", "dpmpp-sde", 20),
        path("shipped dpmpp-sde 20, OpenVINO int8", SHIPPED, "openvino", "int8", "dpmpp-sde", 20),
    ]
    if args.guidance_student:
        for backend, precision in (("torch", "bf16"), ("openvino", "bf16"), ("openvino", "int8")):
            label = f"one-pass student dpmpp-sde 20, {backend} {precision}"
            specs.append(path(label, args.guidance_student, backend, precision, "dpmpp-sde", 20))
    if args.consistency_student:
        for steps in args.consistency_steps:
            for backend, precision in (("torch", "bf16"), ("openvino", "bf16"), ("openvino", "int8")):
                for batch in (1, 8):
                    label = f"consistency student lcm {steps}, {backend} {precision}, batch {batch}"
                    specs.append(path(label, args.consistency_student, backend, precision, "lcm", steps, batch=batch))
    return specs


def receiver_paths_section(paths: list[dict], threads: int, cache: str) -> dict:
    """Every receiver path in its own child process; speed-ups against the first (the official-equivalent one)."""
    results = []
    for spec in paths:
        command = [sys.executable, __file__, "--receiver-child", json.dumps(spec), "--threads", str(threads)]
        child = subprocess.run([*command, "--backend-cache", cache], capture_output=True, text=True)
        if child.returncode:
            results.append({**spec, "error": child.stderr.strip().splitlines()[-1:]})
            continue
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    reference = results[0].get("images_per_second")
    for result in results:
        if reference and "images_per_second" in result:
            result["speedup_vs_official_equivalent"] = round(result["images_per_second"] / reference, 1)
    return {
        "official_equivalent": results[0]["label"],
        "conditions": "tuning-range scenes 900,300+ through the transmitter, AWGN at PSNR 10 and the map denoiser",
        "paths": results,
    }


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
    parser.add_argument(
        "--cityscapes-image-steps",
        type=int,
        default=4,
        help="steps of the one-pass lcm image timed on the paper's UNet (0: the forward only)",
    )
    parser.add_argument("--backends", action="store_true", help="add the exported-backend section (gesco[fast])")
    parser.add_argument("--backends-only", action="store_true", help="only the exported-backend section")
    parser.add_argument(
        "--backend-cache",
        default=str(Path(tempfile.gettempdir()) / "gesco-benchmark-backends"),
        help="folder of the exported UNets, reused by later runs",
    )
    parser.add_argument("--backend-child", help=argparse.SUPPRESS)
    parser.add_argument(
        "--receiver-paths",
        action="store_true",
        help="add images/s of the shipped receiver and its distilled students against the official-equivalent path",
    )
    parser.add_argument("--receiver-paths-only", action="store_true", help="only the receiver-path section")
    parser.add_argument("--guidance-student", help="a gesco distill-guidance receiver folder")
    parser.add_argument("--consistency-student", help="a gesco distill-consistency receiver folder")
    parser.add_argument("--consistency-steps", type=int, nargs="+", default=[4])
    parser.add_argument("--receiver-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cityscapes_child:
        print(json.dumps(cityscapes_forward(args.threads, args.cityscapes_image_steps)))
        return
    if args.backend_child:
        print(json.dumps(backend_child(args.backend_child, args.threads, args.repeats, args.backend_cache)))
        return
    if args.receiver_child:
        print(json.dumps(receiver_path_child(json.loads(args.receiver_child), args.threads, args.backend_cache)))
        return
    if args.receiver_paths_only:
        report = {"threads": args.threads, "torch": torch.__version__}
        report["receiver_paths"] = receiver_paths_section(receiver_path_specs(args), args.threads, args.backend_cache)
        print(json.dumps(report, indent=2))
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
            [sys.executable, __file__, "--cityscapes-child", "--threads", str(args.threads)]
            + ["--cityscapes-image-steps", str(args.cityscapes_image_steps)],
            capture_output=True,
            text=True,
            check=True,
        )
        report["cityscapes_256x512"] = json.loads(child.stdout.strip().splitlines()[-1])
    if args.backends:
        report["backends"] = backends_section(args.threads, args.repeats, args.backend_cache)
    if args.receiver_paths:
        report["receiver_paths"] = receiver_paths_section(receiver_path_specs(args), args.threads, args.backend_cache)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
