"""npe2 reader: NIfTI volumes (``.nii``, ``.nii.gz``) as layers on their physical grid.

Each file becomes one layer holding the voxels, reordered to the closest canonical
(RAS+) orientation so that napari can draw any scan, as ``(Z, Y, X)`` with the
reversed NIfTI affine (see :mod:`napari_zeroshot._layers`), world axes ``(S, A, R)``
in mm, and the file's NIfTI affine, header and the reordering in
``layer.metadata["nifti"]`` (the writer restores the file's voxel order).

A file opens as a ``Labels`` layer only when it says it is a label map
(:func:`label_evidence`): the NIfTI intent code ``NIFTI_INTENT_LABEL`` or
``NIFTI_INTENT_NEURONAME``, a BIDS ``_dseg``/``_label``/``_mask`` suffix, or
integer voxels with a label lookup table beside the file (BIDS ``<name>.tsv`` with
an ``index`` column). Neither a word inside the name (``…_masked``) nor few grey
levels make an image a label map. napari's layer context menu (*Convert to Labels*
/ *Convert to Image*) switches a layer the other way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from napari_zeroshot._layers import volume_layer_kwargs, volume_to_layer_data
from napari_zeroshot._orient import canonical_volume
from zeroshot_core.api import NIFTI_SUFFIXES, Volume, load_volume

LayerData = tuple[Any, dict[str, Any], str]

#: NIfTI intent codes of label maps (``NIFTI_INTENT_LABEL``, ``NIFTI_INTENT_NEURONAME``).
LABEL_INTENTS = {1002: "NIFTI_INTENT_LABEL", 1003: "NIFTI_INTENT_NEURONAME"}
#: BIDS suffixes of label maps (the last ``_`` entity of the file name).
LABEL_SUFFIXES = ("dseg", "label", "mask")

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


def _lookup_table(path: Path | None) -> Path | None:
    """The BIDS label lookup table beside ``path`` (``<name>.tsv`` with an ``index`` column)."""
    if path is None:
        return None
    table = path.with_name(f"{layer_name(path)}.tsv")
    try:
        with table.open(encoding="utf-8") as handle:
            columns = handle.readline().strip().split("\t")
    except OSError:
        return None
    return table if "index" in columns else None


def label_evidence(volume: Volume, name: str = "") -> str | None:
    """What in the file says it is a label map, or ``None`` for a grey-level image.

    Parameters
    ----------
    volume : Volume
        Volume read from a file (its header and path are consulted). Only whole,
        non-negative voxel values can be labels.
    name : str
        File name without the NIfTI suffix; its last ``_`` entity is compared with
        :data:`LABEL_SUFFIXES` (BIDS). Other words in it are ignored.

    Returns
    -------
    str or None
        A short reason (``"intent code NIFTI_INTENT_LABEL"``, ``"BIDS suffix _dseg"``,
        ``"lookup table x.tsv"``), or ``None``.
    """
    header = volume.header
    data = np.asarray(volume.data)
    if data.size == 0 or not np.array_equal(data, np.round(data)) or data.min() < 0:
        return None
    intent = int(header.get("intent_code", 0)) if header is not None and "intent_code" in header else 0
    if intent in LABEL_INTENTS:
        return f"intent code {LABEL_INTENTS[intent]}"
    integer = header is not None and np.issubdtype(header.get_data_dtype(), np.integer)
    if not integer:
        return None
    suffix = name.rsplit("_", 1)[-1].lower() if "_" in name else ""
    if suffix in LABEL_SUFFIXES:
        return f"BIDS suffix _{suffix}"
    table = _lookup_table(Path(volume.path) if volume.path else None)
    return f"lookup table {table.name}" if table is not None else None


def is_label_volume(volume: Volume, name: str = "") -> bool:
    """Whether the file says ``volume`` is a label map (:func:`label_evidence`)."""
    return label_evidence(volume, name) is not None


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
