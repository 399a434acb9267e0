"""What objects and depth add to ``gesco evaluate``'s wall time, printed as JSON.

Runs the same ``gesco evaluate`` (same model, scenes, PSNR labels, sampler, seed) into fresh folders, without and
with ``--detector`` / ``--depth``, in the order A B B A so that a drift of the shared machine's speed falls on
both sides alike. The issue's target: the geometry metrics make evaluate at most 20 % slower.
FID is left out of both (``--no-fid``): it costs the same on both sides, so leaving it out makes the measured
overhead a ratio of a smaller whole, the stricter test.

Usage: python benchmarks/evaluate_geometry_overhead.py --depth runs/depth/model [--n 16] [--psnr 10]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path


def timed_evaluate(base: list[str], out: Path) -> float:
    started = time.perf_counter()
    subprocess.run([*base, "--out", str(out)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="synthetic-streets-64x128")
    parser.add_argument("--detector", default="detector-synthetic-streets-64x128")
    parser.add_argument("--depth", default="depth-synthetic-streets-64x128")
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--psnr", nargs="+", default=["10"])
    args = parser.parse_args()
    evaluate = ["gesco", "evaluate", "--model", args.model, "--data", "synthetic"]
    evaluate += ["--n", str(args.n), "--psnr", *args.psnr, "--no-fid", "--no-progress"]
    geometry = ["--detector", args.detector, "--detector-min-area", "16", "--depth", args.depth]
    seconds: dict[str, list[float]] = {"without": [], "with": []}
    with tempfile.TemporaryDirectory() as scratch:
        for run, side in enumerate(("without", "with", "with", "without")):
            base = evaluate + (geometry if side == "with" else [])
            seconds[side].append(timed_evaluate(base, Path(scratch) / f"run{run}"))
    without, with_geometry = sum(seconds["without"]), sum(seconds["with"])
    report = {
        "model": args.model,
        "scenes": args.n,
        "psnr": args.psnr,
        "seconds_without": seconds["without"],
        "seconds_with": seconds["with"],
        "overhead": with_geometry / without - 1.0,
        "target_overhead": 0.2,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
