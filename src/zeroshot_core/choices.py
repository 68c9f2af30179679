"""Names of devices, samplers and evaluation methods, without importing torch.

One table each, used by the CLI's argparse choices (so that building the parser
stays cheap), the options dataclasses' validation, the napari widget's drop-downs,
the scheduler factory (:func:`zeroshot_core.diffusion.schedulers.make_scheduler`)
and :func:`zeroshot_core.evaluation.evaluator.evaluate`.
"""

from __future__ import annotations

DEVICE_NAMES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")
"""``auto`` picks CUDA, then Apple MPS, then the CPU."""

AUTOCAST_NAMES: tuple[str, ...] = ("off", "bf16", "fp16", "auto")
"""Mixed precision of the score network at sampling: none, bfloat16 or float16 autocast, or
``auto`` (bfloat16 on a CPU with bfloat16 instructions, else none)
(:class:`zeroshot_core.model.acceleration.Acceleration`)."""

SCHEDULER_NAMES: dict[str, str] = {
    "ddim": "DDIM, deterministic (eta = 0)",
    "dpm": "DPM-Solver++ (2nd order multistep), deterministic",
    "ddpm": "ancestral DDPM, stochastic",
    "sde": "Euler-Maruyama on the variance-exploding reverse SDE (Euler ancestral), stochastic",
}
"""Sampler name → one-line description (diffusers schedulers)."""

DENOISE_METHODS: dict[str, str] = {
    "off": "the source as it is",
    "nlm": "non-local means, in-plane, noise estimated per slice",
    "auto": "nlm when the source is noisier than the model's training images, else off",
}
"""Denoising of a source before it guides (:mod:`zeroshot_core.imaging.denoise`)."""

DEFAULT_GUIDANCE = "lmi"
"""Guidance whose bundled model translates when neither a model nor a guidance is chosen: the
one that scores best on the whole-head validation (docs/benchmarks.md)."""

BASELINES: tuple[str, ...] = ("identity", "histmatch", "shape")
"""Classical evaluation methods that need no model."""

DEFAULT_METHODS: tuple[str, ...] = BASELINES + ("none", "contour", "lmi")
"""Methods :func:`zeroshot_core.evaluation.evaluator.evaluate` runs by default: the
baselines, then the built-in guidances."""

BUILTIN_GUIDANCES: tuple[str, ...] = ("contour", "lmi", "none")
"""Guidance strategies shipped with the package (plugins may add more); named in the
CLI's help without loading the plugin registry (which imports torch)."""

MODEL_SIZE_NAMES: tuple[str, ...] = ("tiny", "lite", "lite-deep", "small", "base")
"""UNet sizes of ``train --model-size`` (:data:`zeroshot_core.model.store.MODEL_SIZES` defines
them); named here so that the CLI offers them without importing torch."""

BUILTIN_SEGMENTERS: tuple[str, ...] = ("kmeans", "multiotsu")
"""Segmenters shipped with the package (plugins may add more)."""
