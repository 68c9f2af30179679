"""The training speed switches: channels-last memory format, and ``torch.compile`` checked before use.

Both leave the maths alone; only float rounding may change. A compiler can break that
promise silently: on this project's development machine (torch 2.13.0+cpu, the default
inductor backend) the compiled UNet's forward pass matched the eager one to 1e-7, but
its backward pass returned zero gradients for 68 of the tiny UNet's 114 parameter
tensors, so training went on with most of the network frozen. Hence :func:`prepare`
runs one probe step (random inputs of the training shape, a fixed random projection of
the output) through the eager and the compiled UNet and uses the compiled one only when
their gradients agree (:data:`COMPILE_TOLERANCE`); otherwise ``--compile`` is refused in
one line.
"""

from __future__ import annotations

import torch

from zeroshot_core.errors import ConfigError

#: Largest accepted ``‖g_compiled − g_eager‖ / ‖g_eager‖`` over all parameters together,
#: in float32 and under bf16 autocast. Eager and compiled float32 gradients differ by
#: about 1e-6 relative (reassociated sums); a miscompiled backward differs by order 1.
COMPILE_TOLERANCE = {"float32": 1e-3, "bfloat16": 5e-2}


def _gradients(unet: torch.nn.Module, forward: torch.nn.Module, inputs: torch.Tensor, t: torch.Tensor,
               projection: torch.Tensor, autocast: bool) -> list[torch.Tensor]:
    unet.zero_grad(set_to_none=True)
    with torch.autocast(inputs.device.type, dtype=torch.bfloat16, enabled=autocast):
        output = forward(inputs, t).sample
    (output.float() * projection).sum().backward()
    grads = [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in unet.parameters()]
    unet.zero_grad(set_to_none=True)
    return grads


def compiled_gradient_error(unet: torch.nn.Module, compiled: torch.nn.Module, shape: tuple[int, int, int, int],
                            channels_last: bool = False, autocast: bool = False) -> float:
    """How far the compiled UNet's gradients are from the eager ones on one probe step.

    Parameters
    ----------
    unet : torch.nn.Module
        The ``diffusers.UNet2DModel`` (eager), on its device.
    compiled : torch.nn.Module
        ``torch.compile(unet)``; this call compiles it for ``shape`` (the graph
        training then reuses).
    shape : tuple of int
        ``(batch, channels, height, width)`` of the training inputs.
    channels_last : bool
        Give the inputs in ``torch.channels_last`` memory format, as training does.
    autocast : bool
        Run under bf16 autocast, as training on CUDA does.

    Returns
    -------
    float
        ``‖g_compiled − g_eager‖ / ‖g_eager‖`` over all parameter gradients (one norm
        over all of them). The parameters' gradients are cleared afterwards; nothing
        else changes.
    """
    device = next(unet.parameters()).device
    generator = torch.Generator().manual_seed(0)  # its own: the training generator is untouched
    inputs = torch.randn(shape, generator=generator).to(device)
    if channels_last:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    t = torch.randint(0, 1000, (shape[0],), generator=generator).to(device)
    projection = torch.randn((shape[0], unet.config.out_channels, *shape[2:]), generator=generator).to(device)
    eager = _gradients(unet, unet, inputs, t, projection, autocast)
    other = _gradients(unet, compiled, inputs, t, projection, autocast)
    difference = torch.sqrt(sum(((a.float() - b.float()) ** 2).sum() for a, b in zip(other, eager)))
    reference = torch.sqrt(sum((b.float() ** 2).sum() for b in eager))
    return float(difference / reference.clamp_min(1e-30))


def prepare(unet: torch.nn.Module, shape: tuple[int, int, int, int], channels_last: bool = False,
            compile: bool = False, autocast: bool = False) -> torch.nn.Module:
    """The UNet as training calls it: in channels-last format and compiled, if asked.

    Parameters
    ----------
    unet : torch.nn.Module
        The UNet on its device; converted in place for ``channels_last``. Its
        parameters stay the ones trained and saved.
    shape : tuple of int
        ``(batch, channels, height, width)`` of one process's training inputs.
    channels_last : bool
        Use ``torch.channels_last`` memory format for the weights (and, in the
        training loop, the inputs).
    compile : bool
        Return ``torch.compile(unet)``, after :func:`compiled_gradient_error` found
        its gradients within :data:`COMPILE_TOLERANCE` of the eager ones.
    autocast : bool
        Training runs under bf16 autocast (the probe does too).

    Returns
    -------
    torch.nn.Module
        ``unet`` itself, or its compiled form.

    Raises
    ------
    ConfigError
        ``--compile`` where the compiled gradients disagree with the eager ones, or
        where compiling fails.
    """
    if channels_last:
        unet.to(memory_format=torch.channels_last)
    if not compile:
        return unet
    unet.train()
    compiled = torch.compile(unet)
    try:
        error = compiled_gradient_error(unet, compiled, shape, channels_last, autocast)
    except Exception as exc:  # noqa: BLE001 - any compiler failure means: train without --compile
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ConfigError(f"--compile: torch.compile failed on this machine ({type(exc).__name__}: {first}); "
                          "train without --compile") from None
    tolerance = COMPILE_TOLERANCE["bfloat16" if autocast else "float32"]
    if not error <= tolerance:
        raise ConfigError(f"--compile: the compiled UNet's gradients differ from the eager ones by {error:.2g} "
                          f"(relative; allowed {tolerance:g}) with torch {torch.__version__} on this machine, so it "
                          "would train a different network; train without --compile")
    return compiled
