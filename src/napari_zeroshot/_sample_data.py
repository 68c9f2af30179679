"""npe2 sample data: the project's multi-contrast brain phantom, offline.

T1-, T2- and PD-weighted volumes and the tissue labels (0 background, 1 CSF, 2 GM,
3 WM) on one 2 mm grid, shipped inside ``zeroshot_core`` (see
:mod:`zeroshot_core.samples.sample_data` for provenance and licence). Layers carry the NIfTI
affine, so they overlay exactly and translations of them save on the same grid.
"""

from __future__ import annotations

from napari_zeroshot._reader import LayerData, volume_layer_data
from zeroshot_core.api import load_sample

#: Sample key → layer name.
SAMPLE_NAMES = {"t1": "phantom T1", "t2": "phantom T2", "pd": "phantom PD", "labels": "phantom labels"}


def _sample(key: str) -> LayerData:
    return volume_layer_data(load_sample(key), SAMPLE_NAMES[key], labels=key == "labels")


def phantom_all() -> list[LayerData]:
    """All four phantom volumes (PD, T2, T1 images and the labels)."""
    return [_sample(key) for key in ("t1", "t2", "pd", "labels")]


def phantom_t1() -> list[LayerData]:
    """The T1-weighted phantom."""
    return [_sample("t1")]


def phantom_t2() -> list[LayerData]:
    """The T2-weighted phantom."""
    return [_sample("t2")]


def phantom_pd() -> list[LayerData]:
    """The PD-weighted phantom (a typical translation source)."""
    return [_sample("pd")]


def phantom_labels() -> list[LayerData]:
    """The phantom's tissue labels (0 background, 1 CSF, 2 GM, 3 WM)."""
    return [_sample("labels")]
