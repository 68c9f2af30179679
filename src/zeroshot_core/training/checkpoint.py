"""The training state that ``--resume`` continues from, written so that a crash never breaks it.

A model folder being trained holds, besides the model itself::

    training_state.json                      {"step": N, "tensors": "training_state-0000N.safetensors", ...}
    training_state-0000N.safetensors         raw weights, EMA weights, AdamW moments, sampler RNG

The tensors of each checkpoint go to a new file named after its step; the JSON,
written last and atomically (temporary file, then rename), points to it; only then
are older tensor files removed. A crash or a kill at any moment leaves a JSON that
names a complete tensor file of the same step. Folders written before this layout
(``training_state.safetensors`` beside ``model.safetensors``) still resume.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from zeroshot_core.errors import ModelError
from zeroshot_core.model.store import WEIGHTS_FILE, save_tensors, write_json

STATE_JSON = "training_state.json"
LEGACY_TENSORS = "training_state.safetensors"


def _tensor_file(step: int) -> str:
    return f"training_state-{step:08d}.safetensors"


def save_state(out: Path, unet: torch.nn.Module, ema: torch.nn.Module, optimizer: torch.optim.Optimizer,
               generator: torch.Generator, step: int, wall: float) -> Path:
    """Write the state after ``step`` optimiser steps into ``out`` (see the module docstring).

    Parameters
    ----------
    out : Path
        Model folder (exists).
    unet, ema : torch.nn.Module
        The trained network (float32) and its exponential moving average.
    optimizer : torch.optim.Optimizer
        AdamW; its moments are stored in full precision, so that a resumed run
        computes what an uninterrupted one would have.
    generator : torch.Generator
        The CPU generator that draws batches, timesteps and noise; its state is saved
        so that a resumed run draws what an uninterrupted one would have.
    step : int
        Optimiser steps done (cumulative).
    wall : float
        Training wall time so far, seconds.

    Returns
    -------
    Path
        The JSON file that ``--resume`` reads.
    """
    tensors = {f"model.{k}": v for k, v in unet.state_dict().items()}
    tensors.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
    opt_state = optimizer.state_dict()
    for index, values in opt_state["state"].items():
        for key, value in values.items():
            tensors[f"opt.{index}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    tensors["rng.generator"] = generator.get_state()
    name = _tensor_file(step)
    save_tensors(out / name, tensors, {"step": str(step)})
    write_json(out / STATE_JSON, {"step": step, "tensors": name, "wall_time_s": wall, "param_groups": [
        {k: v for k, v in g.items() if k != "params"} for g in opt_state["param_groups"]]})
    for old in [*out.glob("training_state-*.safetensors"), out / LEGACY_TENSORS]:
        if old.name != name:
            old.unlink(missing_ok=True)
    return out / STATE_JSON


def _as_float(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v.float() if v.is_floating_point() else v for k, v in tensors.items()
            if k.startswith(prefix)}


def load_state(out: Path, unet: torch.nn.Module, ema: torch.nn.Module, optimizer: torch.optim.Optimizer
               ) -> tuple[int, float, torch.Tensor | None]:
    """Load the state saved by :func:`save_state` into the given objects.

    Returns
    -------
    step : int
        Optimiser steps done.
    wall : float
        Wall time so far, seconds.
    rng_state : Tensor or None
        State of the batch generator (``None`` for folders of the older layout).

    Raises
    ------
    ModelError
        If the state is unreadable, names a missing file, or does not fit the network.
    """
    try:
        meta = json.loads((out / STATE_JSON).read_text(encoding="utf-8"))
        step = int(meta["step"])
        name = str(meta.get("tensors", LEGACY_TENSORS))
        if Path(name).name != name:
            raise ValueError(f"bad tensor file name {name!r}")
        tensors = load_file(str(out / name))
        ema_state = _as_float(tensors, "ema.") or _as_float(load_file(str(out / WEIGHTS_FILE)), "")
        unet.load_state_dict(_as_float(tensors, "model."))
        ema.load_state_dict(ema_state)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ModelError(f"{out}: cannot resume ({first}); start without --resume") from None
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, index, item = key.split(".", 2)
            state.setdefault(int(index), {})[item] = value.float() if value.is_floating_point() else value
    groups = optimizer.state_dict()["param_groups"]
    for group, saved in zip(groups, meta.get("param_groups", [])):
        group.update(saved)
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    return step, float(meta.get("wall_time_s", 0.0)), tensors.get("rng.generator")
