"""Choosing a model (bundled default or a folder) and reading its card, without weights.

The widget shows what a model translates to and which guidance it was trained
with before anything runs, and refuses a folder that is not a model with a
one-line message. Only the JSON card is read here; weights are loaded by the
engine on the worker thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zeroshot_core import api
from zeroshot_core.errors import ModelError

BUNDLED = "bundled default"
FOLDER = "folder…"


def model_card(kind: str, folder: Path | str | None, guidance: str | None = None) -> dict[str, Any]:
    """The card (as a dict) of the chosen model.

    Parameters
    ----------
    kind : {BUNDLED, FOLDER}
        Which model source the user chose: :data:`FOLDER` reads the card in
        ``folder``; anything else (normally :data:`BUNDLED`) uses a bundled model.
    folder : path-like or None
        The model folder when ``kind`` is :data:`FOLDER`.
    guidance : str, optional
        Preferred guidance when picking among bundled models.

    Returns
    -------
    dict
        ``ModelCard.to_dict()`` (``guidance``, ``guidance_params``,
        ``target_modality``, ``image_size`` …).

    Raises
    ------
    ModelError
        No bundled model, no folder chosen, or the folder is not a model.
    """
    if kind == FOLDER:
        if folder is None or str(folder).strip() in ("", "."):
            raise ModelError("no model folder chosen; pick a folder made by 'zeroshot train'")
        return api.read_card(Path(folder)).to_dict()
    models = api.list_models()
    if not models:
        raise ModelError("no bundled model is installed; choose a model folder (train one with 'zeroshot train')")
    try:  # the engine's own choice: the bundled model for the guidance, or for the default guidance
        return api.read_card(api.default_model_dir(guidance)).to_dict()
    except ModelError:
        return models[0][1]


def model_path(kind: str, folder: Path | str | None) -> Path | None:
    """What to pass to the engine: the folder, or ``None`` for the bundled default."""
    return Path(folder) if kind == FOLDER and folder is not None else None


def describe(card: dict[str, Any]) -> str:
    """One line about a model: target, guidance, resolution, the anatomy it was trained on and its refiner.

    The resolution is the in-plane pixel spacing for native-spacing models (each slice is
    resampled to it and translated whole), else the side every slice is resized to.
    """
    training = card.get("training") or {}
    anatomy = {"brain": "brains only", "head": "whole heads"}.get(api.training_anatomy(training))
    spacing = training.get("spacing_mm")
    grid = f"{spacing:g} mm pixels" if isinstance(spacing, (int, float)) else f"{card.get('image_size', '?')} px"
    refiner = (card.get("sampling") or {}).get("refiner")
    return (f"→ {card.get('target_modality', '?')} · trained with {card.get('guidance', '?')} · {grid}"
            + (f" · on {anatomy}" if anatomy else "") + (f" · refined by {refiner}" if refiner else ""))


def card_details(card: dict[str, Any]) -> str:
    """The card's essentials, one per line (:func:`zeroshot_core.api.card_summary`)."""
    return "\n".join(api.card_summary(card))
