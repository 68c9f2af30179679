"""The contract every guidance strategy implements.

A strategy can steer sampling in four ways, any subset of which it may use:

1. **static channels** computed once from a clean image (``static_condition``), e.g.
   the Canny contour of ContourDiff. At training time from the clean *target* image,
   at sampling time from the masked *source* image.
2. **dynamic channels** recomputed at every step from the reference image and the
   current sample (``dynamic_condition``), e.g. LMI maps. At training time the
   reference is the clean target ``x0`` and the sample is its noised ``x_t``; at
   sampling time the reference is the source and the sample is ``x_t``.
3. a **correction** of the denoised estimate ``x0_hat`` at every step
   (``correct_x0``), e.g. a gradient step that raises the similarity to the source.
4. the **starting point** (``strength``): 1.0 starts from pure noise, ``t0 < 1``
   starts from the source noised to that fraction of the schedule (SDEdit).

The score network sees ``[x_t, static..., dynamic...]`` as its input channels, so a
model is tied to the strategy (and channel count) it was trained with.

All images are normalised to ``[-1, 1]``; the mask is ``True`` inside the object.
"""

from __future__ import annotations

from abc import ABC
from typing import Any, ClassVar

import numpy as np
import torch


class Guidance(ABC):
    """Base class of guidance strategies.

    Subclasses set :attr:`name`, the channel counts, and override the hooks they use.
    Parameters of a strategy are plain JSON values returned by :meth:`params`; they
    are recorded in the model card at training time and restored from it.

    Attributes
    ----------
    name : str
        Registry name.
    static_channels : int
        Number of channels returned by :meth:`static_condition`.
    dynamic_channels : int
        Number of channels returned by :meth:`dynamic_condition`.
    strength : float
        Fraction of the noise schedule that sampling starts from, in ``(0, 1]``.
    """

    name: ClassVar[str] = ""
    static_channels: int = 0
    dynamic_channels: int = 0
    strength: float = 1.0

    @property
    def condition_channels(self) -> int:
        """Number of extra input channels of the score network."""
        return self.static_channels + self.dynamic_channels

    def params(self) -> dict[str, Any]:
        """JSON-compatible parameters that rebuild this strategy with its factory."""
        return {}

    def sampling_params(self) -> frozenset[str]:
        """Names of parameters that may differ between training and sampling.

        Parameters not listed here must equal the values the model was trained with
        (they change what the network sees).
        """
        return frozenset({"strength"})

    def static_condition(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Channels computed once from a clean 2-D image.

        Parameters
        ----------
        image : ndarray, shape (H, W), float32 in [-1, 1]
            Normalised slice on the model grid, already set to -1 (background) outside
            ``mask``: a target slice in training, the masked source slice at sampling.
        mask : ndarray, shape (H, W), bool
            Filter mask of the slice, ``True`` on the object.

        Returns
        -------
        ndarray, shape (static_channels, H, W), float32
        """
        return np.zeros((0,) + image.shape, dtype=np.float32)

    def dynamic_condition(self, reference: torch.Tensor, sample: torch.Tensor) -> torch.Tensor:
        """Channels recomputed at every step.

        Parameters
        ----------
        reference : Tensor, shape (B, 1, H, W)
            Clean target ``x0`` (training) or the masked source (sampling).
        sample : Tensor, shape (B, 1, H, W)
            The current noisy sample ``x_t`` as the network sees it.

        Returns
        -------
        Tensor, shape (B, dynamic_channels, H, W)
        """
        return sample.new_zeros((sample.shape[0], 0) + tuple(sample.shape[2:]))

    def correct_x0(
        self, reference: torch.Tensor, x0_hat: torch.Tensor, mask: torch.Tensor, progress: float
    ) -> torch.Tensor:
        """Optionally move the denoised estimate towards the guide.

        Parameters
        ----------
        reference : Tensor, shape (B, 1, H, W)
            Masked source.
        x0_hat : Tensor, shape (B, 1, H, W)
            The network's current estimate of the clean image.
        mask : Tensor, shape (B, 1, H, W), float 0/1
            Filter mask of each slice, 1 on the object; a correction should act
            inside it only.
        progress : float
            Fraction of sampling done, 0 at the first step and close to 1 at the last.

        Returns
        -------
        Tensor, shape like ``x0_hat``. The default returns ``x0_hat`` unchanged.
        """
        return x0_hat

    @property
    def corrects_x0(self) -> bool:
        """Whether :meth:`correct_x0` is overridden (the sampler skips it otherwise)."""
        return type(self).correct_x0 is not Guidance.correct_x0

    def compatibility_error(self, trained_guidance: str, trained_params: dict[str, Any], trained_channels: int) -> str | None:
        """Why a model trained with another strategy cannot be used, or ``None``.

        The default demands the same strategy name, the same channel count, and equal
        values of every parameter not in :meth:`sampling_params`.
        """
        if trained_guidance != self.name:
            return (
                f"the model was trained with guidance {trained_guidance!r}, not {self.name!r}; "
                f"use --guidance {trained_guidance} or a model trained with {self.name!r}"
            )
        if trained_channels != self.condition_channels:
            return (
                f"the model expects {trained_channels} condition channel(s) but guidance "
                f"{self.name!r} gives {self.condition_channels}; retrain or use matching parameters"
            )
        mine = self.params()
        for key, value in trained_params.items():
            if key in self.sampling_params():
                continue
            if key in mine and mine[key] != value:
                return (
                    f"guidance parameter {key}={mine[key]!r} differs from the {value!r} the "
                    "model was trained with; leave it at the trained value"
                )
        return None
