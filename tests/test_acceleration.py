"""The sampling speed-ups (autocast, channels-last, torch.compile) on the CPU.

Their CUDA counterparts are in ``test_acceleration_cuda.py`` (marker ``cuda``).
Differences between translations are in normalised units: the target intensity
range mapped to [-1, 1], as the network sees it.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from device_probe import DeviceCrossings

from zeroshot_core import api
from zeroshot_core.cli.commands import _translate_options
from zeroshot_core.cli.parser import build_parser, main
from zeroshot_core.diffusion.sampling import sample_progressive
from zeroshot_core.diffusion.schedulers import make_scheduler
from zeroshot_core.diffusion.translation import TranslateOptions
from zeroshot_core.errors import ConfigError
from zeroshot_core.guidance.none import NoneGuidance
from zeroshot_core.lmi.dispatch import local_mutual_information
from zeroshot_core.model import acceleration as acceleration_module
from zeroshot_core.model.acceleration import Acceleration
from zeroshot_core.model.store import DEFAULT_NOISE_SCHEDULE, build_unet, unet_config
from zeroshot_core.samples.sample_data import load_sample, sample_paths

SLICES = (38, 40)  # axial slices of the bundled phantom (axis 2), inside the brain


def translate_phantom(guidance: str, acceleration: Acceleration, device: str = "cpu", steps: int = 4,
                      model=None) -> tuple[np.ndarray, object]:
    """The translated phantom slices in normalised units, and the result."""
    model = model if model is not None else api.load_model(None, guidance, device)
    options = TranslateOptions(steps=steps, device=device, slices=SLICES, acceleration=acceleration)
    result = api.run_translation(load_sample("pd"), model, guidance, options)
    low, high = result.model.card.target_intensity["low"], result.model.card.target_intensity["high"]
    return (result.volume.data[..., list(SLICES)] - low) / (high - low) * 2.0 - 1.0, result


def test_acceleration_is_validated():
    assert Acceleration() == Acceleration("auto", False, False) and not Acceleration("off").enabled
    assert Acceleration(autocast="bf16").dtype is torch.bfloat16 and Acceleration("fp16").dtype is torch.float16
    with pytest.raises(ConfigError, match="resolved for a device"):
        _ = Acceleration().dtype
    assert Acceleration("bf16", np.bool_(True), True).to_dict() == {"autocast": "bf16", "channels_last": True,
                                                                     "compile": True}
    assert Acceleration("off", compile=True).describe() == "compile" and Acceleration("off").describe() == "off"
    with pytest.raises(ConfigError, match="unknown autocast 'float16'; use off, bf16, fp16 or auto"):
        Acceleration(autocast="float16")
    with pytest.raises(ConfigError, match="channels_last must be true or false"):
        Acceleration(channels_last="yes")
    with pytest.raises(ConfigError, match="compile must be true or false"):
        Acceleration(compile=1)
    with pytest.raises(ConfigError, match="acceleration must be an Acceleration"):
        TranslateOptions(acceleration="bf16")
    assert TranslateOptions().acceleration == Acceleration()


@pytest.mark.parametrize("has_bf16", [True, False])
def test_auto_is_bf16_only_on_a_cpu_with_bfloat16_instructions(monkeypatch, has_bf16):
    monkeypatch.setattr(acceleration_module, "cpu_has_bfloat16", lambda: has_bf16)
    auto = Acceleration(channels_last=True)
    assert auto.resolve("cpu") == Acceleration("bf16" if has_bf16 else "off", channels_last=True)
    assert auto.resolve(torch.device("cuda")).autocast == "off"  # not measured on GPUs: float32 there
    assert Acceleration("off").resolve("cpu").autocast == "off" and Acceleration("bf16").resolve("cuda").autocast == "bf16"
    auto.check("cpu")  # auto never asks for what the device cannot run
    context = Acceleration().autocast_context("cpu")
    assert isinstance(context, torch.autocast) == has_bf16


def test_cpu_has_bfloat16_reads_torchs_probe(monkeypatch):
    probe = acceleration_module.cpu_has_bfloat16
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": False, "amx_bf16": True})
    probe.cache_clear()  # asked once per process: clear the answer between the faked CPUs
    assert acceleration_module.cpu_has_bfloat16()
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx2": True})
    probe.cache_clear()
    assert not acceleration_module.cpu_has_bfloat16()
    monkeypatch.delattr(torch.cpu, "get_capabilities")
    probe.cache_clear()
    assert not acceleration_module.cpu_has_bfloat16()
    probe.cache_clear()  # the real CPU's answer for the tests after this one


@pytest.mark.parametrize("has_bf16", [True, False])
def test_default_translation_resolves_auto_and_records_it(monkeypatch, has_bf16):
    monkeypatch.setattr(acceleration_module, "cpu_has_bfloat16", lambda: has_bf16)
    chosen, result = translate_phantom("lmi", Acceleration())
    explicit, _ = translate_phantom("lmi", Acceleration("bf16" if has_bf16 else "off"))
    np.testing.assert_array_equal(chosen, explicit)  # auto is exactly what it resolved to
    assert result.acceleration == Acceleration("bf16" if has_bf16 else "off")
    record = api.translation_provenance(result, TranslateOptions(device="cpu"))["Translation"]
    assert record["acceleration"]["autocast"] == ("bf16" if has_bf16 else "off")
    assert record["acceleration_requested"]["autocast"] == "auto"


def test_fp16_on_the_cpu_is_one_line_naming_bf16():
    Acceleration("bf16").check("cpu")
    Acceleration().check(torch.device("cpu"))
    with pytest.raises(ConfigError) as caught:
        Acceleration("fp16").check("cpu")
    message = str(caught.value)
    assert "\n" not in message and "--autocast fp16" in message and "--autocast bf16" in message
    with pytest.raises(ConfigError, match="fp16 needs a GPU"):  # before any model is loaded
        api.translate(load_sample("pd"), "/nonexistent/model", options=TranslateOptions(
            device="cpu", acceleration=Acceleration("fp16")))


def test_prepare_copies_the_network_once_and_leaves_the_original_alone():
    torch.manual_seed(0)
    unet = build_unet(unet_config("tiny", 16, 1)).eval()
    assert Acceleration(autocast="bf16").prepare(unet) is unet
    fast = Acceleration(channels_last=True).prepare(unet)
    assert fast is not unet and Acceleration(channels_last=True).prepare(unet) is fast
    assert fast.conv_out.weight.is_contiguous(memory_format=torch.channels_last)  # (1, 16, 3, 3)
    assert unet.conv_out.weight.is_contiguous() and not unet.conv_out.weight.is_contiguous(
        memory_format=torch.channels_last)
    torch.testing.assert_close(fast.conv_out.weight, unet.conv_out.weight, rtol=0, atol=0)
    with torch.no_grad():
        unet.conv_in.weight.mul_(0.5)  # the weights changed: the copy is stale and is made again
    again = Acceleration(channels_last=True).prepare(unet)
    assert again is not fast
    torch.testing.assert_close(again.conv_in.weight, unet.conv_in.weight, rtol=0, atol=0)


def test_the_switches_reach_the_network_and_the_scheduler_gets_float32():
    torch.manual_seed(0)
    unet = build_unet(unet_config("tiny", 16, 2)).eval()  # image + one condition channel
    acceleration = Acceleration(autocast="bf16", channels_last=True)
    network = acceleration.prepare(unet)
    seen = []
    network.conv_in.register_forward_pre_hook(
        lambda module, args: seen.append(("input", args[0].is_contiguous(memory_format=torch.channels_last))))
    network.register_forward_hook(lambda module, args, out: seen.append(("output", out.sample.dtype)))
    noise = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    scheduler = make_scheduler("ddim", DEFAULT_NOISE_SCHEDULE)
    step = scheduler.step
    scheduler.step = lambda output, *args, **kwargs: seen.append(("scheduler", output.dtype)) or step(
        output, *args, **kwargs)
    events = list(sample_progressive(network, scheduler, NoneGuidance(strength=1.0), noise, noise.neg(),
                                     torch.ones_like(noise), noise, 3, acceleration=acceleration))
    assert ("input", True) in seen and ("output", torch.bfloat16) in seen
    assert [dtype for what, dtype in seen if what == "scheduler"] == [torch.float32] * 3
    assert all(event.sample.dtype == torch.float32 and event.sample.is_contiguous() for event in events)


@pytest.mark.parametrize("guidance", ["contour", "lmi"])
def test_channels_last_and_bf16_translations_are_close_to_plain(guidance):
    # Measured 2026-11-29 (bundled models, 4 DDIM steps, 2 phantom slices): channels-last
    # max 8.4e-6; bf16 max 0.036, mean 0.0049 (64-px lmi) and 0.025 / 0.0018 (contour).
    # 2026-11-30, the 2 mm lmi (4,654 steps; --denoise auto denoises this PD): bf16 mean 0.0086,
    # 99.9th percentile 0.081, max 0.117 (one pixel of 14,630): the bound is on the percentile.
    plain, _ = translate_phantom(guidance, Acceleration("off"))
    layout, _ = translate_phantom(guidance, Acceleration("off", channels_last=True))
    half, result = translate_phantom(guidance, Acceleration(autocast="bf16"))
    assert np.abs(layout - plain).max() <= 1e-4
    difference = np.abs(half - plain)
    assert 1e-5 < difference.mean() <= 0.015  # close, and bf16 really ran
    assert np.percentile(difference, 99.9) <= 0.1 and difference.max() <= 0.2
    options = TranslateOptions(device="cpu", acceleration=Acceleration(autocast="bf16"))
    record = api.translation_provenance(result, options)
    assert record["Translation"]["acceleration"] == {"autocast": "bf16", "channels_last": False, "compile": False}


def test_compile_reaches_the_network(monkeypatch):
    # Inductor takes ~100 s to compile the small UNet on this CPU, too slow for the suite:
    # torch.compile runs here with a backend that records the graph dynamo captured and
    # runs it eagerly. benchmarks/bench_acceleration.py --compile and benchmarks/gpu_check.sh
    # time the real compiler.
    graphs = []

    def recording_backend(graph_module, example_inputs):
        graphs.append(sum(node.op == "call_module" or node.op == "call_function" for node in graph_module.graph.nodes))
        return graph_module.forward

    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend=recording_backend))
    plain, _ = translate_phantom("none", Acceleration(), steps=2)
    compiled, _ = translate_phantom("none", Acceleration(compile=True), steps=2)
    assert graphs and max(graphs) > 50  # the UNet's convolutions, norms and attention went through dynamo
    np.testing.assert_allclose(compiled, plain, rtol=0, atol=1e-5)


def test_a_compiler_failure_is_one_line(monkeypatch):
    def failing_backend(graph_module, example_inputs):
        raise RuntimeError("no C compiler found\nmore detail")

    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend=failing_backend))
    with pytest.raises(ConfigError) as caught:
        translate_phantom("none", Acceleration(compile=True), steps=1)
    message = str(caught.value)
    assert message.startswith("--compile: torch.compile failed (") and "no C compiler found" in message
    assert "\n" not in message and message.endswith("run without --compile")


def test_the_cli_flags_reach_the_options(tmp_path, capsys):
    pd = str(sample_paths()["pd"])
    parser = build_parser()
    args = parser.parse_args(["translate", pd, "--out", "x.nii.gz", "--device", "cpu"])
    assert _translate_options(args).acceleration == Acceleration("auto")
    args = parser.parse_args(["translate", pd, "--out", "x.nii.gz", "--device", "cpu", "--autocast", "off"])
    assert _translate_options(args).acceleration == Acceleration("off")
    args = parser.parse_args(["translate", pd, "--out", "x.nii.gz", "--device", "cpu", "--autocast", "bf16",
                              "--channels-last", "--compile"])
    assert _translate_options(args).acceleration == Acceleration("bf16", True, True)
    out = tmp_path / "t1.nii.gz"
    assert main(["translate", pd, "--out", str(out), "--device", "cpu", "--autocast", "fp16"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == ["zeroshot: error: --autocast fp16 needs a GPU; on the CPU use --autocast bf16 (or off)"]
    assert not list(tmp_path.iterdir())


def test_the_device_probe_sees_copies_and_cpu_lmi_makes_none():
    with DeviceCrossings() as probe:
        torch.ones(3, 4).to("meta")
    assert probe.moved("cpu", "meta") == 12
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 32, 32, generator=g) * 2 - 1
    with DeviceCrossings() as probe:
        local_mutual_information(x, torch.sin(3 * x), backend="torch")
    assert [c for c in probe.crossings if c.target != "python"] == []
