"""The 1.0 edition's object-oriented API (D2L 1.0, sections 3.2 and 4.x), which its chapter 8
("Modern Convolutional Neural Networks", sections 8.1-8.8) builds every model and run on.

``import gluon_modern_cnn as d2l`` gives the names the 1.0 chapter's MXNet cells reach:
:class:`HyperParameters`, :class:`ProgressBoard`, :class:`Module`, :class:`DataModule`,
:class:`FashionMNIST` (a data module), :class:`Trainer`, :class:`Classifier`, :func:`add_to_class`
and the small aliases (``d2l.randn``, ``d2l.reshape``, ...).

:class:`Trainer` does not loop itself: ``Trainer.fit`` runs the package's one training loop
(:func:`gluon_modern_cnn.training.fit`), handing it the model's ``training_step`` and
``validation_step``; devices, the unusable-GPU fallback, Ctrl-C handling and the per-epoch
:class:`~gluon_modern_cnn.training.History` (``trainer.history``) come from there.
"""
from __future__ import annotations

import collections
import inspect
import json
import math
import os
from pathlib import Path
from typing import Optional

import mxnet as mx
from mxnet import autograd, gluon, np, npx
from mxnet.gluon import nn

from .data import fashion_mnist_loader
from .runtime.devices import try_all_gpus
from .training import plotting
from .training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .training.loop import Callback, History, _check_output_width, fit

__all__ = ["add_to_class", "HyperParameters", "ProgressBoard", "Module", "DataModule",
           "FashionMNIST", "Trainer", "Classifier", "cpu", "gpu", "ALIASES"]


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


class ProgressBoard(HyperParameters):
    """The board that plots data points in animation (1.0 section 3.2.2).

    In a Jupyter kernel the figure is shown inline and replaced in place (like the ``Animator``);
    elsewhere nothing is shown, and with ``path=`` (or ``Trainer.fit(..., figure=...)``) the figure
    is written to that PNG/SVG/PDF file as training goes and when it ends. ``save(path)`` writes
    it at any time.
    """

    def __init__(self, xlabel=None, ylabel=None, xlim=None, ylim=None, xscale='linear',
                 yscale='linear', ls=('-', '--', '-.', ':'), colors=('C0', 'C1', 'C2', 'C3'),
                 fig=None, axes=None, figsize=(3.5, 2.5), display=True, *, path=None):
        self.save_hyperparameters(ignore=["path"])
        self.path = path
        self._animator = None

    def draw(self, x, y, label, every_n=1):
        """Add the point ``(x, y)`` to the line ``label``; every ``every_n`` points are averaged
        into one drawn point, as in the book."""
        Point = collections.namedtuple('Point', ['x', 'y'])
        if not hasattr(self, 'raw_points'):
            self.raw_points = collections.OrderedDict()
            self.data = collections.OrderedDict()
        if label not in self.raw_points:
            self.raw_points[label] = []
            self.data[label] = []
        points = self.raw_points[label]
        points.append(Point(float(x), float(y)))
        if len(points) != max(int(every_n), 1):
            return
        self.data[label].append(Point(sum(p.x for p in points) / len(points),
                                      sum(p.y for p in points) / len(points)))
        points.clear()
        if self.display:
            self._render()

    def _canvas(self) -> plotting.Animator:
        # One Animator per board: it owns the figure, the inline display and the file writing.
        if self._animator is None or self._animator.path != self._target():
            self._animator = plotting.Animator(
                figsize=self.figsize, path=self._target(), overwrite=True,
                display=plotting.in_jupyter_kernel())
        return self._animator

    def _target(self):
        return None if self.path is None else os.fspath(self.path)

    def _render(self) -> None:
        canvas = self._canvas()
        ax = canvas.axes[0]
        ax.cla()
        lines = []
        for (label, points), ls, color in zip(self.data.items(), self.ls, self.colors):
            lines.append(ax.plot([p.x for p in points], [p.y for p in points], linestyle=ls,
                                 color=color, label=label)[0])
        if self.xlim:
            ax.set_xlim(self.xlim)
        if self.ylim:
            ax.set_ylim(self.ylim)
        ax.set_xlabel(self.xlabel or 'x')
        ax.set_ylabel(self.ylabel or '')
        ax.set_xscale(self.xscale)
        ax.set_yscale(self.yscale)
        ax.grid(True)
        if lines:
            ax.legend(lines, [line.get_label() for line in lines])
        if canvas.display:
            canvas._show()
        if canvas.path is not None:
            canvas._write(canvas.path)

    def flush(self) -> None:
        """Draw every point so far (and write the file, if the board has a path)."""
        if getattr(self, 'data', None):
            self._render()

    def save(self, path) -> str:
        """Write the figure to ``path`` (``.png``, ``.svg`` or ``.pdf``) and return it."""
        self.path = path
        self._render()
        return os.fspath(path)


class Module(nn.Block, HyperParameters):
    """The base class of models (1.0 section 3.2.2): an ``nn.Block`` that knows its loss, its
    optimizer and how to report its progress."""

    def __init__(self, plot_train_per_epoch=2, plot_valid_per_epoch=1):
        super().__init__()
        self.save_hyperparameters()
        self.board = ProgressBoard()

    def initialize(self, init=mx.init.Uniform(), ctx=None, verbose=False, force_reinit=False):
        """Gluon's ``initialize``, except that parameters the model already initialized (the 1.0
        networks initialize themselves in their constructors) are kept without MXNet's warning
        per parameter, unless ``force_reinit``."""
        params = self.collect_params()
        if verbose:
            init.set_verbosity(verbose=verbose)
        for param in params.values():
            if force_reinit or (param._data is None and not param._deferred_init):
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
        """Plot a point in animation (and report it to the trainer's history)."""
        if not hasattr(self, 'trainer'):
            raise RuntimeError("plot() needs a trainer: train the model with "
                               "d2l.Trainer(...).fit(model, data)")
        self.board.xlabel = 'epoch'
        if train:
            x = self.trainer.train_batch_idx / self.trainer.num_train_batches
            n = self.trainer.num_train_batches / self.plot_train_per_epoch
        else:
            x = self.trainer.epoch + 1
            n = self.trainer.num_val_batches / self.plot_valid_per_epoch
        value = float(value.asnumpy()) if hasattr(value, 'asnumpy') else float(value)
        self.trainer.observe(key, value, train)
        self.board.draw(x, value, ('train_' if train else 'val_') + key, every_n=int(n))

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


class DataModule(HyperParameters):
    """The base class of data (1.0 section 3.2.3)."""

    def __init__(self, root='../data', num_workers=4):
        self.save_hyperparameters()

    def get_dataloader(self, train):
        raise NotImplementedError

    def train_dataloader(self):
        return self.get_dataloader(train=True)

    def val_dataloader(self):
        return self.get_dataloader(train=False)


def _check_resize(resize):
    """The book's ``resize``: an int or a ``(height, width)`` pair of positive ints."""
    pair = (resize, resize) if isinstance(resize, int) and not isinstance(resize, bool) else resize
    if (not isinstance(pair, (tuple, list)) or len(pair) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in pair)):
        raise ValueError(f"resize must be a positive int or a (height, width) pair of positive "
                         f"ints such as (96, 96); got {resize!r}")
    return tuple(pair)


class FashionMNIST(DataModule):
    """The Fashion-MNIST dataset as a data module (1.0 section 4.2).

    Batches are what the book's ``Resize(resize)`` + ``ToTensor()`` give: ``(X, y)`` with X
    float32 ``(batch, 1, height, width)`` in [0, 1] and y int32. Square sizes come from the
    package's batch-at-a-time loader (bit-identical, faster); other shapes from the book's
    per-sample pipeline. ``root`` is where the files are (default: MXNet's dataset folder, as the
    book's ``gluon.data.vision.FashionMNIST``).
    """

    def __init__(self, batch_size=64, resize=(28, 28), *, root=None):
        super().__init__()
        self.save_hyperparameters()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
        self._size = _check_resize(resize)

    def text_labels(self, indices):
        """Return text labels."""
        labels = ['t-shirt', 'trouser', 'pullover', 'dress', 'coat',
                  'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot']
        return [labels[int(i)] for i in indices]

    def get_dataloader(self, train):
        square = self._size[0] == self._size[1]
        return fashion_mnist_loader(train, self.batch_size,
                                    None if self._size == (28, 28) else self._size, fast=square,
                                    root=self.root, num_workers=None if square else 0)


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


def cpu():
    """The CPU device (1.0 section 6.7)."""
    return npx.cpu()


def gpu(i=0):
    """The ``i``-th GPU device (1.0 section 6.7)."""
    return npx.gpu(i)


class _TrainerProgress(Callback):
    """Keeps the 1.0 Trainer's counters (``epoch``) in step with the loop, and writes the board."""

    def __init__(self, trainer: "Trainer"):
        self.trainer = trainer

    def on_epoch_begin(self, state):
        self.trainer.epoch = state.epoch

    def on_train_end(self, state):
        self.trainer.model.board.flush()


class _TrainerCheckpoint(Callback):
    """After every epoch, the 1.0 Trainer's run in one file (``checkpoint.save_checkpoint``): the
    model's parameters, the optimizer's state, the history and the board's points; in a resumed
    run it first restores the optimizer's state."""

    def __init__(self, trainer: "Trainer", path: Path, resume_from=None):
        self.trainer, self.path, self.resume_from = trainer, path, resume_from

    def on_train_begin(self, state):
        if self.resume_from is not None:
            self.resume_from.load_trainer_states(state.trainer, net=state.net)

    def on_epoch_end(self, state):
        model = self.trainer.model
        board = {label: [list(p) for p in points]
                 for label, points in getattr(model.board, "data", {}).items()}
        save_checkpoint(self.path, net=model, trainer=state.trainer, model=_model_name(model),
                        epoch=state.epoch + 1, settings=_json_safe({
                            "trainer": self.trainer.hparams, "model": model.hparams}),
                        history=state.history, devices=[str(d) for d in state.devices],
                        extra={"board": board, "train_batch_idx": self.trainer.train_batch_idx})


def _model_name(model) -> str:
    return f"{type(model).__module__}.{type(model).__qualname__}"


def _json_safe(value):
    # Hyperparameters may hold anything (an architecture tuple, an initializer): kept as text then.
    return json.loads(json.dumps(value, default=repr))


class Trainer(HyperParameters):
    """The base class for training models with data (1.0 sections 3.2.4 and 6.7).

    ``fit(model, data)`` trains for ``max_epochs`` on the first of ``num_gpus`` usable GPUs (the
    CPU when there is none, as the book's ``Trainer`` does), clipping the gradient norm to
    ``gradient_clip_val`` when it is positive. It runs the package's training loop and keeps its
    per-epoch results in ``self.history`` (validation accuracy as ``test_acc``).
    """

    def __init__(self, max_epochs, num_gpus=0, gradient_clip_val=0):
        self.save_hyperparameters()
        for name, value, low in (("max_epochs", max_epochs, 1), ("num_gpus", num_gpus, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}; got {value!r}")
        if not isinstance(gradient_clip_val, (int, float)) or gradient_clip_val < 0:
            raise ValueError(f"gradient_clip_val must be a number >= 0 (0: no clipping); "
                             f"got {gradient_clip_val!r}")
        self.gpus = [d for d in try_all_gpus() if d.device_type == 'gpu'][:num_gpus]
        self.history: Optional[History] = None

    def prepare_data(self, data):
        if not (hasattr(data, 'train_dataloader') and hasattr(data, 'val_dataloader')):
            raise TypeError(f"Trainer.fit(model, data) needs a d2l.DataModule such as "
                            f"d2l.FashionMNIST(batch_size=128) as data; got {type(data).__name__}")
        self.train_dataloader = data.train_dataloader()
        self.val_dataloader = data.val_dataloader()
        self.num_train_batches = len(self.train_dataloader)
        self.num_val_batches = (len(self.val_dataloader)
                                if self.val_dataloader is not None else 0)

    def prepare_model(self, model):
        if not isinstance(model, Module):
            raise TypeError(
                f"Trainer.fit(model, data) needs a d2l.Module (a class derived from d2l.Module "
                f"or d2l.Classifier, with training_step and configure_optimizers); got "
                f"{type(model).__module__}.{type(model).__name__}. Wrap a Gluon network: "
                f"class Net(d2l.Classifier) with self.net = your network and self.lr set.")
        model.trainer = self
        model.board.xlim = [0, self.max_epochs]
        if self.gpus:
            model.collect_params().reset_ctx(self.gpus[0])
        self.model = model

    def prepare_batch(self, batch):
        device = self.gpus[0] if self.gpus else mx.cpu()
        return [a.as_in_ctx(device) for a in batch]

    def observe(self, key, value, train):
        """Called by ``Module.plot`` with every reported value (the history's source)."""
        self._observed[(key, train)].append(value)

    def fit(self, model, data, *, figure=None, checkpoint=None):
        """Train ``model`` on ``data`` for ``max_epochs``. ``figure``: a file the progress board
        is written to (useful headless; a notebook shows it inline). ``checkpoint``: a file the
        run is saved to after every epoch (parameters, optimizer state, history, the board's
        points; atomically); when it already holds a run of this model class, ``fit`` continues
        from it to ``max_epochs`` (the package's addition; the book's ``fit`` has neither)."""
        self.prepare_data(data)
        self.prepare_model(model)
        if figure is not None:
            model.board.path = figure
        self.optim = model.configure_optimizers()
        self.epoch = 0
        self.train_batch_idx = 0
        self.val_batch_idx = 0
        self._observed = collections.defaultdict(list)
        device = self.gpus[0] if self.gpus else mx.cpu()
        callbacks = [_TrainerProgress(self)]
        start_epoch, history = 0, None
        if checkpoint is not None:
            checkpoint = Path(checkpoint)
            resume_from = self._resume(model, checkpoint) if checkpoint.exists() else None
            if resume_from is not None:
                start_epoch, history = resume_from.epoch, resume_from.history
            callbacks.append(_TrainerCheckpoint(self, checkpoint, resume_from))
        self.history = fit(model, self.train_dataloader, self.val_dataloader, self.max_epochs,
                           trainer=self.optim, device=device, initialize=False,
                           start_epoch=start_epoch, history=history,
                           step_f=self._training_step, evaluate_f=self._validate,
                           callbacks=callbacks)

    def _resume(self, model, path: Path):
        """Load the checkpoint ``path`` into ``model`` and the board; returns it."""
        saved = load_checkpoint(path)
        if saved.model != _model_name(model):
            raise CheckpointError(f"{path} holds a run of {saved.model}, not of "
                                  f"{_model_name(model)}; pass another checkpoint file")
        if saved.epoch > self.max_epochs:
            raise CheckpointError(f"{path} holds {saved.epoch} finished epochs, more than "
                                  f"max_epochs={self.max_epochs}; raise max_epochs to train on")
        # Parameters with deferred shapes get them from one forward pass (prediction mode: the
        # batch norm statistics stay untouched), then take the saved values.
        model(*self.prepare_batch(next(iter(self.val_dataloader or self.train_dataloader)))[:-1])
        saved.load_parameters(model)
        board = saved.extra.get("board", {})
        if board:
            Point = collections.namedtuple('Point', ['x', 'y'])
            model.board.raw_points = collections.OrderedDict((k, []) for k in board)
            model.board.data = collections.OrderedDict(
                (k, [Point(*p) for p in v]) for k, v in board.items())
        self.train_batch_idx = int(saved.extra.get("train_batch_idx", 0))
        return saved

    def _training_step(self, net, trainer, loss, X, y, devices, *, check_shapes=False, **_):
        # The book's fit_epoch body for one batch; the loop around it is training.fit's.
        batch = self.prepare_batch([X, y])
        if check_shapes and isinstance(self.model, Classifier):
            # Once: a classifier with fewer outputs than classes would train without an error.
            Y_hat = self.model(*batch[:-1])
            _check_output_width(Y_hat.reshape((-1, Y_hat.shape[-1])), batch[-1])
        with autograd.record():
            l = self.model.training_step(batch)
        l.backward()
        if self.gradient_clip_val > 0:
            self.clip_gradients(self.gradient_clip_val, self.model)
        self.optim.step(1)
        self.train_batch_idx += 1
        return float(l) * X.shape[0], math.nan   # training_step reports no accuracy

    def _validate(self, net, data_iter, device):
        if data_iter is None:
            return math.nan
        self._observed[('acc', False)] = []
        for batch in data_iter:
            self.model.validation_step(self.prepare_batch(batch))
            self.val_batch_idx += 1
        accs = self._observed[('acc', False)]
        return sum(accs) / len(accs) if accs else math.nan

    def clip_gradients(self, grad_clip_val, model):
        """Scale the gradients so that their global norm is at most ``grad_clip_val``."""
        params = [p.data() for p in model.collect_params().values() if p.grad_req != 'null']
        norm = math.sqrt(sum(float((p.grad ** 2).sum()) for p in params))
        if norm > grad_clip_val:
            for param in params:
                param.grad[:] *= grad_clip_val / norm


def _method(name):
    return lambda x, *args, **kwargs: getattr(x, name)(*args, **kwargs)


#: The 1.0 library's framework-neutral names for MXNet functions (its ``config.ini`` aliases).
ALIASES = {
    "ones_like": np.ones_like, "ones": np.ones, "zeros_like": np.zeros_like, "zeros": np.zeros,
    "arange": np.arange, "meshgrid": np.meshgrid, "sin": np.sin, "sinh": np.sinh, "cos": np.cos,
    "cosh": np.cosh, "tanh": np.tanh, "linspace": np.linspace, "exp": np.exp, "log": np.log,
    "tensor": np.array, "normal": np.random.normal, "randn": np.random.randn,
    "expand_dims": np.expand_dims, "rand": np.random.rand, "matmul": np.dot, "int32": np.int32,
    "int64": np.int64, "float32": np.float32, "concat": np.concatenate, "stack": np.stack,
    "abs": np.abs, "eye": np.eye, "sigmoid": npx.sigmoid, "batch_matmul": npx.batch_dot,
    "size": lambda a: a.size, "transpose": lambda a: a.T,
    "numpy": _method("asnumpy"), "reshape": _method("reshape"), "to": _method("as_in_ctx"),
    "reduce_sum": _method("sum"), "argmax": _method("argmax"), "astype": _method("astype"),
    "reduce_mean": _method("mean"), "swapaxes": _method("swapaxes"), "repeat": _method("repeat"),
}
