"""Build the optional fused CPU kernel of the LMI map; everything else is in pyproject.toml.

The extension is plain C (no numpy or torch headers). It is optional: where no C
compiler is available the build goes on without it and ``zeroshot_core.lmi.dispatch``
uses its tensor-op implementation, which gives the same maps, only slower on CPU.
"""

import sys

from setuptools import Extension, setup

FLAGS = [] if sys.platform == "win32" else ["-O3", "-std=c11", "-ffp-contract=fast", "-fno-math-errno", "-Wall", "-Wno-psabi"]

setup(ext_modules=[Extension("zeroshot_core.lmi._native", ["src/zeroshot_core/lmi/_native.c"],
                             extra_compile_args=FLAGS, optional=True)])
