"""``python -m gluon_modern_cnn``: the package's command line."""
import sys

from .cli import main

sys.exit(main())
