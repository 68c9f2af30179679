"""Progressive distillation (``--teacher-steps``): one student step does two teacher steps."""

import json
from types import SimpleNamespace

import pytest
import torch

from zeroshot_core.cli.parser import main
from zeroshot_core.diffusion.schedulers import make_scheduler
from zeroshot_core.errors import ConfigError, ModelError
from zeroshot_core.model.prediction import split_prediction
from zeroshot_core.model.store import DEFAULT_NOISE_SCHEDULE
from zeroshot_core.training.distill import Teacher, student_timesteps
from zeroshot_core.training.loop import TrainConfig, train_iter

ALPHAS = make_scheduler("ddim", DEFAULT_NOISE_SCHEDULE).alphas_cumprod


class _Network(torch.nn.Module):
    """A stand-in teacher: ``output = f(x_t, t)`` from a function of the noisy channel."""

    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, inputs, t):
        return SimpleNamespace(sample=self.function(inputs[:, :1], t))


def _teacher(function):
    return Teacher(_Network(function), 1.0, {})


def _no_condition(sample):
    return torch.zeros(sample.shape[0], 0, *sample.shape[2:])


@pytest.mark.parametrize("steps", [10, 25, 50])
def test_the_training_grid_is_the_samplers(steps):
    grid, interval = student_timesteps(steps, 1000)
    scheduler = make_scheduler("ddim", DEFAULT_NOISE_SCHEDULE)
    scheduler.set_timesteps(steps)
    assert grid.tolist() == scheduler.timesteps.tolist()
    assert interval == 1000 // steps and min(grid.tolist()) >= interval - 1


def test_an_odd_interval_is_refused_with_valid_step_counts():
    with pytest.raises(ConfigError, match="even; e.g."):
        student_timesteps(40, 1000)  # 1000 // 40 = 25 timesteps: no whole half step


@pytest.mark.parametrize("t", [999, 519, 39])
def test_a_teacher_that_knows_x0_teaches_its_own_output(t):
    # a teacher whose x0 estimate is the same at every step: two DDIM steps and one agree, so the
    # target is the teacher's own one-step output (the bookkeeping of both half steps and of the
    # last step, where alpha_bar is 1, cancels exactly)
    generator = torch.Generator().manual_seed(0)
    x0 = torch.rand(2, 1, 8, 8, generator=generator) * 1.6 - 0.8

    def eps(z, steps):
        a_bar = ALPHAS[steps].view(-1, 1, 1, 1)
        return (z - a_bar.sqrt() * x0) / (1 - a_bar).sqrt()

    steps = torch.full((2,), t)
    a_bar = ALPHAS[t]
    x_t = a_bar.sqrt() * x0 + (1 - a_bar).sqrt() * torch.randn(2, 1, 8, 8, generator=generator)
    target = _teacher(eps).two_step_target(x_t, _no_condition(x_t), _no_condition, steps, 40, ALPHAS, "epsilon")
    torch.testing.assert_close(target, eps(x_t, steps), atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_one_student_step_lands_where_two_teacher_steps_land(prediction):
    # checked against the sampler itself: the diffusers DDIM scheduler at 2N steps for the
    # teacher and at N steps for the student's output
    def network(z, steps):
        return 0.4 * z + 0.05 * torch.cos(z * 3) + steps.view(-1, 1, 1, 1).float() / 4000

    schedule = dict(DEFAULT_NOISE_SCHEDULE, prediction_type=prediction)
    teacher_sampler, student_sampler = make_scheduler("ddim", schedule), make_scheduler("ddim", schedule)
    teacher_sampler.set_timesteps(50)
    student_sampler.set_timesteps(25)
    x_t = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(1)) * 0.25
    t = 199
    z = x_t
    for now in (t, t - 20):
        z = teacher_sampler.step(network(z, torch.tensor([now])), now, z).prev_sample
    target = _teacher(network).two_step_target(x_t, _no_condition(x_t), _no_condition, torch.tensor([t]), 40,
                                               ALPHAS, prediction)
    x0_hat, _ = split_prediction(target, x_t, ALPHAS[t], prediction)
    assert x0_hat.abs().max() < 1  # the sampler's clipping leaves this step alone
    landed = student_sampler.step(target, t, x_t).prev_sample
    torch.testing.assert_close(landed, z, atol=1e-5, rtol=1e-4)


def test_the_second_teacher_step_sees_the_condition_of_its_own_sample():
    seen = []

    class Recording(torch.nn.Module):
        def forward(self, inputs, t):
            seen.append(inputs[:, 1:].clone())
            return SimpleNamespace(sample=torch.zeros_like(inputs[:, :1]))

    x_t = torch.randn(1, 1, 4, 4)
    Teacher(Recording(), 1.0, {}).two_step_target(
        x_t, torch.full((1, 1, 4, 4), 7.0), lambda sample: sample * 0 + 3.0, torch.tensor([519]), 40, ALPHAS,
        "epsilon")
    assert seen[0].unique().tolist() == [7.0] and seen[1].unique().tolist() == [3.0]


def _run(files, out, resume=False, **kwargs):
    settings = {"guidance": "lmi", "model_size": "tiny", "image_size": 32, "max_steps": 2, "batch_size": 2,
                "checkpoint_every": 0, "device": "cpu"}
    settings.update(kwargs)
    return [p.loss for p in train_iter(files, out, TrainConfig(**settings), resume=resume)]


def test_a_progressive_student_trains_records_its_steps_and_keeps_them(ixi_t1_files, tmp_path):
    teacher = tmp_path / "teacher"
    _run(ixi_t1_files[:1], teacher, max_steps=2)
    out = tmp_path / "student"
    losses = _run(ixi_t1_files[:1], out, teacher=str(teacher), teacher_steps=25, init_from=str(teacher))
    assert all(torch.isfinite(torch.tensor(losses)))
    # the student starts as its teacher, but one step of it is not two of the teacher's
    assert losses[0] > 1e-8
    card = json.loads((out / "model.json").read_text())
    assert card["training"]["teacher_steps"] == 25
    assert card["sampling"]["steps"] == 25  # and it samples in them unless told otherwise
    with pytest.raises(ModelError, match="teacher-steps"):
        _run(ixi_t1_files[:1], out, resume=True, max_steps=3, teacher=str(teacher), teacher_steps=10)


@pytest.mark.parametrize("settings, word", [({"teacher_steps": 25}, "needs --teacher"),
                                            ({"teacher": "m", "teacher_steps": 40}, "even"),
                                            ({"teacher": "m", "teacher_steps": 0}, "1..500"),
                                            ({"teacher": "m", "teacher_steps": 2.5}, "whole number")])
def test_progressive_settings_are_validated(settings, word):
    with pytest.raises(ConfigError, match=word):
        TrainConfig(**settings)


def test_the_cli_passes_teacher_steps(ixi_t1_files, tmp_path, capsys):
    code = main(["-q", "train", str(ixi_t1_files[0]), "--out", str(tmp_path / "m"), "--guidance", "lmi",
                 "--image-size", "32", "--max-steps", "1", "--device", "cpu", "--teacher-steps", "25"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "teacher-steps needs --teacher" in err and len(err.splitlines()) == 1
