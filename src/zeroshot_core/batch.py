"""Many inputs in one command: expanding them, naming outputs, resuming, sharding, the summary.

Torch-free and independent of what is done to each file: the command line gives a
function that processes one :class:`Job`, and :func:`run_jobs` runs it over a list,
skipping jobs whose outputs are already complete, recording each failure as one line and
going on with the next input.

Sharding over processes (``torchrun``, ``srun``) needs no process group: every process
expands the same inputs, sorts them, and takes every ``world``-th one from its ``rank``
(:func:`shard`; rank and world from :func:`zeroshot_core.processes.shard_from_env`); the
translation of a file depends only on the file and the options (the sampling noise is
seeded by the seed and the slice index), not on the process.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from zeroshot_core.errors import InputError, ZeroshotError
from zeroshot_core.io.atomic import atomic_write
from zeroshot_core.io.formats import check_output_folder, is_supported, load_volume
from zeroshot_core.processes import Shard, shard_from_env

__all__ = ["Job", "Shard", "Summary", "expand_inputs", "is_complete", "is_many", "output_folder", "plan_jobs",
           "run_jobs", "shard", "shard_from_env"]

_GLOB_CHARS = set("*?[")


def is_many(items: Sequence[str]) -> bool:
    """Whether the inputs ask for a batch: several, a folder, a glob pattern or an ``@list`` file.

    Examples
    --------
    >>> is_many(["head.nii.gz"]), is_many(["a.nii.gz", "b.nii.gz"]), is_many(["@list.txt"])
    (False, True, True)
    """
    if len(items) != 1:
        return True
    item = str(items[0])
    return item.startswith("@") or bool(_GLOB_CHARS & set(item)) or Path(item).is_dir()


def _read_list(list_file: str) -> list[str]:
    path = Path(list_file)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the list of inputs ({exc.strerror or type(exc).__name__}); "
                         "give a text file with one path per line") from None
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def expand_inputs(items: Sequence[str]) -> list[Path]:
    """The input files named by ``items``, sorted by path, each once.

    Parameters
    ----------
    items : sequence of str
        Files; folders (their supported image files, not recursive); glob patterns
        (``scans/*.nii.gz``, ``**`` recursive); ``@FILE``: a text file with one path,
        folder or pattern per line (blank lines and ``#`` comments skipped; relative
        paths are relative to the current folder).

    Returns
    -------
    list of Path
        Sorted by their path as text. A named file is kept even when it does not exist
        or has an unsupported suffix: it then fails alone when it is read.

    Raises
    ------
    InputError
        A folder or a pattern without a supported image file, an unreadable list, or
        no input at all.
    """
    found: list[Path] = []
    for item in items:
        item = str(item)
        if item.startswith("@"):
            listed = _read_list(item[1:])
            found += expand_inputs(listed) if listed else []
            continue
        if _GLOB_CHARS & set(item) and not Path(item).exists():
            matches = [Path(m) for m in glob.glob(item, recursive=True) if is_supported(m) and Path(m).is_file()]
            if not matches:
                raise InputError(f"{item}: the pattern matches no NIfTI/PNG/TIFF/NPY file; check the pattern")
            found += matches
        elif Path(item).is_dir():
            files = [p for p in Path(item).iterdir() if p.is_file() and is_supported(p)]
            if not files:
                raise InputError(f"{item}: the folder holds no NIfTI/PNG/TIFF/NPY file; give another folder")
            found += files
        else:
            found.append(Path(item))
    unique = {os.path.normpath(str(p)): p for p in found}
    if not unique:
        raise InputError("no input files given; name files, folders, patterns or @LIST")
    return [unique[key] for key in sorted(unique)]


def output_folder(folder: str | os.PathLike, option: str = "--out") -> Path:
    """Check an output folder up front and create it (with its parents) if missing.

    Raises
    ------
    InputError
        If it is a file, names an image (a file name where a folder is needed), or
        cannot be created or written to.
    """
    folder = Path(folder)
    if is_supported(folder) and not folder.is_dir():
        raise InputError(f"{folder}: {option} must name a folder when there are several inputs; "
                         "give a folder such as results/")
    check_output_folder(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{folder}: cannot create the folder ({exc.strerror or type(exc).__name__}); "
                         "choose a writable place") from None
    return folder


@dataclass(frozen=True)
class Job:
    """One input and the outputs it gets (each named as the input, in its output folder).

    Attributes
    ----------
    source : Path
    outputs : dict of str to Path
        Option (``"--out"``, ``"--labels"``) → the file to write.
    """

    source: Path
    outputs: dict[str, Path] = field(default_factory=dict)


def plan_jobs(sources: Sequence[Path], folders: dict[str, Path | None]) -> list[Job]:
    """One :class:`Job` per source; outputs keep the source's file name.

    Parameters
    ----------
    sources : sequence of Path
        From :func:`expand_inputs`.
    folders : dict
        Option → output folder (``None`` entries are skipped).

    Raises
    ------
    InputError
        Two inputs with the same file name (their outputs would collide), two options
        naming the same folder, or an output that would overwrite an input.
    """
    given = {name: Path(folder) for name, folder in folders.items() if folder is not None}
    seen_folders: dict[str, str] = {}
    for name, folder in given.items():
        key = os.path.realpath(folder)
        if key in seen_folders:
            raise InputError(f"{folder}: {name} and {seen_folders[key]} are the same folder; outputs keep the "
                             "input's name, so give them different folders")
        seen_folders[key] = name
    by_name: dict[str, Path] = {}
    inputs = {os.path.realpath(s) for s in sources}
    jobs = []
    for source in sources:
        if source.name in by_name:
            raise InputError(f"{source}: has the same file name as {by_name[source.name]}; their outputs would "
                             "collide; rename one or run them separately")
        by_name[source.name] = source
        outputs = {name: folder / source.name for name, folder in given.items()}
        for out in outputs.values():
            if os.path.realpath(out) in inputs:
                raise InputError(f"{out}: would overwrite an input; choose an output folder other than the inputs'")
        jobs.append(Job(source, outputs))
    return jobs


def shard(items: Sequence, part: Shard) -> list:
    """Every ``world``-th item from ``rank``: a deterministic split of a sorted list."""
    return list(items[part.rank::part.world])


def is_complete(path: Path, shape: tuple[int, ...]) -> bool:
    """Whether ``path`` reads back as an image of ``shape`` (an earlier run's finished output)."""
    if not path.is_file():
        return False
    try:
        return tuple(load_volume(path).data.shape) == tuple(shape)
    except ZeroshotError:
        return False


@dataclass
class Summary:
    """What a batch did: inputs done, skipped (complete outputs kept) and failed, with reasons."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """2 if any input failed, else 0."""
        return 2 if self.failed else 0

    def lines(self, prefix: str = "") -> list[str]:
        """The summary line, then one ``failed: FILE: reason`` line per failure."""
        head = f"{prefix}{len(self.done)} done, {len(self.skipped)} skipped, {len(self.failed)} failed"
        return [head] + [f"{prefix}failed: {source}: {reason}" for source, reason in self.failed]

    def as_dict(self, part: Shard) -> dict:
        return {"rank": part.rank, "world_size": part.world, "done": self.done, "skipped": self.skipped,
                "failed": [{"source": s, "reason": r} for s, r in self.failed], "exit_code": self.exit_code}

    def write_json(self, path: str | os.PathLike, part: Shard) -> Path:
        """Write the summary atomically; with several processes each writes ``NAME.rankR.json``."""
        path = Path(path)
        if part.world > 1:
            stem = path.name.removesuffix(".json")
            path = path.with_name(f"{stem}.rank{part.rank}.json")
        text = json.dumps(self.as_dict(part), indent=2) + "\n"
        try:
            atomic_write(path, lambda tmp: Path(tmp).write_text(text), suffix=".json")
        except OSError as exc:
            raise InputError(f"{path}: cannot write the summary ({exc.strerror or type(exc).__name__})") from None
        return path


def _reason(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text if isinstance(exc, ZeroshotError) else f"{type(exc).__name__}: {text}"[:300]


def run_jobs(jobs: Iterable[Job], work: Callable[[Job, int], None],
             complete: Callable[[Job], bool] | None = None,
             on_note: Callable[[str], None] | None = None) -> Summary:
    """Run ``work(job, number)`` for each job; one failing does not stop the others.

    Parameters
    ----------
    jobs : iterable of Job
    work : callable
        Processes one job and writes its outputs (atomically); ``number`` counts from 1.
    complete : callable, optional
        ``complete(job)`` → True when the job's outputs exist and are complete: it is
        skipped (``None``: nothing is skipped, as with ``--overwrite``).
    on_note : callable, optional
        Called with a one-line note for each skip and failure.

    Returns
    -------
    Summary

    Notes
    -----
    Exceptions that are not :class:`Exception` (Ctrl-C, a stop signal) end the batch.
    """
    summary = Summary()
    for number, job in enumerate(jobs, 1):
        name = str(job.source)
        try:
            if complete is not None and complete(job):
                summary.skipped.append(name)
                if on_note:
                    on_note(f"skipped {name}: its outputs are complete (--overwrite redoes them)")
                continue
            work(job, number)
        except Exception as exc:  # noqa: BLE001 - one input's failure is recorded, the others go on
            summary.failed.append((name, _reason(exc)))
            if on_note:
                on_note(f"failed {name}: {_reason(exc)}")
            continue
        summary.done.append(name)
    return summary
