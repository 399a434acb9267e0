"""Guidance distillation: the student's embedding, one pass per sampler step, training, export, resume, bad inputs."""

import json

import pytest
import torch

from gesco.cli.main import main
from gesco.datasets import SyntheticStreetsDataset, collate
from gesco.receiver.guidance import guided_output
from gesco.receiver.pipeline import DiffusionReceiver, ReceiverConfig
from gesco.receiver.sampling import SamplerConfig, sample
from gesco.receiver.unet import GescoUNet, UNetConfig
from gesco.semantics.classes import class_table
from gesco.semantics.maps import SemanticMap
from gesco.training.checkpoint import list_checkpoints, load_checkpoint
from gesco.training.config import DataConfig
from gesco.training.guidance_distillation import GuidanceDistillConfig, distill_guidance, student_from_teacher
from helpers import TINY_UNET

SIZE = (16, 32)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    """A tiny receiver whose every weight is perturbed, so that its conditional and unconditional outputs (and
    the zero-initialised output layers) differ from zero and from each other."""
    torch.manual_seed(0)
    unet = GescoUNet(TINY_UNET)
    with torch.no_grad():
        for parameter in unet.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape))
    config = ReceiverConfig(
        image_size=SIZE, sampler=SamplerConfig(sampler="dpmpp", steps=3, guidance=2.0), training_noise="paper"
    )
    return DiffusionReceiver(unet, config).save_pretrained(tmp_path_factory.mktemp("teacher"))


def run_config(teacher_dir, out, **changes) -> GuidanceDistillConfig:
    base = GuidanceDistillConfig(
        output_dir=str(out),
        teacher=str(teacher_dir),
        guidance_range=(1.5, 3.0),
        data=DataConfig(kind="synthetic", size=SIZE, num_scenes=4),
        batch_size=2,
        max_steps=4,
        checkpoint_every=2,
        log_every=0,
    )
    return base.replace(**changes)


def inputs(batch=2, seed=1):
    """x_t (B, 3, H, W), t (B,) and the one-hot maps (B, 36, H, W) of training scenes 0 .. B-1."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, *SIZE, generator=generator)
    scenes = collate([SyntheticStreetsDataset(batch, 0, height=SIZE[0], width=SIZE[1])[i] for i in range(batch)])
    y = SemanticMap(scenes.labels, class_table("cityscapes"), scenes.instances, "instance").one_hot()
    return x, torch.tensor([100, 800][:batch]), y


def test_embedding_off_keeps_the_network_and_its_configs():
    assert not TINY_UNET.guidance_conditioning
    # a config.json written before the field existed loads with it off
    data = {k: v for k, v in TINY_UNET.to_dict().items() if k != "guidance_conditioning"}
    assert UNetConfig.from_dict(data) == TINY_UNET
    torch.manual_seed(3)
    plain = GescoUNet(TINY_UNET).eval()
    torch.manual_seed(3)
    student = GescoUNet(TINY_UNET.replace(guidance_conditioning=True)).eval()
    # the embedding is built last: every shared weight draws the same initial values, and only its names are new
    own = student.state_dict()
    assert all(torch.equal(value, own[name]) for name, value in plain.state_dict().items())
    assert sorted(set(own) - set(plain.state_dict())) == sorted(
        f"guidance_embedding.{n}"
        for n in ("linear_in.weight", "linear_in.bias", "linear_out.weight", "linear_out.bias")
    )
    x, t, y = inputs()
    with torch.no_grad():
        assert torch.equal(plain(x, t, y), student(x, t, y, guidance=4.0))
    with pytest.raises(ValueError, match="not guidance-distilled"):
        plain(x, t, y, guidance=2.0)
    with pytest.raises(ValueError, match="pass guidance"):
        student(x, t, y)
    with pytest.raises(ValueError, match=">= 0"):
        student(x, t, y, guidance=-1.0)


def test_fresh_student_is_the_teachers_conditional_network(teacher_dir):
    teacher = DiffusionReceiver.from_pretrained(teacher_dir).unet
    student = student_from_teacher(teacher).eval()
    x, t, y = inputs()
    with torch.no_grad():
        conditional = teacher(x, t, y)
        guided = guided_output(teacher, x, t, y, scale=3.0)
        for scale in (0.0, 1.0, 3.0, torch.tensor([2.0, 7.5])):
            assert torch.equal(student(x, t, y, guidance=scale), conditional)
    assert not torch.allclose(guided, conditional, atol=1e-3)  # the guidance the student has to learn


def count_forwards(model):
    """The batch size of every forward of ``model``, recorded by a hook."""
    batches = []
    model.register_forward_hook(lambda module, args, kwargs_or_output: batches.append(args[0].shape[0]))
    return batches


@pytest.mark.parametrize("sampler", ["dpmpp", "ddim"])
def test_a_student_runs_once_per_step_a_teacher_twice(teacher_dir, sampler):
    teacher = DiffusionReceiver.from_pretrained(teacher_dir).unet
    student = student_from_teacher(teacher).eval()
    config = SamplerConfig(sampler=sampler, steps=3, guidance=2.5, autocast_dtype="float32")
    x, _, y = inputs()
    outputs = {}
    for name, model in (("teacher", teacher), ("student", student)):
        batches = count_forwards(model)
        outputs[name] = sample(model, y, config, x_T=x, progress=False).sample
        expected = 2 * x.shape[0] if name == "teacher" else x.shape[0]
        assert batches == [expected] * 3, (name, batches)
    assert outputs["teacher"].shape == outputs["student"].shape
    assert not torch.equal(outputs["teacher"], outputs["student"])  # untrained: the conditional model only


def guided_error(model, teacher, scale):
    x, t, y = inputs(seed=5)
    with torch.no_grad():
        target = guided_output(teacher, x, t, y, scale=scale)
        return (guided_output(model, x, t, y, scale=scale) - target).pow(2).mean().item()


def test_training_moves_the_student_to_the_guided_output_and_exports_a_receiver(teacher_dir, tmp_path):
    # a random teacher's guidance is a rough function to fit: 60 small steps take a third off the loss
    config = run_config(
        teacher_dir, tmp_path, max_steps=60, checkpoint_every=60, learning_rate=3e-4, guidance_range=(2.0, 4.0)
    )
    result = distill_guidance(config, progress=False)
    first, last = sum(result.losses[:5]) / 5, sum(result.losses[-5:]) / 5
    assert last < 0.8 * first, (first, last)

    teacher = DiffusionReceiver.from_pretrained(teacher_dir)
    student = DiffusionReceiver.from_pretrained(tmp_path / "model")
    assert student.unet.config == teacher.unet.config.replace(guidance_conditioning=True)
    # the student's receiver.json is the teacher's: same sampler default, so --guidance means the same
    assert student.config == teacher.config
    assert json.loads((tmp_path / "config.json").read_text())["noise"] == "paper"  # the teacher's, recorded
    fresh = student_from_teacher(teacher.unet).eval()
    before, after = guided_error(fresh, teacher.unet, 3.0), guided_error(student.unet, teacher.unet, 3.0)
    assert after < 0.9 * before, (before, after)  # held out (other noise, t): a smaller but clear gain

    batches = count_forwards(student.unet)
    images = student(inputs()[2], generator=torch.Generator().manual_seed(0))
    assert images.shape == (2, 3, *SIZE) and torch.isfinite(images).all()
    assert batches == [2] * teacher.config.sampler.steps


def test_resume_continues_exactly(teacher_dir, tmp_path):
    straight = distill_guidance(run_config(teacher_dir, tmp_path / "straight"), progress=False)
    first = distill_guidance(run_config(teacher_dir, tmp_path / "split", max_steps=2), progress=False)
    second = distill_guidance(run_config(teacher_dir, tmp_path / "split"), resume=True, progress=False)
    assert first.losses + second.losses == straight.losses
    a = load_checkpoint(list_checkpoints(tmp_path / "straight" / "checkpoints")[-1])
    b = load_checkpoint(list_checkpoints(tmp_path / "split" / "checkpoints")[-1])
    assert a.step == b.step == 4
    for name, value in a.model.items():
        assert torch.equal(value, b.model[name]), name
    for name, value in a.ema.items():
        assert torch.equal(value, b.ema[name]), name


@pytest.mark.parametrize(
    ("guidance_range", "message"), [((3.0, 1.0), "swap them"), ((-1.0, 2.0), "0 <= lo <= hi"), ((1.0,), "two")]
)
def test_bad_guidance_range(teacher_dir, tmp_path, guidance_range, message):
    with pytest.raises(ValueError, match=message):
        run_config(teacher_dir, tmp_path, guidance_range=guidance_range)


def test_bad_teachers(teacher_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a receiver folder"):
        distill_guidance(run_config(tmp_path / "absent", tmp_path / "run"), progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="receiver.json"):
        distill_guidance(run_config(tmp_path / "empty", tmp_path / "run"), progress=False)
    teacher = DiffusionReceiver.from_pretrained(teacher_dir)
    student_dir = DiffusionReceiver(student_from_teacher(teacher.unet), teacher.config).save_pretrained(
        tmp_path / "student"
    )
    with pytest.raises(ValueError, match="already a guidance-distilled student"):
        distill_guidance(run_config(student_dir, tmp_path / "run"), progress=False)
    with pytest.raises(ValueError, match="outside guidance_range"):
        distill_guidance(run_config(teacher_dir, tmp_path / "run", guidance_range=(3.0, 4.0)), progress=False)
    with pytest.raises(ValueError, match="image size"):
        distill_guidance(
            run_config(teacher_dir, tmp_path / "run", data=DataConfig(size=(32, 64), num_scenes=4)), progress=False
        )
    assert not (tmp_path / "run").exists()  # every check ran before the run folder was made


def test_command_line(teacher_dir, tmp_path, capsys):
    config_file = run_config(teacher_dir, tmp_path / "ignored").save(tmp_path / "config.json")
    argv = ["distill-guidance", "--config", str(config_file), "--out", str(tmp_path / "run"), "--steps", "1"]
    assert main([*argv, "--teacher", str(teacher_dir), "--no-progress", "--guidance-range", "1", "2"]) == 0
    assert "distilled to step 1" in capsys.readouterr().out
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["max_steps"] == 1 and saved["guidance_range"] == [1.0, 2.0]
    assert DiffusionReceiver.from_pretrained(tmp_path / "run" / "model").unet.config.guidance_conditioning
    assert main([*argv, "--teacher", str(tmp_path / "absent"), "--no-progress"]) == 2
    assert "neither a receiver folder" in capsys.readouterr().err
    assert main([*argv, "--guidance-range", "2", "1"]) == 2
    assert "swap them" in capsys.readouterr().err
