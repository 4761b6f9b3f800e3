"""The optional C++ kernels (recsys_rbm.accel.native); everything else is declared in pyproject.toml.

Without a compiler the build of the extension fails quietly (``optional=True``) and the package
runs on its torch path.
"""

import sys

from setuptools import Extension, setup

openmp = [] if sys.platform == "darwin" else ["-fopenmp"]  # Apple's clang has no OpenMP
setup(
    ext_modules=[
        Extension(
            "recsys_rbm.accel.native._kernels",
            sources=["recsys_rbm/accel/native/kernels.cpp"],
            language="c++",
            extra_compile_args=["-O3", "-std=c++17", *openmp],
            extra_link_args=openmp,
            optional=True,
        )
    ]
)
