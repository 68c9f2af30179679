"""This process's place among the processes that ``torchrun`` or ``srun`` started.

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; ``srun`` sets
``SLURM_PROCID``, ``SLURM_NTASKS`` and ``SLURM_LOCALID``. Sharded translation
(:mod:`zeroshot_core.batch`) splits its inputs by them; training
(:mod:`zeroshot_core.training.distributed`) forms a process group from them.
Torch-free.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from zeroshot_core.errors import ConfigError


@dataclass(frozen=True)
class Shard:
    """This process's place among the processes sharing the inputs.

    Attributes
    ----------
    rank : int
        0 ≤ rank < world.
    world : int
        Number of processes (≥ 1).
    local_rank : int
        Rank on this node (picks the GPU).
    """

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    def __post_init__(self) -> None:
        if self.world < 1 or not 0 <= self.rank < self.world or self.local_rank < 0:
            raise ConfigError(f"rank {self.rank} of world size {self.world} (local rank {self.local_rank}) is "
                              "impossible; check RANK, WORLD_SIZE and LOCAL_RANK")

    @property
    def prefix(self) -> str:
        """``"rank R/N: "`` when there are several processes, else empty."""
        return f"rank {self.rank}/{self.world}: " if self.world > 1 else ""


def _env_int(env: dict[str, str], *names: str, default: int) -> int:
    for name in names:
        if env.get(name, "").strip():
            try:
                return int(env[name])
            except ValueError:
                raise ConfigError(f"environment variable {name}={env[name]!r} is not a whole number") from None
    return default


def shard_from_env(env: dict[str, str] | None = None) -> Shard:
    """The shard set by ``torchrun`` (RANK, WORLD_SIZE, LOCAL_RANK) or ``srun`` (SLURM_PROCID, ...).

    Without them: one process (rank 0 of 1).

    Raises
    ------
    ConfigError
        A value that is not a whole number, or a rank outside the world.
    """
    env = dict(os.environ if env is None else env)
    return Shard(rank=_env_int(env, "RANK", "SLURM_PROCID", default=0),
                 world=_env_int(env, "WORLD_SIZE", "SLURM_NTASKS", default=1),
                 local_rank=_env_int(env, "LOCAL_RANK", "SLURM_LOCALID", default=0))
