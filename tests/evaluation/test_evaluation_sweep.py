"""The evaluation sweep end to end on a tiny untrained model: mechanics only (files, cells, resume, seeding)."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from gesco.cli.main import main
from gesco.datasets import SyntheticStreetsDataset
from gesco.evaluation.report import METRICS
from gesco.evaluation.sweep import GESCO, ORACLE, build_methods, generate_set
from gesco.receiver.pipeline import DiffusionReceiver
from gesco.receiver.sampling import SamplerConfig

SAMPLER = SamplerConfig(sampler="dpmpp", steps=2, guidance=1.0)  # the tiny receivers' own (conftest.py)
SEED = 1_000_000


def evaluate_args(assets, out, *extra):
    return [
        "evaluate",
        "--model",
        str(assets / "gesco"),
        "--sdm-model",
        str(assets / "sdm"),
        "--data",
        "synthetic",
        "--n",
        "3",
        "--psnr",
        "100",
        "5",
        "--batch-size",
        "3",
        "--segmenter",
        str(assets / "segmenter"),
        "--inception",
        str(assets / "features.pt"),
        "--kid-subsets",
        "5",
        "--samples",
        "2",
        "--out",
        str(out),
        "--no-progress",
        *extra,
    ]


def test_sweep_end_to_end_mechanics_on_an_untrained_model(assets, tmp_path):
    out = tmp_path / "eval"
    assert main(evaluate_args(assets, out)) == 0
    methods = ["gesco", "sdm", "gesco-no-fds", "oracle"]
    psnrs = ["100", "5"]
    for method in methods:
        for folder in ["clean"] if method == ORACLE else [f"psnr{p}" for p in psnrs]:
            assert len(list((out / "images" / method / folder).glob("*.png"))) == 3, (method, folder)

    data = json.loads((out / "results.json").read_text())
    assert [m["name"] for m in data["methods"]] == methods and data["psnr_labels"] == psnrs
    cells = {(r["method"], r["psnr"]): r for r in data["results"]}
    assert set(cells) == {(m, p) for m in methods + ["real-images", "received-map"] for p in psnrs}
    generated_metrics = ["miou", "pixel_accuracy", "fid", "kid", "ssim", "image_psnr"]
    for method in methods:
        for psnr in psnrs:
            cell = cells[method, psnr]
            assert all(isinstance(cell[k], float) for k in generated_metrics), (method, psnr, cell)
            assert cell["lpips"] is None and cell["ms_ssim"] is None and cell["images"] == 3
            assert 0 <= cell["miou"] <= 1 and set(cell["per_class_iou"]) <= set(data["classes"])
    assert cells["oracle", "100"]["fid"] == cells["oracle", "5"]["fid"]
    for reference in ("real-images", "received-map"):
        assert all(0 <= cells[reference, p]["miou"] <= 1 and cells[reference, p]["fid"] is None for p in psnrs)
    # FDS blurs boundaries even of the clean map, and at PSNR label 5 (sigma 0.6) the map is far noisier
    assert cells["received-map", "100"]["miou"] > cells["received-map", "5"]["miou"]
    assert "LPIPS" in data["notes"]["lpips"] or "lpips" in data["notes"]["lpips"].lower()
    assert "too small" in data["notes"]["ms_ssim"] and data["settings"]["data_first_seed"] == SEED
    assert data["settings"]["data_riders"] is False
    assert data["payload_per_pixel"]["analog_complex_channel_uses"] > 1

    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(cells) and all(rows[0].get(m.key) is not None for m in METRICS)
    assert all(row["fid"] for row in rows if row["method"] in methods)
    markdown = (out / "report.md").read_text()
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    header = table[0]
    for psnr in psnrs:
        for title in ("mIoU↑", "Acc↑", "FID↓", "KID↓", "SSIM↑", "PSNR dB↑"):
            assert f"{psnr} {title}" in header
    assert "LPIPS" not in header and "LPIPS: not computed" in markdown
    for label in [m["label"] for m in data["methods"]] + [r["label"] for r in data["references"]]:
        row = next(line for line in table if line.startswith(f"| {label} |"))
        assert row.count("|") == header.count("|")
    plotted = {p.stem for p in (out / "plots").glob("*.png")}
    assert plotted == {"miou", "pixel_accuracy", "fid", "kid", "ssim", "image_psnr"}
    assert {p.name for p in (out / "figures").glob("*.png")} == {f"samples_{m}.png" for m in methods}

    # resume: a rerun keeps every image and scores the same; a deleted image comes back identical
    image = out / "images" / "gesco" / "psnr5" / "synthetic_1000001.png"
    stamps = {p: p.stat().st_mtime_ns for p in (out / "images").rglob("*.png") if p != image}
    before = image.read_bytes()
    image.unlink()
    assert main(evaluate_args(assets, out)) == 0
    assert image.read_bytes() == before
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in stamps.items())
    again = {(r["method"], r["psnr"]): r for r in json.loads((out / "results.json").read_text())["results"]}
    assert again["gesco", "5"]["fid"] == pytest.approx(cells["gesco", "5"]["fid"])
    assert again["gesco", "5"]["miou"] == cells["gesco", "5"]["miou"]


def test_an_image_does_not_depend_on_its_batch(assets, tmp_path):
    receiver = DiffusionReceiver.from_pretrained(assets / "gesco")
    dataset = SyntheticStreetsDataset(3, SEED, height=32, width=64)
    method = build_methods(SAMPLER, with_sdm=False)[0]
    assert method.name == GESCO
    for batch_size, folder in ((3, "together"), (1, "alone")):
        assert (
            generate_set(
                receiver,
                method,
                5.0,
                dataset,
                [0, 1, 2],
                tmp_path / folder,
                seed=0,
                batch_size=batch_size,
                progress=False,
            )
            == 3
        )
    for name in ("synthetic_1000000", "synthetic_1000002"):
        together = np.asarray(Image.open(tmp_path / "together" / f"{name}.png"), dtype=int)
        alone = np.asarray(Image.open(tmp_path / "alone" / f"{name}.png"), dtype=int)
        assert np.abs(together - alone).max() <= 1


@pytest.mark.slow
def test_generation_splits_across_two_processes(assets, tmp_path):
    out = tmp_path / "two"
    args = [
        "evaluate",
        "--model",
        str(assets / "gesco"),
        "--data",
        "synthetic",
        "--n",
        "3",
        "--psnr",
        "5",
        "--methods",
        "gesco",
        "--no-fid",
        "--batch-size",
        "1",
        "--samples",
        "1",
        "--out",
        str(out),
        "--no-progress",
    ]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "--",
            "gesco.cli.main",
            *args,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("wrote") == 1  # only the main process scores and reports
    assert json.loads((out / "results.json").read_text())["settings"]["processes"] == 2
    receiver = DiffusionReceiver.from_pretrained(assets / "gesco")
    dataset = SyntheticStreetsDataset(3, SEED, height=32, width=64)
    generate_set(
        receiver,
        build_methods(SAMPLER, with_sdm=False)[0],
        5.0,
        dataset,
        [0, 1, 2],
        tmp_path / "one",
        seed=0,
        batch_size=1,
        progress=False,
    )
    for image in (tmp_path / "one").glob("*.png"):
        assert image.read_bytes() == (out / "images" / "gesco" / "psnr5" / image.name).read_bytes()


def test_sweep_variants_skip_duplicates_of_gesco():
    methods = build_methods(
        SAMPLER, with_sdm=True, guidance_sweep=[1.0, 2.0], sampler_sweep=[("dpmpp", 2), ("ddim", 4)]
    )
    names = [m.name for m in methods]
    assert names == ["gesco", "sdm", "gesco-no-fds", "oracle", "gesco-g2", "gesco-ddim4"]
    by_name = {m.name: m for m in methods}
    assert by_name["gesco-g2"].sampler.guidance == 2.0 and by_name["gesco-g2"].map_denoiser == "fds"
    assert by_name["gesco-ddim4"].sampler.sampler == "ddim" and by_name["gesco-ddim4"].sampler.steps == 4
    assert by_name["oracle"].clean_map and by_name["sdm"].map_denoiser == "none" and by_name["sdm"].model == "sdm"


def test_evaluate_rejects_bad_requests(assets, tmp_path, capsys):
    assert main(evaluate_args(assets, tmp_path / "x", "--methods", "gesco", "nope")) == 2
    assert "unknown --methods ['nope']" in capsys.readouterr().err
    args = evaluate_args(assets, tmp_path / "x")
    args[args.index("--psnr") + 2] = "12"
    assert main(args) == 2 and "unknown PSNR label 12" in capsys.readouterr().err


def test_the_gesco_rows_use_the_map_denoiser_asked_for():
    methods = build_methods(SAMPLER, with_sdm=True, guidance_sweep=[2.0], blind_sigma=True, map_denoiser="den")
    by_name = {m.name: m for m in methods}
    for name in ("gesco", "gesco-blind", "gesco-g2"):
        assert by_name[name].map_denoiser == "den", name
    assert "map denoiser den" in by_name["gesco"].label
    # the ablations keep their own: SDM and "without FDS" see the received map as it is
    assert by_name["sdm"].map_denoiser == by_name["gesco-no-fds"].map_denoiser == "none"
