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


def test_waterfall_over_ofdm_gives_one_curve_per_csi_and_speed(tmp_path):
    out = tmp_path / "bler.png"
    argv = ["waterfall", "--modulation", "qpsk", "--channel", "ofdm-awgn", "tdl-a", "--csi", "perfect", "ls"]
    options = ["--speed", "3", "120", "--block-bits", "256", "--snr", "-6", "12", "--blocks", "8", "--out", str(out)]
    assert main([*argv, *options]) == 0
    curves = json.loads(out.with_suffix(".json").read_text())
    # the flat channel ignores the speed: 2 curves; TDL-A: 2 CSI x 2 speeds
    settings = [(c["ofdm"]["model"], c["ofdm"]["csi"], c["ofdm"]["speed_kmh"]) for c in curves]
    assert settings == [
        ("awgn", "perfect", 3.0),
        ("awgn", "ls", 3.0),
        ("tdl-a", "perfect", 3.0),
        ("tdl-a", "perfect", 120.0),
        ("tdl-a", "ls", 3.0),
        ("tdl-a", "ls", 120.0),
    ]
    assert curves[3]["label"] == "QPSK r=0.50 k=256 TDL-A 100 ns 120 km/h, perfect CSI"
    assert all(c["bler"][0] == 1.0 for c in curves) and curves[0]["bler"][1] == 0.0
    assert curves[0]["esn0_db_at_bler_10pct"] == 12.0
