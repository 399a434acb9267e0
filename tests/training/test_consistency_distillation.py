"""Consistency distillation: LCMScheduler's consistency function, the lcm sampler, training, export, resume, bad
inputs, the command line."""

import json

import pytest
import torch
from diffusers import DDIMScheduler

from gesco.cli.main import main
from gesco.receiver.diffusion import GaussianDiffusion
from gesco.receiver.guidance import guided_output
from gesco.receiver.pipeline import DiffusionReceiver, ReceiverConfig
from gesco.receiver.sampling import SamplerConfig, build_scheduler, sample
from gesco.training.checkpoint import list_checkpoints, load_checkpoint
from gesco.training.config import DataConfig
from gesco.training.consistency_distillation import (
    ConsistencyDistillConfig,
    StudentAndTarget,
    consistency_function,
    consistency_scalings,
    consistency_student,
    ddim_step,
    distill_consistency,
    initial_student,
    skip_step_timesteps,
    teacher_epsilon,
)
from gesco.training.guidance_distillation import student_from_teacher
from helpers import BACKEND_TEST_SIZE as SIZE
from helpers import label_map, tiny_unet

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    """A tiny two-pass receiver whose every weight is perturbed (its guided epsilon depends on s and y)."""
    config = ReceiverConfig(
        image_size=SIZE, sampler=SamplerConfig(sampler="dpmpp", steps=3, guidance=2.0), training_noise="paper"
    )
    return DiffusionReceiver(tiny_unet(), config).save_pretrained(tmp_path_factory.mktemp("teacher"))


@pytest.fixture(scope="module")
def diffusion():
    return GaussianDiffusion()


def run_config(teacher_dir, out, **changes) -> ConsistencyDistillConfig:
    base = ConsistencyDistillConfig(
        output_dir=str(out),
        teacher=str(teacher_dir),
        guidance_range=(1.5, 3.0),
        data=DataConfig(kind="synthetic", size=SIZE, num_scenes=4),
        batch_size=2,
        max_steps=4,
        checkpoint_every=2,
        num_ddim_timesteps=10,
        learning_rate=1e-3,
        log_every=0,
    )
    return base.replace(**changes)


def count_forwards(model):
    """The batch size of every forward of ``model``, recorded by a hook."""
    batches = []
    model.register_forward_hook(lambda module, args, output: batches.append(args[0].shape[0]))
    return batches


def test_consistency_function_is_lcm_schedulers_denoised(diffusion):
    config = SamplerConfig(sampler="lcm", steps=50, guidance=1.0, lcm_original_steps=50)
    scheduler, timestep_map = build_scheduler(config, diffusion)
    # the lcm sampler's 50-step schedule is the distillation's, and the network gets the scheduler's timesteps
    assert scheduler.timesteps.tolist() == skip_step_timesteps(1000, 50).flip(0).tolist()
    assert torch.equal(timestep_map, torch.arange(1000))
    generator = torch.Generator().manual_seed(0)
    for t in scheduler.timesteps[::7]:
        x, eps = 2 * torch.randn(2, 3, 8, 8, generator=generator), torch.randn(2, 3, 8, 8, generator=generator)
        denoised = scheduler.step(eps, t, x, generator=generator).denoised
        # diffusers multiplies its alphas in float32, gesco in float64: 1e-5 apart at t = 999
        torch.testing.assert_close(consistency_function(diffusion, x, t.expand(2), eps), denoised, atol=1e-4, rtol=0)
    # the boundary condition: f(x, 0) = x whatever epsilon, and from the schedule's first timestep on f is x_0
    c_skip, c_out = consistency_scalings(torch.tensor([0, 19]))
    assert c_skip.tolist()[0] == 1.0 and c_out.tolist()[0] == 0.0 and c_skip[1] < 1e-5
    x, eps = torch.randn(2, 3, 8, 8, generator=generator), torch.randn(2, 3, 8, 8, generator=generator)
    assert torch.equal(consistency_function(diffusion, x, torch.zeros(2, dtype=torch.long), eps), x)


def test_ddim_step_is_the_ddim_samplers(diffusion):
    scheduler = DDIMScheduler(
        num_train_timesteps=1000,
        trained_betas=diffusion.betas.numpy(),
        clip_sample=True,
        set_alpha_to_one=True,
        timestep_spacing="leading",
    )
    scheduler.set_timesteps(50)  # steps of k = 20, as the skip-step schedule's
    generator = torch.Generator().manual_seed(1)
    for t in (39, 519, 999):
        x, eps = torch.randn(2, 3, 8, 8, generator=generator), torch.randn(2, 3, 8, 8, generator=generator)
        expected = scheduler.step(eps, t, x, eta=0.0, use_clipped_model_output=True).prev_sample
        step = ddim_step(diffusion, x, torch.full((2,), t), torch.full((2,), t - 20), eps)
        torch.testing.assert_close(step, expected, atol=1e-4, rtol=1e-4)


def test_teacher_epsilon_is_the_guided_output_per_sample(teacher_dir):
    teacher = DiffusionReceiver.from_pretrained(teacher_dir).unet
    guided_teacher = tiny_unet(teacher.config.replace(guidance_conditioning=True))
    x, y = torch.randn(2, 3, *SIZE, generator=torch.Generator().manual_seed(2)), label_map(2, seed=3)
    t, scales = torch.tensor([100, 800]), torch.tensor([1.5, 4.0])
    with torch.no_grad():
        for model in (teacher, guided_teacher):
            eps = teacher_epsilon(model, x, t, y, scales)
            for i, scale in enumerate(scales.tolist()):
                row = slice(i, i + 1)
                expected = guided_output(model, x[row], t[row], y[row], scale=scale)[:, :3]
                torch.testing.assert_close(eps[row], expected, atol=1e-4, rtol=0)  # batch 4 vs 2: float rounding
    # the student: a guidance-distilled teacher's copy, or a two-pass one's plus the (zero-output) guidance embedding
    copied = consistency_student(guided_teacher).state_dict()
    assert all(torch.equal(value, copied[name]) for name, value in guided_teacher.state_dict().items())
    extended = consistency_student(teacher)
    assert extended.config.guidance_conditioning and extended.state_dict().keys() == copied.keys()
    with torch.no_grad():
        assert torch.equal(extended(x, t, y, guidance=scales), teacher(x, t, y))


def test_target_network_is_an_ema_without_gradient(teacher_dir):
    pair = StudentAndTarget(student_from_teacher(DiffusionReceiver.from_pretrained(teacher_dir).unet))
    assert not any(p.requires_grad for p in pair.target.parameters())
    student = dict(pair.student.named_parameters())
    before = {name: value.clone() for name, value in pair.target.named_parameters()}
    with torch.no_grad():
        for parameter in student.values():
            parameter.add_(1.0)
    pair.update_target(0.95)
    for name, value in pair.target.named_parameters():
        torch.testing.assert_close(value, 0.95 * before[name] + 0.05 * student[name])
    pair.update_target(0.0)  # CD with theta^- = stopgrad theta
    assert all(torch.equal(value, student[name]) for name, value in pair.target.named_parameters())


def test_lcm_sampler_one_forward_per_step_in_range(teacher_dir):
    student = student_from_teacher(DiffusionReceiver.from_pretrained(teacher_dir).unet).eval()
    y = label_map(2, seed=4)
    batches = count_forwards(student)
    config = SamplerConfig(sampler="lcm", steps=4, guidance=3.0, autocast_dtype="float32")
    out = sample(student, y, config, generator=torch.Generator().manual_seed(0), progress=False)
    assert batches == [2] * 4
    assert out.model_timesteps.tolist() == [999, 759, 499, 259]
    assert out.sample.shape == (2, 3, *SIZE) and out.sample.abs().max() <= 1.0
    # the steps between re-noise x_0 with the generator's draws: another seed, another image
    again = sample(student, y, config, generator=torch.Generator().manual_seed(1), progress=False)
    assert not torch.allclose(again.sample, out.sample)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(respacing="ddim4"), "respacing"),
        (dict(eta=0.5), "eta"),
        (dict(steps=60), "at most lcm_original_steps=50"),
        (dict(lcm_original_steps=0), "lcm_original_steps"),
    ],
)
def test_lcm_sampler_refuses_bad_settings(changes, message):
    with pytest.raises(ValueError, match=message):
        SamplerConfig(**{"sampler": "lcm", "steps": 4, **changes})


def test_training_moves_the_student_and_exports_an_lcm_receiver(teacher_dir, tmp_path):
    result = distill_consistency(run_config(teacher_dir, tmp_path, default_steps=3), progress=False)
    assert result.step == 4 and all(loss > 0 for loss in result.losses)
    teacher = DiffusionReceiver.from_pretrained(teacher_dir)
    fresh = student_from_teacher(teacher.unet).state_dict()
    state = load_checkpoint(list_checkpoints(tmp_path / "checkpoints")[-1]).model
    moved = [name for name, value in fresh.items() if not torch.equal(state[f"student.{name}"], value)]
    assert len(moved) > len(fresh) // 2
    # the target lags the student: it moved towards it, but only part of the way
    name = moved[0]
    lag, gap = (state[f"target.{name}"] - fresh[name]).norm(), (state[f"student.{name}"] - fresh[name]).norm()
    assert 0 < lag < gap

    student = DiffusionReceiver.from_pretrained(tmp_path / "model")
    assert student.unet.config == teacher.unet.config.replace(guidance_conditioning=True)
    assert student.config.sampler == SamplerConfig(
        sampler="lcm", steps=3, guidance=teacher.config.sampler.guidance, lcm_original_steps=10
    )
    assert json.loads((tmp_path / "config.json").read_text())["noise"] == "paper"  # the teacher's, recorded
    batches = count_forwards(student.unet)
    images = student(label_map(2, seed=5), generator=torch.Generator().manual_seed(0))
    assert batches == [2] * 3 and images.shape == (2, 3, *SIZE) and images.abs().max() <= 1.0


def test_receivers_refuse_the_other_kind_of_sampler(teacher_dir):
    teacher = DiffusionReceiver.from_pretrained(teacher_dir)
    condition = label_map(1, seed=2)
    with pytest.raises(ValueError, match="'lcm' samples only a consistency-distilled receiver"):
        teacher(condition, sampler=SamplerConfig(sampler="lcm", steps=2))
    student = DiffusionReceiver(
        consistency_student(teacher.unet), teacher.config.replace(sampler=SamplerConfig(sampler="lcm", steps=2))
    )
    with pytest.raises(ValueError, match="consistency-distilled .* samples with 'lcm' only"):
        student(condition, sampler=SamplerConfig(sampler="dpmpp", steps=2))
    assert student(condition, generator=torch.Generator().manual_seed(0)).shape == (1, 3, *SIZE)


def test_the_demo_keeps_each_receiver_on_a_sampler_that_fits_it(teacher_dir):
    from gesco.evaluation.demo import sampler_for

    teacher = DiffusionReceiver.from_pretrained(teacher_dir)
    lcm = SamplerConfig(sampler="lcm", steps=4, autocast_dtype="float32")
    student = DiffusionReceiver(consistency_student(teacher.unet), teacher.config.replace(sampler=lcm))
    assert sampler_for(student, lcm) == lcm
    # the diffusion receivers beside a consistency one keep their own sampler, in the demo's precision
    assert sampler_for(teacher, lcm) == teacher.config.sampler.replace(autocast_dtype="float32")
    fast = SamplerConfig(sampler="dpmpp", steps=2, autocast_dtype="bfloat16")
    assert sampler_for(teacher, fast) == fast and sampler_for(student, fast) == lcm.replace(autocast_dtype="bfloat16")


def test_resume_continues_exactly(teacher_dir, tmp_path):
    # three steps: the target update of the resumed steps reads the student and target the checkpoint restored
    short = dict(max_steps=3, checkpoint_every=1)
    straight = distill_consistency(run_config(teacher_dir, tmp_path / "straight", **short), progress=False)
    first = distill_consistency(run_config(teacher_dir, tmp_path / "split", max_steps=1), progress=False)
    second = distill_consistency(run_config(teacher_dir, tmp_path / "split", **short), resume=True, progress=False)
    assert first.losses + second.losses == straight.losses
    a = load_checkpoint(list_checkpoints(tmp_path / "straight" / "checkpoints")[-1])
    b = load_checkpoint(list_checkpoints(tmp_path / "split" / "checkpoints")[-1])
    assert a.step == b.step == 3
    assert any(name.startswith("target.") for name in a.model)  # the target network is checkpointed too
    for name, value in a.model.items():
        assert torch.equal(value, b.model[name]), name
    for name, value in a.ema.items():
        assert torch.equal(value, b.ema[name]), name


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(guidance_range=(3.0, 1.0)), "swap them"),
        (dict(target_decay=1.0), "target_decay"),
        (dict(ema_decay=-0.1), "ema_decay"),
        (dict(num_ddim_timesteps=0), "num_ddim_timesteps"),
        (dict(default_steps=12), "default_steps=12 exceeds num_ddim_timesteps=10"),
        (dict(loss="l1"), "loss"),
        (dict(learning_rate=0.0), "learning_rate"),
        (dict(noise="loud"), "noise"),
    ],
)
def test_bad_config(teacher_dir, tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        run_config(teacher_dir, tmp_path, **changes)


def test_bad_teachers(teacher_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a receiver folder"):
        distill_consistency(run_config(tmp_path / "absent", tmp_path / "run"), progress=False)
    teacher = DiffusionReceiver.from_pretrained(teacher_dir)
    lcm_config = teacher.config.replace(sampler=SamplerConfig(sampler="lcm", steps=4))
    distilled = DiffusionReceiver(teacher.unet, lcm_config).save_pretrained(tmp_path / "distilled")
    with pytest.raises(ValueError, match="already consistency-distilled"):
        distill_consistency(run_config(distilled, tmp_path / "run"), progress=False)
    with pytest.raises(ValueError, match="outside guidance_range"):
        distill_consistency(run_config(teacher_dir, tmp_path / "run", guidance_range=(3.0, 4.0)), progress=False)
    with pytest.raises(ValueError, match="num_ddim_timesteps=2000"):
        distill_consistency(run_config(teacher_dir, tmp_path / "run", num_ddim_timesteps=2000), progress=False)
    assert not (tmp_path / "run").exists()  # every check ran before the run folder was made


def test_student_init_starts_from_a_guidance_student(teacher_dir, tmp_path):
    teacher = DiffusionReceiver.from_pretrained(teacher_dir)
    student = student_from_teacher(teacher.unet)
    with torch.no_grad():
        for parameter in student.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    folder = DiffusionReceiver(student, teacher.config).save_pretrained(tmp_path / "guidance-student")
    start = initial_student(run_config(teacher_dir, tmp_path / "run", student_init=str(folder)), teacher.unet)
    for name, value in student.state_dict().items():
        assert torch.equal(start.state_dict()[name], value), name
    # without it, the student is the teacher plus the zero-initialised guidance embedding
    plain = initial_student(run_config(teacher_dir, tmp_path / "run"), teacher.unet).state_dict()
    assert all(torch.equal(plain[name], value) for name, value in teacher.unet.state_dict().items())
    with pytest.raises(ValueError, match="not a guidance-distilled student of the teacher"):
        initial_student(run_config(teacher_dir, tmp_path / "run", student_init=str(teacher_dir)), teacher.unet)
    with pytest.raises(FileNotFoundError, match="student_init"):
        initial_student(run_config(teacher_dir, tmp_path / "run", student_init=str(tmp_path / "absent")), teacher.unet)
    with pytest.raises(ValueError, match="student_init"):
        run_config(teacher_dir, tmp_path / "run", student_init="")


def test_command_line(teacher_dir, tmp_path, capsys):
    config_file = run_config(teacher_dir, tmp_path / "ignored").save(tmp_path / "config.json")
    argv = ["distill-consistency", "--config", str(config_file), "--out", str(tmp_path / "run"), "--steps", "1"]
    options = ["--num-ddim-timesteps", "20", "--learning-rate", "2e-4", "--guidance-range", "1", "2"]
    assert main([*argv, "--teacher", str(teacher_dir), "--no-progress", *options]) == 0
    assert "distilled to step 1" in capsys.readouterr().out
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["max_steps"] == 1 and saved["guidance_range"] == [1.0, 2.0]
    assert saved["num_ddim_timesteps"] == 20 and saved["learning_rate"] == 2e-4
    exported = DiffusionReceiver.from_pretrained(tmp_path / "run" / "model").config.sampler
    assert exported.sampler == "lcm" and exported.lcm_original_steps == 20
    assert main([*argv, "--guidance-range", "2", "1"]) == 2
    assert "swap them" in capsys.readouterr().err
