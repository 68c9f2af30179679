"""Evaluating translations: every method on one source/target pair, segmented and scored alike.

:func:`evaluate` runs the classical baselines (:mod:`zeroshot_core.evaluation.baselines`) and the
diffusion guidances (:func:`zeroshot_core.diffusion.translation.translate_iter`, one model per
guidance) on the same source, segments every output with one fitted segmenter state
and scores it against the reference labels and the real target. The result types and
writing them (JSON, Markdown, PNG, NIfTI) live in :mod:`zeroshot_core.evaluation.report`.

Protocol (recorded in :attr:`EvaluationResult.protocol`)
--------------------------------------------------------
- **Scoring region**: the reference brain mask (``labels > 0``, or the ``mask`` given)
  on the evaluated slices only. Segmentation, Dice, ASSD, PSNR and SSIM all use exactly
  these voxels for every method, so methods differ only in the intensities they produce.
- **Segmentation**: the ``kmeans`` state of one model card (the first requested diffusion
  method with a model); every image is normalised to [-1, 1] with the card's percentiles
  inside the scoring region first. Without any model the segmenter is fitted on the real
  target inside the scoring region (the best a target-only K-Means can do).
- **Histogram matching** maps the source (normalised inside its filter mask) onto the
  target *training* distribution, never onto the paired target: the card's
  ``training["intensity_quantiles"]`` if present, else an equal-weight Gaussian mixture
  at the K-Means centres (:func:`kmeans_reference`), unless a reference is passed.
- **Identity** is the source unchanged; **shape** is the distance control of the source
  filter mask; diffusion methods use the same filter mask (``options.mask``).
- **PSNR / SSIM**: translation and real target are each normalised to [-1, 1] with the
  same percentile normalisation inside the scoring region; PSNR with ``data_range=2``
  over the region, SSIM as 2-D maps per slice averaged over the region's voxels.
- **ASSD** (mm, voxel spacing from the affine) is computed in 3-D on the scoring region;
  the cut faces of a slab of slices count as surface for prediction and reference alike.
- **Wall time** is the time to produce each output (translation or baseline), models
  already loaded.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from scipy.special import ndtri

from zeroshot_core.choices import BASELINES, DEFAULT_METHODS
from zeroshot_core.diffusion.refiner import fitting_refiner
from zeroshot_core.diffusion.running import run_translation
from zeroshot_core.diffusion.translation import (
    TranslateOptions,
    as_source_volume,
    source_mask,
)
from zeroshot_core.errors import ConfigError, InputError, ZeroshotError
from zeroshot_core.evaluation import baselines, metrics
from zeroshot_core.evaluation.report import EvaluationResult, MethodResult
from zeroshot_core.imaging.intensity import Normalisation
from zeroshot_core.imaging.mask import MaskParams
from zeroshot_core.imaging.orientation import slicing_axis
from zeroshot_core.io.formats import to_volume
from zeroshot_core.io.volume import Volume
from zeroshot_core.model.devices import resolve_device
from zeroshot_core.model.loading import LoadedModel, load_model, model_directory
from zeroshot_core.model.store import ModelCard, read_card
from zeroshot_core.plugins.manager import (
    fitted_segmenter,
    guidance_registry,
    segmenter_registry,
)
from zeroshot_core.segmentation import segment_region

__all__ = ["BASELINES", "DEFAULT_METHODS", "MethodResult", "EvaluationResult", "evaluate", "kmeans_reference"]

DEFAULT_PERCENTILES = (0.5, 99.5)
ProgressFn = Callable[[str, float], None]


def kmeans_reference(centres: Sequence[float], size: int = 3000) -> np.ndarray:
    """A target intensity distribution implied by K-Means centres (histogram-matching reference).

    Equal-weight mixture of Gaussians at the centres, each with a standard deviation of a
    quarter of the gap to its nearest neighbouring centre (so neighbouring classes meet
    two standard deviations out), given as ``size`` deterministic quantiles clipped to
    [-1, 1]. Class proportions are not stored in a model card, hence the equal weights.

    Parameters
    ----------
    centres : sequence of float
        At least two strictly increasing centres in [-1, 1].
    size : int
        Number of reference values wanted (>= number of centres); each centre gets
        ``size // len(centres)`` quantiles, so the result has that many times the number
        of centres (``size`` when it divides evenly).

    Returns
    -------
    ndarray of float64, sorted

    Raises
    ------
    ConfigError
        Fewer than two centres or ``size`` smaller than their number.

    Examples
    --------
    >>> values = kmeans_reference([-0.5, 0.0, 0.5], size=300)
    >>> [round(float(np.median(values[i * 100:(i + 1) * 100])), 3) for i in range(3)]
    [-0.5, 0.0, 0.5]
    """
    c = np.sort(np.asarray(centres, float))
    if c.size < 2 or size < c.size or np.any(np.diff(c) <= 0):
        raise ConfigError(f"kmeans_reference needs >= 2 distinct centres and size >= their number, got {list(c)}")
    gaps = np.diff(c)
    nearest = np.minimum(np.r_[gaps[0], gaps], np.r_[gaps, gaps[-1]])
    per = size // c.size
    z = ndtri((np.arange(per) + 0.5) / per)
    values = np.concatenate([centre + sigma / 4.0 * z for centre, sigma in zip(c, nearest)])
    return np.sort(np.clip(values, -1.0, 1.0))


def _volume(item: Volume | str | os.PathLike | np.ndarray, what: str) -> Volume:
    try:
        return to_volume(item)
    except InputError as exc:
        raise InputError(f"{what}: {exc}") from None


def _same_grid(reference: Volume, other: Volume, what: str) -> None:
    if other.data.shape != reference.data.shape or not np.allclose(other.affine, reference.affine, atol=1e-3):
        raise InputError(f"{what} is not on the source grid (shape {other.data.shape} vs {reference.data.shape} "
                         "or a different affine); resample it onto the source first")


def _chosen_slices(region: np.ndarray, axis: int, wanted: Sequence[int] | None) -> tuple[int, ...]:
    count = region.shape[axis]
    has_voxels = np.moveaxis(region, axis, 0).reshape(count, -1).any(axis=1)
    if wanted is None:
        return tuple(int(i) for i in np.flatnonzero(has_voxels))
    bad = [i for i in wanted if not 0 <= i < count]
    if bad:
        raise ConfigError(f"slice index {bad[0]} out of range 0..{count - 1}")
    return tuple(sorted({int(i) for i in wanted if has_voxels[i]}))


class _Scorer:
    """Segments and scores images inside one region with one segmenter state."""

    def __init__(self, target: Volume, labels: np.ndarray, region: np.ndarray, axis: int, slices: tuple[int, ...],
                 card: ModelCard | None, segmenter: str, state: Mapping[str, Any] | None = None) -> None:
        self.region, self.axis, self.slices = region, axis, slices
        self.spacing = target.spacing
        self.reference = np.where(region, labels, 0).astype(np.int16)
        self.percentiles = tuple(card.percentiles) if card else DEFAULT_PERCENTILES
        self.target_norm = self.normalise(target.data)
        if state is not None:
            self.segmenter = fitted_segmenter(segmenter, {segmenter: dict(state)})
        elif card is not None:
            self.segmenter = fitted_segmenter(segmenter, card.segmenters)
        else:  # no model: fit on the real target (recorded in the protocol)
            self.segmenter = segmenter_registry().create(segmenter, state=None)
            if getattr(self.segmenter, "needs_fit", False):
                self.segmenter.fit([self.target_norm], [region])

    def normalise(self, data: np.ndarray) -> np.ndarray:
        return Normalisation.fit(data, self.percentiles, self.region).apply(data)

    def segment(self, data: np.ndarray) -> np.ndarray:
        return segment_region(data, self.region, self.segmenter, self.percentiles)

    def score(self, method: str, output: Volume, wall: float, model: str | None) -> MethodResult:
        labels = self.segment(output.data)
        keys = sorted(int(k) for k in np.unique(self.reference) if k > 0)
        dice = metrics.dice(labels, self.reference, labels=keys)
        assd = {k: metrics.assd(labels, self.reference, self.spacing, label=k) for k in keys}
        finite = [v for v in assd.values() if not np.isnan(v)]
        image = self.normalise(output.data)
        psnr = metrics.psnr(image, self.target_norm, self.region, data_range=2.0)
        return MethodResult(method, "ok", "", dice, metrics.mean_dice(dice), assd,
                            float(np.mean(finite)) if finite else float("nan"), psnr, self._ssim(image),
                            round(wall, 3), model, output, labels)

    def _ssim(self, image: np.ndarray) -> float:
        total, weight = 0.0, 0
        for index in self.slices:
            mask = np.take(self.region, index, self.axis)
            if mask.any():
                value = metrics.ssim(np.take(image, index, self.axis), np.take(self.target_norm, index, self.axis),
                                     mask, data_range=2.0)
                total, weight = total + value * int(mask.sum()), weight + int(mask.sum())
        return total / weight


def _load_models(methods: Sequence[str], models: Mapping[str, Any], device: str) -> dict[str, LoadedModel | str]:
    """Loaded model per diffusion method, or the reason it has none."""
    torch_device = resolve_device(device)
    loaded: dict[str, LoadedModel | str] = {}
    for method in methods:
        if method in BASELINES:
            continue
        given = models.get(method)
        if given is None:
            loaded[method] = f"no model for guidance {method!r}"
            continue
        try:
            loaded[method] = load_model(given, None, torch_device)
        except ZeroshotError as exc:
            loaded[method] = str(exc)
    return loaded


def _histmatch_reference(card: ModelCard | None, scorer: _Scorer, given: np.ndarray | None) -> tuple[np.ndarray, str]:
    if given is not None:
        values = np.asarray(given, float).ravel()
        if values.size < 2 or not np.isfinite(values).all():
            raise InputError("the histogram-matching reference needs at least two finite values")
        return values, "values given by the caller"
    quantiles = card.training.get("intensity_quantiles") if card else None
    if quantiles:
        return np.asarray(quantiles, float), "training intensity quantiles from the model card"
    centres = getattr(scorer.segmenter, "centres", None)
    if centres is None:
        raise ConfigError("histogram matching needs a kmeans segmenter or a reference; pass histmatch_reference")
    where = "model card" if card else "real target (no model given)"
    return kmeans_reference(centres), f"equal-weight Gaussian mixture at the K-Means centres ({where})"


def evaluate(source: Volume | str | os.PathLike | np.ndarray, target: Volume | str | os.PathLike | np.ndarray,
             labels: Volume | str | os.PathLike | np.ndarray, *, models: Mapping[str, Any] | None = None,
             methods: Sequence[str] = DEFAULT_METHODS, mask: Volume | str | os.PathLike | np.ndarray | None = None,
             options: TranslateOptions | None = None, segmenter: str = "kmeans", slices: Sequence[int] | None = None,
             histmatch_reference: np.ndarray | None = None, shape_cap_mm: float = 6.0,
             progress: ProgressFn | None = None,
             variants: Mapping[str, tuple[str, Mapping[str, Any]]] | None = None,
             segmenter_state: Mapping[str, Any] | None = None) -> EvaluationResult:
    """Run, segment and score every method on one source/target pair.

    Parameters
    ----------
    source, target : Volume, path-like or ndarray
        Source-modality input and the real target-modality image, on one grid.
    labels : Volume, path-like or ndarray
        Reference labels on that grid (0 background, 1 CSF, 2 GM, 3 WM).
    models : mapping of str to path-like or LoadedModel, optional
        Model per diffusion method (guidance name). A method without one is skipped
        with a recorded reason; entries for methods not requested are ignored.
    methods : sequence of str
        Baselines (``identity``, ``histmatch``, ``shape``) and registered guidance names.
    mask : Volume, path-like or ndarray, optional
        Scoring mask (non-zero inside); default ``labels > 0``.
    options : TranslateOptions, optional
        Sampling settings for every diffusion method; ``options.mask`` is the source
        filter mask used by the translations and by ``histmatch``/``shape``.
    segmenter : str
        Segmenter whose fitted state (from the model card) labels every output.
    slices : sequence of int, optional
        Slices (along the slicing axis) to translate and score; default
        ``options.slices``, else every slice holding scoring-mask voxels.
    histmatch_reference : ndarray, optional
        Target training intensities in [-1, 1] for ``histmatch`` (see the module notes).
    shape_cap_mm : float
        Saturation distance of the ``shape`` control.
    progress : callable, optional
        Called as ``progress(method, fraction)`` while each method runs.
    variants : mapping of str to (guidance, params), optional
        Extra method names that run a guidance with other parameters, e.g.
        ``{"lmi-gradient": ("lmi", {"channels": False, "gradient_scale": 0.05})}``; their
        models are looked up in ``models`` under the variant's name.
    segmenter_state : mapping, optional
        A fitted state of ``segmenter`` (its ``state()``) that labels every output instead
        of the state in the first model's card, so that runs with different models are
        scored by one segmenter.

    Returns
    -------
    EvaluationResult

    Raises
    ------
    InputError, ConfigError, ModelError, PluginError
        Bad inputs (different grids, empty region), unknown or repeated methods.
    """
    options = options or TranslateOptions()
    methods = tuple(methods)
    variants = dict(variants or {})
    known = set(BASELINES) | set(guidance_registry().names()) | set(variants)
    unknown = [m for m in methods if m not in known]
    if unknown or not methods or len(set(methods)) != len(methods):
        raise ConfigError(f"methods must be distinct names from {', '.join(sorted(known))}; got {', '.join(methods) or 'none'}")
    src = as_source_volume(source)
    tgt = as_source_volume(target)
    _same_grid(src, tgt, "the target")
    ref_volume = _volume(labels, "labels")
    _same_grid(src, ref_volume, "the labels")
    reference = np.rint(ref_volume.data).astype(np.int16)
    if mask is not None:
        mask_volume = _volume(mask, "mask")
        _same_grid(src, mask_volume, "the mask")
        brain, mask_note = mask_volume.data > 0, "the given mask"
    else:
        brain, mask_note = reference > 0, "reference brain mask (labels > 0)"
    axis = options.axis if options.axis is not None else slicing_axis(src.affine, src.data.shape)
    chosen = _chosen_slices(brain, axis, tuple(slices) if slices is not None else options.slices)
    if not chosen:
        raise InputError("no evaluated slice holds scoring-mask voxels; choose other --slices or check the labels")
    selector = np.zeros(src.data.shape[axis], bool)
    selector[list(chosen)] = True
    region = brain & np.expand_dims(selector, tuple(i for i in range(3) if i != axis))
    options = replace(options, slices=chosen, axis=axis)

    loaded = _load_models(methods, models or {}, options.device)
    # a named refiner must exist (checked before any work) and reaches only the models of its guidance
    refiner_guidance = read_card(model_directory(options.refiner)).guidance if options.refiner else None
    card_source = next((m for m in methods if isinstance(loaded.get(m), LoadedModel)), None)
    card = loaded[card_source].card if card_source else None
    scorer = _Scorer(tgt, reference, region, axis, chosen, card, segmenter, segmenter_state)
    target_row = scorer.score("target", tgt, 0.0, None)
    options = replace(options, mask=MaskParams.resolve(options.mask, card.mask if card else None))
    filter_mask = source_mask(src, axis, options.mask)
    hist_values = hist_note = None
    if "histmatch" in methods:
        hist_values, hist_note = _histmatch_reference(card, scorer, histmatch_reference)
    target_units = Normalisation(**card.target_intensity) if card else Normalisation(-1.0, 1.0)
    src_norm = Normalisation.fit(src.data, scorer.percentiles, filter_mask if filter_mask.any() else None).apply(src.data)

    report = progress or (lambda name, fraction: None)
    results: list[MethodResult] = []
    for method in methods:
        report(method, 0.0)
        started = time.perf_counter()
        if method in BASELINES:
            if method == "identity":
                data = baselines.identity(src.data)
            elif method == "histmatch":
                data = target_units.invert(baselines.histogram_match(src_norm, hist_values, filter_mask))
            else:
                data = target_units.invert(baselines.shape_control(filter_mask, src.spacing, shape_cap_mm))
            results.append(scorer.score(method, src.with_data(data), time.perf_counter() - started, None))
        elif isinstance(loaded[method], str):
            results.append(MethodResult(method, "skipped", loaded[method]))
        else:
            model = loaded[method]
            try:
                guidance, params = variants.get(method, (method, {}))
                refiner, refine_steps = fitting_refiner(model.card, options.refiner, options.refine_steps,
                                                        refiner_guidance)
                run_options = replace(options, guidance_params={**options.guidance_params, **params},
                                      refiner=refiner, refine_steps=refine_steps)
                outcome = run_translation(src, model, guidance, run_options,
                                          on_progress=lambda event, m=method: report(m, event.fraction))
            except ZeroshotError as exc:
                results.append(MethodResult(method, "failed", str(exc), model=str(model.path)))
                continue
            scored = scorer.score(method, outcome.volume, time.perf_counter() - started, str(model.path))
            results.append(replace(scored, refiner=(f"{outcome.refiner.path.name} ({outcome.refine_steps} step"
                                                    f"{'s' if outcome.refine_steps != 1 else ''}, CFG "
                                                    f"{outcome.refiner_cfg_scale:g})") if outcome.refiner else None))
        report(method, 1.0)

    protocol = {
        "scoring_region": f"{mask_note} on the evaluated slices ({int(region.sum())} voxels)",
        "segmenter": segmenter,
        "segmenter_state": ("given by the caller" if segmenter_state is not None
                            else f"model card of {card_source!r} ({loaded[card_source].path})" if card
                            else "fitted on the real target inside the scoring region (no model given)"),
        "normalisation": f"percentiles {list(scorer.percentiles)} inside the scoring region, per image",
        "histmatch_reference": hist_note or "not run",
        "source_filter_mask": options.mask.to_dict(),
        "shape_cap_mm": shape_cap_mm,
        # steps/refiner/refine_steps None: each model's card default (sampling.*); autocast as asked (auto: bf16 on a CPU with it)
        "translate_options": {"steps": options.steps, "scheduler": options.scheduler, "seed": options.seed,
                              "device": options.device, "batch_size": options.batch_size,
                              "autocast": options.acceleration.autocast, "refiner": options.refiner,
                              "refine_steps": options.refine_steps},
    }
    names = {k: {1: "CSF", 2: "GM", 3: "WM"}.get(k, f"label {k}") for k in target_row.dice}
    return EvaluationResult(tuple(results), target_row, chosen, axis, src.spacing, names, protocol,
                            src, tgt, scorer.reference, region)
