"""Whole-head PD- and T2-weighted images simulated from a real T1 and its label map.

A validation pair needs the same anatomy in the source and the target modality. Real
T1 heads come with automatic anatomical labels (DLMUSE, the MUSE ROI ids); from them this
module builds tissue fraction maps and simulates other weightings with the spin-echo
signal equation of :mod:`zeroshot_core.samples.phantom`:

- brain: CSF, grey matter and white matter from the label map (:func:`dlmuse_tissue_labels`),
  softened by a Gaussian of ``partial_volume`` voxels so that boundaries hold mixtures;
- outside the brain but inside the head (:func:`zeroshot_core.imaging.head_mask.head_mask`):
  fat, muscle/skin, bone and CSF from the T1 intensity relative to the subject's white
  matter (``r = T1 / median(T1 in WM)``): bright voxels (``r`` above ≈ 1) are fat
  (scalp, marrow, orbit), intermediate ones muscle and skin, dark ones bone or CSF — dark
  voxels within ``csf_margin_mm`` of the brain are taken as extracerebral CSF, farther
  ones as bone;
- air outside the head: no signal.

Then a smooth multiplicative bias field and Rician noise are applied
(:mod:`zeroshot_core.samples.acquisition`). Brain tissue values are those of the phantom
(BrainWeb 1.5 T); fat 350/70 ms, PD 1.0 and muscle/skin 900/47 ms, PD 1.0 follow the
BrainWeb simulator's tissue table [1]_; cortical bone has a T2 of well under a millisecond
and a low proton density, so it is dark on every spin-echo weighting [2]_ (modelled as
T1 300 ms, T2 1 ms, PD 0.05).

References
----------
.. [1] Kwan RK-S, Evans AC, Pike GB. MRI simulation-based evaluation of image-processing and
   classification methods. IEEE Trans Med Imaging 18(11):1085–1097, 1999.
.. [2] Du J, Bydder GM. Qualitative and quantitative ultrashort-TE MRI of cortical bone.
   NMR Biomed 26(5):489–506, 2013.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from zeroshot_core.errors import ConfigError, InputError
from zeroshot_core.samples.acquisition import bias_field, rician_noise
from zeroshot_core.samples.phantom import MODALITIES, PhantomParams, TissueParams, signal

DLMUSE_CSF: frozenset[int] = frozenset({1, 4, 11, 49, 50, 51, 52})
"""MUSE ROI ids of CSF: extracerebral/sulcal CSF (1), third and fourth ventricles (4, 11),
inferior lateral and lateral ventricles (49–52)."""

DLMUSE_WM: frozenset[int] = frozenset({35, 40, 41, 61, 62, 69, *range(81, 96)})
"""MUSE ROI ids of white matter: brain stem (35), cerebellar white matter (40, 41), ventral
diencephalon (61, 62), optic chiasm (69) and the cerebral white-matter regions, fornix,
internal capsule and corpus callosum (81–95). Every other positive id is grey matter."""

HEAD_TISSUES = ("csf", "gm", "wm", "fat", "muscle", "bone")
"""Keys of :func:`head_tissue_maps`."""


@dataclass(frozen=True)
class HeadSimulationParams:
    """Tissues, sequences and corruption of a simulated head.

    Attributes
    ----------
    brain : PhantomParams
        CSF, GM and WM tissue values, the three sequences, noise (fraction of the brightest
        brain-tissue signal), bias amplitude and seed (see :class:`PhantomParams`).
    fat, muscle, bone : TissueParams
        Non-brain tissues (module docstring).
    partial_volume : float
        Gaussian σ in voxels softening the brain tissue maps (0: crisp).
    csf_margin_mm : float
        Dark non-brain voxels closer than this to the brain are CSF, the rest bone.

    Raises
    ------
    ConfigError
        If a value is out of range.
    """

    brain: PhantomParams = field(default_factory=lambda: PhantomParams(noise=0.03, bias=0.2, seed=0))
    fat: TissueParams = field(default_factory=lambda: TissueParams(350.0, 70.0, 1.0))
    muscle: TissueParams = field(default_factory=lambda: TissueParams(900.0, 47.0, 1.0))
    bone: TissueParams = field(default_factory=lambda: TissueParams(300.0, 1.0, 0.05))
    partial_volume: float = 0.6
    csf_margin_mm: float = 4.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.partial_volume) and 0 <= self.partial_volume <= 3):
            raise ConfigError(f"partial volume sigma must be in [0, 3] voxels, got {self.partial_volume}")
        if not (np.isfinite(self.csf_margin_mm) and self.csf_margin_mm >= 0):
            raise ConfigError(f"CSF margin must be >= 0 mm, got {self.csf_margin_mm}")

    def tissue(self, name: str) -> TissueParams:
        """Tissue values of one of :data:`HEAD_TISSUES`."""
        return getattr(self.brain if name in ("csf", "gm", "wm") else self, name)


def dlmuse_tissue_labels(labels: np.ndarray) -> np.ndarray:
    """CSF/GM/WM labels from a DLMUSE (MUSE ROI) label map.

    Parameters
    ----------
    labels : ndarray of int, any shape
        MUSE ROI ids, 0 outside the brain.

    Returns
    -------
    ndarray of uint8, same shape
        0 background, 1 CSF (:data:`DLMUSE_CSF`), 2 GM (other ids), 3 WM (:data:`DLMUSE_WM`).

    Examples
    --------
    >>> dlmuse_tissue_labels(np.array([0, 51, 100, 81])).tolist()
    [0, 1, 2, 3]
    """
    labels = np.asarray(labels)
    out = np.where(labels > 0, 2, 0).astype(np.uint8)
    out[np.isin(labels, sorted(DLMUSE_CSF))] = 1
    out[np.isin(labels, sorted(DLMUSE_WM))] = 3
    return out


def head_tissue_maps(t1: np.ndarray, tissue_labels: np.ndarray, head: np.ndarray,
                     spacing: tuple[float, float, float], params: HeadSimulationParams | None = None
                     ) -> dict[str, np.ndarray]:
    """Tissue fraction maps of a whole head.

    Parameters
    ----------
    t1 : ndarray, shape (X, Y, Z)
        The real T1-weighted image (any intensity units).
    tissue_labels : ndarray, shape (X, Y, Z)
        0 outside the brain, 1 CSF, 2 GM, 3 WM (:func:`dlmuse_tissue_labels`).
    head : ndarray of bool, shape (X, Y, Z)
        The head (air outside is False).
    spacing : (float, float, float)
        Voxel size in mm along each axis.
    params : HeadSimulationParams, optional

    Returns
    -------
    dict of str to ndarray of float32
        One map per :data:`HEAD_TISSUES`, fractions in [0, 1] summing to 1 in the head
        and 0 in the air.

    Raises
    ------
    InputError
        If the shapes differ or the labels hold no white matter.
    """
    params = params or HeadSimulationParams()
    t1 = np.asarray(t1, np.float32)
    labels = np.asarray(tissue_labels)
    head = np.asarray(head, bool) | (labels > 0)
    if t1.shape != labels.shape or t1.shape != head.shape:
        raise InputError(f"T1 {t1.shape}, labels {labels.shape} and head mask {head.shape} must have one shape")
    if not (labels == 3).any():
        raise InputError("the label map holds no white matter; give a DLMUSE/MUSE map of the same subject")
    brain = labels > 0
    maps: dict[str, np.ndarray] = {}
    for key, value in (("csf", 1), ("gm", 2), ("wm", 3)):
        crisp = (labels == value).astype(np.float32)
        maps[key] = ndi.gaussian_filter(crisp, params.partial_volume) if params.partial_volume else crisp
    brain_total = maps["csf"] + maps["gm"] + maps["wm"]
    # Inside the brain the three fractions sum to 1; the blurred rim spills into the head.
    rim = np.where(brain, 1.0, np.clip(brain_total, 0.0, 1.0))
    scale = np.divide(rim, brain_total, out=np.zeros_like(brain_total), where=brain_total > 0)
    for key in ("csf", "gm", "wm"):
        maps[key] = np.where(head, maps[key] * scale, 0.0).astype(np.float32)
    rest = np.where(head, 1.0 - rim, 0.0).astype(np.float32)

    ratio = t1 / float(np.median(t1[labels == 3]))
    fat = np.clip((ratio - 0.85) / 0.3, 0.0, 1.0)
    dark = np.clip((0.45 - ratio) / 0.2, 0.0, 1.0)
    muscle = np.clip(1.0 - fat - dark, 0.0, 1.0)
    distance = ndi.distance_transform_edt(~brain, sampling=spacing)
    near = (distance <= params.csf_margin_mm).astype(np.float32)
    maps["fat"] = (rest * fat).astype(np.float32)
    maps["muscle"] = (rest * muscle).astype(np.float32)
    maps["csf"] = (maps["csf"] + rest * dark * near).astype(np.float32)
    maps["bone"] = (rest * dark * (1.0 - near)).astype(np.float32)
    return maps


def simulate_head(maps: dict[str, np.ndarray], modality: str, params: HeadSimulationParams | None = None
                  ) -> np.ndarray:
    """A spin-echo image of one weighting from :func:`head_tissue_maps`.

    Parameters
    ----------
    maps : dict of str to ndarray
        Fractions of :data:`HEAD_TISSUES`, one shape.
    modality : {"t1", "t2", "pd"}
        Weighting; picks the sequence of ``params.brain``.
    params : HeadSimulationParams, optional

    Returns
    -------
    ndarray of float32, the maps' shape
        Signal in arbitrary units (pure CSF on PD ≈ 1), with bias field and Rician noise
        (σ = ``params.brain.noise`` × the brightest brain-tissue signal).

    Raises
    ------
    ConfigError
        Unknown modality.
    InputError
        If a tissue map is missing.
    """
    params = params or HeadSimulationParams()
    missing = [key for key in HEAD_TISSUES if key not in maps]
    if missing:
        raise InputError(f"tissue maps lack {', '.join(missing)}")
    sequence = params.brain.sequence(modality)
    levels = {key: signal(params.tissue(key), sequence) for key in HEAD_TISSUES}
    image = sum(np.asarray(maps[key], np.float64) * levels[key] for key in HEAD_TISSUES)
    image = image * bias_field(image.shape, params.brain.bias, params.brain.seed)
    brightest = max(levels[key] for key in ("csf", "gm", "wm"))
    rng = np.random.default_rng([int(params.brain.seed), 101, MODALITIES.index(modality.lower())])
    return rician_noise(image, params.brain.noise * brightest, rng)
