"""Training on several processes (torchrun, gloo on the CPU) computes what one process computes.

Two processes that split a global batch of 4 must follow the one-process run with the same
global batch: the same loss at every step (rtol 1e-4) and the same weights (raw, EMA and
AdamW moments) within 1e-5 — 5 % of one AdamW step at the learning rate used (2e-4); only
the order of float additions differs. A change of the data, the noise, the share of a
rank or the gradient averaging moves losses by far more than 1e-4 and weights by whole steps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from zeroshot_core.cli import main
from zeroshot_core.errors import ConfigError
from zeroshot_core.model.store import CARD_FILE, WEIGHTS_FILE, read_card
from zeroshot_core.processes import Shard
from zeroshot_core.training.checkpoint import STATE_JSON
from zeroshot_core.training.distributed import Processes, check_global_batch, join
from zeroshot_core.training.loop import TrainConfig, train_iter

REPO = Path(__file__).resolve().parents[1]
RANK_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID",
                  "MASTER_ADDR", "MASTER_PORT")
RECIPE = {"model_size": "tiny", "image_size": 32, "batch_size": 4, "device": "cpu", "segmenters": (), "seed": 3,
          "condition_dropout": 0.2, "contrast_randomisation": 0.5, "contrast_variants": 2}
ARGS = ["--model-size", "tiny", "--image-size", "32", "--batch-size", "4", "--device", "cpu", "--segmenters", "",
        "--seed", "3", "--condition-dropout", "0.2", "--contrast-randomisation", "0.5", "--contrast-variants", "2"]
LOSS_RTOL = 1e-4
WEIGHT_ATOL = 1e-5
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


@pytest.fixture(autouse=True)
def one_process(monkeypatch):
    """This test process is one process, whatever launched pytest."""
    for name in RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in RANK_VARIABLES}
    return {**env, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}


def run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=False, env=child_env(), capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def targets(tmp_path_factory) -> Path:
    """Six synthetic 40 × 40 'heads' (an ellipse with a core and noise), one slice each."""
    folder = tmp_path_factory.mktemp("targets")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:40, :40]
    for i in range(6):
        r = ((yy - 20) / (14 + i)) ** 2 + ((xx - 20) / (12 + i % 3)) ** 2
        image = np.where(r < 1, 100 + 60 * (r < 0.4) + 20 * rng.standard_normal((40, 40)), 0)
        np.save(folder / f"head{i}.npy", image.astype(np.float32))
    return folder


def train(targets: Path, out: Path, max_steps: int, resume: bool = False) -> list[float]:
    """One process, in this one (one torch thread, as the subprocesses)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = TrainConfig(max_steps=max_steps, checkpoint_every=0, **RECIPE)
        return [event.loss for event in train_iter([targets], out, config, resume=resume)]
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reference(targets, tmp_path_factory) -> tuple[list[float], Path]:
    """The uninterrupted one-process run: 4 steps of a global batch of 4."""
    out = tmp_path_factory.mktemp("reference") / "model"
    with pytest.MonkeyPatch.context() as patch:
        for name in RANK_VARIABLES:
            patch.delenv(name, raising=False)
        losses = train(targets, out, 4)
    return losses, out


@pytest.fixture(scope="module")
def stopped(targets, tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """``zeroshot train`` on 2 processes, 4 steps asked; rank 1 gets SIGTERM after step 2."""
    record = tmp_path_factory.mktemp("record")
    out = record / "model"
    done = run([*TORCHRUN, str(REPO / "tests" / "ddp_worker.py"), str(record), "2", "--",
                "-q", "--threads", "1", "train", str(targets), "--out", str(out), "--max-steps", "4", *ARGS])
    assert done.returncode == 0, done.stderr[-3000:]
    return record, out, done


def ranks(record: Path) -> list[dict]:
    return [json.loads((record / f"rank{rank}.json").read_text()) for rank in (0, 1)]


def state(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / json.loads((out / STATE_JSON).read_text())["tensors"]))


def assert_same_training(out: Path, expected: Path) -> None:
    """Raw weights, EMA and AdamW moments within WEIGHT_ATOL; the batch generator exactly."""
    got, want = state(out), state(expected)
    assert got.keys() == want.keys()
    assert torch.equal(got.pop("rng.generator"), want.pop("rng.generator"))
    for key, value in want.items():
        torch.testing.assert_close(got[key], value, rtol=0, atol=WEIGHT_ATOL, msg=key)
    saved, wanted = load_file(str(out / WEIGHTS_FILE)), load_file(str(expected / WEIGHTS_FILE))
    for key, value in wanted.items():
        torch.testing.assert_close(saved[key], value, rtol=0, atol=WEIGHT_ATOL, msg=key)


def test_two_processes_follow_the_one_process_loss_curve_with_one_ema(stopped, reference):
    record, out, _ = stopped
    first, second = ranks(record)
    assert first["losses"] == second["losses"]  # the global mean, the same number on every rank
    np.testing.assert_allclose(first["losses"], reference[0][:2], rtol=LOSS_RTOL, atol=0)
    emas = [load_file(str(record / f"ema{rank}.safetensors")) for rank in (0, 1)]
    saved = load_file(str(out / WEIGHTS_FILE))
    for key, value in emas[0].items():
        assert torch.equal(emas[1][key], value), key  # updated from the synchronised weights
        assert torch.equal(saved[key], value), key


def test_a_signal_on_one_process_stops_all_and_rank_0_alone_writes_the_step(stopped):
    record, out, done = stopped
    first, second = ranks(record)
    assert first["code"] == second["code"] == 143
    assert len(first["losses"]) == len(second["losses"]) == 2
    assert first["writes"] == {"save_state": 1, "save_model": 1}
    assert second["writes"] == {"save_state": 0, "save_model": 0}
    assert sorted(p.name for p in out.iterdir()) == sorted([CARD_FILE, WEIGHTS_FILE, STATE_JSON,
                                                            "training_state-00000002.safetensors"])
    card = read_card(out)
    assert card.training["steps"] == 2 and card.training["processes"] == 2 and card.training["batch_size"] == 4
    lines = [line for line in done.stderr.splitlines() if "checkpoint of step" in line]
    assert lines == [(f"zeroshot: a stop signal on another process: checkpoint of step 2 written to {out}; "
                      "continue with the same command and --resume")]


def test_resuming_on_one_process_continues_the_two_process_run_exactly(stopped, reference, targets, tmp_path):
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    for path in stopped[1].iterdir():
        (resumed / path.name).write_bytes(path.read_bytes())
    losses = train(targets, resumed, 4, resume=True)
    np.testing.assert_allclose(losses, reference[0][2:], rtol=LOSS_RTOL, atol=0)
    assert read_card(resumed).training["steps"] == 4 and read_card(resumed).training["processes"] == 1
    assert_same_training(resumed, reference[1])


def test_zeroshot_train_under_torchrun_writes_the_one_process_model(targets, reference, tmp_path):
    out = tmp_path / "model"
    done = run([*TORCHRUN, "-m", "zeroshot_core.cli", "-q", "--threads", "1", "train", str(targets), "--out", str(out),
                "--max-steps", "4", "--checkpoint-every", "2", *ARGS])
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == [
        ("distributed: 2 processes × 2 slices = global batch 4, lr 0.0002 (unchanged: the learning rate belongs "
         "to the global batch)"), f"model written to {out}"]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in reference[1].iterdir())
    assert read_card(out).training["processes"] == 2 and read_card(out).training["steps"] == 4
    assert_same_training(out, reference[1])


def test_a_global_batch_that_does_not_divide_is_one_line_and_writes_nothing(targets, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    out = tmp_path / "model"
    code = main(["-q", "train", str(targets), "--out", str(out), "--max-steps", "2", *ARGS, "--batch-size", "3"])
    err = capsys.readouterr().err
    assert code == 2 and err == ("zeroshot: error: --batch-size 3 (the global batch) does not divide among 2 "
                                 "processes; use a multiple of 2, e.g. 2 or 4\n")
    assert not out.exists()
    with pytest.raises(ConfigError, match="divide among 2"):
        next(train_iter([targets], out, TrainConfig(**{**RECIPE, "batch_size": 5})))
    assert not out.exists()


def test_several_processes_without_a_rendezvous_address_are_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_NTASKS", "2")  # as srun sets it; MASTER_ADDR/PORT are the user's to export
    monkeypatch.setenv("SLURM_PROCID", "1")
    with pytest.raises(ConfigError, match="MASTER_ADDR and MASTER_PORT not set for 2 processes"):
        next(train_iter([tmp_path / "not read"], tmp_path / "model", TrainConfig(**RECIPE)))
    assert not (tmp_path / "model").exists()


def test_a_rank_takes_its_contiguous_share_of_the_global_batch():
    assert [Processes(Shard(rank, 4), torch.device("cpu")).share(8) for rank in range(4)] == [
        slice(0, 2), slice(2, 4), slice(4, 6), slice(6, 8)]
    assert check_global_batch(6, 1) == 6
    with pytest.raises(ConfigError, match="e.g. 4 or 8"):
        check_global_batch(6, 4)
    with join("cpu") as one:  # one process: no group, nothing exchanged
        assert (one.world, one.main, one.any(False), one.mean(torch.tensor(0.5))) == (1, True, False, 0.5)
        assert one.wrap(model := torch.nn.Conv2d(1, 1, 1)) is model


def test_channels_last_trains_the_same_network(targets, reference, tmp_path):
    config = TrainConfig(max_steps=2, checkpoint_every=0, channels_last=True, **RECIPE)
    losses = [event.loss for event in train_iter([targets], tmp_path / "model", config)]
    np.testing.assert_allclose(losses, reference[0][:2], rtol=LOSS_RTOL, atol=0)
    assert read_card(tmp_path / "model").training["channels_last"] is True
    assert read_card(reference[1]).training["channels_last"] is False
    assert read_card(reference[1]).training["compile"] is False


@pytest.mark.parametrize("name", ["channels_last", "compile"])
def test_speed_switches_must_be_booleans(name):
    with pytest.raises(ConfigError, match=name.replace("_", "-")):
        TrainConfig(**{name: "yes"})


class DeepLayersFrozen(torch.nn.Module):
    """A stand-in for the miscompiled UNet: the same forward, no gradient below the middle block."""

    def __init__(self, unet: torch.nn.Module) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, x: torch.Tensor, t: torch.Tensor):
        handle = self.unet.mid_block.register_forward_hook(lambda module, args, output: output.detach())
        try:
            return self.unet(x, t)
        finally:
            handle.remove()


def test_a_compiled_unet_is_used_only_if_its_gradients_are_the_eager_ones(monkeypatch):
    from zeroshot_core.model.store import build_unet, unet_config
    from zeroshot_core.training.speed import compiled_gradient_error, prepare

    torch.manual_seed(0)
    unet = build_unet(unet_config("tiny", 32, 2))
    assert compiled_gradient_error(unet, unet, (2, 2, 32, 32)) == 0.0
    assert compiled_gradient_error(unet, DeepLayersFrozen(unet), (2, 2, 32, 32)) > 0.1
    assert all(p.grad is None for p in unet.parameters())  # the probe leaves no gradient behind
    monkeypatch.setattr(torch, "compile", lambda module: module)  # a faithful compiler
    assert prepare(unet, (2, 2, 32, 32), compile=True) is unet
    monkeypatch.setattr(torch, "compile", DeepLayersFrozen)
    with pytest.raises(ConfigError, match=r"^--compile: the compiled UNet's gradients differ from the eager ones"):
        prepare(unet, (2, 2, 32, 32), compile=True)


def test_zeroshot_train_refuses_a_miscompiling_compile_in_one_line(targets, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch, "compile", DeepLayersFrozen)
    out = tmp_path / "model"
    code = main(["-q", "train", str(targets), "--out", str(out), "--max-steps", "2", *ARGS, "--compile"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and err.endswith("; train without --compile\n"), err
    assert not out.exists()
