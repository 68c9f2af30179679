"""One process of ``zeroshot train`` under ``torchrun``, recording what tests/test_distributed_training.py checks.

Run as ``python -m torch.distributed.run ... tests/ddp_worker.py RECORD_DIR SIGTERM_AFTER -- ZEROSHOT_ARGS``:
the ``zeroshot`` command runs in this process (``zeroshot_core.cli.main``), unchanged but
observed. Rank 1 sends itself SIGTERM after step ``SIGTERM_AFTER`` (0: never). Each rank
writes ``RECORD_DIR/rankR.json`` (exit code, the loss of every step it saw, how often it
called the two writers of the model folder) and ``RECORD_DIR/emaR.safetensors`` (its
EMA weights when training ended).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path


def main(record: Path, sigterm_after: int, argv: list[str]) -> int:
    import torch
    from safetensors.torch import save_file

    from zeroshot_core.cli import main as zeroshot
    from zeroshot_core.training import loop

    rank = int(os.environ["RANK"])
    built: list[torch.nn.Module] = []
    writes = {"save_state": 0, "save_model": 0}
    losses: list[float] = []
    build_unet, train_iter = loop.build_unet, loop.train_iter

    def recording_build(*args, **kwargs):
        built.append(build_unet(*args, **kwargs))  # the network, then its EMA
        return built[-1]

    def counting(name: str):
        original = getattr(loop, name)

        def call(*args, **kwargs):
            writes[name] += 1
            return original(*args, **kwargs)
        return call

    def observed_train_iter(*args, **kwargs):
        for event in train_iter(*args, **kwargs):
            losses.append(event.loss)
            if rank == 1 and event.step == sigterm_after:
                os.kill(os.getpid(), signal.SIGTERM)  # arrives while the command runs its steps
            yield event

    loop.build_unet, loop.train_iter = recording_build, observed_train_iter
    loop.save_state, loop.save_model = counting("save_state"), counting("save_model")
    code = zeroshot(argv)
    save_file({k: v.contiguous() for k, v in built[1].state_dict().items()}, str(record / f"ema{rank}.safetensors"))
    (record / f"rank{rank}.json").write_text(json.dumps({"code": code, "losses": losses, "writes": writes}))
    return 0


if __name__ == "__main__":
    split = sys.argv.index("--")
    sys.exit(main(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[split + 1:]))
