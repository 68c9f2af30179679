"""Speed-ups of the score network at sampling: autocast, channels-last, ``torch.compile``.

Three switches, each measured in ``docs/benchmarks.md``:

- **autocast** ``bf16`` or ``fp16``: the network runs under :func:`torch.autocast`, so
  convolutions and matrix products compute in 16-bit floats (tensor cores on CUDA).
  Its output is cast back to float32 before the scheduler step; the guidance channels
  (LMI maps, contours) and the scheduler stay in float32. ``fp16`` is for GPUs only;
  ``bf16`` also runs on CPUs (fast where the CPU has bfloat16 instructions). The default,
  ``auto``, is ``bf16`` on a CPU that has bfloat16 instructions (AVX512-BF16 or AMX-BF16:
  on such a CPU it translated a whole 2 mm head 1.3–1.7× faster at the same Dice) and off
  everywhere else (GPUs included: not measured there); :meth:`Acceleration.resolve` says
  which, and translations record it.
- **channels_last** (off by default): the network's weights and inputs use the NHWC
  memory layout, which cuDNN's tensor-core convolutions prefer.
- **compile** (off by default): the network goes through :func:`torch.compile`
  (TorchInductor): the first call of each batch shape compiles for tens of seconds, later
  calls run fused kernels.

The caller's network is never modified: :meth:`Acceleration.prepare` works on a copy,
kept for as long as the original lives and its weights are unchanged, so that a
second translation with the same model reuses it (and its compiled code).

Examples
--------
>>> Acceleration(autocast="off").enabled
False
>>> Acceleration().resolve("cuda").autocast
'off'
>>> Acceleration(autocast="bf16", channels_last=True).describe()
'autocast bf16, channels-last'
>>> Acceleration(autocast="fp32")
Traceback (most recent call last):
...
zeroshot_core.errors.ConfigError: unknown autocast 'fp32'; use off, bf16, fp16 or auto
"""

from __future__ import annotations

import copy
import functools
import weakref
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch

from zeroshot_core.choices import AUTOCAST_NAMES
from zeroshot_core.errors import ConfigError

_DTYPES: dict[str, torch.dtype | None] = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}
assert set(_DTYPES) | {"auto"} == set(AUTOCAST_NAMES)


@functools.cache
def cpu_has_bfloat16() -> bool:
    """Whether this CPU has bfloat16 instructions (AVX512-BF16 or AMX-BF16), as torch reports.

    Asked once per process (the answer cannot change), so resolving ``auto`` per network
    call costs nothing.

    Returns
    -------
    bool
        ``False`` where torch cannot tell (other architectures, older torch).
    """
    capabilities = getattr(torch.cpu, "get_capabilities", None)
    try:
        found = capabilities() if capabilities is not None else {}
    except RuntimeError:  # the probe failed on this build: assume none
        return False
    return bool(found.get("avx512_bf16") or found.get("amx_bf16"))


# original network -> {(channels_last, compile): (weights signature, prepared copy)}; the copies do
# not refer to their original, so an entry goes when the original is garbage-collected.
_PREPARED: weakref.WeakKeyDictionary[torch.nn.Module, dict[tuple[bool, bool], tuple[tuple, torch.nn.Module]]]
_PREPARED = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Acceleration:
    """How the score network runs, validated on construction.

    Attributes
    ----------
    autocast : {"auto", "off", "bf16", "fp16"}
        Mixed precision of the network's forward pass (:func:`torch.autocast`); the
        output is cast back to float32. ``fp16`` needs a GPU. ``auto`` (the default) is
        ``bf16`` on a CPU with bfloat16 instructions (:func:`cpu_has_bfloat16`) and
        ``off`` on every other device (:meth:`resolve`).
    channels_last : bool
        Weights and inputs of the network in the NHWC (channels-last) memory layout.
    compile : bool
        Run the network through :func:`torch.compile` (compiles on the first call of
        each batch shape).
    """

    autocast: str = "auto"
    channels_last: bool = False
    compile: bool = False

    def __post_init__(self) -> None:
        if self.autocast not in AUTOCAST_NAMES:
            raise ConfigError(f"unknown autocast {self.autocast!r}; use {', '.join(AUTOCAST_NAMES[:-1])} or "
                              f"{AUTOCAST_NAMES[-1]}")
        for name in ("channels_last", "compile"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ConfigError(f"acceleration {name} must be true or false, got {getattr(self, name)!r}")

    @property
    def enabled(self) -> bool:
        """Whether any switch is on (``auto`` counts as on: it may be)."""
        return self.autocast != "off" or bool(self.channels_last) or bool(self.compile)

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype, or ``None`` when autocast is off.

        Raises
        ------
        ConfigError
            For ``auto``, which depends on the device: :meth:`resolve` it first.
        """
        if self.autocast == "auto":
            raise ConfigError("autocast 'auto' has no dtype until it is resolved for a device")
        return _DTYPES[self.autocast]

    def resolve(self, device: torch.device | str) -> Acceleration:
        """This acceleration with ``auto`` replaced by what it means on ``device``.

        Parameters
        ----------
        device : torch.device or str
            The resolved compute device (not ``"auto"``).

        Returns
        -------
        Acceleration
            ``self`` unless autocast is ``auto``; then autocast ``bf16`` on a CPU with
            bfloat16 instructions, ``off`` otherwise.
        """
        if self.autocast != "auto":
            return self
        fast = torch.device(device).type == "cpu" and cpu_has_bfloat16()
        return replace(self, autocast="bf16" if fast else "off")

    def describe(self) -> str:
        """The switches that are on, in words (``"off"`` when none is).

        Returns
        -------
        str
            e.g. ``"autocast bf16, channels-last, compile"``.
        """
        parts = [f"autocast {self.autocast}"] if self.autocast != "off" else []
        parts += ["channels-last"] if self.channels_last else []
        parts += ["compile"] if self.compile else []
        return ", ".join(parts) or "off"

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible copy (``Acceleration(**to_dict())`` rebuilds it)."""
        return {key: (bool(value) if isinstance(value, np.bool_) else value) for key, value in asdict(self).items()}

    def check(self, device: torch.device | str) -> None:
        """Refuse switches that ``device`` cannot run, before any work.

        Parameters
        ----------
        device : torch.device or str
            The resolved compute device (not ``"auto"``).

        Raises
        ------
        ConfigError
            ``fp16`` on the CPU; ``bf16`` on a CUDA GPU without bfloat16 support;
            autocast on a device type that torch cannot autocast.
        """
        device = torch.device(device)
        if self.autocast in ("off", "auto"):  # auto only picks what the device runs
            return
        if self.autocast == "fp16" and device.type == "cpu":
            raise ConfigError("--autocast fp16 needs a GPU; on the CPU use --autocast bf16 (or off)")
        if self.autocast == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ConfigError("--autocast bf16: this GPU has no bfloat16 support; use --autocast fp16 (or off)")
        available = getattr(torch.amp, "is_autocast_available", lambda kind: kind in ("cpu", "cuda"))
        if not available(device.type):
            raise ConfigError(f"--autocast {self.autocast}: torch cannot autocast on {device.type}; use --autocast off")

    def prepare(self, unet: torch.nn.Module) -> torch.nn.Module:
        """The network to sample with: ``unet`` itself, or a channels-last and/or compiled copy.

        The copy is cached while ``unet`` lives and its weights are unchanged (same
        storage, no in-place update), so repeated translations with one model reuse
        it; it costs the memory of one more set of weights.

        Parameters
        ----------
        unet : torch.nn.Module
            The loaded score network (eval mode, on its device).

        Returns
        -------
        torch.nn.Module
            ``unet`` when neither ``channels_last`` nor ``compile`` is on.
        """
        if not (self.channels_last or self.compile):
            return unet
        key = (bool(self.channels_last), bool(self.compile))
        signature = tuple((t.data_ptr(), t._version) for t in (*unet.parameters(), *unet.buffers()))
        cached = _PREPARED.get(unet, {}).get(key)
        if cached is not None and cached[0] == signature:
            return cached[1]
        network = copy.deepcopy(unet)
        if self.channels_last:
            network = network.to(memory_format=torch.channels_last)
        if self.compile:
            network = torch.compile(network)
        _PREPARED.setdefault(unet, {})[key] = (signature, network)
        return network

    def autocast_context(self, device: torch.device | str) -> Any:
        """A context manager for the network's forward pass on ``device``.

        Parameters
        ----------
        device : torch.device or str
            Where the forward pass runs.

        Returns
        -------
        context manager
            :func:`torch.autocast` with :attr:`dtype` (``auto`` resolved for ``device``), or
            a no-op when autocast is off.
        """
        dtype = self.resolve(device).dtype
        if dtype is None:
            return nullcontext()
        return torch.autocast(torch.device(device).type, dtype=dtype)

    def forward(self, network: torch.nn.Module, sample: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        """One forward pass of a diffusers UNet, returning float32 in the standard layout.

        Parameters
        ----------
        network : torch.nn.Module
            From :meth:`prepare`; called as ``network(sample, timestep).sample``.
        sample : Tensor, shape (B, C, H, W), float32
            The network input (noisy image and condition channels).
        timestep : Tensor, shape (B,)
            The diffusion timestep of each sample.

        Returns
        -------
        Tensor, shape (B, out_channels, H, W), float32, contiguous
            With every switch off this is the network's output itself.

        Raises
        ------
        ConfigError
            When ``torch.compile`` fails to compile the network (e.g. no C compiler).
        """
        if self.channels_last:
            sample = sample.contiguous(memory_format=torch.channels_last)
        with self.autocast_context(sample.device):
            if not self.compile:
                output = network(sample, timestep).sample
            else:
                try:
                    output = network(sample, timestep).sample
                except torch._dynamo.exc.TorchDynamoException as exc:
                    cause = getattr(exc, "inner_exception", None) or exc  # the backend's own error
                    first = (str(cause).strip().splitlines() or [""])[0][:160]
                    raise ConfigError(f"--compile: torch.compile failed ({type(cause).__name__}: {first}); "
                                      "run without --compile") from None
        return output.float().contiguous()
