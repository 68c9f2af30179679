"""Averaging K draws per slice (``TranslateOptions.samples``)."""

import numpy as np
import pytest

from zeroshot_core import api
from zeroshot_core.cli.parser import build_parser
from zeroshot_core.diffusion.translation import TranslateOptions
from zeroshot_core.errors import ConfigError


def _options(**kwargs):
    return TranslateOptions(**{"steps": 3, "device": "cpu", "batch_size": 8, "slices": (44, 45), **kwargs})


def test_the_average_of_k_draws_is_the_mean_of_k_seeds(tiny_contour_model, t1_path):
    averaged = api.translate(t1_path, tiny_contour_model, options=_options(seed=5, samples=3)).data
    singles = [api.translate(t1_path, tiny_contour_model, options=_options(seed=5 + c)).data for c in range(3)]
    np.testing.assert_allclose(averaged, np.mean(singles, axis=0), rtol=0, atol=1e-4 * np.ptp(averaged))
    assert not np.allclose(averaged, singles[0], atol=1e-3 * np.ptp(averaged))  # the draws do differ


def test_the_average_does_not_depend_on_the_batch(tiny_contour_model, t1_path):
    together = api.translate(t1_path, tiny_contour_model, options=_options(samples=2, batch_size=8)).data
    one_by_one = api.translate(t1_path, tiny_contour_model, options=_options(samples=2, batch_size=1)).data
    np.testing.assert_allclose(together, one_by_one, rtol=0, atol=1e-4 * np.ptp(together))


@pytest.mark.parametrize("samples", [0, 65])
def test_samples_out_of_range_are_refused(samples):
    with pytest.raises(ConfigError, match="samples must be 1..64"):
        TranslateOptions(samples=samples)


def test_samples_and_consistency_are_refused_together():
    with pytest.raises(ConfigError, match="use one or the other"):
        TranslateOptions(samples=2, consistency=api.ConsistencyParams())


def test_the_cli_option_reaches_the_options():
    from zeroshot_core.cli.commands import _translate_options

    args = build_parser().parse_args(["translate", "in.nii.gz", "--out", "out.nii.gz", "--samples", "4"])
    assert _translate_options(args).samples == 4
