"""The 1.0 edition's object-oriented API (D2L 1.0, sections 3.2 and 4.x), which its chapter 8
("Modern Convolutional Neural Networks", sections 8.1-8.8) builds every model and run on.

``import gluon_modern_cnn as d2l`` gives the names the 1.0 chapter's MXNet cells reach:
:class:`HyperParameters`, :class:`ProgressBoard`, :class:`Module`, :class:`DataModule`,
:class:`FashionMNIST` (a data module), :class:`Trainer`, :class:`Classifier`, :func:`add_to_class`
and the small aliases (``d2l.randn``, ``d2l.reshape``, ...).

The model side (:class:`HyperParameters`, :func:`add_to_class`, :class:`Module`,
:class:`Classifier`) is :mod:`gluon_modern_cnn.models.edition10_base`, below the chapter's
networks; this module is the training side: the board a ``Module`` draws on, the ``Trainer`` its
``plot`` reports to, the data modules.

:class:`Trainer` does not loop itself: ``Trainer.fit`` runs the package's one training loop
(:func:`gluon_modern_cnn.training.fit`), handing it the model's ``training_step`` and
``validation_step``; devices, the unusable-GPU fallback, Ctrl-C handling and the per-epoch
:class:`~gluon_modern_cnn.training.History` (``trainer.history``) come from there.
"""
from __future__ import annotations

import collections
import json
import math
import os
from pathlib import Path
from typing import Optional

import mxnet as mx
from mxnet import autograd, np, npx

from .data import fashion_mnist_loader
from .models.edition10_base import Classifier, HyperParameters, Module, add_to_class
from .runtime.devices import try_all_gpus
from .training import plotting
from .training.checkpoint import CheckpointError, EpochCheckpointer, load_checkpoint
from .training.loop import Callback, History, check_output_width, fit

__all__ = ["add_to_class", "HyperParameters", "ProgressBoard", "Module", "DataModule",
           "FashionMNIST", "Trainer", "Classifier", "cpu", "gpu", "ALIASES"]

_Point = collections.namedtuple('Point', ['x', 'y'])


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
        if not hasattr(self, 'raw_points'):
            self.raw_points = collections.OrderedDict()
            self.data = collections.OrderedDict()
        if label not in self.raw_points:
            self.raw_points[label] = []
            self.data[label] = []
        points = self.raw_points[label]
        points.append(_Point(float(x), float(y)))
        if len(points) != max(int(every_n), 1):
            return
        self.data[label].append(_Point(sum(p.x for p in points) / len(points),
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

    def points(self) -> dict:
        """The drawn points per line, ``{label: [[x, y], ...]}`` (what a checkpoint keeps)."""
        return {label: [list(p) for p in points]
                for label, points in getattr(self, 'data', {}).items()}

    def restore(self, points: dict) -> None:
        """Take back the drawn points of a saved run (as :meth:`points` gives them), so that the
        figure of a resumed run shows the whole run."""
        self.raw_points = collections.OrderedDict((label, []) for label in points)
        self.data = collections.OrderedDict(
            (label, [_Point(*p) for p in line]) for label, line in points.items())


# Every Module gets a board (the book's Module.__init__ makes one); the model side lives below the
# plotting, in models/, so it is handed the board's class from here instead of importing it.
Module.board_class = ProgressBoard


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


class _TrainerCheckpoint(EpochCheckpointer):
    """After every epoch, the 1.0 Trainer's run in one file (``checkpoint.save_checkpoint``): the
    model's parameters, the optimizer's state, the history and the board's points; in a resumed
    run it first restores the optimizer's state."""

    def __init__(self, trainer: "Trainer", path: Path, resume_from=None):
        super().__init__(path, resume_from=resume_from)
        self.trainer = trainer

    def contents(self, state):
        model = self.trainer.model
        return (_model_name(model),
                _json_safe({"trainer": self.trainer.hparams, "model": model.hparams}),
                {"board": model.board.points()})


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

    @property
    def _device(self):
        """Where the model trains: the first GPU the trainer was given, else the CPU."""
        return self.gpus[0] if self.gpus else mx.cpu()

    def prepare_batch(self, batch):
        return [a.as_in_ctx(self._device) for a in batch]

    def plot(self, key, value, train):
        """Draw a value the model reports (``Module.plot``, 1.0 section 3.2.2) on its board at
        this point of the run, and keep it for the history."""
        model = self.model
        model.board.xlabel = 'epoch'
        if train:
            x = self.train_batch_idx / self.num_train_batches
            n = self.num_train_batches / model.plot_train_per_epoch
        else:
            x = self.epoch + 1
            n = self.num_val_batches / model.plot_valid_per_epoch
        value = float(value.asnumpy()) if hasattr(value, 'asnumpy') else float(value)
        self._observed[(key, train)].append(value)
        model.board.draw(x, value, ('train_' if train else 'val_') + key, every_n=int(n))

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
        callbacks = [_TrainerProgress(self)]
        start_epoch, history = 0, None
        if checkpoint is not None:
            checkpoint = Path(checkpoint)
            resume_from = self._resume(model, checkpoint) if checkpoint.exists() else None
            if resume_from is not None:
                start_epoch, history = resume_from.epoch, resume_from.history
            callbacks.append(_TrainerCheckpoint(self, checkpoint, resume_from))
        self.history = fit(model, self.train_dataloader, self.val_dataloader, self.max_epochs,
                           trainer=self.optim, device=self._device, initialize=False,
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
        # Deferred shapes are completed by loading, on the device prepare_model put them on.
        saved.load_parameters(model, ctx=[self._device])
        model.board.restore(saved.extra.get("board", {}))
        # Checkpoints are written at epoch ends only.
        self.train_batch_idx = saved.epoch * self.num_train_batches
        return saved

    def _training_step(self, net, trainer, loss, X, y, devices, *, check_shapes=False, **_):
        # The book's fit_epoch body for one batch; the loop around it is training.fit's.
        batch = self.prepare_batch([X, y])
        if check_shapes and isinstance(self.model, Classifier):
            # Once: a classifier with fewer outputs than classes would train without an error.
            Y_hat = self.model(*batch[:-1])
            check_output_width(Y_hat.reshape((-1, Y_hat.shape[-1])), batch[-1])
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
