"""``none`` guidance: SDEdit (Meng et al., 2022).

No condition channel: sampling starts from the source image noised to ``strength``
(default 0.5 of the schedule) and an unconditional target model denoises it, which
assumes the two modalities respond to noise alike.
"""

from __future__ import annotations

from typing import Any

from zeroshot_core.errors import ConfigError
from zeroshot_core.guidance.base import Guidance
from zeroshot_core.plugins.hookspecs import hookimpl


class NoneGuidance(Guidance):
    """SDEdit: perturb the source to ``strength`` and denoise.

    Parameters
    ----------
    strength : float
        Fraction of the noise schedule to start from, in (0, 1]; 1.0 ignores the
        source entirely (unconditional sampling).
    """

    name = "none"

    def __init__(self, strength: float = 0.5) -> None:
        if not 0.0 < float(strength) <= 1.0:
            raise ConfigError(f"strength must be in (0, 1], got {strength}")
        self.strength = float(strength)

    def params(self) -> dict[str, Any]:
        return {"strength": self.strength}


@hookimpl
def zeroshot_register_guidance(register) -> None:
    register("none", NoneGuidance)
