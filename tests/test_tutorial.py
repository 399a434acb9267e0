"""docs/tutorial.ipynb: stored without outputs, and executed end to end with the numbers it reports checked.

The notebook walks the public API (payload, channels, link, receiver, scoring); executing it here makes a
renamed function or a wrong shape fail the suite instead of the docs. It writes ``tutorial-results.json``
into its working directory, which the checks below read.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "tutorial.ipynb"
MAP_SIZE = (64, 128)

nbformat = pytest.importorskip("nbformat")


def test_tutorial_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, "the tutorial has no code cells"
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, f"clear the outputs of cell {cell.get('id')}"
    assert nb.metadata["kernelspec"]["name"] == "python3"


def venv_kernel_manager(kernel_dir: Path):
    """A kernel manager whose ``python3`` kernel is this interpreter (``sys.executable``), whatever kernel
    specs the machine has installed elsewhere."""
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    spec = kernel_dir / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (gesco tests)",
                "language": "python",
            }
        )
    )
    specs = KernelSpecManager(kernel_dirs=[str(kernel_dir)], ensure_native_kernel=False)
    return KernelManager(kernel_name="python3", kernel_spec_manager=specs)


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The executed notebook and the results it wrote (the notebook runs once for every check)."""
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    tmp_path = tmp_path_factory.mktemp("tutorial")
    workdir = tmp_path / "run"
    workdir.mkdir()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
        km=venv_kernel_manager(tmp_path / "kernels"),
    )
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    return nb, json.loads((workdir / "tutorial-results.json").read_text())


@pytest.mark.slow
def test_tutorial_runs_in_this_interpreter_without_errors(executed):
    nb, results = executed
    assert Path(results["python"]).resolve() == Path(sys.executable).resolve()
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code)
    outputs = [output for cell in code for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    # the figures are shown inline (the notebook switches back from the Agg backend gesco's figures choose)
    figures = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert len(figures) >= 4


@pytest.mark.slow
def test_tutorial_payload_sizes(executed):
    payload = executed[1]["payload"]
    height, width = MAP_SIZE
    present = payload["present_ids"]
    assert present == sorted(present) and len(present) >= 2
    assert payload["pixels"] == height * width
    assert payload["real_values"] == payload["analog_real_values"] == (len(present) + 1) * height * width
    assert payload["analog_complex_channel_uses"] == math.ceil(payload["analog_real_values"] / 2)
    assert payload["side_info_bits"] == 35  # a bitmap of the Cityscapes table
    assert 0 < payload["lossless_map_bits"] < payload["png_image_bits"]
    assert 0 < payload["jpeg_image_bits"]
    per_pixel = payload["per_pixel"]
    assert per_pixel["analog_complex_channel_uses"] == pytest.approx((len(present) + 1) / 2)
    assert per_pixel["lossless_map_bits"] == pytest.approx(payload["lossless_map_bits"] / (height * width))


@pytest.mark.slow
def test_tutorial_channels(executed):
    results = executed[1]
    analog_uses = results["payload"]["analog_complex_channel_uses"]
    awgn = results["awgn"]
    assert awgn["sigma"] == [pytest.approx(0.36)]
    assert awgn["measured_noise_std"] == pytest.approx(0.36, abs=0.01)
    assert awgn["complex_channel_uses"] == [analog_uses]
    assert awgn["known_is_none"]
    assert awgn["values_shape"] == [1, 36, *MAP_SIZE]
    assert results["peak_snr_5db_sigma"] == [pytest.approx(10 ** (-5 / 20))]
    assert "UnitPowerAnalogChannel" in results["unsupported_quality_error"]
    assert results["unit_power"]["sigma"] == [pytest.approx(results["unit_power"]["expected_sigma"], rel=1e-4)]
    rayleigh = results["rayleigh"]
    assert rayleigh["sigma"] == [pytest.approx(0.36)]
    assert rayleigh["complex_channel_uses"] == [analog_uses]
    assert rayleigh["unit_power_sigma"][0] > 0
    assert results["channels"] == sorted(
        ["awgn", "rayleigh", "unit-power", "digital", "ofdm", "ofdm-digital", "ofdm-official"]
    )


@pytest.mark.slow
def test_tutorial_digital_link(executed):
    results = executed[1]
    if importlib.util.find_spec("sionna") is None:
        assert "digital" not in results  # the notebook printed the install hint instead
        pytest.skip("Sionna (the 'digital' extra) is not installed")
    digital = results["digital"]
    clean, marginal = digital["5.0"], digital["1.2"]
    assert clean["sigma"] == marginal["sigma"] == [0.0]
    assert clean["known_shape"] == marginal["known_shape"] == [1, 32, 64]
    assert clean["known_fraction"] == 1.0
    assert 0.0 <= marginal["known_fraction"] <= 1.0
    uses = clean["complex_channel_uses"][0]
    assert 0 < uses < digital["analog_complex_channel_uses"]
    assert marginal["complex_channel_uses"] == [uses]


@pytest.mark.slow
def test_tutorial_link_and_scores(executed):
    results = executed[1]
    link = results["link"]
    assert link["image_shape"] == [1, 3, *MAP_SIZE]
    assert -1.0 <= link["image_min"] <= link["image_max"] <= 1.0
    assert link["rgb_shape"] == [2, *MAP_SIZE, 3] and link["rgb_dtype"] == "uint8"
    assert link["condition_shape"] == link["plain_condition_shape"] == [1, 36, *MAP_SIZE]
    assert link["sigma"] == [pytest.approx(0.36)]
    assert link["complex_channel_uses"] == [results["payload"]["analog_complex_channel_uses"]]
    assert (link["sampler"], link["steps"]) == ("ddim", 4)
    assert results["predicted_shape"] == [2, *MAP_SIZE] and results["predicted_dtype"] == "torch.int64"
    scores = results["scores"]
    assert all(0.0 <= value <= 1.0 for value in scores.values()), scores
    # FDS must clean the PSNR-10 map: its argmax is far closer to the sent labels than the received argmax
    assert scores["miou_fds_map"] > 0.6
    assert scores["miou_fds_map"] > scores["miou_received_map"]
