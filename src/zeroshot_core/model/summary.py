"""A model card's essentials in a few lines, for ``zeroshot models`` and the widget."""

from __future__ import annotations

from typing import Any, Mapping


DEFAULT_STEPS = 50  # sampling steps of a model whose card names none


def default_steps(sampling: Mapping[str, Any] | None) -> int:
    """The sampling step count a card's ``sampling`` entry asks for; :data:`DEFAULT_STEPS` without one.

    A model distilled to sample in fewer steps (``train --teacher-steps``) records them.

    Examples
    --------
    >>> default_steps({"steps": 25, "note": "distilled to 25"}), default_steps({}), default_steps(None)
    (25, 50, 50)
    """
    return int((sampling or {}).get("steps", DEFAULT_STEPS))


def default_cfg_scale(sampling: Mapping[str, Any] | None) -> float:
    """The classifier-free guidance scale a card's ``sampling`` entry asks for; 1 (off) without one.

    Examples
    --------
    >>> default_cfg_scale({"cfg_scale": 1.25, "note": "measured"}), default_cfg_scale({}), default_cfg_scale(None)
    (1.25, 1.0, 1.0)
    """
    return float((sampling or {}).get("cfg_scale", 1.0))


def default_refine_steps(sampling: Mapping[str, Any] | None) -> int:
    """The last steps a card's ``sampling`` entry gives its refiner; 0 without a refiner.

    Examples
    --------
    >>> default_refine_steps({"refiner": "t1-lmi", "refine_steps": 1}), default_refine_steps({"steps": 20})
    (1, 0)
    """
    sampling = sampling or {}
    return int(sampling.get("refine_steps", 1)) if sampling.get("refiner") else 0


def training_anatomy(training: Mapping[str, Any] | None) -> str | None:
    """``"brain"`` (every training file is a ``*brain*`` skull-stripped image), ``"head"``
    (native-spacing mode on other images: whole heads) or ``None`` (not known) from a card's
    ``training`` record. The files decide first: a native-spacing model trained on
    skull-stripped brains has seen brains only, whatever its mask."""
    training = training or {}
    files = [str(f).lower() for f in training.get("files", [])]
    if files and all("brain" in f for f in files):
        return "brain"
    if training.get("spacing_mm") or training.get("mask_kind") == "head":
        return "head"
    return None


def _training_region(training: Mapping[str, Any]) -> str:
    """What anatomy the model saw, in words."""
    return {"head": "whole head",
            "brain": "brain only (every training file is a skull-stripped *brain* image)"}.get(
        training_anatomy(training), "the foreground of each training slice (filter mask)")


def card_summary(card: Mapping[str, Any]) -> list[str]:
    """The essentials of a model card, one ``"key: value"`` line each.

    Parameters
    ----------
    card : mapping
        A ``model.json`` as a dictionary (:func:`zeroshot_core.api.list_models`).

    Returns
    -------
    list of str
        ``target``, ``guidance``, ``network`` (size and slice size), ``spacing``
        (fixed mm of native-spacing models, or "slices resized"), ``training data`` (files,
        slices, licence), ``anatomy`` (whole head / brain only), ``trained`` (steps,
        batch, wall time), ``fine-tuned from`` (the model whose weights started the run,
        ``train --init-from``), ``distilled from`` (the teacher of ``train --teacher``),
        ``sampling default`` (the step count, the measured classifier-free
        guidance scale and the refiner used unless given) and ``notes`` when the card has them.

    Examples
    --------
    >>> card_summary({"target_modality": "T1", "guidance": "contour", "model_size": "tiny",
    ...               "image_size": 32, "training": {"files": ["a_brain.nii.gz"], "slices": 9, "steps": 3}})[:2]
    ['target: T1', 'guidance: contour']
    """
    training = card.get("training", {}) or {}
    files = [str(f) for f in training.get("files", [])]
    spacing = training.get("spacing_mm")
    lines = [f"target: {card.get('target_modality', '?')}",
             f"guidance: {card.get('guidance', '?')}",
             f"network: {card.get('model_size', '?')} UNet, trained on {card.get('image_size', '?')} px crops"
             if spacing else f"network: {card.get('model_size', '?')} UNet on {card.get('image_size', '?')} px slices",
             f"spacing: {spacing} mm crops (native-spacing mode)" if spacing
             else "spacing: none fixed (each slice is padded and resized to the network size)"]
    if files:
        shown = ", ".join(files[:2]) + (f", … ({len(files)} files)" if len(files) > 2 else "")
        licence = f"; {training['data_licence']}" if training.get("data_licence") else ""
        lines.append(f"training data: {shown}, {training.get('slices', '?')} slices{licence}")
    lines.append(f"anatomy: {_training_region(training)}")
    if training.get("steps") is not None:
        wall = training.get("wall_time_s")
        took = f", {wall / 60:.0f} min on {training.get('hardware', '?')}" if wall else ""
        lines.append(f"trained: {training['steps']} steps at batch {training.get('batch_size', '?')}{took}")
    origin = training.get("init_from")
    if isinstance(origin, Mapping) and origin.get("model"):
        grid = f"{origin['spacing_mm']} mm" if origin.get("spacing_mm") else f"{origin.get('image_size', '?')} px"
        lines.append(f"fine-tuned from: {origin['model']} ({origin.get('steps', '?')} steps, {grid})")
    teacher = training.get("distilled_from")
    if isinstance(teacher, Mapping) and teacher.get("model"):
        folded = f", CFG {teacher['cfg_scale']:g} folded in" if teacher.get("cfg_scale", 1.0) != 1.0 else ""
        lines.append(f"distilled from: {teacher['model']} ({teacher.get('steps', '?')} steps{folded})")
    sampling = card.get("sampling") or {}
    if isinstance(sampling, Mapping) and any(sampling.get(k) is not None for k in ("cfg_scale", "steps", "refiner")):
        why = f" — {sampling['note']}" if sampling.get("note") else ""
        chosen = ([f"--steps {default_steps(sampling)}"] if sampling.get("steps") is not None else []) + (
            [f"--cfg-scale {default_cfg_scale(sampling):g}"] if sampling.get("cfg_scale") is not None else []) + (
            [f"--refiner {sampling['refiner']} --refine-steps {default_refine_steps(sampling)}"]
            if sampling.get("refiner") else [])
        lines.append(f"sampling default: {' '.join(chosen)}{why}")
    if card.get("notes"):
        lines.append(f"notes: {card['notes']}")
    return lines
