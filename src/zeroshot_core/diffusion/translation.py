"""Translating a whole volume slice by slice with a guided target-only model.

volume → filter mask → normalise → slices at model size → guidance channels →
guided sampler (batched, or candidate selection for adjacent-slice consistency) →
back to the input grid in target intensity units.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any, Iterator, Mapping

import numpy as np
import torch

from zeroshot_core.diffusion.auto_denoise import (
    DenoiseChoice,
    choose_denoise,
    fixed_choice,
)
from zeroshot_core.diffusion.consistency import select_candidate
from zeroshot_core.diffusion.expectation import (
    mean_of_samples,
    repeat_for_samples,
    sample_noise,
)
from zeroshot_core.diffusion.memory import halve_batch
from zeroshot_core.diffusion.native_grid import (
    NativeGrid,
    cfg_scale_for,
    check_cfg,
    steps_for,
)
from zeroshot_core.diffusion.options import (
    TranslateOptions,  # re-exported: the public home
)
from zeroshot_core.diffusion.refiner import load_refinement
from zeroshot_core.diffusion.sampling import sample_progressive
from zeroshot_core.diffusion.schedulers import make_scheduler
from zeroshot_core.diffusion.selection import check_slices
from zeroshot_core.diffusion.selection import source_name as _name
from zeroshot_core.diffusion.selection import span as _span
from zeroshot_core.errors import InputError, ModelError
from zeroshot_core.guidance.base import Guidance
from zeroshot_core.imaging.denoise import denoise_volume
from zeroshot_core.imaging.intensity import Normalisation
from zeroshot_core.imaging.mask import MaskParams, source_mask
from zeroshot_core.imaging.orientation import (
    Reorientation,
    slicing_axis,
    stack_slices,
    volume_slices,
)
from zeroshot_core.imaging.resize import from_model_size, to_model_size
from zeroshot_core.io.formats import to_volume
from zeroshot_core.io.volume import Volume
from zeroshot_core.model.acceleration import Acceleration
from zeroshot_core.model.devices import resolve_device
from zeroshot_core.model.loading import LoadedModel, load_model
from zeroshot_core.model.summary import DEFAULT_STEPS
from zeroshot_core.plugins.manager import guidance_registry


@dataclass(frozen=True)
class Progress:
    """Where a translation stands.

    Attributes
    ----------
    slices_done, slices_total : int
        Slices finished / to do.
    step, steps_total : int
        Step within the slices being sampled now.
    """

    slices_done: int
    slices_total: int
    step: int
    steps_total: int
    batch: int = 0

    @property
    def fraction(self) -> float:
        """Overall fraction done, in [0, 1]."""
        if self.slices_total == 0:
            return 1.0
        partial = self.batch * (self.step / self.steps_total if self.steps_total else 0.0)
        return min(1.0, (self.slices_done + partial) / self.slices_total)


@dataclass(frozen=True, eq=False)
class TranslationResult:
    """The finished translation.

    Attributes
    ----------
    volume : Volume
        On the source grid and affine, in target intensity units.
    mask : ndarray bool
        Filter mask of the source.
    guidance : str
    slices : tuple of int
        Slices that were translated (along ``axis``).
    axis : int
    model : LoadedModel
    mask_params : MaskParams or None
        The filter-mask settings used (the user's, else the model card's).
    denoise : DenoiseChoice or None
        What ``denoise`` did (for ``auto``: whether the source was denoised, and why).
    cfg_scale : float
        The classifier-free guidance scale used (the option's, else the card's default).
    steps : int
        The sampling steps used (the option's, else the card's default).
    acceleration : Acceleration or None
        The speed-ups used: the option's, with autocast ``auto`` resolved for the device.
    refiner : LoadedModel or None
        The model that took the last ``refine_steps`` steps (:mod:`~zeroshot_core.diffusion.refiner`).
    refine_steps : int
    refiner_cfg_scale : float
        The refiner's classifier-free guidance scale (its card's default).
    """

    volume: Volume
    mask: np.ndarray
    guidance: str
    slices: tuple[int, ...]
    axis: int
    model: LoadedModel
    mask_params: MaskParams | None = None
    denoise: DenoiseChoice | None = None
    cfg_scale: float = 1.0
    steps: int = DEFAULT_STEPS
    acceleration: Acceleration | None = None
    refiner: LoadedModel | None = None
    refine_steps: int = 0
    refiner_cfg_scale: float = 1.0


def as_source_volume(source: Volume | str | os.PathLike | np.ndarray) -> Volume:
    """Accept a Volume, a path or an array; check it is finite and not constant.

    Raises
    ------
    InputError
    """
    volume = to_volume(source)
    if not np.isfinite(volume.data).all():
        raise InputError(f"{_name(volume)}: contains NaN or Inf values; replace them first")
    if float(volume.data.max()) == float(volume.data.min()):
        raise InputError(f"{_name(volume)}: the image is constant (no contrast to translate or segment)")
    return volume


def build_guidance(model: LoadedModel, name: str | None, overrides: Mapping[str, Any]) -> Guidance:
    """The guidance strategy for ``model``, checked for compatibility.

    Raises
    ------
    ModelError, PluginError
    """
    card = model.card
    name = name or card.guidance
    params = dict(card.guidance_params) if name == card.guidance else {}
    params.update(overrides)
    guidance = guidance_registry().create(name, **params)
    problem = guidance.compatibility_error(card.guidance, card.guidance_params, card.condition_channels)
    if problem:
        raise ModelError(problem)
    return guidance


def _slice_noise(seed: int, index: int, candidate: int, shape: tuple[int, int]) -> torch.Tensor:
    generator = torch.Generator().manual_seed((seed * 1_000_003 + index * 7_919 + candidate * 104_729) % 2**63)
    return torch.randn((1, 1) + tuple(shape), generator=generator)


def translate_iter(source: Volume | str | os.PathLike | np.ndarray, model: str | os.PathLike | LoadedModel | None = None,
                   guidance: str | None = None, options: TranslateOptions | None = None
                   ) -> Iterator[Progress | TranslationResult]:
    """Translate ``source``; yield :class:`Progress` events, then one :class:`TranslationResult`.

    Closing the generator between events cancels the work; nothing is written.

    Raises
    ------
    InputError, ModelError, ConfigError, PluginError
    """
    options = options or TranslateOptions()
    volume = as_source_volume(source)
    axis = options.axis if options.axis is not None else slicing_axis(volume.affine, volume.data.shape)
    wanted = check_slices(volume, axis, options.slices)
    volume = denoise_volume(volume, axis, options.denoise) if options.denoise == "nlm" else volume
    device = resolve_device(options.device)
    acceleration = options.acceleration.resolve(device)
    acceleration.check(device)
    loaded = load_model(model, guidance, device)
    strategy = build_guidance(loaded, guidance, options.guidance_params)
    card = loaded.card
    size = card.image_size
    cfg_scale = cfg_scale_for(card, options.cfg_scale)
    check_cfg(card, cfg_scale, loaded.path)
    steps = steps_for(card, options.steps)
    steps_total = len(range(min(int(round(steps * (1 - strategy.strength))), steps - 1), steps))
    refinement, refiner = load_refinement(loaded, options.refiner, options.refine_steps, steps_total, device)

    native = NativeGrid.for_card(card, volume, axis)
    mask_params = MaskParams.resolve(options.mask, card.mask)

    def cut(volume: Volume) -> tuple[np.ndarray, Reorientation, int, np.ndarray, np.ndarray]:
        mask3d = native.mask(volume, axis, mask_params) if native else source_mask(volume, axis, mask_params)
        if not mask3d.any():
            raise InputError(f"{_name(volume)}: the filter mask is empty, nothing to translate; "
                             "lower --mask-erosion or --mask-classes, or pass --no-mask")
        norm = Normalisation.fit(volume.data, tuple(card.percentiles), mask3d)
        # Slices are cut in the canonical orientation, the one the models were trained in.
        reorient = Reorientation.for_affine(volume.affine, volume.data.shape)
        canonical_axis, _ = reorient.axis(axis)
        return (mask3d, reorient, canonical_axis, volume_slices(reorient.apply(norm.apply(volume.data)), canonical_axis),
                volume_slices(reorient.apply(mask3d), canonical_axis))

    mask3d, reorient, canonical_axis, slices, mask_slices = cut(volume)
    todo_voxel = [i for i in wanted if mask_slices[reorient.index(axis, i)].any()]
    if not todo_voxel:
        raise InputError(f"{_name(volume)}: the filter mask leaves nothing in the selected slices "
                         f"{_span(wanted)} (axis {axis}); choose slices that hold tissue, or lower --mask-erosion")
    todo = [reorient.index(axis, i) for i in todo_voxel]
    shape2d = slices.shape[1:]
    grid = native.geometry(shape2d) if native else None

    def to_grid(indices: list[int]) -> tuple[np.ndarray, np.ndarray]:
        if grid is not None:
            return grid.to_work(slices[indices], -1.0), grid.to_work(mask_slices[indices], 0.0) > 0.5
        return (to_model_size(slices[indices], size, fill=-1.0),
                to_model_size(mask_slices[indices].astype(np.float32), size, fill=0.0) > 0.5)

    choice = fixed_choice(options.denoise)
    if options.denoise == "auto":
        choice = choose_denoise(*to_grid(todo), card.training)
        if choice.applied == "nlm":
            volume = denoise_volume(volume, axis, "nlm")
            mask3d, reorient, canonical_axis, slices, mask_slices = cut(volume)

    out_slices = np.full(slices.shape, -1.0, np.float32)
    noise_shape = grid.work if grid else (size, size)
    done = len(wanted) - len(todo)
    unet = acceleration.prepare(loaded.unet)
    refinement = replace(refinement, unet=acceleration.prepare(refinement.unet)) if refinement else None
    yield Progress(done, len(wanted), 0, steps_total)

    def prepare(indices: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        small, small_mask = to_grid(indices)
        reference = np.where(small_mask, small, -1.0).astype(np.float32)
        static = np.stack([strategy.static_condition(r, m) for r, m in zip(reference, small_mask)])
        return (torch.from_numpy(reference[:, None]).to(device), torch.from_numpy(static).to(device),
                torch.from_numpy(small_mask[:, None].astype(np.float32)).to(device))

    def back(samples: np.ndarray) -> np.ndarray:
        return grid.from_work(samples) if grid is not None else from_model_size(samples, shape2d)

    def run(reference, static, mask, noise, generator, batch) -> Iterator[Progress | torch.Tensor]:
        scheduler = make_scheduler(options.scheduler, card.noise_schedule)
        result = None
        for event in sample_progressive(unet, scheduler, strategy, reference, static, mask, noise, steps,
                                        generator, cfg_scale=cfg_scale, acceleration=acceleration,
                                        cfg_steps=options.cfg_steps, refinement=refinement):
            result = event.sample
            yield Progress(done, len(wanted), event.step, event.total, batch)
        yield torch.where(mask > 0, result.clamp(-1.0, 1.0), torch.full_like(result, -1.0))

    if options.consistency is None:
        k = options.samples  # K draws of a slice share its batch rows
        batch, start = max(1, options.batch_size // k), 0
        while start < len(todo):  # out of device memory: halve the batch and redo it
            indices = todo[start:start + batch]
            reference, static, mask = repeat_for_samples(prepare(indices), k)
            noise = sample_noise(lambda i, c: _slice_noise(options.seed + c, i, 0, noise_shape), indices, k).to(device)
            generator = torch.Generator(device=device).manual_seed(options.seed + indices[0])
            try:
                for item in run(reference, static, mask, noise, generator, len(indices)):
                    if isinstance(item, Progress):
                        yield item
                    else:
                        out_slices[indices] = back(mean_of_samples(item, k)[:, 0].cpu().numpy())
            except (RuntimeError, MemoryError) as exc:
                del reference, static, mask, noise
                batch = halve_batch(exc, len(indices), device)
                continue
            start += len(indices)
            done += len(indices)
            yield Progress(done, len(wanted), steps_total, steps_total)
    else:
        params = options.consistency
        previous: torch.Tensor | None = None
        last_index: int | None = None
        for index in todo:
            reference, static, mask = prepare([index])
            pool = []
            for round_ in range(params.rounds):
                k = params.candidates
                noise = torch.cat([_slice_noise(options.seed, index, round_ * k + c, noise_shape)
                                   for c in range(k)]).to(device)
                generator = torch.Generator(device=device).manual_seed(options.seed + index * 31 + round_)
                for item in run(reference.expand(k, -1, -1, -1), static.expand(k, -1, -1, -1),
                                mask.expand(k, -1, -1, -1), noise, generator, 1):
                    if isinstance(item, Progress):
                        yield item
                    else:
                        pool.append(item)
            candidates = torch.cat(pool)
            adjacent = previous if last_index is not None and abs(index - last_index) == 1 else None
            chosen = candidates[select_candidate(candidates, mask, adjacent, params.first_slice_threshold)]
            previous, last_index = chosen[None], index
            out_slices[index] = back(chosen[0].cpu().numpy()[None])[0]
            done += 1
            yield Progress(done, len(wanted), steps_total, steps_total)

    out_slices = np.where(mask_slices, out_slices, -1.0)
    target = Normalisation(card.target_intensity["low"], card.target_intensity["high"])
    data = target.invert(reorient.invert(stack_slices(out_slices, canonical_axis)))
    translated = Volume(data.astype(np.float32), volume.affine, volume.header, None)
    yield TranslationResult(translated, mask3d, strategy.name, tuple(todo_voxel), axis, loaded, mask_params, choice,
                            cfg_scale, steps, acceleration, refiner, refinement.steps if refinement else 0,
                            refinement.cfg_scale if refinement else 1.0)
