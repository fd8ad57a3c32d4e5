"""Moved to :mod:`gluon_modern_cnn.tools.model_docs`; this path, which the docs name, stays an
alias of it and ``python -m gluon_modern_cnn.model_docs`` runs it."""
import sys

from .tools import model_docs

if __name__ == "__main__":
    sys.exit(model_docs.main())
sys.modules[__name__] = model_docs
