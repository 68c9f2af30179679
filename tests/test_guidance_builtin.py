import numpy as np
import pytest
import torch

from zeroshot_core.errors import ConfigError
from zeroshot_core.guidance.contour import ContourGuidance, contour_map
from zeroshot_core.guidance.none import NoneGuidance
from zeroshot_core.plugins.manager import guidance_registry


def _disk_image(size=48):
    yy, xx = np.mgrid[:size, :size]
    image = -np.ones((size, size), np.float32)
    inside = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 3) ** 2
    image[inside] = 0.2
    image[(yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 8) ** 2] = 0.9
    return image, inside


def test_contour_channel_marks_the_outline_and_inner_edges():
    image, inside = _disk_image()
    channel = ContourGuidance().static_condition(image, inside)
    assert channel.shape == (1, 48, 48) and channel.dtype == np.float32
    assert set(np.unique(channel)) <= {-1.0, 1.0}
    edges = channel[0] > 0
    yy, xx = np.nonzero(edges)
    radius = np.hypot(yy - 24, xx - 24)
    assert (np.abs(radius - 16) < 2).sum() > 40, "outer outline present"
    assert (np.abs(radius - 6) < 2).sum() > 10, "inner edge present"
    assert not edges[24, 24] and not edges[2, 2]


def test_contour_ignores_what_the_mask_removes():
    image, inside = _disk_image()
    image[2:6, 2:46] = 1.0  # a bright "table" outside the mask
    masked = contour_map(image, inside, 1.0, 0.05, 0.15)
    assert (masked[:8] < 0).all()


def test_contour_depends_on_edges_not_on_intensity_mapping():
    image, inside = _disk_image()
    inverted = np.where(inside, -image, -1.0).astype(np.float32)  # other modality: contrast reversed
    a = ContourGuidance().static_condition(image, inside)[0] > 0
    b = ContourGuidance().static_condition(inverted, inside)[0] > 0
    assert (a & b).sum() / max(a.sum(), 1) > 0.6


def test_none_guidance_is_sdedit():
    guidance = NoneGuidance()
    assert guidance.condition_channels == 0 and guidance.strength == 0.5
    x = torch.zeros(2, 1, 8, 8)
    assert guidance.dynamic_condition(x, x).shape == (2, 0, 8, 8)
    assert not guidance.corrects_x0


@pytest.mark.parametrize("factory, kwargs", [(NoneGuidance, {"strength": 0}), (NoneGuidance, {"strength": 1.5}),
                                             (ContourGuidance, {"sigma": 0}),
                                             (ContourGuidance, {"low_threshold": 0.5, "high_threshold": 0.1})])
def test_invalid_parameters(factory, kwargs):
    with pytest.raises(ConfigError):
        factory(**kwargs)


def test_registry_builds_with_params_and_checks_compatibility():
    registry = guidance_registry()
    contour = registry.create("contour", sigma=2.0)
    assert contour.params()["sigma"] == 2.0
    assert registry.create("contour", **contour.params()).params() == contour.params()
    assert contour.compatibility_error("contour", contour.params(), 1) is None
    assert "trained with guidance 'none'" in contour.compatibility_error("none", {}, 0)
    assert "condition channel" in contour.compatibility_error("contour", contour.params(), 3)
