"""Wall time of ``gesco demo`` with its defaults (the issue's target: under 60 s on a 2-core CPU), printed as JSON.

Runs the command as a user would (a fresh process: imports, model loading, sampling, scoring, figure) ``--repeats``
times and reports each run, the median and the demo's own seconds per image.
Usage: python benchmarks/demo.py [--repeats 3] [-- extra gesco demo options]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("demo_args", nargs=argparse.REMAINDER, help="options passed on to gesco demo (after --)")
    args = parser.parse_args()
    extra = [a for a in args.demo_args if a != "--"]
    runs, per_image = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "gesco.cli.main", "demo", "--out", out, "--no-progress", *extra],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            runs.append(round(time.perf_counter() - started, 2))
            per_image.append(json.loads((Path(out) / "results.json").read_text())["seconds_per_image"])
    median = statistics.median(runs)
    print(
        json.dumps(
            {
                "benchmark": "gesco demo (defaults)" + (f" {' '.join(extra)}" if extra else ""),
                "cpu_count": os.cpu_count(),
                "runs_seconds": runs,
                "median_seconds": median,
                "target_seconds": TARGET_SECONDS,
                "within_target": median < TARGET_SECONDS,
                "seconds_per_image_last_run": per_image[-1],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
