"""A refiner: a second, larger model that takes the last sampling steps.

Different noise levels can be served by different denoisers ("ensemble of expert
denoisers", Balaji et al., eDiff-I, 2022; the base + refiner pipeline of SDXL, Podell et
al., 2023). Here a fast distilled student runs the early, noisy steps, where the anatomy
is laid out, and its teacher takes the last one(s), where the fine contrast that a
segmenter reads (grey/white boundaries) is settled. On the whole-head validation
(docs/benchmarks.md, "A refiner for the last step") the lite-deep student alone gives
PD 0.634 / T2 0.619 at 25 steps; 19 student steps and one guided teacher step give
PD 0.645 / T2 0.639 in less time.

Both networks see the same inputs (the guidance's condition channels are computed once
per step from the student's card), so the refiner must agree with the model on
everything that shapes them: guidance and its parameters, condition channels, noise
schedule and prediction type, intensity normalisation and pixel spacing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from zeroshot_core.diffusion.native_grid import cfg_scale_for, check_cfg
from zeroshot_core.diffusion.sampling import Refinement
from zeroshot_core.errors import ConfigError, ModelError
from zeroshot_core.model.loading import LoadedModel, load_model, model_directory
from zeroshot_core.model.store import CARD_FILE, ModelCard, read_card
from zeroshot_core.model.summary import default_refine_steps


def refiner_for(card: ModelCard, refiner: str | None, refine_steps: int | None) -> tuple[str | None, int]:
    """The refiner and its step count to use: the options', else the card's ``sampling`` entry.

    Returns
    -------
    refiner : str or None
        Model folder or bundled name; ``None`` when no refiner runs.
    steps : int
        Last steps it takes; 0 when no refiner runs.

    Raises
    ------
    ConfigError
        If refine steps are asked for but neither the options nor the card name a refiner.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> card = SimpleNamespace(sampling={"refiner": "t1-lmi", "refine_steps": 1})
    >>> refiner_for(card, None, None), refiner_for(card, None, 0), refiner_for(card, "other", 2)
    (('t1-lmi', 1), (None, 0), ('other', 2))
    >>> refiner_for(SimpleNamespace(sampling={}), None, None), refiner_for(SimpleNamespace(sampling={}), "x", None)
    ((None, 0), ('x', 1))
    >>> refiner_for(SimpleNamespace(sampling={"refiner": "t1-lmi"}), None, None)  # a card naming no count: 1
    ('t1-lmi', 1)
    """
    sampling = card.sampling or {}
    name = refiner if refiner is not None else sampling.get("refiner")
    if refine_steps is not None:
        steps = int(refine_steps)
    else:  # the card's count; a refiner named without one takes 1 step
        steps = default_refine_steps({**sampling, "refiner": name})
    if steps and not name:
        raise ConfigError(f"--refine-steps {steps} needs a refiner: pass --refiner MODEL "
                          "(a model folder or a bundled model's name)")
    return (str(name), steps) if name and steps else (None, 0)


def refiner_directory(model_path: str | Path, name: str, named_by_card: bool) -> Path:
    """The refiner's folder: one named by the model's card is looked for beside the model's
    folder first; then ``name`` is a folder or a bundled model's name
    (:func:`~zeroshot_core.model.loading.model_directory`).

    Raises
    ------
    ModelError
        If there is no such folder or bundled model.
    """
    beside = Path(model_path).parent / name
    if named_by_card and (beside / CARD_FILE).is_file():
        return beside
    return model_directory(name)


def fitting_refiner(card: ModelCard, refiner: str | None, refine_steps: int | None,
                    refiner_guidance: str | None) -> tuple[str | None, int | None]:
    """The refiner options that reach one of several models run with one set of options.

    For commands that run several models alike (``evaluate``, ``demo``): a named refiner
    reaches only the models trained with its guidance (the others run without a refiner),
    and refine steps without a named refiner reach only the models whose card names one
    (the others run as they would without the option).

    Parameters
    ----------
    card : ModelCard
        The model's card.
    refiner, refine_steps : str or None, int or None
        The options'.
    refiner_guidance : str or None
        The guidance of the named refiner (its card's), ``None`` when none is named.

    Returns
    -------
    refiner, refine_steps
        To put into this model's options.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> lmi, contour = SimpleNamespace(guidance="lmi", sampling={"refiner": "t1-lmi"}), SimpleNamespace(
    ...     guidance="contour", sampling={})
    >>> fitting_refiner(lmi, "t1-lmi", 2, "lmi"), fitting_refiner(contour, "t1-lmi", 2, "lmi")
    (('t1-lmi', 2), (None, 0))
    >>> fitting_refiner(lmi, None, 2, None), fitting_refiner(contour, None, 2, None)
    ((None, 2), (None, None))
    """
    if refiner is not None:
        return (refiner, refine_steps) if refiner_guidance == card.guidance else (None, 0)
    if refine_steps and not (card.sampling or {}).get("refiner"):
        return None, None
    return None, refine_steps


def _shape_of_inputs(card: ModelCard) -> dict[str, Any]:
    """What must agree between a model and its refiner."""
    spacing = card.training.get("spacing_mm")
    prediction = card.noise_schedule.get("prediction_type", "epsilon")
    return {"guidance": card.guidance, "guidance parameters": card.guidance_params,
            "condition channels": card.condition_channels, "pixel spacing (mm)": spacing,
            "image size": None if spacing else card.image_size,
            "noise schedule": {k: v for k, v in card.noise_schedule.items() if k != "prediction_type"},
            "prediction type": prediction, "intensity percentiles": list(card.percentiles),
            "target intensity": dict(card.target_intensity)}


def _shown(value: Any) -> str:
    return "none (slices resized to the network size)" if value is None else f"{value!r:.80}"


def check_refiner(model: ModelCard, refiner: ModelCard, model_name: str, refiner_name: str) -> None:
    """Refuse a refiner that would see different inputs than the model (cards only, no weights).

    Raises
    ------
    ModelError
        Naming the first property that differs, e.g. the guidance or the pixel spacing.
    """
    mine, theirs = _shape_of_inputs(model), _shape_of_inputs(refiner)
    for key, value in mine.items():
        if theirs[key] != value:
            raise ModelError(f"refiner {refiner_name} does not fit {model_name}: its {key} is "
                             f"{_shown(theirs[key])}, the model's {_shown(value)}; choose a refiner trained like the "
                             "model (e.g. its teacher) or pass --refine-steps 0")


def resolve_refiner(model_path: str | Path, card: ModelCard, refiner: str | None, refine_steps: int | None,
                    steps_run: int) -> tuple[Path, int, ModelCard] | None:
    """Find and check the refiner of a translation with the model in ``model_path``, from cards alone.

    Parameters
    ----------
    model_path : path-like
        The model's folder (a refiner named by its card is looked for beside it).
    card : ModelCard
        The model's card.
    refiner, refine_steps : str or None, int or None
        The options' (``None``: the card's; see :func:`refiner_for`).
    steps_run : int
        Sampling steps the translation runs (the refiner takes the last ``refine_steps``).

    Returns
    -------
    (folder, steps, card) or None
        The refiner's folder, the last steps it takes and its card; ``None`` when no
        refiner runs.

    Raises
    ------
    ConfigError
        If ``refine_steps`` is given and not below ``steps_run`` (the model would take no
        step). The card's default refine steps are cut to ``steps_run - 1`` instead (no
        refiner for a one-step run).
    ModelError
        If a refiner named by the caller or the card cannot be found, or does not fit
        (:func:`check_refiner`).
    """
    if refiner is not None:  # a name the user gave must exist, even when no step is left to it
        refiner_directory(model_path, refiner, named_by_card=False)
    name, steps = refiner_for(card, refiner, refine_steps)
    if refine_steps is None:  # the card's default yields to a short run: the model keeps at least one step
        steps = min(steps, steps_run - 1)
    if name is None or steps == 0:
        return None
    if steps >= steps_run:
        runs = f"{steps_run} step{'s' if steps_run != 1 else ''} run"
        raise ConfigError(f"--refine-steps {steps} leaves no step to the model ({runs}, after --steps and the "
                          f"guidance's strength); use fewer refine steps or more --steps")
    folder = refiner_directory(model_path, name, named_by_card=refiner is None)
    refiner_card = read_card(folder)
    check_refiner(card, refiner_card, Path(model_path).name, folder.name)
    check_cfg(refiner_card, cfg_scale_for(refiner_card, None), folder)
    return folder, steps, refiner_card


def load_refinement(model: LoadedModel, refiner: str | None, refine_steps: int | None, steps_run: int,
                    device: torch.device | str) -> tuple[Refinement | None, LoadedModel | None]:
    """Find, check (:func:`resolve_refiner`, before any weights) and load the refiner of ``model``.

    Parameters
    ----------
    model : LoadedModel
        The model that takes the first steps.
    refiner, refine_steps, steps_run
        As for :func:`resolve_refiner`.
    device : torch.device or str

    Returns
    -------
    refinement : Refinement or None
        For :func:`~zeroshot_core.diffusion.sampling.sample_progressive`, with the
        refiner's own default classifier-free guidance scale (its card's).
    refiner : LoadedModel or None

    Raises
    ------
    ConfigError, ModelError
        As :func:`resolve_refiner`; ``ModelError`` also if the weights cannot be loaded.
    """
    found = resolve_refiner(model.path, model.card, refiner, refine_steps, steps_run)
    if found is None:
        return None, None
    folder, steps, card = found
    loaded = load_model(folder, None, device)
    return Refinement(loaded.unet, steps, cfg_scale_for(card, None)), loaded
