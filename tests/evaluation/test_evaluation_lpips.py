import pytest
import torch
from safetensors.torch import save_file

from gesco.evaluation.lpips import LPIPS, VGG_SLICES, load_lpips
from gesco.receiver.unet.model import StateDictMismatchError


@pytest.fixture(scope="module")
def lpips_weights():
    """Random weights in the lpips package's layout (the learned 1x1 layers are non-negative there too)."""
    torch.manual_seed(0)
    weights = LPIPS().state_dict()
    for name in weights:
        if name.startswith("lin"):
            weights[name] = weights[name].abs()
    return weights


@pytest.fixture
def images(generator):
    a = torch.rand(2, 3, 16, 16, generator=generator) * 2 - 1
    b = (a + 0.3 * torch.randn(a.shape, generator=generator)).clamp(-1, 1)
    return a, b


def test_lpips_layout_names():
    names = set(LPIPS().state_dict())
    assert {
        "scaling_layer.shift",
        "net.slice1.0.weight",
        "net.slice2.5.weight",
        "net.slice5.28.bias",
        "lin0.model.1.weight",
        "lin4.model.1.weight",
    } <= names
    assert sum(name.startswith("net.") and name.endswith(".weight") for name in names) == 13  # VGG-16's 13 convs


def test_distance_properties(lpips_weights, images, tmp_path):
    path = tmp_path / "lpips_vgg.pth"
    torch.save(lpips_weights, path)
    model = load_lpips(path)
    a, b = images
    assert torch.allclose(model(a, a), torch.zeros(2), atol=1e-6)
    d = model(a, b)
    assert d.shape == (2,) and (d > 0).all()
    assert torch.allclose(d, model(b, a), rtol=1e-5)
    assert (model(a, (a + 0.05 * (b - a))) < d).all()


def test_torchvision_trunk_plus_lpips_linear_file(lpips_weights, images, tmp_path):
    # torchvision's vgg16 names its trunk features.{i}; the lpips package ships the linear layers alone.
    trunk = {}
    for name, value in lpips_weights.items():
        if name.startswith("net."):
            _, _, index, kind = name.split(".")
            trunk[f"features.{index}.{kind}"] = value
    trunk["classifier.0.weight"] = torch.zeros(4, 4)
    linear = {k: v for k, v in lpips_weights.items() if k.startswith("lin")}
    save_file(trunk, str(tmp_path / "vgg16.safetensors"))
    torch.save(linear, tmp_path / "vgg.pth")
    split = load_lpips(tmp_path / "vgg16.safetensors", tmp_path / "vgg.pth")
    whole = LPIPS.from_state_dict(lpips_weights)
    a, b = images
    assert torch.equal(split(a, b), whole(a, b))
    assert len(VGG_SLICES) == 5


def test_torchscript_lpips(images, tmp_path):
    class L1(torch.nn.Module):
        def forward(self, a, b):
            return (a - b).abs().mean(dim=(1, 2, 3)).view(-1, 1, 1, 1)

    path = tmp_path / "lpips.pt"
    torch.jit.script(L1()).save(str(path))
    a, b = images
    assert torch.allclose(load_lpips(path)(a, b), (a - b).abs().mean(dim=(1, 2, 3)))


def test_bad_lpips_files(lpips_weights, tmp_path):
    with pytest.raises(FileNotFoundError, match="no LPIPS weights"):
        load_lpips(tmp_path / "absent.pth")
    partial = {k: v for k, v in lpips_weights.items() if not k.startswith("lin4")}
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(StateDictMismatchError, match="lin4.model.1.weight"):
        load_lpips(tmp_path / "partial.pth")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(ValueError, match="cannot read LPIPS weights"):
        load_lpips(tmp_path / "junk.pth")
