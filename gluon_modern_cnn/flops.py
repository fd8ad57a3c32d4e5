"""Moved to :mod:`gluon_modern_cnn.tools.flops`; this path, which the docs name, stays an alias of it."""
import sys

from .tools import flops

sys.modules[__name__] = flops
