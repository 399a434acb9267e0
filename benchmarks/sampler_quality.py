"""The equal-quality yardstick of the fast receivers: DDPM-1000 with guidance against every fast path, as JSON.

Runs ``gesco evaluate`` on held-out synthetic scenes (seeds 1,000,000+) at each PSNR label:

- the teacher receiver with its own sampler, the reference sampler (default ``ddpm:1000``, the official
  receiver's 1,000 ancestral steps, two network passes each) and every ``--fast`` sampler (``NAME:STEPS``),
  all from the same seeds (x_T and channel noise are drawn per image and label, not per method);
- every ``--student`` receiver (``FOLDER:SAMPLER:STEPS``, e.g. a ``gesco distill-guidance`` or
  ``gesco distill-consistency`` output) with that sampler.

Printed per path and label: the segmenter's mIoU, FID, seconds per image (generation only, from the report's
``generation_seconds``), network forwards per image, and against the reference: the mIoU change in points, the FID
ratio, the speed-up, and whether the path is "equal quality" (mIoU within 1 point, FID within 5 %).
Images and reports stay in ``--out`` (an interrupted run resumes; its timings then cover only what was made).

Usage: python benchmarks/sampler_quality.py --out runs/sampler-quality [--n 50] [--psnr 100 10 1]
    [--teacher synthetic-streets-64x128] [--reference ddpm:1000] [--fast dpmpp-sde:20 dpmpp:8 dpmpp:4]
    [--student runs/guidance-distilled/model:dpmpp-sde:20 runs/consistency-distilled/model:lcm:4]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from gesco.receiver.pipeline import ReceiverConfig
from gesco.weights_folder import model_folder

#: The evaluate method name of a receiver with its own (or the command line's) sampler.
OWN_SAMPLER = "gesco"
MIOU_POINTS = 1.0
FID_RATIO = 1.05


def sampler_spec(text: str) -> tuple[str, int]:
    name, _, steps = text.partition(":")
    if not name or not steps.isdigit() or int(steps) < 1:
        raise argparse.ArgumentTypeError(f"expected NAME:STEPS (e.g. dpmpp:20), got {text!r}")
    return name, int(steps)


def student_spec(text: str) -> tuple[str, str, int]:
    folder, _, rest = text.partition(":")
    if not folder or not rest:
        raise argparse.ArgumentTypeError(f"expected FOLDER:SAMPLER:STEPS, got {text!r}")
    name, steps = sampler_spec(rest)
    return folder, name, steps


def evaluate(model: str, out: Path, args: argparse.Namespace, extra: list[str]) -> dict:
    """``gesco evaluate`` of ``model`` into ``out`` (resuming what is there); its ``results.json``."""
    command = [str(Path(sys.executable).with_name("gesco")), "evaluate", "--model", model, "--data", "synthetic"]
    command += ["--n", str(args.n), "--psnr", *args.psnr, "--batch-size", str(args.batch_size), "--out", str(out)]
    command += ["--segmenter", args.segmenter]
    # evaluate's own lines go to stderr: stdout is this report's JSON alone
    subprocess.run(command + extra, check=True, stdout=sys.stderr)
    return json.loads((out / "results.json").read_text())


def rows_of(results: dict, method: str, path: str, n: int, passes: int) -> list[dict]:
    """One row per label for ``method`` of an evaluate report; ``passes``: network forwards per sampler step."""
    settings = next(m["sampler"] for m in results["methods"] if m["name"] == method)
    rows = []
    for row in results["results"]:
        if row["method"] != method:
            continue
        seconds = results["generation_seconds"].get(f"{method}/psnr{row['psnr']}")
        rows.append(
            {
                "path": path,
                "psnr": row["psnr"],
                "sampler": settings["sampler"],
                "steps": settings["steps"],
                "guidance": settings["guidance"],
                "forwards_per_image": settings["steps"] * passes,
                "miou": row["miou"],
                "fid": row["fid"],
                "seconds_per_image": None if seconds is None else seconds / n,
            }
        )
    return rows


def compare_to(reference: dict[str, dict], rows: list[dict]) -> None:
    """Add each row's change against the reference row of its label."""
    for row in rows:
        base = reference.get(row["psnr"])
        if base is None:
            continue
        row["miou_change_points"] = 100.0 * (row["miou"] - base["miou"])
        fid_ratio = row["fid"] / base["fid"] if row["fid"] is not None and base["fid"] else None
        row["fid_ratio"] = fid_ratio
        speed = base["seconds_per_image"], row["seconds_per_image"]
        row["speedup"] = speed[0] / speed[1] if all(speed) else None
        row["forward_ratio"] = base["forwards_per_image"] / row["forwards_per_image"]
        row["equal_quality"] = (
            row["miou_change_points"] >= -MIOU_POINTS and fid_ratio is not None and fid_ratio <= FID_RATIO
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--teacher", default="synthetic-streets-64x128")
    parser.add_argument("--reference", type=sampler_spec, default=("ddpm", 1000))
    parser.add_argument("--fast", type=sampler_spec, nargs="*", default=[("dpmpp-sde", 20), ("dpmpp", 8)])
    parser.add_argument("--student", type=student_spec, nargs="*", default=[])
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--psnr", nargs="+", default=["100", "10", "1"])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--segmenter", default="segmenter-synthetic-streets-64x128")
    args = parser.parse_args()

    own = ReceiverConfig.load(model_folder(args.teacher)).sampler
    own_spec = (own.sampler, own.steps)
    # evaluate's "gesco" row is the teacher's own sampler; a sweep entry equal to it would be that same row
    sweep = [spec for spec in (args.reference, *args.fast) if spec != own_spec]
    names = [f"gesco-{name}{steps}" for name, steps in sweep]
    teacher = evaluate(
        args.teacher,
        args.out / "teacher",
        args,
        ["--methods", OWN_SAMPLER, *names, "--sampler-sweep", *(f"{n}:{s}" for n, s in sweep)],
    )
    reference_name = OWN_SAMPLER if args.reference == own_spec else names[0]
    rows = []
    for method in [OWN_SAMPLER, *names]:
        rows += rows_of(teacher, method, f"{args.teacher} {method}", args.n, passes=2)
    for folder, name, steps in args.student:
        # a run's receiver sits in RUN/model: name its report after the run
        label = Path(folder).parent.name if Path(folder).name == "model" else Path(folder).name
        out = args.out / f"{label}-{name}{steps}"
        student = evaluate(folder, out, args, ["--methods", OWN_SAMPLER, "--sampler", name, "--steps", str(steps)])
        rows += rows_of(student, OWN_SAMPLER, f"{folder} {name}{steps}", args.n, passes=1)
    reference = {row["psnr"]: row for row in rows if row["path"] == f"{args.teacher} {reference_name}"}
    compare_to(reference, rows)
    report = {
        "teacher": args.teacher,
        "reference": f"{args.reference[0]}:{args.reference[1]}",
        "scenes": args.n,
        "first_seed": 1_000_000,
        "psnr": args.psnr,
        "equal_quality_rule": f"mIoU within {MIOU_POINTS:g} point, FID at most {FID_RATIO:g}x the reference's",
        "rows": rows,
    }
    print(json.dumps(report, indent=2, allow_nan=False))


if __name__ == "__main__":
    main()
