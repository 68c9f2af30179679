"""Fine-tuning: start a training run from another model's weights (``--init-from``).

A model trained at one resolution can seed a run at another: the UNet is
convolutional, so its weights do not depend on the image size, and what it has
learnt of the anatomy carries over to a new pixel spacing or field of view far
faster than a random start relearns it. The optimiser starts fresh and the step
counter at 0; the card of the new model records where its weights came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from zeroshot_core.errors import ModelError
from zeroshot_core.model.store import ModelCard, load_weights, read_card


def check_init_from(folder: str | Path, guidance: str, prediction: str, model_size: str,
                    in_channels: int) -> ModelCard:
    """The card of ``folder``, checked against the run it should start.

    Parameters
    ----------
    folder : str or Path
        Model folder (``model.json`` + ``model.safetensors``).
    guidance, prediction, model_size : str
        The new run's guidance strategy, prediction type and UNet size.
    in_channels : int
        The new run's network input channels (1 + condition channels).

    Returns
    -------
    ModelCard

    Raises
    ------
    ModelError
        If the folder is not a model, or its guidance, prediction type, UNet size or
        input channels differ from the run's (one line naming the folder and the fix).
    """
    card = read_card(folder)
    theirs = {"guidance": card.guidance, "prediction": card.noise_schedule.get("prediction_type", "epsilon"),
              "model size": card.model_size, "input channels": card.unet.get("in_channels")}
    ours = {"guidance": guidance, "prediction": prediction, "model size": model_size, "input channels": in_channels}
    refuse_mismatch(folder, theirs, ours, "cannot start from this model",
                    "choose a model trained with the same {key} or drop --init-from")
    return card


def refuse_mismatch(folder: str | Path, theirs: dict[str, Any], ours: dict[str, Any], refusal: str,
                    fix: str) -> None:
    """Raise, in one line, at the first setting of ``ours`` that the model in ``folder`` has otherwise.

    Parameters
    ----------
    folder : str or Path
        The model folder, named in the message.
    theirs, ours : dict
        The model's and the run's value of each setting, by the name the message uses.
    refusal : str
        What cannot be done, e.g. ``"cannot start from this model"``.
    fix : str
        What to do instead; ``{key}`` is replaced by the setting's name.

    Raises
    ------
    ModelError
        ``"{folder}: {refusal}: its {key} is …, this run's …; {fix}"``.
    """
    for key, value in ours.items():
        if theirs[key] != value:
            raise ModelError(f"{folder}: {refusal}: its {key} is {theirs[key]!r}, this run's {value!r}; "
                             + fix.format(key=key))


def load_init_weights(folder: str | Path, card: ModelCard, *modules: torch.nn.Module) -> dict[str, Any]:
    """Copy the weights of ``folder`` into each of ``modules``; return the card's provenance entry.

    Returns
    -------
    dict
        ``{"model": folder name, "steps": its training steps, "image_size": its size,
        "spacing_mm": its spacing or None}``, stored as ``training.init_from``.

    Raises
    ------
    ModelError
        If the weights do not fit the network.
    """
    state = load_weights(folder, card).state_dict()
    for module in modules:
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelError(f"{folder}: weights do not fit this run's network "
                             f"({str(exc).splitlines()[0][:160]})") from None
    return {"model": Path(folder).resolve().name, "steps": card.training.get("steps"),
            "image_size": card.image_size, "spacing_mm": card.training.get("spacing_mm")}
