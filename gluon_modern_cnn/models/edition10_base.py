"""The model side of the 1.0 edition's object-oriented API (D2L 1.0, sections 3.2 and 4.3), which
its chapter 8 networks (:mod:`gluon_modern_cnn.models.edition10`) derive from:
:func:`add_to_class`, :class:`HyperParameters`, :class:`Module` and :class:`Classifier`.

Its training side (``ProgressBoard``, ``Trainer``, the data modules) is
:mod:`gluon_modern_cnn.edition10`, above ``models/``; ``import gluon_modern_cnn as d2l`` gives
both, and ``d2l.Module`` / ``d2l.Classifier`` are these classes.
"""
from __future__ import annotations

import inspect

import mxnet as mx
from mxnet import gluon, np
from mxnet.gluon import nn

from ..runtime.mxnet_internals import is_uninitialized

__all__ = ["add_to_class", "HyperParameters", "Module", "Classifier"]


def add_to_class(Class):
    """Register the decorated function as a method of ``Class`` (1.0 section 3.2.1)."""
    def wrapper(obj):
        setattr(Class, obj.__name__, obj)
    return wrapper


class HyperParameters:
    """The base class of hyperparameters (1.0 section 3.2.1)."""

    def save_hyperparameters(self, ignore=()):
        """Save the calling constructor's arguments as attributes and in ``self.hparams``.

        Exactly the arguments of the function that calls it (its parameters, ``*args`` and
        ``**kwargs``), not other local variables it may have defined before the call; names in
        ``ignore``, ``self`` and names starting with ``_`` are left out.
        """
        frame = inspect.currentframe().f_back
        try:
            info = inspect.getargvalues(frame)
            names = list(info.args)
            if info.varargs:
                names.append(info.varargs)
            hparams = {k: info.locals[k] for k in names}
            if info.keywords:
                hparams.update(info.locals[info.keywords])
        finally:
            del frame
        skip = set(ignore) | {"self"}
        self.hparams = {k: v for k, v in hparams.items()
                        if k not in skip and not k.startswith("_")}
        for k, v in self.hparams.items():
            setattr(self, k, v)


class Module(nn.Block, HyperParameters):
    """The base class of models (1.0 section 3.2.2): an ``nn.Block`` that knows its loss, its
    optimizer and reports its progress (``plot``) to the trainer that trains it.

    Args:
        plot_train_per_epoch: how many training-loss points the board draws per epoch.
        plot_valid_per_epoch: how many validation points the board draws per epoch.
    """

    #: The class of ``self.board`` (1.0's ``Module.__init__`` does ``self.board =
    #: ProgressBoard()``). The board draws with matplotlib, on the training side:
    #: ``gluon_modern_cnn.edition10`` sets its ``ProgressBoard`` here as the package loads, so
    #: that ``models/`` imports nothing above it.
    board_class = None

    def __init__(self, plot_train_per_epoch=2, plot_valid_per_epoch=1):
        super().__init__()
        self.save_hyperparameters()
        self.board = self.board_class()

    def initialize(self, init=mx.init.Uniform(), ctx=None, verbose=False, force_reinit=False):
        """Gluon's ``initialize``, except that parameters the model already initialized (the 1.0
        networks initialize themselves in their constructors) are kept without MXNet's warning
        per parameter, unless ``force_reinit``."""
        params = self.collect_params()
        if verbose:
            init.set_verbosity(verbose=verbose)
        for param in params.values():
            if force_reinit or is_uninitialized(param):
                param.initialize(None, ctx, init, force_reinit=force_reinit)

    def loss(self, y_hat, y):
        raise NotImplementedError(f"{type(self).__name__} defines no loss(); derive the model "
                                  f"from d2l.Classifier or define loss(self, y_hat, y)")

    def forward(self, X):
        if not hasattr(self, 'net'):
            raise AttributeError(f"{type(self).__name__} has no self.net: build the network in "
                                 f"__init__ (self.net = nn.Sequential() ...) or override forward")
        return self.net(X)

    def plot(self, key, value, train):
        """Plot a point in animation: the trainer training this model draws it on
        ``self.board`` where the run is and keeps it for its history."""
        if not hasattr(self, 'trainer'):
            raise RuntimeError("plot() needs a trainer: train the model with "
                               "d2l.Trainer(...).fit(model, data)")
        self.trainer.plot(key, value, train)

    def training_step(self, batch):
        l = self.loss(self(*batch[:-1]), batch[-1])
        self.plot('loss', l, train=True)
        return l

    def validation_step(self, batch):
        l = self.loss(self(*batch[:-1]), batch[-1])
        self.plot('loss', l, train=False)

    def configure_optimizers(self):
        """Minibatch SGD with ``self.lr`` on every parameter (1.0 section 4.3)."""
        return gluon.Trainer(self.collect_params(), 'sgd', {'learning_rate': self.lr})


class Classifier(Module):
    """The base class of classification models (1.0 section 4.3)."""

    def validation_step(self, batch):
        Y_hat = self(*batch[:-1])
        self.plot('loss', self.loss(Y_hat, batch[-1]), train=False)
        self.plot('acc', self.accuracy(Y_hat, batch[-1]), train=False)

    def accuracy(self, Y_hat, Y, averaged=True):
        """The fraction (``averaged``) or the indicators of correct predictions."""
        Y_hat = Y_hat.reshape((-1, Y_hat.shape[-1]))
        preds = Y_hat.argmax(axis=1).astype(Y.dtype)
        compare = (preds == Y.reshape(-1)).astype(np.float32)
        return compare.mean() if averaged else compare

    def loss(self, Y_hat, Y, averaged=True):
        """Softmax cross-entropy, averaged over the batch (1.0 section 4.5)."""
        Y_hat = Y_hat.reshape((-1, Y_hat.shape[-1]))
        Y = Y.reshape((-1,))
        l = gluon.loss.SoftmaxCrossEntropyLoss()(Y_hat, Y)
        return l.mean() if averaged else l

    def layer_summary(self, X_shape):
        """Print each top-level layer's class and output shape for an input of ``X_shape``
        (1.0 section 7.6)."""
        X = np.random.randn(*X_shape)
        for layer in self.net:
            X = layer(X)
            print(layer.__class__.__name__, 'output shape:\t', X.shape)
