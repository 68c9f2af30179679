"""Training on several processes (``torchrun``, ``srun``): one global batch, split among them.

When ``WORLD_SIZE`` (or ``SLURM_NTASKS``) is above 1, :func:`join` forms a
``torch.distributed`` process group (``gloo`` on the CPU, ``nccl`` on CUDA with the GPU of
``LOCAL_RANK``) and :meth:`Processes.wrap` wraps the UNet in
:class:`~torch.nn.parallel.DistributedDataParallel`. Every process draws the same
*global* batch from the same seeded generator (slices, guides, crops, augmentation,
noise, timesteps, condition dropout) and keeps its own contiguous share
(:meth:`Processes.share`); DDP averages the gradients, so an optimiser step equals the
one-process step on the global batch, up to the order of float additions. Hence the
learning rate belongs to the global batch and is never scaled, and a run may resume
with another number of processes: the saved generator state is the global one.

Only rank 0 writes (:meth:`Processes.on_main`); the others wait for it. With one process
no group is formed and nothing is exchanged.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist

from zeroshot_core.errors import ConfigError, ModelError
from zeroshot_core.model.devices import resolve_device
from zeroshot_core.processes import Shard, shard_from_env


def check_global_batch(batch_size: int, world: int) -> int:
    """The slices each process computes: ``batch_size / world``.

    Parameters
    ----------
    batch_size : int
        The global batch (``--batch-size``), slices per optimiser step.
    world : int
        Number of processes.

    Returns
    -------
    int
        Slices per process.

    Raises
    ------
    ConfigError
        If ``batch_size`` is not a multiple of ``world``.

    Examples
    --------
    >>> check_global_batch(8, 2)
    4
    """
    if batch_size % world:
        lower = max(world, batch_size // world * world)
        raise ConfigError(f"--batch-size {batch_size} (the global batch) does not divide among {world} processes; "
                          f"use a multiple of {world}, e.g. {lower} or {lower + world}")
    return batch_size // world


def plan_line(batch_size: int, learning_rate: float, world: int) -> str:
    """The line that tells how a global batch is split (printed by rank 0 at start).

    Parameters
    ----------
    batch_size : int
        The global batch (``--batch-size``).
    learning_rate : float
        ``--lr``, shown unchanged.
    world : int
        Number of processes.

    Returns
    -------
    str
        One line, without a newline.

    Raises
    ------
    ConfigError
        If ``batch_size`` is not a multiple of ``world``.

    Examples
    --------
    >>> plan_line(8, 3e-4, 2)
    'distributed: 2 processes × 4 slices = global batch 8, lr 0.0003 (unchanged: the learning rate belongs to the global batch)'
    """
    share = check_global_batch(batch_size, world)
    return (f"distributed: {world} processes × {share} slices = global batch {batch_size}, lr {learning_rate:g} "
            "(unchanged: the learning rate belongs to the global batch)")


class Processes:
    """The processes training one model: this one's rank, the world, the device.

    Parameters
    ----------
    part : Shard
        This process's rank, the number of processes and its local rank.
    device : torch.device
        Where this process computes.

    Attributes
    ----------
    rank, world : int
        This process's rank and the number of processes.
    device : torch.device
        The device this process computes on (``cuda:LOCAL_RANK`` on CUDA).
    """

    def __init__(self, part: Shard, device: torch.device) -> None:
        self.rank, self.world, self.device = part.rank, part.world, device

    @property
    def main(self) -> bool:
        """Whether this is rank 0 (the one that writes)."""
        return self.rank == 0

    def share(self, batch_size: int) -> slice:
        """This process's contiguous rows of a global batch.

        Parameters
        ----------
        batch_size : int
            The global batch; a multiple of :attr:`world`.

        Returns
        -------
        slice
            Rows ``rank · b … (rank + 1) · b - 1`` with ``b = batch_size / world``.

        Raises
        ------
        ConfigError
            If ``batch_size`` does not divide among the processes.
        """
        size = check_global_batch(batch_size, self.world)
        return slice(self.rank * size, (self.rank + 1) * size)

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """``module`` in :class:`~torch.nn.parallel.DistributedDataParallel` (itself for one process).

        Parameters
        ----------
        module : torch.nn.Module
            The UNet on :attr:`device` (or its compiled form); its parameters stay the
            ones trained and saved: the wrapper only averages their gradients.

        Returns
        -------
        torch.nn.Module
            What the training step calls.
        """
        if self.world == 1:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(module, device_ids=ids)

    def mean(self, value: torch.Tensor) -> float:
        """The mean of a scalar over the processes (every process must ask together).

        Parameters
        ----------
        value : Tensor
            One number on :attr:`device`, e.g. this process's loss.

        Returns
        -------
        float
            The mean over the processes: for the loss of equal shares, the global batch's.
        """
        if self.world == 1:
            return float(value.detach())
        total = value.detach().float().reshape(1).clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return float(total) / self.world

    def any(self, flag: bool) -> bool:
        """Whether a flag is true on any process (every process must ask together).

        Parameters
        ----------
        flag : bool
            This process's flag (e.g. a stop signal received here).

        Returns
        -------
        bool
            True on every process when it is true on one.
        """
        if self.world == 1:
            return bool(flag)
        value = torch.tensor([1 if flag else 0], dtype=torch.int32, device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def on_main(self, work: Callable[[], object]) -> None:
        """Run ``work`` on rank 0 only while the others wait; a failure there fails every process.

        Parameters
        ----------
        work : callable
            Called without arguments on rank 0 (writing the model folder).

        Raises
        ------
        ModelError
            On the other ranks, when ``work`` failed on rank 0 (which raises its own error).
        """
        error: BaseException | None = None
        if self.main:
            try:
                work()
            except BaseException as exc:  # noqa: BLE001 - re-raised below, once the others have heard of it
                error = exc
        if self.any(error is not None) and error is None:
            raise ModelError("rank 0 could not write the model folder; see its error")
        if error is not None:
            raise error


def _device(part: Shard, choice: str) -> torch.device:
    device = resolve_device(choice)
    if part.world == 1 or device.type == "cpu":
        return device
    if device.type != "cuda":
        raise ConfigError(f"--device {choice}: several processes train on the CPU (gloo) or on CUDA (nccl), "
                          f"not on {device.type}; use --device cpu or cuda")
    device = torch.device("cuda", part.local_rank % torch.cuda.device_count())
    torch.cuda.set_device(device)
    return device


@contextmanager
def join(device: str) -> Iterator[Processes]:
    """This process among the training processes; the process group lives as long as the context.

    Parameters
    ----------
    device : str
        ``--device``: ``auto``, ``cpu``, ``cuda`` or ``mps`` (one process only). The
        environment gives ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (or ``SLURM_PROCID``,
        ``SLURM_NTASKS``, ``SLURM_LOCALID``) and, for several processes, ``MASTER_ADDR``
        and ``MASTER_PORT`` (``torchrun`` sets them all).

    Yields
    ------
    Processes
        One process (no group) unless the world is larger than 1. A group formed
        here is destroyed on leaving, also on an error or when the caller stops
        early; a group the caller had already formed is used and left alone.

    Raises
    ------
    ConfigError
        Bad rank variables, missing ``MASTER_ADDR``/``MASTER_PORT``, a device that
        cannot serve several processes, or a group of another size.
    """
    part = shard_from_env()
    processes = Processes(part, _device(part, device))
    if part.world == 1:
        yield processes
        return
    formed = not dist.is_initialized()
    if formed:
        missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
        if missing:
            raise ConfigError(f"{' and '.join(missing)} not set for {part.world} processes; torchrun sets them, "
                              "under srun export them (see docs/scaling.md)")
        dist.init_process_group("nccl" if processes.device.type == "cuda" else "gloo", init_method="env://",
                                rank=part.rank, world_size=part.world)
    elif dist.get_world_size() != part.world or dist.get_rank() != part.rank:
        raise ConfigError(f"the process group has rank {dist.get_rank()} of {dist.get_world_size()}, the "
                          f"environment says {part.rank} of {part.world}; form it from the same variables")
    try:
        yield processes
    finally:
        if formed and dist.is_initialized():
            dist.destroy_process_group()
