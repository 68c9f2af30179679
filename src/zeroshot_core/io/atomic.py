"""Atomic file writes: a temporary file in the target folder, renamed into place."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` and rename the temporary file onto ``path``.

    Parameters
    ----------
    path : Path
        Final file; its folder must exist. Readers never see a partial file: on any
        exception (or ``KeyboardInterrupt``) the temporary file is removed and
        ``path`` is left as it was.
    write : callable
        Writes the whole content to the path it is given (same suffix as ``path``,
        so suffix-sniffing writers such as nibabel pick the right format).
    """
    path = Path(path)
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".nii.gz") else path.suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent or ".")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
