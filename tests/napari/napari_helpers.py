"""Helpers shared by the napari plugin tests (importable: pytest puts this folder on the path)."""

from __future__ import annotations

from typing import Any

import numpy as np


def oblique_affine() -> np.ndarray:
    """An anisotropic, rotated, non-RAS affine (a hard case for axis handling)."""
    angle = np.deg2rad(12.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([-0.9, 1.1, 3.0])
    affine[:3, 3] = [40.0, -12.5, 7.25]
    return affine


def messages(records: list[Any]) -> list[str]:
    """Plain messages of notification records."""
    return [str(record.message) for record in records]
