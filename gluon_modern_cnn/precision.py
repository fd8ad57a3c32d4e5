"""Moved to :mod:`gluon_modern_cnn.training.precision`; this path, which the docs name, stays an alias of it."""
import sys

from .training import precision

sys.modules[__name__] = precision
