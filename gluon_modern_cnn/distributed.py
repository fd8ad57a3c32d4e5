"""Moved to :mod:`gluon_modern_cnn.runtime.distributed`; this path, which the docs name, stays an
alias of it and ``python -m gluon_modern_cnn.distributed`` runs the launcher."""
import sys

from .runtime import distributed

if __name__ == "__main__":
    from .cli import launch_main
    sys.exit(launch_main())
sys.modules[__name__] = distributed
