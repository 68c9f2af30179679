"""The shipped brain phantom sample (T1w, T2w, PDw and labels on one 2 mm grid).

Built by ``scripts/make_sample.py`` from the MNI ICBM152 2009a tissue maps with
:mod:`zeroshot_core.samples.phantom`; read here with :mod:`importlib.resources`, without nilearn.
See ``data/LICENSE-phantom.txt`` for the licence notice and citations.

Examples
--------
>>> t1 = load_sample("t1")
>>> labels = load_sample("labels")
>>> t1.data.shape == labels.data.shape
True
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from zeroshot_core.errors import ConfigError, InputError
from zeroshot_core.io.formats import load_volume
from zeroshot_core.io.volume import Volume

__all__ = ["SAMPLE_FILES", "SAMPLE_KEYS", "sample_paths", "load_sample", "license_text"]

SAMPLE_FILES = {
    "t1": "brain_phantom_t1.nii.gz",
    "t2": "brain_phantom_t2.nii.gz",
    "pd": "brain_phantom_pd.nii.gz",
    "labels": "brain_phantom_labels.nii.gz",
    "license": "LICENSE-phantom.txt",
}
"""File names inside ``zeroshot_core/data``."""
SAMPLE_KEYS = ("t1", "t2", "pd", "labels")
"""Volumes :func:`load_sample` reads (labels: 0 background, 1 CSF, 2 GM, 3 WM)."""


def _data_dir() -> Path:
    return Path(str(resources.files("zeroshot_core") / "samples" / "data"))


def sample_paths() -> dict[str, Path]:
    """Paths of the shipped sample files, keyed as :data:`SAMPLE_FILES`.

    Returns
    -------
    dict of str to Path

    Raises
    ------
    InputError
        If a file is missing (a broken installation).

    Examples
    --------
    >>> sorted(sample_paths())
    ['labels', 'license', 'pd', 't1', 't2']
    """
    folder = _data_dir()
    paths = {key: folder / name for key, name in SAMPLE_FILES.items()}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise InputError(f"sample data missing ({', '.join(missing)}); reinstall napari-zeroshot")
    return paths


def load_sample(modality: str) -> Volume:
    """Read one volume of the sample.

    Parameters
    ----------
    modality : {"t1", "t2", "pd", "labels"}
        Weighting, or ``"labels"`` for the crisp tissue labels (float32 voxels holding
        0–3; cast with ``.astype(np.uint8)`` for a label layer).

    Returns
    -------
    Volume
        Float32 data on the sample's 2 mm grid; ``path`` is the shipped file (never
        overwritten by :func:`zeroshot_core.io.formats.save_volume`).

    Raises
    ------
    ConfigError
        Unknown modality.
    InputError
        Missing sample file.

    Examples
    --------
    >>> load_sample("pd").spacing
    (2.0, 2.0, 2.0)
    """
    key = str(modality).lower()
    if key not in SAMPLE_KEYS:
        raise ConfigError(f"unknown sample {modality!r}; use one of {', '.join(SAMPLE_KEYS)}")
    return load_volume(sample_paths()[key])


def license_text() -> str:
    """The licence notice and citations of the sample."""
    return sample_paths()["license"].read_text(encoding="utf-8")
