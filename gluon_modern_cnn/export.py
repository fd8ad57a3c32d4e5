"""Moved to :mod:`gluon_modern_cnn.tools.export`; this path, which the docs name, stays an alias of it."""
import sys

from .tools import export

sys.modules[__name__] = export
