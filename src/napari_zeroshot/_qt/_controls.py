"""Control groups of the translation widget and their conversion to engine settings.

Each group owns a few magicgui widgets (exposed as attributes so tests and users
can set them) and turns their values into a frozen, validated engine object:
:class:`MaskControls` → :class:`~zeroshot_core.api.MaskParams`,
:class:`SamplingControls` → :class:`~zeroshot_core.api.TranslateOptions`.
"""

from __future__ import annotations

from typing import Callable

from magicgui.widgets import CheckBox, ComboBox, FloatSpinBox, Label, SpinBox, Widget

from zeroshot_core.api import (
    DEFAULT_STEPS,
    DENOISE_METHODS,
    DEVICE_NAMES,
    SCHEDULER_NAMES,
    ConsistencyParams,
    MaskParams,
    TranslateOptions,
)

#: Schedulers offered in the drop-down (the names ``TranslateOptions`` accepts).
SCHEDULERS = tuple(SCHEDULER_NAMES)
#: Devices offered in the drop-down.
DEVICES = tuple(DEVICE_NAMES)
#: Scope choices: translate the slice on screen or the whole volume.
SCOPE_SLICE = "current slice"
SCOPE_VOLUME = "whole volume"


def wrap(label: Label) -> Label:
    """Let a label's text wrap onto more lines instead of widening the dock."""
    from qtpy.QtWidgets import QSizePolicy

    label.native.setWordWrap(True)
    label.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    return label


def eta_text(elapsed: float, fraction: float) -> str:
    """``" · 1:05 left"`` from the seconds spent and the fraction done (``""`` before any progress).

    Examples
    --------
    >>> eta_text(30.0, 0.25)
    ' · 1:30 left'
    >>> eta_text(3.0, 0.0)
    ''
    """
    if fraction <= 0.0 or fraction >= 1.0:
        return ""
    left = int(round(elapsed * (1.0 - fraction) / fraction))
    return f" · {left // 60}:{left % 60:02d} left"


def heading(text: str) -> Label:
    """A bold section title (no label column)."""
    label = Label(value=text, label="")
    label.native.setStyleSheet("font-weight: bold; padding-top: 6px;")
    return label


class MaskControls:
    """Filter-mask parameters (multi-Otsu classes, erosion, small objects, holes).

    Attributes
    ----------
    enabled, classes, erosion_radius, min_object_size, hole_area, keep_largest : magicgui widgets
    """

    def __init__(self) -> None:
        defaults = MaskParams()
        self.enabled = CheckBox(value=defaults.enabled, text="filter background",
                                tooltip="Mask out air, table and coils before translating")
        self.classes = SpinBox(value=defaults.classes, min=2, max=5, label="Otsu classes",
                               tooltip="Multi-Otsu classes; voxels above the lowest threshold are kept")
        self.erosion_radius = SpinBox(value=defaults.erosion_radius, min=0, max=20, label="erosion radius",
                                      tooltip="Erode the foreground (voxels) to detach thin table/coil parts")
        self.min_object_size = SpinBox(value=defaults.min_object_size, min=0, max=10_000_000,
                                       label="min object size", tooltip="Drop components smaller than this (voxels)")
        self.hole_area = SpinBox(value=defaults.hole_area, min=0, max=10_000_000, label="hole area",
                                 tooltip="Fill holes smaller than this (voxels)")
        self.keep_largest = CheckBox(value=defaults.keep_largest, text="keep largest object",
                                     tooltip="Keep only the largest connected component (drops a table, "
                                             "a coil or the other arm)")

    @property
    def widgets(self) -> list[Widget]:
        """The widgets, in display order."""
        return [self.enabled, self.classes, self.erosion_radius, self.min_object_size, self.hole_area,
                self.keep_largest]

    @property
    def advanced(self) -> list[Widget]:
        """The widgets hidden until *advanced settings* is ticked."""
        return [self.classes, self.erosion_radius, self.min_object_size, self.hole_area, self.keep_largest]

    def restore(self) -> None:
        """Put every control back to the :class:`MaskParams` defaults."""
        defaults = MaskParams()
        self.enabled.value = defaults.enabled
        self.classes.value = defaults.classes
        self.erosion_radius.value = defaults.erosion_radius
        self.min_object_size.value = defaults.min_object_size
        self.hole_area.value = defaults.hole_area
        self.keep_largest.value = defaults.keep_largest

    def params(self) -> MaskParams:
        """Current values as :class:`MaskParams` (raises ``ConfigError`` when invalid)."""
        return MaskParams(enabled=self.enabled.value, classes=self.classes.value,
                          erosion_radius=self.erosion_radius.value,
                          min_object_size=self.min_object_size.value, hole_area=self.hole_area.value,
                          keep_largest=self.keep_largest.value)

    def set_values(self, params: MaskParams) -> None:
        """Show ``params`` (e.g. the chosen model's training mask) in the controls."""
        self.enabled.value, self.classes.value = params.enabled, params.classes
        self.erosion_radius.value, self.min_object_size.value = params.erosion_radius, params.min_object_size
        self.hole_area.value, self.keep_largest.value = params.hole_area, params.keep_largest

    def connect(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` whenever any value changes."""
        for widget in self.widgets:
            widget.changed.connect(lambda *_: callback())


class SamplingControls:
    """Sampler settings: steps, scheduler, seed, candidates, samples, CFG scale, refiner steps, source denoising,
    device and scope.

    Attributes
    ----------
    steps, scheduler, seed, candidates, samples, cfg_scale, refine_steps, denoise, device, scope : magicgui widgets
    """

    def __init__(self) -> None:
        defaults = TranslateOptions()
        self.steps = SpinBox(value=DEFAULT_STEPS, min=1, max=1000, label="steps",
                             tooltip="Sampling steps (fewer = faster, coarser). Set to the model's default when a "
                                     "model is chosen (25 for the bundled 2 mm models, else 50)")
        self.scheduler = ComboBox(value=defaults.scheduler, choices=SCHEDULERS, label="scheduler",
                                  tooltip="\n".join(f"{name}: {text}" for name, text in SCHEDULER_NAMES.items()))
        self.seed = SpinBox(value=defaults.seed, min=0, max=2**31 - 1, label="seed",
                            tooltip="Random seed of the sampling noise (same seed, same result)")
        self.candidates = SpinBox(value=1, min=1, max=64, label="candidates",
                                  tooltip="Samples per slice; >1 keeps the one most consistent with the "
                                          "previous slice (slower)")
        self.samples = SpinBox(value=defaults.samples, min=1, max=64, label="samples averaged",
                               tooltip="Draws averaged per slice: the mean of K samples is smoother and "
                                       "segments better (K times slower); not with candidates > 1")
        self.cfg_scale = FloatSpinBox(value=1.0, min=0.0, max=20.0, step=0.25, label="CFG scale",
                                      tooltip="Classifier-free guidance: >1 follows the source more closely, at "
                                              "twice the time; only for models trained with condition dropout "
                                              "(1 = off). Set to the model's measured default when a model is "
                                              "chosen (1.5 for the bundled lmi)")
        self.refine_steps = SpinBox(value=0, min=0, max=999, label="refiner steps", enabled=False,
                                    tooltip="Last sampling steps taken by the model's refiner, a larger model that "
                                            "settles the fine grey/white contrast (the bundled t1-lmi-lite is "
                                            "refined by t1-lmi in its last step). 0: no refiner. Set to the "
                                            "model's default when a model is chosen; off for models without one")
        self.denoise = ComboBox(value=defaults.denoise, choices=tuple(DENOISE_METHODS), label="denoise source",
                                tooltip="Remove the source's noise slice by slice (non-local means) before it "
                                        "guides; helps noisy sources such as PD-weighted MRI, costs clean ones "
                                        "(T2) a little detail.\n"
                                        + "\n".join(f"{name}: {text}" for name, text in DENOISE_METHODS.items()))
        self.device = ComboBox(value=defaults.device, choices=DEVICES, label="device",
                               tooltip="auto: CUDA, then Apple MPS, then the CPU (the device used is shown "
                                       "when the run ends)")
        self.scope = ComboBox(value=SCOPE_SLICE, choices=(SCOPE_SLICE, SCOPE_VOLUME), label="translate",
                              tooltip="Only the slice on screen (quick look) or every slice")

    @property
    def widgets(self) -> list[Widget]:
        """The widgets, in display order."""
        return [self.steps, self.scheduler, self.seed, self.candidates, self.samples, self.cfg_scale,
                self.refine_steps, self.denoise, self.device, self.scope]

    @property
    def advanced(self) -> list[Widget]:
        """The widgets hidden until *advanced settings* is ticked."""
        return [self.scheduler, self.seed, self.candidates, self.samples, self.cfg_scale, self.refine_steps,
                self.denoise, self.device]

    def restore(self, cfg_scale: float = 1.0, steps: int = DEFAULT_STEPS, refine_steps: int = 0) -> None:
        """Put every control back to the :class:`TranslateOptions` defaults (current slice).

        ``cfg_scale``, ``steps`` and ``refine_steps`` are the chosen model's defaults (its
        card's ``sampling.cfg_scale``, ``sampling.steps`` and ``sampling.refine_steps``).
        """
        defaults = TranslateOptions()
        self.steps.value = steps
        self.scheduler.value = defaults.scheduler
        self.seed.value = defaults.seed
        self.candidates.value = 1
        self.samples.value = defaults.samples
        self.cfg_scale.value = cfg_scale
        self.refine_steps.value = refine_steps
        self.denoise.value = defaults.denoise
        self.device.value = defaults.device
        self.scope.value = SCOPE_SLICE

    @property
    def current_slice_only(self) -> bool:
        """Whether only the slice on screen is translated."""
        return self.scope.value == SCOPE_SLICE

    def options(self, mask: MaskParams, slices: tuple[int, ...] | None = None,
                axis: int | None = None) -> TranslateOptions:
        """Current values as :class:`TranslateOptions`.

        Parameters
        ----------
        mask : MaskParams
            Foreground filter-mask settings (from the mask controls), passed on as
            ``TranslateOptions.mask``.
        slices : tuple of int, optional
            Slice indices along ``axis`` (``None``: all).
        axis : int, optional
            Volume axis the slices are taken along (``None``: from the affine).

        Raises
        ------
        zeroshot_core.errors.ConfigError
        """
        consistency = ConsistencyParams(candidates=self.candidates.value) if self.candidates.value > 1 else None
        return TranslateOptions(steps=self.steps.value, scheduler=self.scheduler.value, seed=self.seed.value,
                                device=self.device.value, mask=mask, consistency=consistency,
                                slices=slices, axis=axis, samples=self.samples.value,
                                cfg_scale=self.cfg_scale.value, denoise=self.denoise.value,
                                refine_steps=self.refine_steps.value if self.refine_steps.enabled else 0)
