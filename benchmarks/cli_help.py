"""Wall time of ``gesco --help``, ``gesco --version`` and every ``gesco <command> --help``, printed as JSON.

Each is run as a user runs it (a fresh process of the ``gesco`` console script, or ``python -m gesco.cli.main``
when the script is not installed beside this Python) ``--repeats`` times; the JSON gives the median and the
slowest run per command line, the bare interpreter's start-up for reference, and whether every median is under
the 1 s target. ``tests/cli/test_cli_help.py`` checks that none of these imports torch.
Usage: python benchmarks/cli_help.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from gesco.cli.main import COMMANDS

TARGET_SECONDS = 1.0


def gesco_command() -> list[str]:
    script = Path(sys.executable).parent / "gesco"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "gesco.cli.main"]


def wall_times(argv: list[str], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.repeats < 1:
        raise SystemExit(f"--repeats must be positive, got {args.repeats}")
    gesco = gesco_command()
    lines = {"--help": ["--help"], "--version": ["--version"]}
    lines.update({f"{name} --help": [name, "--help"] for name in COMMANDS})
    seconds = {}
    for label, argv in lines.items():
        times = wall_times([*gesco, *argv], args.repeats)
        seconds[label] = {"median": round(statistics.median(times), 3), "max": round(max(times), 3)}
    interpreter = statistics.median(wall_times([sys.executable, "-c", "pass"], args.repeats))
    print(
        json.dumps(
            {
                "benchmark": "gesco help texts, fresh process each",
                "command": " ".join(Path(part).name if i == 0 else part for i, part in enumerate(gesco)),
                "cpu_count": os.cpu_count(),
                "repeats": args.repeats,
                "python_startup_seconds": round(interpreter, 3),
                "seconds": seconds,
                "slowest_median_seconds": max(s["median"] for s in seconds.values()),
                "target_seconds": TARGET_SECONDS,
                "within_target": all(s["median"] <= TARGET_SECONDS for s in seconds.values()),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
