"""Moved to :mod:`gluon_modern_cnn.training.losses`; this path, which the docs name, stays an alias of it."""
import sys

from .training import losses

sys.modules[__name__] = losses
