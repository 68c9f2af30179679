"""Loading models: a folder given by the user, or a bundled default.

Bundled models live in ``zeroshot_core/models/<name>/`` (see ``zeroshot models``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Sequence

import torch

from zeroshot_core.choices import DEFAULT_GUIDANCE
from zeroshot_core.errors import ModelError
from zeroshot_core.model.store import CARD_FILE, ModelCard, load_weights, read_card


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A score network ready for sampling.

    Attributes
    ----------
    unet : torch.nn.Module
    card : ModelCard
    path : Path
    device : torch.device
    """

    unet: torch.nn.Module
    card: ModelCard
    path: Path
    device: torch.device


def bundled_model_dirs() -> list[Path]:
    """Folders of the models shipped inside the package, sorted by name."""
    root = resources.files("zeroshot_core") / "model" / "bundled"
    try:
        return sorted(Path(str(p)) for p in root.iterdir() if (Path(str(p)) / CARD_FILE).is_file())
    except (FileNotFoundError, NotADirectoryError):
        return []


def models_by_guidance(folders: Sequence[str | os.PathLike]) -> dict[str, Path]:
    """Model folder per guidance name.

    A folder whose card lists the guidance under ``training.default_for`` wins
    (the first such folder, in order); otherwise the first folder trained with it.
    This lets a faster model be the default for a guidance while the one it was
    distilled from stays available by name.

    Raises
    ------
    ModelError
        If a model card is unreadable.
    """
    chosen: dict[str, Path] = {}
    trained: dict[str, Path] = {}
    for folder in folders:
        card = read_card(folder)
        for name in card.training.get("default_for", []):
            chosen.setdefault(str(name), Path(folder))
        trained.setdefault(card.guidance, Path(folder))
    return {**trained, **chosen}


def default_model_dir(guidance: str | None) -> Path:
    """The bundled model for ``guidance``; for ``None``, the one for
    :data:`~zeroshot_core.choices.DEFAULT_GUIDANCE` (any bundled model if there is none).

    Raises
    ------
    ModelError
        If no bundled model fits.
    """
    dirs = bundled_model_dirs()
    if guidance is None and dirs:
        return models_by_guidance(dirs).get(DEFAULT_GUIDANCE, dirs[0])
    if guidance is not None and (found := models_by_guidance(dirs).get(guidance)) is not None:
        return found
    wanted = f" for guidance {guidance!r}" if guidance else ""
    raise ModelError(f"no bundled model{wanted}; pass --model DIR (train one with 'zeroshot train')")


def model_directory(model: str | os.PathLike) -> Path:
    """The folder of ``model``: a model folder, or the name of a bundled model (``t1-lmi``).

    A folder that exists wins over a bundled model of the same name.

    Raises
    ------
    ModelError
        If ``model`` is neither a folder nor a bundled model's name.

    Examples
    --------
    >>> model_directory("t1-lmi").name
    't1-lmi'
    """
    directory = Path(model)
    if directory.exists() or directory.name != str(model):
        return directory
    bundled = {path.name: path for path in bundled_model_dirs()}
    if str(model) in bundled:
        return bundled[str(model)]
    raise ModelError(f"{model}: no such model folder and no bundled model of that name "
                     f"(bundled: {', '.join(bundled) or 'none'}); pass a folder made by 'zeroshot train'")


def load_model(model: str | os.PathLike | LoadedModel | None = None, guidance: str | None = None,
               device: torch.device | str = "cpu") -> LoadedModel:
    """Load a model folder, or the bundled default for ``guidance``.

    Parameters
    ----------
    model : path-like, LoadedModel or None
        A model folder or a bundled model's name (:func:`model_directory`); ``None``
        picks the bundled default.
    guidance : str, optional
        Used only to pick the bundled default.
    device : torch.device or str
        Where the weights go (``"cpu"`` by default, ``"cuda"``, ``"cuda:1"``, ``"mps"``
        …; passed to ``torch.device``, so not ``"auto"``). A ``LoadedModel`` on another
        device is moved there.

    Raises
    ------
    ModelError
    """
    device = torch.device(device)
    if isinstance(model, LoadedModel):
        if model.device == device:
            return model
        return LoadedModel(model.unet.to(device), model.card, model.path, device)
    directory = model_directory(model) if model is not None else default_model_dir(guidance)
    card = read_card(directory)
    return LoadedModel(load_weights(directory, card, device), card, directory, device)
