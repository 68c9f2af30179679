"""Model directories: safetensors weights + a JSON model card. Never pickles.

A model directory holds::

    model.json          the model card (ModelCard)
    model.safetensors   EMA weights of the score network
    training_state.json + training_state-*.safetensors   (optional) to resume training
                                                         (zeroshot_core.training.checkpoint)

Examples
--------
>>> from zeroshot_core.model.store import MODEL_SIZES
>>> sorted(MODEL_SIZES)
['base', 'lite', 'lite-deep', 'small', 'tiny']
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from zeroshot_core.errors import ModelError
from zeroshot_core.io.atomic import atomic_write

CARD_FILE = "model.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT_VERSION = 1

# name -> (block_out_channels, layers_per_block, attention at the levels marked True)
MODEL_SIZES: dict[str, tuple[tuple[int, ...], int, tuple[bool, ...]]] = {
    "tiny": ((16, 32), 1, (False, False)),
    "small": ((32, 64, 96), 1, (False, False, True)),
    # a quarter of small's cost per slice (half the width, attention only in the middle block, one
    # more level for the receptive field): the student size for --teacher distillation
    "lite": ((16, 32, 48, 64), 1, (False, False, False, False)),
    # lite with two layers per block: a deeper student at the same width, about 1.3x lite's
    # cost per call in float32 and in bf16 (benchmarks/bench_network_cost.py)
    "lite-deep": ((16, 32, 48, 64), 2, (False, False, False, False)),
    "base": ((64, 128, 192, 256), 2, (False, False, True, True)),
}

DEFAULT_NOISE_SCHEDULE: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_schedule": "linear",
    "beta_start": 1e-4,
    "beta_end": 0.02,
    "prediction_type": "epsilon",
}


def unet_config(model_size: str, image_size: int, in_channels: int) -> dict[str, Any]:
    """Keyword arguments of ``diffusers.UNet2DModel`` for a named size.

    Raises
    ------
    ModelError
        If ``model_size`` is unknown or ``image_size`` is not divisible by the
        network's downsampling factor.
    """
    if model_size not in MODEL_SIZES:
        raise ModelError(f"unknown model size {model_size!r}; valid: {', '.join(MODEL_SIZES)}")
    channels, layers, attention = MODEL_SIZES[model_size]
    factor = 2 ** (len(channels) - 1)
    if image_size % factor or image_size < 2 * factor:
        raise ModelError(f"image size {image_size} must be a multiple of {factor} and >= {2 * factor} "
                         f"for model size {model_size!r}")
    down = ["AttnDownBlock2D" if a else "DownBlock2D" for a in attention]
    up = ["AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)]
    return {
        "sample_size": image_size,
        "in_channels": in_channels,
        "out_channels": 1,
        "layers_per_block": layers,
        "block_out_channels": list(channels),
        "down_block_types": down,
        "up_block_types": up,
        "norm_num_groups": min(8, channels[0]),
        "attention_head_dim": 8,
    }


def build_unet(config: dict[str, Any]) -> torch.nn.Module:
    """A ``diffusers.UNet2DModel`` from its configuration."""
    from diffusers import UNet2DModel

    return UNet2DModel(**config)


@dataclass(frozen=True)
class ModelCard:
    """Everything needed to use, reproduce and judge a model.

    Attributes
    ----------
    guidance : str
        Guidance strategy it was trained with.
    guidance_params : dict
        Its parameters (``Guidance.params()``).
    condition_channels : int
        Extra input channels of the network.
    image_size : int
        Side of the square slices it works on.
    model_size : str
        ``tiny``, ``small`` or ``base``.
    unet : dict
        ``UNet2DModel`` configuration.
    noise_schedule : dict
        DDPM schedule (timesteps, betas, prediction type).
    percentiles : list of float
        Intensity percentiles used for normalisation (inside the filter mask).
    target_intensity : dict
        Typical ``low``/``high`` intensities of the target at those percentiles, used
        to write translations in target units.
    target_modality : str
    mask : dict
        Filter-mask parameters used on the training images.
    training : dict
        Data, steps (cumulative), batch size, learning rate, seed, wall time, hardware.
    segmenters : dict
        Segmenter name → fitted state (JSON).
    sampling : dict
        Sampling defaults measured for this model, used when the caller leaves them
        unset: ``cfg_scale`` (number 0–20, classifier-free guidance scale; only for
        models trained with condition dropout), ``steps`` (whole number 1–1000, the
        sampling steps a distilled model was taught for), ``refiner`` (a model folder
        beside this one or a bundled model's name) with ``refine_steps`` (whole number
        0–1000, the last steps it takes; :mod:`zeroshot_core.diffusion.refiner`) and
        ``note`` (how they were chosen). Empty: the library defaults (50 steps, no classifier-free guidance).
    """

    guidance: str
    guidance_params: dict[str, Any]
    condition_channels: int
    image_size: int
    model_size: str
    unet: dict[str, Any]
    noise_schedule: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_NOISE_SCHEDULE))
    percentiles: list[float] = field(default_factory=lambda: [0.5, 99.5])
    target_intensity: dict[str, float] = field(default_factory=lambda: {"low": 0.0, "high": 1.0})
    target_modality: str = "T1"
    mask: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    segmenters: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    format_version: int = FORMAT_VERSION
    sampling: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, kind in _CARD_TYPES.items():
            value = getattr(self, name)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ModelError(f"model card field {name!r} must be {_KIND_NAMES[kind]}, got {value!r:.60}")
        percentiles = self.percentiles
        if len(percentiles) != 2 or not all(_finite_number(v) for v in percentiles):
            raise ModelError(f"model card field 'percentiles' must be two numbers, got {percentiles!r:.60}")
        if not all(_finite_number(self.target_intensity.get(k)) for k in ("low", "high")):
            raise ModelError("model card field 'target_intensity' must hold numbers 'low' and 'high', got "
                             f"{self.target_intensity!r:.60}")
        if self.condition_channels < 0 or self.unet.get("in_channels") != 1 + self.condition_channels:
            raise ModelError("model card is inconsistent: unet in_channels must be 1 + condition_channels")
        if self.image_size <= 0:
            raise ModelError(f"model card image_size must be positive, got {self.image_size}")
        unknown = sorted(set(self.sampling) - {"cfg_scale", "steps", "note", "refiner", "refine_steps"})
        cfg = self.sampling.get("cfg_scale", 1.0)
        steps = self.sampling.get("steps", 1)  # absent: nothing to check
        refine = self.sampling.get("refine_steps", 0)
        refiner = self.sampling.get("refiner", "absent")
        if (unknown or not _finite_number(cfg) or not 0.0 <= cfg <= 20.0
                or isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 1000
                or isinstance(refine, bool) or not isinstance(refine, int) or not 0 <= refine <= 1000
                or not isinstance(refiner, str) or not refiner.strip()
                or not isinstance(self.sampling.get("note", ""), str)):
            raise ModelError("model card field 'sampling' may hold only a number 'cfg_scale' in 0..20, a whole "
                             "number 'steps' in 1..1000, a model name 'refiner', a whole number 'refine_steps' in "
                             f"0..1000 and a text 'note', got {self.sampling!r:.80}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelCard":
        """Build from a dict, ignoring unknown keys of newer versions.

        Raises
        ------
        ModelError
            If ``data`` is not a dict, required keys are missing, or a field has the
            wrong type.
        """
        if not isinstance(data, dict):
            raise ModelError(f"model card must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as exc:
            raise ModelError(f"model card is incomplete ({exc})") from None


_CARD_TYPES: dict[str, type] = {
    "guidance": str, "guidance_params": dict, "condition_channels": int, "image_size": int, "model_size": str,
    "unet": dict, "noise_schedule": dict, "percentiles": list, "target_intensity": dict, "target_modality": str,
    "mask": dict, "training": dict, "segmenters": dict, "notes": str, "format_version": int, "sampling": dict,
}
_KIND_NAMES = {str: "a string", dict: "a JSON object", int: "an integer", list: "a list"}


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON, atomically."""
    text = json.dumps(data, indent=2, sort_keys=False)
    atomic_write(Path(path), lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """Write tensors as safetensors, atomically."""
    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    atomic_write(Path(path), lambda tmp: save_file(cpu, str(tmp), metadata=metadata))


def save_model(directory: str | os.PathLike, unet: torch.nn.Module, card: ModelCard,
               dtype: torch.dtype = torch.float32) -> Path:
    """Write weights and card into ``directory`` (created if needed).

    Parameters
    ----------
    directory : path-like
        Model folder; ``model.safetensors`` and ``model.json`` in it are replaced
        (atomically) if present.
    unet : torch.nn.Module
        The score network (a ``diffusers.UNet2DModel`` built from ``card.unet``); its
        ``state_dict`` is stored on the CPU.
    card : ModelCard
        Metadata written as ``model.json``: network configuration, guidance, noise
        schedule, normalisation, mask and segmenter states needed to reload and use
        the weights.
    dtype : torch.dtype
        Storage type of floating-point weights (``torch.float16`` halves the size).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in unet.state_dict().items()}
    save_tensors(directory / WEIGHTS_FILE, state, {"format": "pt"})
    write_json(directory / CARD_FILE, card.to_dict())
    return directory


def read_card(directory: str | os.PathLike) -> ModelCard:
    """The model card of ``directory``.

    Raises
    ------
    ModelError
        If the folder is missing, not a model or the card is unreadable.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelError(f"{directory}: model folder not found; train one with 'zeroshot train' "
                         "or list bundled ones with 'zeroshot models'")
    card_path = directory / CARD_FILE
    if not card_path.is_file() or not (directory / WEIGHTS_FILE).is_file():
        raise ModelError(f"{directory}: not a model folder (needs {CARD_FILE} and {WEIGHTS_FILE})")
    try:
        data = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise ModelError(f"{card_path}: unreadable model card ({str(exc)[:160]})") from None
    if not isinstance(data, dict):
        raise ModelError(f"{card_path}: model card must be a JSON object")
    try:
        return ModelCard.from_dict(data)
    except ModelError as exc:
        raise ModelError(f"{card_path}: {exc}; retrain or restore the model folder") from None


def load_weights(directory: str | os.PathLike, card: ModelCard, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Build the network from the card and load its safetensors weights (eval mode, float32).

    Raises
    ------
    ModelError
        If the weights do not fit the configuration.
    """
    unet = build_unet(card.unet)
    try:
        state = load_file(str(Path(directory) / WEIGHTS_FILE), device="cpu")
        state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
        unet.load_state_dict(state, strict=True)
    except (RuntimeError, OSError, ValueError) as exc:
        raise ModelError(f"{directory}: weights do not match the model card ({str(exc).splitlines()[0][:160]})") from None
    return unet.to(device).eval()
