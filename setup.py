"""Installs gluon-modern-cnn. CPU: pip install -e ".[cpu]"   GPU (CUDA 11.2): pip install -e ".[gpu]"."""
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
version = {}
for line in (ROOT / "gluon_modern_cnn" / "__init__.py").read_text().splitlines():
    if line.startswith("__version__"):
        exec(line, version)

setup(
    name="gluon-modern-cnn",
    version=version["__version__"],
    description=("The 'Modern Convolutional Neural Networks' chapter of Dive into Deep Learning "
                 "(MXNet/Gluon edition): models, training, benchmarks and checks against the book"),
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(include=["gluon_modern_cnn", "gluon_modern_cnn.*"]),
    package_data={"gluon_modern_cnn": ["py.typed"]},
    # 3.8 is the oldest Python with wheels of every pin below; 3.13 has no numpy 1.x, which MXNet
    # 1.9.1 needs. CI installs and tests the oldest and the newest (.ci/run).
    python_requires=">=3.8,<3.13",
    install_requires=[
        # MXNet 1.9.1 is built against the numpy 1.x C API; numpy 2 breaks it. Not pinned lower than
        # 1.23.5 and not pinned exactly: Python 3.12 has no wheel older than 1.26, which the package's
        # compatibility shim (gluon_modern_cnn/runtime/compat.py) makes work.
        "numpy>=1.23.5,<2",
        # Python 3.12 dropped distutils from the standard library; `import mxnet` still needs it.
        "setuptools",
        "matplotlib>=3.5",
        "tqdm>=4.60",
    ],
    extras_require={
        # The MXNet wheel is chosen by extra, never in install_requires: `mxnet` and `mxnet-cu112`
        # both install into site-packages/mxnet, so a GPU install must not also pull the CPU wheel.
        "cpu": ["mxnet==1.9.1"],  # 1.9.1 is the last MXNet release; the package targets its API.
        # CUDA 11.2 build: GPU code for compute capability 5.0 to 8.6 and no PTX, so it cannot run
        # on Hopper (9.0) or newer GPUs; the package detects that and falls back to the CPU.
        "gpu": ["mxnet-cu112==1.9.1"],
        # Exact pins: the last onnx/onnxruntime releases that still work with numpy 1.x and with
        # MXNet 1.9.1's ONNX exporter (newer ones pull numpy 2, which breaks MXNet). onnxruntime
        # 1.16.3 needs numpy >= 1.24.2, which the compatibility shim supports. Neither has a
        # Python 3.12 wheel (pip would compile onnx for an hour): there onnx 1.16.2 (which still has
        # the onnx.mapping module MXNet's exporter imports) and onnxruntime 1.18.1 (the first that
        # loads onnx 1.16's IR version 10; 1.17 refuses it), both working with numpy 1.26.
        "onnx": ["onnx==1.15.0; python_version < '3.12'",
                 "onnx==1.16.2; python_version >= '3.12'",
                 "onnxruntime==1.16.3; python_version < '3.12'",
                 "onnxruntime==1.18.1; python_version >= '3.12'"],
        # gluoncv 0.10.5.post0 is the last release that builds its model zoo with MXNet 1.9.1; the
        # tests verify the exercise models against it. The package never imports it (it brings
        # opencv, pandas and scipy, some 400 MB), so it is a test dependency only.
        # nbclient + ipykernel: the book's sections also run as real notebooks in a Jupyter kernel.
        "test": ["pytest>=7", "pytest-timeout>=2.1", "gluoncv==0.10.5.post0", "nbclient>=0.7",
                 "ipykernel>=6", "nbformat>=5"],
    },
    entry_points={"console_scripts": ["gluon-modern-cnn=gluon_modern_cnn.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.8",
        "Programming Language :: Python :: 3.9",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
