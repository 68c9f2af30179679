"""Long-running work under faults: signals during train/translate, crashes while writing, out of memory."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from zeroshot_core.model.store import CARD_FILE, WEIGHTS_FILE, read_card
from zeroshot_core.training import checkpoint
from zeroshot_core.training.loop import TrainConfig, train_iter

SRC = Path(__file__).resolve().parents[1] / "src"
TINY = dict(guidance="none", model_size="tiny", image_size=32, batch_size=2, device="cpu", segmenters=(),
            checkpoint_every=0)


def tensors_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def state_files(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith(("training_state", ".")))


# ------------------------------------------------------------------ stopping and resuming training


def test_stopping_then_resuming_gives_the_uninterrupted_model(tmp_path, ixi_t1_files):
    config = TrainConfig(max_steps=6, **TINY)
    whole = tmp_path / "whole"
    assert [e.step for e in train_iter(ixi_t1_files[:1], whole, config)] == [1, 2, 3, 4, 5, 6]

    parts = tmp_path / "parts"
    done: list[int] = []
    for event in train_iter(ixi_t1_files[:1], parts, config, stop=lambda: len(done) >= 3):
        done.append(event.step)
    assert done == [1, 2, 3]
    assert json.loads((parts / checkpoint.STATE_JSON).read_text())["step"] == 3
    assert read_card(parts).training["steps"] == 3
    assert [e.step for e in train_iter(ixi_t1_files[:1], parts, config, resume=True)] == [4, 5, 6]
    # same batches, noise, optimiser moments: bit-identical to the uninterrupted run
    assert tensors_equal(load_file(str(whole / WEIGHTS_FILE)), load_file(str(parts / WEIGHTS_FILE)))
    whole_state = json.loads((whole / checkpoint.STATE_JSON).read_text())
    parts_state = json.loads((parts / checkpoint.STATE_JSON).read_text())
    assert tensors_equal(load_file(str(whole / whole_state["tensors"])), load_file(str(parts / parts_state["tensors"])))
    assert state_files(parts) == sorted([checkpoint.STATE_JSON, "training_state-00000006.safetensors"])


def test_a_crash_between_the_state_files_resumes_from_the_last_complete_pair(tmp_path, ixi_t1_files, monkeypatch):
    out = tmp_path / "m"
    config = TrainConfig(max_steps=6, **{**TINY, "checkpoint_every": 2})
    real_write_json = checkpoint.write_json
    calls = []

    def crash_on_second(path, data):
        calls.append(data["step"])
        if len(calls) == 2:  # the step-4 tensors are written, its JSON is not
            raise OSError("disk vanished")
        real_write_json(path, data)

    monkeypatch.setattr(checkpoint, "write_json", crash_on_second)
    with pytest.raises(OSError, match="disk vanished"):
        list(train_iter(ixi_t1_files[:1], out, config))
    monkeypatch.setattr(checkpoint, "write_json", real_write_json)
    assert json.loads((out / checkpoint.STATE_JSON).read_text())["step"] == 2
    assert (out / "training_state-00000002.safetensors").is_file()
    assert [e.step for e in train_iter(ixi_t1_files[:1], out, config, resume=True)] == [3, 4, 5, 6]
    assert state_files(out) == sorted([checkpoint.STATE_JSON, "training_state-00000006.safetensors"])


def test_a_checkpoint_naming_a_missing_tensor_file_is_refused(tmp_path, ixi_t1_files):
    out = tmp_path / "m"
    list(train_iter(ixi_t1_files[:1], out, TrainConfig(max_steps=1, **TINY)))
    (out / "training_state-00000001.safetensors").unlink()
    from zeroshot_core.errors import ModelError

    with pytest.raises(ModelError, match="cannot resume .*start without --resume"):
        list(train_iter(ixi_t1_files[:1], out, TrainConfig(max_steps=2, **TINY), resume=True))


def zeroshot(log: Path, *args: str) -> subprocess.Popen:
    """``zeroshot ARGS`` in a subprocess (this tree's code), stderr to ``log``."""
    env = dict(os.environ, PYTHONPATH=f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               ZEROSHOT_DISABLE_PLUGINS="1")
    with open(log, "w") as stderr:
        return subprocess.Popen([sys.executable, "-m", "zeroshot_core.cli", "--threads", "1", *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=stderr)


def wait_for_progress(process: subprocess.Popen, log: Path, pattern: str, timeout: float = 240.0) -> None:
    """Wait until ``pattern`` appears in the stderr log (tqdm's progress bar)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = log.read_text(errors="replace")
        if re.search(pattern, seen):
            return
        assert process.poll() is None, f"ended early: {seen[-500:]}"
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"no {pattern!r} within {timeout} s: {log.read_text()[-500:]}")


def finish(process: subprocess.Popen, log: Path) -> tuple[int, str]:
    return process.wait(timeout=180), log.read_text(errors="replace")


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_train_saves_the_current_step_and_resume_continues(tmp_path, ixi_t1_files, signum, code):
    out = tmp_path / "model"
    args = ("train", str(ixi_t1_files[0]), "--out", str(out), "--guidance", "none", "--model-size", "tiny",
            "--image-size", "32", "--batch-size", "2", "--segmenters", "", "--device", "cpu")
    log = tmp_path / "stderr.txt"
    process = zeroshot(log, *args, "--max-steps", "100000", "--checkpoint-every", "1000")
    wait_for_progress(process, log, r"\b([3-9]|\d\d+)/100000")
    process.send_signal(signum)
    rc, err = finish(process, log)
    assert rc == code, err[-800:]
    name = signal.Signals(signum).name
    (line,) = [x for x in err.splitlines() if x.startswith("zeroshot:")]
    found = re.fullmatch(rf"zeroshot: {name}: checkpoint of step (\d+) written to {re.escape(str(out))}; "
                         r"continue with the same command and --resume", line)
    assert found, line
    step = int(found.group(1))
    assert step >= 3 and "Traceback" not in err
    assert json.loads((out / checkpoint.STATE_JSON).read_text())["step"] == step
    assert read_card(out).training["steps"] == step
    assert state_files(out) == sorted([checkpoint.STATE_JSON, f"training_state-{step:08d}.safetensors"])
    assert {CARD_FILE, WEIGHTS_FILE} <= {p.name for p in out.iterdir()}

    resumed = zeroshot(log, *args, "--max-steps", str(step + 2), "--resume")
    rc, err = finish(resumed, log)
    assert rc == 0, err
    assert json.loads((out / checkpoint.STATE_JSON).read_text())["step"] == step + 2
    assert read_card(out).training["steps"] == step + 2


def test_a_signal_before_the_first_step_exits_at_once_without_writing(tmp_path, ixi_t1_files, monkeypatch, capsys):
    from zeroshot_core.cli import main
    from zeroshot_core.cli.signals import Stopped
    from zeroshot_core.training import loop

    def signalled_while_loading(*args, **kwargs):
        raise Stopped(signal.SIGTERM)  # what the handler raises when no step is running yet

    monkeypatch.setattr(loop, "load_training_set", signalled_while_loading)
    out = tmp_path / "model"
    code = main(["-q", "train", str(ixi_t1_files[0]), "--out", str(out), "--model-size", "tiny", "--image-size",
                 "32", "--device", "cpu"])
    assert code == 143
    assert capsys.readouterr().err == ("zeroshot: stopped by SIGTERM; the model folder keeps its last "
                                       "checkpoint\n")
    assert not out.exists()


# ------------------------------------------------------------------ translate: nothing partial


def test_a_signal_during_translate_exits_143_and_writes_nothing(tmp_path, tiny_contour_model, t1_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    log = tmp_path / "stderr.txt"
    process = zeroshot(log, "translate", str(t1_path), "--model", str(tiny_contour_model), "--steps", "1000",
                       "--out", str(out_dir / "t1.nii.gz"), "--labels", str(out_dir / "labels.nii.gz"),
                       "--device", "cpu", "--batch-size", "4")
    wait_for_progress(process, log, r"translate:\s+\d+%.*\| *[1-9]\d*/")
    process.send_signal(signal.SIGTERM)
    rc, err = finish(process, log)
    assert rc == 143, err[-800:]
    assert err.strip().splitlines()[-1] == "zeroshot: stopped by SIGTERM; no partial output was left"
    assert "Traceback" not in err
    assert list(out_dir.iterdir()) == []


def test_a_crash_mid_translation_leaves_no_file(tmp_path, tiny_contour_model, t1_path, monkeypatch):
    from zeroshot_core.cli import main
    from zeroshot_core.diffusion import translation

    real = translation.sample_progressive
    calls = []

    def crash_after_one_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("device lost")
        yield from real(*args, **kwargs)

    monkeypatch.setattr(translation, "sample_progressive", crash_after_one_batch)
    out = tmp_path / "t1.nii.gz"
    with pytest.raises(RuntimeError, match="device lost"):
        main(["-q", "translate", str(t1_path), "--model", str(tiny_contour_model), "--steps", "2",
              "--out", str(out), "--device", "cpu", "--batch-size", "2"])
    assert len(calls) == 2 and list(tmp_path.iterdir()) == []


def test_a_stop_while_writing_leaves_neither_file_nor_temporary(tmp_path):
    from zeroshot_core.cli.signals import Stopped
    from zeroshot_core.io.atomic import atomic_write

    target = tmp_path / "t1.nii.gz"

    def half_then_stop(tmp: Path) -> None:
        tmp.write_bytes(b"half a volume")
        raise Stopped(signal.SIGTERM)

    with pytest.raises(Stopped) as info:
        atomic_write(target, half_then_stop)
    assert info.value.exit_code == 143
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ out of memory while sampling


@pytest.fixture
def unet_memory_limit(monkeypatch):
    """``limit(max_batch, error)``: the score network raises ``error`` for batches above ``max_batch``."""
    from diffusers import UNet2DModel

    real = UNet2DModel.forward
    seen: list[int] = []

    def limit(max_batch: int, error: Exception) -> list[int]:
        def forward(self, sample, *args, **kwargs):
            seen.append(sample.shape[0])
            if sample.shape[0] > max_batch:
                raise error
            return real(self, sample, *args, **kwargs)

        monkeypatch.setattr(UNet2DModel, "forward", forward)
        return seen

    return limit


def translate_slices(model, t1_path, batch_size: int, scheduler: str = "ddim"):
    from zeroshot_core import api

    options = api.TranslateOptions(steps=3, device="cpu", seed=1, batch_size=batch_size, slices=tuple(range(56, 62)),
                                   scheduler=scheduler)
    return api.translate(t1_path, model=model, options=options).data


@pytest.mark.parametrize("error", [
    torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    RuntimeError("MPS backend out of memory (MPS allocated: 8.00 GB)"),
    RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1073741824 bytes"),
])
@pytest.mark.parametrize("scheduler", ["ddim", "ddpm"])
def test_out_of_memory_halves_the_batch_and_gives_the_same_result(tiny_contour_model, t1_path, unet_memory_limit,
                                                                   error, scheduler):
    unbatched = translate_slices(tiny_contour_model, t1_path, 1, scheduler)
    seen = unet_memory_limit(2, error)
    from zeroshot_core.diffusion.memory import SmallerBatchWarning

    with pytest.warns(SmallerBatchWarning) as caught:
        result = translate_slices(tiny_contour_model, t1_path, 8, scheduler)
    np.testing.assert_array_equal(result, unbatched)  # 6 -> 3 -> 1: exactly what one slice at a time gives
    assert [str(w.message) for w in caught] == [
        "out of memory on cpu with 6 slices at once; continuing with 3 (set --batch-size 3 to skip this retry)",
        "out of memory on cpu with 3 slices at once; continuing with 1 (set --batch-size 1 to skip this retry)"]
    assert seen[:2] == [6, 3] and set(seen[2:]) == {1}
    assert np.isfinite(result).all() and float(np.ptp(result)) > 0


def test_other_errors_and_oom_for_one_slice_are_not_retried(tiny_contour_model, t1_path, unet_memory_limit):
    from zeroshot_core.errors import ZeroshotError

    seen = unet_memory_limit(2, RuntimeError("cuDNN error: CUDNN_STATUS_INTERNAL_ERROR"))
    with pytest.raises(RuntimeError, match="CUDNN_STATUS_INTERNAL_ERROR"):
        translate_slices(tiny_contour_model, t1_path, 8)
    assert seen == [6]
    unet_memory_limit(0, torch.cuda.OutOfMemoryError("CUDA out of memory"))
    with pytest.warns(Warning), pytest.raises(ZeroshotError, match="out of memory on cpu even for one slice; use "
                                                                   "--device cpu"):
        translate_slices(tiny_contour_model, t1_path, 2)


def test_the_cli_says_in_one_line_that_the_batch_was_halved(tiny_contour_model, t1_path, unet_memory_limit, tmp_path,
                                                            capsys):
    from zeroshot_core.cli import main

    unet_memory_limit(3, torch.cuda.OutOfMemoryError("CUDA out of memory"))
    out = tmp_path / "t1.nii.gz"
    assert main(["-q", "translate", str(t1_path), "--model", str(tiny_contour_model), "--steps", "2", "--out",
                 str(out), "--device", "cpu", "--slices", "56:62"]) == 0
    assert out.is_file()
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["zeroshot: warning: out of memory on cpu with 6 slices at once; continuing with 3 "
                     "(set --batch-size 3 to skip this retry)"]


def test_stop_signals_defer_the_first_signal_and_stop_at_the_second():
    from zeroshot_core.cli.signals import Stopped, StopSignals

    before = signal.getsignal(signal.SIGTERM)
    with StopSignals() as stop:
        with pytest.raises(Stopped) as info:  # not deferred: stops where the program is
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        assert info.value.exit_code == 130
        stop.received, stop.deferred = None, True
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        assert stop.received == signal.SIGTERM and stop.name == "SIGTERM"  # recorded, work goes on
        with pytest.raises(Stopped, match="SIGTERM"):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
    assert signal.getsignal(signal.SIGTERM) is before
