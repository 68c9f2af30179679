import numpy as np
import pytest
import torch

from zeroshot_core.choices import SCHEDULER_NAMES
from zeroshot_core.diffusion.consistency import ConsistencyParams, select_candidate
from zeroshot_core.diffusion.sampling import sample_progressive, start_timesteps
from zeroshot_core.diffusion.schedulers import make_scheduler
from zeroshot_core.errors import ConfigError
from zeroshot_core.guidance.base import Guidance
from zeroshot_core.guidance.none import NoneGuidance
from zeroshot_core.model.store import DEFAULT_NOISE_SCHEDULE, build_unet, unet_config


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    return build_unet(unet_config("tiny", 16, 1)).eval()


def _run(unet, scheduler_name, guidance, seed=0, steps=4):
    reference = torch.linspace(-1, 1, 16 * 16).reshape(1, 1, 16, 16).repeat(2, 1, 1, 1)
    noise = torch.randn(reference.shape, generator=torch.Generator().manual_seed(seed))
    scheduler = make_scheduler(scheduler_name, DEFAULT_NOISE_SCHEDULE)
    events = list(sample_progressive(unet, scheduler, guidance, reference, reference[:, :0], torch.ones_like(reference),
                                     noise, steps, torch.Generator().manual_seed(seed)))
    return events


@pytest.mark.parametrize("name", sorted(SCHEDULER_NAMES))
def test_every_scheduler_runs_and_is_deterministic_by_seed(unet, name):
    guidance = NoneGuidance(strength=1.0)
    first = _run(unet, name, guidance)
    assert [e.step for e in first] == [1, 2, 3, 4] and first[-1].total == 4
    again = _run(unet, name, guidance)
    torch.testing.assert_close(first[-1].sample, again[-1].sample, rtol=0, atol=0)
    other = _run(unet, name, guidance, seed=1)
    assert not torch.equal(first[-1].sample, other[-1].sample)


def test_sdedit_strength_runs_part_of_the_schedule(unet):
    events = _run(unet, "ddim", NoneGuidance(strength=0.5), steps=10)
    assert len(events) == 5
    scheduler = make_scheduler("ddim", DEFAULT_NOISE_SCHEDULE)
    timesteps, begin = start_timesteps(scheduler, 10, 0.5)
    assert begin == 5 and len(timesteps) == 5


def test_the_sampler_stops_when_the_consumer_stops(unet):
    reference = torch.zeros(1, 1, 16, 16)
    generator = sample_progressive(unet, make_scheduler("ddim", DEFAULT_NOISE_SCHEDULE), NoneGuidance(1.0), reference,
                                   reference[:, :0], torch.ones_like(reference), torch.randn(1, 1, 16, 16), 50)
    first = next(generator)
    generator.close()
    assert first.step == 1


class _PullToReference(Guidance):
    name = "pull"
    strength = 1.0

    def correct_x0(self, reference, x0_hat, mask, progress):
        return reference


def test_x0_correction_moves_the_result_to_the_guide(unet):
    reference = torch.full((1, 1, 16, 16), 0.3)
    noise = torch.randn(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    scheduler = make_scheduler("ddim", DEFAULT_NOISE_SCHEDULE)
    *_, last = sample_progressive(unet, scheduler, _PullToReference(), reference, reference[:, :0],
                                  torch.ones_like(reference), noise, 5)
    torch.testing.assert_close(last.sample, reference, atol=1e-3, rtol=0)


def test_unknown_scheduler_and_steps():
    with pytest.raises(ConfigError, match="valid"):
        make_scheduler("euler-x", DEFAULT_NOISE_SCHEDULE)
    with pytest.raises(ConfigError):
        start_timesteps(make_scheduler("ddim", DEFAULT_NOISE_SCHEDULE), 0, 1.0)


def test_candidate_selection():
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., 1:3, 1:3] = 1
    previous = torch.full((1, 1, 4, 4), 0.5)
    candidates = torch.stack([torch.full((1, 4, 4), v) for v in (-1.0, 0.45, 0.9)])
    candidates[1, :, 0, 0] = -5.0  # outside the mask: ignored
    assert select_candidate(candidates, mask, previous, -0.9) == 1
    # first slice: the first candidate above the threshold, in drawing order
    assert select_candidate(candidates, mask, None, 0.0) == 1
    assert select_candidate(candidates, mask, None, 0.95) == 2  # none passes: brightest
    with pytest.raises(ConfigError):
        ConsistencyParams(candidates=0)
    assert np.isclose(ConsistencyParams().first_slice_threshold, -0.9)


class _ConstantNoise(torch.nn.Module):
    """An epsilon 'network' that always predicts the same off-scale noise (x0 estimates far beyond ±1)."""

    def forward(self, x, t):
        from types import SimpleNamespace

        return SimpleNamespace(sample=torch.full_like(x[:, :1], -3.0))


@pytest.mark.parametrize("name", ["ddim", "dpm"])
def test_deterministic_samplers_keep_x0_estimates_in_range(name):
    # DDIM clips its x0 estimate (clip_sample); DPM-Solver must too (thresholding at 1), else an
    # epsilon model's first, noisiest estimates are carried far outside the image range.
    events = _run(_ConstantNoise(), name, NoneGuidance(strength=1.0), steps=10)
    assert float(events[-1].sample.abs().max()) <= 1.0 + 1e-4
