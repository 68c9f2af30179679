"""Which slices of a source a translation works on, checked before any model is loaded."""

from __future__ import annotations

from zeroshot_core.errors import ConfigError
from zeroshot_core.io.volume import Volume


def source_name(volume: Volume) -> str:
    return str(volume.path) if volume.path is not None else "the source"


def span(indices: tuple[int, ...]) -> str:
    return ",".join(map(str, indices)) if len(indices) <= 6 else f"{indices[0]}..{indices[-1]} ({len(indices)})"


def check_slices(volume: Volume, axis: int, slices: tuple[int, ...] | None) -> tuple[int, ...]:
    """The slices to translate along ``axis``, checked before any model is loaded.

    Parameters
    ----------
    volume : Volume
        Source, data (X, Y, Z).
    axis : int
        Slicing axis.
    slices : tuple of int or None
        Requested indices; ``None`` for all.

    Returns
    -------
    tuple of int

    Raises
    ------
    ConfigError
        If the selection is empty or an index is out of range.
    """
    count = volume.data.shape[axis]
    wanted = tuple(range(count)) if slices is None else tuple(slices)
    if not wanted:
        raise ConfigError(f"{source_name(volume)}: the slice selection is empty; give indices in 0..{count - 1} "
                          "(a range start:stop needs start < stop)")
    bad = [i for i in wanted if not 0 <= i < count]
    if bad:
        raise ConfigError(f"{source_name(volume)}: slice index {bad[0]} out of range 0..{count - 1} (axis {axis})")
    return wanted
