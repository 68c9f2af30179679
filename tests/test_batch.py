"""Many inputs: one output per input in a folder, resuming, failures isolated, sharding over processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from zeroshot_core.api import load_sample, load_volume, save_volume
from zeroshot_core.batch import (
    Job,
    Shard,
    expand_inputs,
    plan_jobs,
    run_jobs,
    shard,
    shard_from_env,
)
from zeroshot_core.cli import main
from zeroshot_core.errors import ConfigError, InputError

FAST = ["--steps", "2", "--device", "cpu", "--batch-size", "2"]
NAMES = ["a.nii.gz", "b.nii.gz", "c.nii.gz", "d.nii.gz"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    """Four two-slice crops of the bundled PD phantom, each from another depth."""
    folder = tmp_path_factory.mktemp("sources")
    pd = load_sample("pd")
    for k, name in enumerate(NAMES):
        save_volume(pd.with_data(pd.data[:, :, 30 + 4 * k:32 + 4 * k].copy()), folder / name)
    return folder


@pytest.fixture()
def one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _translate(*args):
    return main(["-q", "--threads", "1", "translate", *map(str, args), *FAST])


def test_a_folder_is_translated_then_skipped_then_a_corrupt_output_redone(sources, tmp_path, capsys, one_thread):
    out = tmp_path / "new" / "out"
    summary = tmp_path / "summary.json"
    assert _translate(sources, "--out", out, "--summary-json", summary) == 0
    for name in NAMES:
        written = load_volume(out / name)
        assert written.data.shape == load_volume(sources / name).data.shape
        assert np.allclose(written.affine, load_volume(sources / name).affine)
        assert json.loads((out / name.replace(".nii.gz", ".json")).read_text())["Sources"]
    report = json.loads(summary.read_text())
    assert sorted(Path(p).name for p in report["done"]) == NAMES and report["exit_code"] == 0
    assert "4 done, 0 skipped, 0 failed" in capsys.readouterr().out

    before = {name: (out / name).stat().st_mtime_ns for name in NAMES}
    (out / "c.nii.gz").write_bytes(b"not an image at all")
    assert _translate(sources, "--out", out) == 0
    assert "1 done, 3 skipped, 0 failed" in capsys.readouterr().out
    assert load_volume(out / "c.nii.gz").data.shape == load_volume(sources / "c.nii.gz").data.shape
    assert all((out / n).stat().st_mtime_ns == before[n] for n in NAMES if n != "c.nii.gz")

    assert _translate(sources, "--out", out) == 0
    assert "0 done, 4 skipped, 0 failed" in capsys.readouterr().out
    assert _translate(sources / "a.nii.gz", sources / "b.nii.gz", "--out", out, "--overwrite") == 0
    assert "2 done, 0 skipped" in capsys.readouterr().out


def test_a_bad_input_among_good_ones_fails_alone(sources, tmp_path, capsys, one_thread):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for name in NAMES[:2]:
        (mixed / name).write_bytes((sources / name).read_bytes())
    (mixed / "broken.nii.gz").write_bytes(b"\x00" * 40)
    listing = tmp_path / "list.txt"
    listing.write_text(f"# inputs\n{mixed / 'broken.nii.gz'}\n\n{mixed}/a.nii.gz\n{mixed}/b.nii.gz\n")
    out = tmp_path / "out"
    code = _translate(f"@{listing}", "--out", out, "--labels", tmp_path / "labels", "--summary-json",
                      tmp_path / "s.json")
    captured = capsys.readouterr()
    assert code == 2
    assert sorted(p.name for p in out.glob("*.nii.gz")) == NAMES[:2]
    for name in NAMES[:2]:
        labels = load_volume(tmp_path / "labels" / name).data
        assert labels.shape == load_volume(out / name).data.shape and labels.max() > 0
    assert "2 done, 0 skipped, 1 failed" in captured.out
    assert "broken.nii.gz: cannot read" in captured.err
    failed = json.loads((tmp_path / "s.json").read_text())["failed"]
    assert [Path(f["source"]).name for f in failed] == ["broken.nii.gz"] and "cannot read" in failed[0]["reason"]


def test_sharded_processes_write_what_one_process_writes(sources, tmp_path, capsys, one_thread):
    single = tmp_path / "single"
    assert _translate(f"{sources}/*.nii.gz", "--out", single) == 0
    sharded = tmp_path / "sharded"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src"), "WORLD_SIZE": "2"}
    runs = [subprocess.Popen([sys.executable, "-m", "zeroshot_core.cli", "-q", "--threads", "1", "translate",
                              str(sources), "--out", str(sharded), *FAST], env={**env, "RANK": str(rank)},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert "rank 0/2: 2 done" in outputs[0][0] and "rank 1/2: 2 done" in outputs[1][0]
    assert "c.nii.gz" in outputs[0][0] and "b.nii.gz" in outputs[1][0]  # every other sorted input
    for name in NAMES:
        assert np.array_equal(load_volume(sharded / name).data, load_volume(single / name).data), name


def test_inputs_expand_sort_and_shard(sources, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text(f"{sources / 'd.nii.gz'}\n{sources / 'a.nii.gz'}\n")
    found = expand_inputs([f"@{listing}", str(sources / "b.nii.gz"), f"{sources}/[ab].nii.gz"])
    assert [p.name for p in found] == ["a.nii.gz", "b.nii.gz", "d.nii.gz"]
    assert [p.name for p in expand_inputs([str(sources)])] == NAMES
    parts = [shard(NAMES, Shard(rank, 3)) for rank in range(3)]
    assert sorted(name for part in parts for name in part) == NAMES and parts[0] == ["a.nii.gz", "d.nii.gz"]
    assert shard_from_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}) == Shard(1, 2, 1)
    assert shard_from_env({"SLURM_PROCID": "3", "SLURM_NTASKS": "4"}) == Shard(3, 4, 0)
    assert shard_from_env({}) == Shard(0, 1, 0)
    with pytest.raises(ConfigError, match="RANK"):
        shard_from_env({"RANK": "2", "WORLD_SIZE": "2"})
    with pytest.raises(InputError, match="matches no"):
        expand_inputs([f"{tmp_path}/*.nii.gz"])
    with pytest.raises(InputError, match="same file name"):
        plan_jobs([sources / "a.nii.gz", tmp_path / "x" / "a.nii.gz"], {"--out": tmp_path / "out"})
    with pytest.raises(InputError, match="overwrite an input"):
        plan_jobs([sources / "a.nii.gz"], {"--out": sources})
    with pytest.raises(InputError, match="same folder"):
        plan_jobs([sources / "a.nii.gz"], {"--out": tmp_path / "o", "--labels": tmp_path / "o"})


def test_many_inputs_need_a_writable_output_folder(sources, tmp_path, capsys):
    code = main(["-q", "translate", str(sources), "--out", str(tmp_path / "one.nii.gz")])
    err = capsys.readouterr().err
    assert code == 2 and "must name a folder" in err
    code = main(["-q", "translate", str(sources), "--out", str(tmp_path / "o"), "--model", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("zeroshot: error:") and "\n" not in err and "nowhere" in err
    assert not list((tmp_path / "o").iterdir())
    taken = tmp_path / "taken"
    taken.write_text("a file where the output folder should be")
    code = main(["-q", "segment", str(sources), "--out", str(taken)])
    assert code == 2 and "exists and is not a folder" in capsys.readouterr().err
    assert taken.read_text().startswith("a file")


def test_segment_many_writes_label_images(sources, tmp_path, capsys):
    out = tmp_path / "labels"
    assert main(["-q", "segment", str(sources / "a.nii.gz"), str(sources / "b.nii.gz"), "--out", str(out)]) == 0
    for name in NAMES[:2]:
        labels = load_volume(out / name).data
        assert labels.shape == load_volume(sources / name).data.shape and len(np.unique(labels)) > 1
    assert main(["-q", "segment", str(sources / "a.nii.gz"), str(sources / "b.nii.gz"), "--out", str(out)]) == 0
    assert "0 done, 2 skipped" in capsys.readouterr().out


def test_run_jobs_records_failures_in_one_line_and_stops_only_on_interrupts(tmp_path):
    jobs = [Job(tmp_path / f"{k}.nii.gz") for k in range(3)]
    ran = []

    def work(job, number):
        ran.append(number)
        if number == 2:
            raise ValueError("first line\nsecond line")

    summary = run_jobs(jobs, work, complete=lambda job: job.source.name == "0.nii.gz")
    assert ran == [2, 3] and summary.skipped == [str(jobs[0].source)] and summary.done == [str(jobs[2].source)]
    assert summary.failed == [(str(jobs[1].source), "ValueError: first line")] and summary.exit_code == 2

    def interrupted(job, number):
        if number == 2:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        run_jobs(jobs, interrupted)


def test_a_study_killed_mid_run_resumes_where_it_stopped(sources, tmp_path, capsys, one_thread):
    import signal
    import time

    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src"), "ZEROSHOT_DISABLE_PLUGINS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "zeroshot_core.cli", "-q", "--threads", "1", "translate",
                                str(sources), "--out", str(out), "--steps", "60", "--device", "cpu",
                                "--batch-size", "2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not (out / "a.json").is_file():  # the first input is finished (image, then its sidecar)
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err[-800:]
    assert "Traceback" not in err
    finished = sorted(p.name for p in out.iterdir())
    assert not [name for name in finished if name.startswith(".")], finished  # no temporary left behind
    done = [name for name in NAMES if name in finished]
    assert "a.nii.gz" in done and len(done) < len(NAMES), finished  # killed mid-study
    for name in done:
        assert load_volume(out / name).data.shape == load_volume(sources / name).data.shape

    assert _translate(sources, "--out", out) == 0
    assert f"{len(NAMES) - len(done)} done, {len(done)} skipped, 0 failed" in capsys.readouterr().out
    assert all((out / name).is_file() and (out / name.replace(".nii.gz", ".json")).is_file() for name in NAMES)


def test_torchrun_translates_a_folder_on_two_cpu_processes(sources, tmp_path, one_thread):
    single = tmp_path / "single"
    assert _translate(sources, "--out", single) == 0
    out = tmp_path / "torchrun"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src"), "ZEROSHOT_DISABLE_PLUGINS": "1",
           "OMP_NUM_THREADS": "1"}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"):
        env.pop(name, None)
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "zeroshot_core.cli", "-q", "--threads", "1", "translate", str(sources),
                          "--out", str(out), *FAST], check=False, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-1500:]
    assert "rank 0/2: 2 done" in run.stdout and "rank 1/2: 2 done" in run.stdout, run.stdout
    for name in NAMES:
        assert np.array_equal(load_volume(out / name).data, load_volume(single / name).data), name
