"""``lmi`` guidance: local mutual information (LMIDiffusion, Wang et al.).

Two ways of steering a target-only diffusion model with the source image ``G``,
usable alone or together:

- **channels** (the paper's variant, default): the score network sees two dynamic
  channels ``[LMI(ref, x_t), LMI(ref, ref)]`` — during training ``ref`` is the clean
  target ``x0`` and ``x_t`` its noised version, at sampling time ``ref`` is the source
  ``G`` and ``x_t`` the current sample. Since LMI is (nearly) invariant to how
  intensities map between modalities, the target model learns to read structure, not
  intensity, from the channels. Sampling starts from pure noise (``strength=1``).
- **gradient** (``gradient_scale > 0``): every denoised estimate ``x0_hat`` takes a
  gradient-ascent step on the mean masked ``LMI(G, x0_hat)``. This also works with a
  model trained without LMI channels (``channels=False``, e.g. a model trained with
  guidance ``none``); then sampling starts SDEdit-like from the noised source
  (``strength=0.5``).

The maps are scaled to ``[-1, 1]`` by the entropy bound ``log(bins)`` (or 1 for the
normalised MI) unless ``scale_channels=False``, so the network sees the same range as
its image channel.

Examples
--------
>>> import torch
>>> guidance = LMIGuidance(bins=8)
>>> guidance.condition_channels
2
>>> ref = torch.rand(1, 1, 16, 16) * 2 - 1
>>> guidance.dynamic_condition(ref, torch.randn(1, 1, 16, 16)).shape
torch.Size([1, 2, 16, 16])
>>> LMIGuidance(channels=False, gradient_scale=0.05).strength
0.5
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from zeroshot_core.errors import ConfigError
from zeroshot_core.guidance.base import Guidance
from zeroshot_core.lmi.dispatch import LMIParams, local_mutual_information
from zeroshot_core.plugins.hookspecs import hookimpl

_LMI_OPTIONS = ("patch_size", "search_radius", "bins", "bandwidth", "normalized", "padding")


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"lmi {name} must be true or false, got {value!r}")
    return bool(value)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"lmi {name} must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ConfigError(f"lmi {name} must be finite, got {value}")
    return float(value)


class LMIGuidance(Guidance):
    """Local-mutual-information guidance.

    Parameters
    ----------
    channels : bool
        Feed ``[LMI(ref, x_t), LMI(ref, ref)]`` to the score network (2 dynamic
        channels). ``False`` gives 0 channels, for models trained without them.
    gradient_scale : float
        Size of the gradient-ascent step on the mean masked ``LMI(source, x0_hat)``
        applied to every denoised estimate, as the RMS intensity change inside the
        mask (images span ``[-1, 1]``), in ``[0, 1]``; 0 switches the step off.
        Required (> 0) when ``channels`` is ``False``.
    strength : float, optional
        Fraction of the noise schedule sampling starts from, in ``(0, 1]``; default
        1.0 with channels (pure noise), 0.5 without (SDEdit-like start).
    patch_size, search_radius, bins, bandwidth, normalized, padding
        Options of :func:`zeroshot_core.lmi.dispatch.local_mutual_information`.
    scale_channels : bool
        Map the channels from ``[0, bound]`` to ``[-1, 1]`` with the entropy bound
        ``log(bins)`` (1 for normalised MI).

    Raises
    ------
    ConfigError
        If a value is out of range or has the wrong type, or if both ``channels`` is
        ``False`` and ``gradient_scale`` is 0 (that is plain SDEdit: use ``none``).
    """

    name = "lmi"
    static_channels = 0

    def __init__(
        self,
        channels: bool = True,
        gradient_scale: float = 0.0,
        strength: float | None = None,
        patch_size: int = 3,
        search_radius: int = 1,
        bins: int = 16,
        bandwidth: float | None = None,
        normalized: bool = False,
        padding: str = "reflect",
        scale_channels: bool = True,
    ) -> None:
        self.channels = _flag("channels", channels)
        self.scale_channels = _flag("scale_channels", scale_channels)
        self.gradient_scale = _number("gradient_scale", gradient_scale)
        if not 0.0 <= self.gradient_scale <= 1.0:
            raise ConfigError(f"lmi gradient_scale must be in [0, 1], got {self.gradient_scale}")
        if not self.channels and self.gradient_scale == 0.0:
            raise ConfigError("lmi with channels=false needs gradient_scale > 0 (e.g. 0.05); "
                              "for plain SDEdit use guidance 'none'")
        if strength is None:
            strength = 1.0 if self.channels else 0.5
        self.strength = _number("strength", strength)
        if not 0.0 < self.strength <= 1.0:
            raise ConfigError(f"lmi strength must be in (0, 1], got {self.strength}")
        self.lmi = LMIParams(patch_size=patch_size, search_radius=search_radius, bins=bins,
                             bandwidth=None if bandwidth is None else _number("bandwidth", bandwidth),
                             normalized=normalized, padding=padding)
        self.dynamic_channels = 2 if self.channels else 0
        self._self_cache: tuple[torch.Tensor, int, torch.Tensor] | None = None

    def __repr__(self) -> str:
        inner = ", ".join(f"{key}={value!r}" for key, value in self.params().items())
        return f"{type(self).__name__}({inner})"

    # ----------------------------------------------------------------- parameters
    def params(self) -> dict[str, Any]:
        """JSON-compatible parameters; ``LMIGuidance(**params())`` rebuilds this strategy."""
        lmi = {key: value.item() if isinstance(value, np.generic) else value
               for key, value in self.lmi.to_dict().items()}
        if lmi["bandwidth"] is not None:
            lmi["bandwidth"] = float(lmi["bandwidth"])
        return {"channels": self.channels, "gradient_scale": self.gradient_scale, "strength": self.strength,
                **{key: lmi[key] for key in _LMI_OPTIONS}, "scale_channels": self.scale_channels}

    def sampling_params(self) -> frozenset[str]:
        """``strength`` and ``gradient_scale``; without channels also the LMI options.

        With ``channels=False`` the network never saw an LMI map, so the LMI options
        only shape the gradient step and may be chosen freely at sampling time.
        """
        names = {"strength", "gradient_scale"}
        if not self.channels:
            names.update(_LMI_OPTIONS)
            names.add("scale_channels")
        return frozenset(names)

    def compatibility_error(self, trained_guidance: str, trained_params: dict[str, Any],
                            trained_channels: int) -> str | None:
        """Why a model cannot be used with this strategy, or ``None``.

        With channels, the model must have been trained with ``lmi`` channels and the
        same LMI options. Without channels, any model without condition channels
        (trained with ``none``, or ``lmi`` with ``channels=false``) is accepted.
        """
        if self.channels:
            if trained_channels == 0:
                return (f"the model was trained with guidance {trained_guidance!r} and has no condition "
                        "channels, but lmi with channels=true needs a model trained with 'lmi'; use such a "
                        "model, or lmi with channels=false and gradient_scale > 0 (e.g. 0.05)")
            return super().compatibility_error(trained_guidance, trained_params, trained_channels)
        if trained_channels != 0:
            return (f"the model expects {trained_channels} condition channel(s) (trained with guidance "
                    f"{trained_guidance!r}) but lmi with channels=false gives none; "
                    "use a model trained with guidance 'none', or channels=true with an lmi model")
        return None

    # ------------------------------------------------------------------ channels
    def _map(self, reference: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        values = local_mutual_information(reference, sample, **self.lmi.to_dict())
        if self.scale_channels:
            values = (values * (2.0 / self.lmi.upper_bound) - 1.0).clamp(-1.0, 1.0)
        return values

    def _self_map(self, reference: torch.Tensor) -> torch.Tensor:
        """``LMI(ref, ref)``, cached while the same, unmodified reference tensor comes back."""
        try:
            version = reference._version
        except RuntimeError:  # inference tensors have no version counter: do not cache
            return self._map(reference, reference)
        cached = self._self_cache
        if cached is not None and cached[0] is reference and cached[1] == version:
            return cached[2]
        values = self._map(reference, reference)
        self._self_cache = (reference, version, values)
        return values

    def dynamic_condition(self, reference: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        """``[LMI(reference, sample), LMI(reference, reference)]``, scaled to ``[-1, 1]``.

        Parameters
        ----------
        reference : Tensor, shape (B, 1, H, W)
            Clean target ``x0`` (training) or the masked source ``G`` (sampling).
        sample : Tensor, shape (B, 1, H, W)
            The noisy sample ``x_t`` as the network sees it.

        Returns
        -------
        Tensor, shape (B, dynamic_channels, H, W), dtype and device of ``sample``
        """
        if not self.channels:
            return super().dynamic_condition(reference, sample)
        if reference.device != sample.device:
            reference = reference.to(sample.device)
        with torch.no_grad():
            cross = self._map(reference, sample)
            same = self._self_map(reference)
        return torch.cat([cross, same], dim=1).to(sample.dtype)

    # ---------------------------------------------------------------- correction
    @property
    def corrects_x0(self) -> bool:
        """True when ``gradient_scale > 0``."""
        return self.gradient_scale > 0.0

    def correct_x0(self, reference: torch.Tensor, x0_hat: torch.Tensor, mask: torch.Tensor,
                   progress: float) -> torch.Tensor:
        """One gradient-ascent step on the mean masked ``LMI(reference, x0_hat)``.

        The gradient is restricted to the mask and rescaled per image so that its RMS
        over the mask equals ``gradient_scale``; the result is clipped to ``[-1, 1]``.
        Pixels outside the mask are returned unchanged. Parameters and result as in
        :meth:`Guidance.correct_x0 <zeroshot_core.guidance.base.Guidance.correct_x0>`;
        ``progress`` is unused (the step size is constant).
        """
        if not self.corrects_x0:
            return x0_hat
        with torch.inference_mode(False), torch.enable_grad():
            ref = reference.detach().clone().to(device=x0_hat.device, dtype=torch.float32)
            weight = mask.detach().clone().to(device=x0_hat.device, dtype=torch.float32)
            x = x0_hat.detach().clone().to(torch.float32).requires_grad_(True)
            lmi = local_mutual_information(ref, x, **self.lmi.to_dict())
            area = weight.sum(dim=(1, 2, 3)).clamp_min(1.0)
            objective = ((lmi * weight).sum(dim=(1, 2, 3)) / area).sum()
            (grad,) = torch.autograd.grad(objective, x)
        grad = grad * weight
        rms = (grad.square().sum(dim=(1, 2, 3), keepdim=True) / area.view(-1, 1, 1, 1)).sqrt()
        step = grad * (self.gradient_scale / rms.clamp_min(1e-12))
        corrected = (x.detach() + step).clamp(-1.0, 1.0)
        return torch.where(weight > 0, corrected, x.detach()).to(x0_hat.dtype)


@hookimpl
def zeroshot_register_guidance(register) -> None:
    """Register :class:`LMIGuidance` as ``lmi``."""
    register("lmi", LMIGuidance)
