"""Multi-contrast brain phantom: spin-echo T1-, T2- and PD-weighted MRI from tissue maps.

Each tissue ``k`` (CSF, grey matter, white matter) has a relaxation time T1, a relaxation
time T2 and a relative proton density PD. A spin-echo sequence with repetition time TR and
echo time TE gives the steady-state signal

    S_k = PD_k · (1 − exp(−TR / T1_k)) · exp(−TE / T2_k),

and a voxel holding the tissue fractions ``p_k`` (partial volume) gives ``Σ_k p_k S_k``
(background contributes nothing). The image is then multiplied by an optional smooth
bias field (receive-coil sensitivity, the same for every contrast) and corrupted by
optional Rician noise (magnitude of a complex signal with Gaussian noise in both channels).

Tissue values (1.5 T)
---------------------
Defaults are the 1.5 T tissue parameters of the BrainWeb simulator [1]_ [2]_ [3]_
(T1 ms / T2 ms / PD): CSF 2569 / 329 / 1.00, GM 833 / 83 / 0.86, WM 500 / 70 / 0.77.

For comparison, Stanisz et al. [4]_ measured at 1.5 T: WM T1 884 ms / T2 72 ms and GM
T1 1124 ms / T2 95 ms; they give the same contrast ordering with a smaller GM–WM T1
contrast (pass them through :class:`TissueParams` to use them).

Sequences (defaults of :class:`PhantomParams`): T1-weighted TR/TE = 500/15 ms (short/short),
T2-weighted 6000/100 ms (long/long), PD-weighted 6000/15 ms (long/short). They give
WM > GM > CSF on T1w, CSF > GM > WM on T2w and PDw.

References
----------
.. [1] Cocosco CA, Kollokian V, Kwan RK-S, Evans AC. BrainWeb: online interface to a 3D MRI
   simulated brain database. NeuroImage 5(4):S425, 1997.
.. [2] Kwan RK-S, Evans AC, Pike GB. MRI simulation-based evaluation of image-processing and
   classification methods. IEEE Trans Med Imaging 18(11):1085–1097, 1999.
.. [3] Collins DL et al. Design and construction of a realistic digital brain phantom.
   IEEE Trans Med Imaging 17(3):463–468, 1998.
.. [4] Stanisz GJ et al. T1, T2 relaxation and magnetization transfer in tissue at 3T.
   Magn Reson Med 54(3):507–512, 2005 (includes 1.5 T values).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from zeroshot_core.errors import ConfigError, InputError
from zeroshot_core.samples.acquisition import bias_field, rician_noise

__all__ = ["TissueParams", "SequenceParams", "PhantomParams", "Phantom", "TISSUES", "MODALITIES", "LABELS",
           "signal", "simulate", "tissue_labels", "bias_field", "rician_noise", "make_phantom"]

TISSUES = ("csf", "gm", "wm")
"""Tissue map keys, in label order (label = index + 1)."""
LABELS = {0: "background", 1: "csf", 2: "gm", 3: "wm"}
"""Crisp label values of :func:`tissue_labels`."""
MODALITIES = ("t1", "t2", "pd")
"""Weightings :func:`simulate` produces."""


@dataclass(frozen=True)
class TissueParams:
    """MR properties of one tissue.

    Attributes
    ----------
    t1_ms, t2_ms : float
        Longitudinal and transverse relaxation times (ms, > 0).
    pd : float
        Relative proton density (0–1].

    Raises
    ------
    ConfigError
        If a value is out of range.
    """

    t1_ms: float
    t2_ms: float
    pd: float

    def __post_init__(self) -> None:
        if not (np.isfinite(self.t1_ms) and self.t1_ms > 0 and np.isfinite(self.t2_ms) and self.t2_ms > 0):
            raise ConfigError(f"tissue T1 and T2 must be positive (ms), got {self.t1_ms}, {self.t2_ms}")
        if not (np.isfinite(self.pd) and 0 < self.pd <= 1):
            raise ConfigError(f"tissue proton density must be in (0, 1], got {self.pd}")


@dataclass(frozen=True)
class SequenceParams:
    """Spin-echo timing.

    Attributes
    ----------
    tr_ms, te_ms : float
        Repetition and echo time (ms), ``0 < te_ms < tr_ms``.

    Raises
    ------
    ConfigError
        If ``te_ms`` is not positive or not shorter than ``tr_ms``.
    """

    tr_ms: float
    te_ms: float

    def __post_init__(self) -> None:
        if not (np.isfinite(self.tr_ms) and np.isfinite(self.te_ms) and 0 < self.te_ms < self.tr_ms):
            raise ConfigError(f"sequence needs 0 < TE < TR (ms), got TR={self.tr_ms}, TE={self.te_ms}")


@dataclass(frozen=True)
class PhantomParams:
    """Tissues, sequences and corruption of the phantom.

    Attributes
    ----------
    csf, gm, wm : TissueParams
        Defaults: BrainWeb 1.5 T values (module docstring).
    t1w, t2w, pdw : SequenceParams
        Sequence of each weighting (defaults 500/15, 6000/100, 6000/15 ms).
    noise : float
        Rician noise σ as a fraction of the brightest pure-tissue signal of the weighting
        (0 = none; BrainWeb's "3 %" is 0.03). At most 0.5.
    bias : float
        Peak-to-peak amplitude of the multiplicative bias field, e.g. 0.2 for about ±10 %
        (0 = none). Below 1.
    seed : int
        Seeds the bias field (shared by all weightings) and the noise (one stream per
        weighting). Same seed, same images.

    Raises
    ------
    ConfigError
        If a value is out of range.
    """

    csf: TissueParams = field(default_factory=lambda: TissueParams(2569.0, 329.0, 1.0))
    gm: TissueParams = field(default_factory=lambda: TissueParams(833.0, 83.0, 0.86))
    wm: TissueParams = field(default_factory=lambda: TissueParams(500.0, 70.0, 0.77))
    t1w: SequenceParams = field(default_factory=lambda: SequenceParams(500.0, 15.0))
    t2w: SequenceParams = field(default_factory=lambda: SequenceParams(6000.0, 100.0))
    pdw: SequenceParams = field(default_factory=lambda: SequenceParams(6000.0, 15.0))
    noise: float = 0.0
    bias: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name, kind in [(t, TissueParams) for t in TISSUES] + [(f"{m}w", SequenceParams) for m in MODALITIES]:
            if not isinstance(getattr(self, name), kind):
                raise ConfigError(f"phantom {name} must be a {kind.__name__}, got {type(getattr(self, name)).__name__}")
        if not (np.isfinite(self.noise) and 0 <= self.noise <= 0.5):
            raise ConfigError(f"phantom noise must be in [0, 0.5], got {self.noise}")
        if not (np.isfinite(self.bias) and 0 <= self.bias < 1):
            raise ConfigError(f"phantom bias must be in [0, 1), got {self.bias}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ConfigError(f"phantom seed must be a non-negative integer, got {self.seed!r}")

    def sequence(self, modality: str) -> SequenceParams:
        """Sequence of ``modality`` (``"t1"``, ``"t2"`` or ``"pd"``).

        Raises
        ------
        ConfigError
            Unknown modality.
        """
        return getattr(self, _check_modality(modality) + "w")


def _check_modality(modality: str) -> str:
    key = str(modality).lower()
    if key not in MODALITIES:
        raise ConfigError(f"unknown phantom modality {modality!r}; use one of {', '.join(MODALITIES)}")
    return key


def signal(tissue: TissueParams, sequence: SequenceParams) -> float:
    """Spin-echo signal ``PD (1 − exp(−TR/T1)) exp(−TE/T2)`` of a pure tissue.

    Examples
    --------
    >>> round(signal(TissueParams(1000.0, 100.0, 1.0), SequenceParams(1000.0, 100.0)), 4)
    0.2325
    """
    return float(tissue.pd * (1.0 - np.exp(-sequence.tr_ms / tissue.t1_ms)) * np.exp(-sequence.te_ms / tissue.t2_ms))


def _check_maps(tissue_maps: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    missing = [k for k in TISSUES if k not in tissue_maps]
    if missing:
        raise InputError(f"tissue maps lack {', '.join(missing)}; give probability maps for {', '.join(TISSUES)}")
    maps = {k: np.asarray(tissue_maps[k], dtype=np.float64) for k in TISSUES}
    shapes = {m.shape for m in maps.values()}
    if len(shapes) != 1:
        raise InputError(f"tissue maps differ in shape {sorted(shapes)}; put them on one grid")
    shape = shapes.pop()
    if len(shape) not in (2, 3):
        raise InputError(f"tissue maps must be 2-D or 3-D, got shape {shape}")
    for k, m in maps.items():
        if not np.isfinite(m).all() or m.min() < -1e-6 or m.max() > 1 + 1e-6:
            raise InputError(f"tissue map {k} must hold probabilities in [0, 1]")
    total = sum(maps.values())
    if total.max() > 1 + 1e-3:
        raise InputError(f"tissue probabilities sum to {total.max():.3f} > 1 somewhere; normalise the maps")
    return {k: np.clip(m, 0.0, 1.0) for k, m in maps.items()}


def tissue_labels(tissue_maps: Mapping[str, np.ndarray]) -> np.ndarray:
    """Crisp labels: the most probable class (0 background, 1 CSF, 2 GM, 3 WM).

    The background probability is ``1 − Σ p_k``; ties go to the lower label.

    Raises
    ------
    InputError
        Missing, mis-shaped or invalid maps.

    Examples
    --------
    >>> import numpy as np
    >>> maps = {"csf": np.array([0.1, 0.6]), "gm": np.array([0.1, 0.3]), "wm": np.array([0.1, 0.1])}
    >>> tissue_labels({k: v[None] for k, v in maps.items()}).tolist()
    [[0, 1]]
    """
    maps = _check_maps(tissue_maps)
    stack = np.stack([1.0 - sum(maps.values())] + [maps[k] for k in TISSUES])
    return np.argmax(stack, axis=0).astype(np.uint8)


def simulate(tissue_maps: Mapping[str, np.ndarray], modality: str, params: PhantomParams | None = None) -> np.ndarray:
    """Spin-echo image of one weighting from tissue probability maps.

    Parameters
    ----------
    tissue_maps : mapping of str to ndarray
        ``"csf"``, ``"gm"``, ``"wm"`` probability maps (2-D or 3-D, same shape, values in
        [0, 1], summing to at most 1; the rest is background).
    modality : {"t1", "t2", "pd"}
        Weighting to simulate (case-insensitive); picks the TR/TE of ``params``.
    params : PhantomParams, optional
        Tissue relaxation times, sequences, noise, bias field and seed; ``None`` uses
        ``PhantomParams()`` (BrainWeb 1.5 T values, no noise, no bias).

    Returns
    -------
    ndarray of float32
        Signal in units of the fully relaxed CSF-like signal (PD = 1 → about 1).

    Raises
    ------
    ConfigError
        Unknown modality.
    InputError
        Missing, mis-shaped or invalid maps.

    Examples
    --------
    >>> import numpy as np
    >>> t1w = simulate({"csf": np.eye(3)[:1], "gm": np.eye(3)[1:2], "wm": np.eye(3)[2:]}, "t1")
    >>> bool(t1w[0, 2] > t1w[0, 1] > t1w[0, 0])
    True
    """
    params = params or PhantomParams()
    modality = _check_modality(modality)
    maps = _check_maps(tissue_maps)
    sequence = params.sequence(modality)
    levels = {k: signal(getattr(params, k), sequence) for k in TISSUES}
    image = sum(maps[k] * levels[k] for k in TISSUES)
    image = image * bias_field(image.shape, params.bias, params.seed)
    if params.noise > 0:
        rng = np.random.default_rng([int(params.seed), MODALITIES.index(modality)])
        return rician_noise(image, params.noise * max(levels.values()), rng)
    return np.asarray(image, np.float32)


@dataclass(frozen=True, eq=False)
class Phantom:
    """Paired T1-, T2- and PD-weighted images and crisp labels on one grid.

    Attributes
    ----------
    t1, t2, pd : ndarray of float32
    labels : ndarray of uint8
        0 background, 1 CSF, 2 GM, 3 WM (:data:`LABELS`).
    affine : ndarray (4, 4)
        Voxel → world (mm).

    Raises
    ------
    InputError
        If the arrays differ in shape or the affine is not 4×4.
    """

    t1: np.ndarray
    t2: np.ndarray
    pd: np.ndarray
    labels: np.ndarray
    affine: np.ndarray = field(default_factory=lambda: np.eye(4))

    def __post_init__(self) -> None:
        shapes = {np.shape(a) for a in (self.t1, self.t2, self.pd, self.labels)}
        if len(shapes) != 1:
            raise InputError(f"phantom images differ in shape {sorted(shapes)}")
        if np.shape(self.affine) != (4, 4):
            raise InputError(f"phantom affine must be 4x4, got {np.shape(self.affine)}")

    def image(self, modality: str) -> np.ndarray:
        """The image of ``modality`` (``"t1"``, ``"t2"``, ``"pd"``)."""
        return getattr(self, _check_modality(modality))


def make_phantom(tissue_maps: Mapping[str, np.ndarray], params: PhantomParams | None = None,
                 affine: np.ndarray | None = None) -> Phantom:
    """T1-, T2- and PD-weighted images and labels of one set of tissue maps.

    Parameters
    ----------
    tissue_maps : mapping of str to ndarray
        See :func:`simulate`.
    params : PhantomParams, optional
        Tissues, sequences, noise, bias field and seed shared by the three weightings;
        ``None`` uses ``PhantomParams()``.
    affine : ndarray (4, 4), optional
        Default identity.

    Returns
    -------
    Phantom

    Raises
    ------
    ConfigError, InputError
        As :func:`simulate`.

    Examples
    --------
    >>> import numpy as np
    >>> p = make_phantom({"csf": np.zeros((8, 8)), "gm": np.zeros((8, 8)), "wm": np.eye(8)})
    >>> p.t1.shape, int(p.labels.max())
    ((8, 8), 3)
    """
    params = params or PhantomParams()
    images = {m: simulate(tissue_maps, m, params) for m in MODALITIES}
    return Phantom(images["t1"], images["t2"], images["pd"], tissue_labels(tissue_maps),
                   np.eye(4) if affine is None else np.asarray(affine, float))
