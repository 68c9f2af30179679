"""Atomic file writes: a temporary file in the target folder, renamed into place."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[Path], None], suffix: str | None = None) -> None:
    """Call ``write(tmp_path)`` and rename the temporary file onto ``path``.

    Parameters
    ----------
    path : Path
        Final file; its folder must exist. Readers never see a partial file: on any
        exception (or ``KeyboardInterrupt``) the temporary file is removed and
        ``path`` is left as it was. The file gets the permissions of a newly created
        file (``0o666`` less the umask), or keeps those of the file it replaces.
    write : callable
        Writes the whole content to the path it is given (same suffix as ``path``,
        so suffix-sniffing writers such as nibabel pick the right format).
    suffix : str, optional
        Suffix of the temporary file (e.g. the lower-case ``.nii.gz`` of
        ``NAME.NII.GZ``); default: that of ``path``.
    """
    path = Path(path)
    if suffix is None:
        suffix = "".join(path.suffixes[-2:]) if path.name.lower().endswith(".nii.gz") else path.suffix
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        mode = 0o666 & ~_current_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent or ".")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
