"""Guidance strategies: what extra information steers the target-only diffusion model.

Each strategy is a module with a ``zeroshot_register_guidance`` hook implementation.
"""

from zeroshot_core.guidance.base import Guidance

__all__ = ["Guidance"]
