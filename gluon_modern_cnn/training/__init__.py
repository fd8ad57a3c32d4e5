"""Training: the book's ``train_ch6`` loop and its callbacks (``loop``), parameter files and
checkpoints (``checkpoint``), the training curve (``plotting``) and progress bar (``progress``),
losses, mixed precision, a registered model end to end (``experiment``), trained parameters in use
(``inference``) and a section's results beside the book's (``reproduce``).

``gluon_modern_cnn.training`` itself is the loop's documented import path
(``from gluon_modern_cnn.training import fit``); it re-exports :mod:`.loop`.
"""
from .loop import *  # noqa: F401,F403
from .loop import __all__  # noqa: F401
