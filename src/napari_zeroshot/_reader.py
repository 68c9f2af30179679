"""npe2 reader: NIfTI volumes (``.nii``, ``.nii.gz``) as layers on their physical grid.

Each file becomes one layer holding the voxels, reordered to the closest canonical
(RAS+) orientation so that napari can draw any scan, as ``(Z, Y, X)`` with the
reversed NIfTI affine (see :mod:`napari_zeroshot._layers`), world axes ``(S, A, R)``
in mm, and the file's NIfTI affine, header and the reordering in
``layer.metadata["nifti"]`` (the writer restores the file's voxel order). Integer files that
look like label maps (a label-like name, or at most :data:`MAX_LABEL_VALUES`
distinct values) open as ``Labels`` layers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import numpy as np

from napari_zeroshot._layers import volume_layer_kwargs, volume_to_layer_data
from napari_zeroshot._orient import canonical_volume
from zeroshot_core.api import NIFTI_SUFFIXES, Volume, load_volume

LayerData = tuple[Any, dict[str, Any], str]

#: An integer file with at most this many distinct values opens as labels.
MAX_LABEL_VALUES = 32
_LABEL_NAME = re.compile(r"(label|seg|mask|aseg|parc|atlas)", re.IGNORECASE)


def _is_nifti(path: str | Path) -> bool:
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def layer_name(path: str | Path) -> str:
    """File name without the ``.nii``/``.nii.gz`` suffix."""
    name = Path(path).name
    for suffix in sorted(NIFTI_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def napari_get_reader(path: str | list[str]) -> Callable[[Any], list[LayerData]] | None:
    """Return :func:`read_nifti` if every path is a NIfTI file, else ``None``.

    Parameters
    ----------
    path : str or list of str
        File path(s) napari asks about; matched on the ``.nii``/``.nii.gz`` suffix
        (case-insensitive) only, the files are not opened.
    """
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    if not paths or not all(_is_nifti(p) for p in paths):
        return None
    return read_nifti


def is_label_volume(volume: Volume, name: str = "") -> bool:
    """Whether a volume looks like a label map (integer voxels, few values or a label-like name).

    Parameters
    ----------
    volume : Volume
        Volume read from a file; only an integer on-disk dtype (from its header) with
        whole, non-negative voxel values can be a label map. ``header=None`` gives
        ``False``.
    name : str
        File name (``labels``, ``seg``, ``mask``… hint at a label map).
    """
    header = volume.header
    if header is None or not np.issubdtype(header.get_data_dtype(), np.integer):
        return False
    data = np.asarray(volume.data)
    if not np.array_equal(data, np.round(data)) or data.min() < 0:
        return False
    if _LABEL_NAME.search(name):
        return True
    return np.unique(data).size <= MAX_LABEL_VALUES


def volume_layer_data(volume: Volume, name: str, labels: bool | None = None) -> LayerData:
    """Layer data tuple of a volume.

    Parameters
    ----------
    volume : Volume
        Voxels ``(X, Y, Z)`` with their NIfTI affine (mm) and header, as in the file;
        the layer data is the reversed ``(Z, Y, X)`` array of the voxels reordered to
        the closest canonical orientation (:func:`napari_zeroshot._orient.canonical_volume`).
    name : str
        Layer name.
    labels : bool, optional
        Force a ``labels`` or ``image`` layer; default :func:`is_label_volume`.

    Returns
    -------
    (data, kwargs, layer_type)
    """
    data, _ = volume_to_layer_data(canonical_volume(volume)[0])
    kwargs = volume_layer_kwargs(volume, name)
    if labels if labels is not None else is_label_volume(volume, name):
        return np.ascontiguousarray(data).astype(np.int32), kwargs, "labels"
    kwargs["colormap"] = "gray"
    return np.ascontiguousarray(data), kwargs, "image"


def read_nifti(path: str | list[str]) -> list[LayerData]:
    """Read one or more NIfTI files.

    Parameters
    ----------
    path : str or list of str
        Path of a ``.nii``/``.nii.gz`` file, or several; each becomes one layer, in
        order.

    Returns
    -------
    list of (data, kwargs, layer_type)

    Raises
    ------
    zeroshot_core.errors.InputError
        Unreadable, 4-D or non-finite file (napari shows the message).
    """
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    return [volume_layer_data(load_volume(p), layer_name(p)) for p in paths]
