"""gesco waterfall: the coded link's BLER curve, written as a plot and JSON."""

import json

import pytest

from gesco.cli.main import main

pytest.importorskip("sionna")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_waterfall_falls_from_one_to_zero_and_is_written(tmp_path):
    out = tmp_path / "bler.png"
    assert (
        main(
            [
                "waterfall",
                "--modulation",
                "qpsk",
                "--channel",
                "awgn",
                "--block-bits",
                "256",
                "--snr",
                "-6",
                "6",
                "--blocks",
                "8",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (curve,) = json.loads(out.with_suffix(".json").read_text())
    assert curve["esn0_db"] == [-6.0, 6.0] and curve["blocks"] == 8
    assert curve["bler"] == [1.0, 0.0]  # rate 1/2 QPSK: hopeless at -6 dB, error-free at 6 dB


def test_waterfall_wants_a_png(tmp_path, capsys):
    assert main(["waterfall", "--out", str(tmp_path / "bler.jpg")]) == 2
    assert ".png" in capsys.readouterr().err
