from PIL import Image

from gesco.cli.main import main


def test_preview_writes_a_figure(tmp_path, capsys):
    out = tmp_path / "preview.png"
    assert main(["data", "preview", "--out", str(out), "--scenes", "2", "--psnr", "100", "1", "--size", "32x64"]) == 0
    assert str(out) in capsys.readouterr().out
    with Image.open(out) as image:
        width, height = image.size
    # two scenes stacked, 2 + 2 x 2 columns side by side: a wide figure
    assert width > 2 * height


def test_preview_rejects_unknown_labels(tmp_path, capsys):
    assert main(["data", "preview", "--out", str(tmp_path / "p.png"), "--psnr", "12"]) == 2
    assert "unknown PSNR label" in capsys.readouterr().err
    assert not (tmp_path / "p.png").exists()
