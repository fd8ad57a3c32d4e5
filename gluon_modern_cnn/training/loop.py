"""Training: the book's ``train_ch6`` (section 6.6, used by every section of chapter 7), its
multi-GPU ``train_ch13`` (section 13.1), the older edition's ``train_ch5``, and the one loop all
three are thin wrappers of.

:func:`fit` is that loop. It takes whether to initialize, a starting epoch, an optional trainer and
callbacks, and trains on one device or data-parallel on several (``train_ch13``'s pattern:
:func:`split_batch`, one loss per shard, one ``trainer.step`` over the whole batch), so that
checkpointing, progress bars and multi-device or multi-machine training extend it instead of
copying it.
"""
from __future__ import annotations

import json
import math
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, List, Optional, Sequence, Tuple, Union

import mxnet as mx
import numpy as onp
from mxnet import autograd, gluon, init

from ..runtime.compat import mxnet_error_summary
from ..checks import check_positive
from ..runtime.devices import as_contexts, try_all_gpus, try_gpu, warn_if_gpu_unusable
from .plotting import Animator
from .progress import Progress

__all__ = ["Accumulator", "Timer", "accuracy", "evaluate_accuracy_gpu", "EpochRecord", "History",
           "TrainState", "Callback", "AnimatorCallback", "book_animator", "TrainingDiverged", "fit", "train_ch6",
           "train_ch6_with_history", "train_ch5", "train_ch5_with_history", "train_ch13",
           "train_ch13_with_history", "split_batch", "train_step", "print_result", "format_result",
           "format_speed", "format_epoch_ch5", "seed_everything"]


class Accumulator:
    """For accumulating sums over ``n`` variables (section 3.6).

    Args:
        n: the number of sums kept (each starts at 0.0).
    """

    def __init__(self, n):
        self.data = [0.0] * n

    def add(self, *args):
        self.data = [a + float(b) for a, b in zip(self.data, args)]

    def reset(self):
        self.data = [0.0] * len(self.data)

    def __getitem__(self, idx):
        return self.data[idx]


class Timer:
    """Record multiple running times (section 11.5 / 2.x of the book's utilities)."""

    def __init__(self):
        self.times = []
        self.start()

    def start(self):
        """Start the timer."""
        self.tik = time.time()

    def stop(self):
        """Stop the timer and record the time in a list."""
        self.times.append(time.time() - self.tik)
        return self.times[-1]

    def avg(self):
        """Return the average time."""
        return sum(self.times) / len(self.times)

    def sum(self):
        """Return the sum of time."""
        return sum(self.times)

    def cumsum(self):
        """Return the accumulated time."""
        return onp.array(self.times).cumsum().tolist()


def accuracy(y_hat, y):
    """Compute the number of correct predictions (section 3.6).

    Args:
        y_hat: the predictions: scores of shape (batch, classes), or predicted labels.
        y: the true labels, shape (batch,).

    Returns:
        The number of correct predictions as a float.
    """
    if len(y_hat.shape) > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(axis=1)
    cmp = y_hat.astype(y.dtype) == y
    return _scalar(cmp.astype(y.dtype).sum())


def _scalar(x) -> float:
    """A one-element array as a float; legacy ``nd`` arrays (the older edition's) have no
    ``__float__``."""
    return x.asscalar() if isinstance(x, mx.nd.NDArray) and not isinstance(x, mx.np.ndarray) \
        else float(x)


def _to_device(x, device):
    """``x`` on ``device``; legacy ``nd`` arrays (the older edition's) only have the older name."""
    return x.as_in_ctx(device) if hasattr(x, "as_in_ctx") else x.as_in_context(device)


def evaluate_accuracy_gpu(net, data_iter, device=None):
    """Compute the accuracy for a model on a dataset using a GPU (section 6.6).

    Args:
        net: the network.
        data_iter: the batches ``(X, y)`` to evaluate on.
        device: where to evaluate; default ``None``, the device of the network's first parameter.

    Returns:
        The fraction of correct predictions, in [0, 1].
    """
    if not device:  # Query the first device where the first parameter is on
        device = list(net.collect_params().values())[0].list_ctx()[0]
    metric = Accumulator(2)  # No. of correct predictions, no. of predictions
    for X, y in data_iter:
        X, y = _to_device(X, device), _to_device(y, device)
        metric.add(accuracy(net(X), y), y.size)
    return metric[0] / metric[1]


# ---------------------------------------------------------------------------------------------
# What a run produces
# ---------------------------------------------------------------------------------------------

@dataclass
class EpochRecord:
    """One epoch's results: mean training loss and accuracy, test accuracy and speed.

    Args:
        epoch: the epoch's number, 1-based.
        train_loss: mean training loss per example over the epoch.
        train_acc: training accuracy over the epoch, in [0, 1].
        test_acc: test accuracy at the end of the epoch, in [0, 1].
        examples: training examples seen in the epoch.
        step_seconds: time of the training steps only (the book's timer), in seconds.
        wall_seconds: the whole epoch, data loading and evaluation included, in seconds.
    """

    epoch: int                # 1-based
    train_loss: float
    train_acc: float
    test_acc: float
    examples: int             # training examples seen in the epoch
    step_seconds: float       # time of the training steps only (the book's timer)
    wall_seconds: float       # the whole epoch, data loading and evaluation included

    @property
    def examples_per_sec(self) -> float:
        return self.examples / self.step_seconds if self.step_seconds else float("nan")


@dataclass
class History:
    """Per-epoch results of a run; what ``train_ch6`` returns besides what it prints.

    Args:
        epochs: one :class:`EpochRecord` per finished epoch (default none).
        devices: the devices trained on, as strings (``"cpu(0)"``).
        interrupted: whether the run was stopped before its last epoch (Ctrl-C, SIGTERM).
        stopped_by: the signal that interrupted the run (``"SIGINT"``, ``"SIGTERM"``); not saved.
    """

    epochs: List[EpochRecord] = field(default_factory=list)
    devices: List[str] = field(default_factory=list)
    interrupted: bool = False
    #: The signal that interrupted the run (``"SIGINT"``, ``"SIGTERM"``); not saved.
    stopped_by: Optional[str] = field(default=None, compare=False)

    @property
    def examples_per_sec(self) -> float:
        """The book's figure: all training examples over the time of all training steps."""
        seconds = sum(e.step_seconds for e in self.epochs)
        return sum(e.examples for e in self.epochs) / seconds if seconds else float("nan")

    @property
    def final(self) -> Optional[EpochRecord]:
        return self.epochs[-1] if self.epochs else None

    def to_dict(self) -> dict:
        return {"epochs": [dict(asdict(e), examples_per_sec=e.examples_per_sec)
                           for e in self.epochs],
                "devices": list(self.devices), "interrupted": self.interrupted,
                "examples_per_sec": self.examples_per_sec}

    @classmethod
    def from_dict(cls, data: dict) -> "History":
        fields = {f for f in EpochRecord.__dataclass_fields__}
        return cls([EpochRecord(**{k: v for k, v in e.items() if k in fields})
                    for e in data.get("epochs", [])],
                   list(data.get("devices", [])), bool(data.get("interrupted", False)))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def format_result(loss: float, train_acc: float, test_acc: float) -> str:
    """``train_ch6``'s first result line.

    Args:
        loss: the final training loss.
        train_acc: the final training accuracy, in [0, 1].
        test_acc: the final test accuracy, in [0, 1].
    """
    return f'loss {loss:.3f}, train acc {train_acc:.3f}, test acc {test_acc:.3f}'


def format_speed(examples_per_sec: float, devices: Sequence) -> str:
    """``train_ch6``'s second result line.

    Args:
        examples_per_sec: training speed, in examples per second of training steps.
        devices: the devices trained on; several are listed as ``train_ch13`` prints them
            (``str(devices)``: ``[gpu(0), gpu(1)]``).
    """
    where = str(devices[0]) if len(devices) == 1 else f"[{', '.join(map(str, devices))}]"
    return f'{examples_per_sec:.1f} examples/sec on {where}'


def format_epoch_ch5(record: EpochRecord) -> str:
    """``train_ch5``'s per-epoch line (older edition).

    Args:
        record: the epoch's results; its ``wall_seconds`` is the printed time.
    """
    return ('epoch %d, loss %.4f, train acc %.3f, test acc %.3f, time %.1f sec'
            % (record.epoch, record.train_loss, record.train_acc, record.test_acc,
               record.wall_seconds))


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------

class TrainingDiverged(FloatingPointError):
    """The training loss became NaN or infinite."""


@dataclass
class TrainState:
    """What callbacks see: the objects of the run and where it is.

    Args:
        net: the network being trained.
        trainer: its trainer.
        devices: the devices it trains on.
        num_epochs: the epoch the run ends after (the total, not those left).
        history: the run's :class:`History`, filled epoch by epoch.
        epoch: 0-based index of the current epoch.
        batch: 0-based index of the current batch within the epoch.
        num_batches: the number of training batches per epoch.
        metric: the epoch's sums: loss, correct predictions, examples.
        timer: times the epoch's training steps.
        step_batch_size: what ``trainer.step`` gets on every step; ``None``: each batch's size.
        split_f: splits a batch across the devices; ``None``: :func:`split_batch`.
        step_f: one training step; ``None``: :func:`train_step`.
    """

    net: gluon.Block
    trainer: gluon.Trainer
    devices: List[mx.Context]
    num_epochs: int
    history: History
    epoch: int = 0             # 0-based index of the current epoch
    batch: int = 0             # 0-based index of the current batch within the epoch
    num_batches: int = 0
    metric: Accumulator = field(default_factory=lambda: Accumulator(3))
    timer: Timer = field(default_factory=Timer)
    #: What ``trainer.step`` gets on every step; None: the size of each batch.
    step_batch_size: Optional[int] = None
    #: Splits a batch across the devices; None: :func:`split_batch`.
    split_f: Optional[Callable] = None
    #: One training step; None: :func:`train_step`.
    step_f: Optional[Callable] = None

    @property
    def train_loss(self) -> float:
        return self.metric[0] / self.metric[2] if self.metric[2] else float("nan")

    @property
    def train_acc(self) -> float:
        return self.metric[1] / self.metric[2] if self.metric[2] else float("nan")


class Callback:
    """Hooks into :func:`fit`; override what you need."""

    def on_train_begin(self, state: TrainState) -> None: ...

    def on_epoch_begin(self, state: TrainState) -> None: ...

    def on_batch_end(self, state: TrainState) -> None: ...

    def on_epoch_end(self, state: TrainState) -> None: ...

    def on_train_end(self, state: TrainState) -> None: ...


def book_animator(num_epochs: int, *, path=None, title: Optional[str] = None) -> Animator:
    """The plot ``train_ch6`` draws: train loss, train acc and test acc over the epochs (the
    book's lines and x axis).

    Args:
        num_epochs: the x axis's extent, in epochs.
        path: a file to write the figure to; default ``None``, shown inline as the book's figure.
            Written to a file it also gets ``title``, a y label and room to read it.
        title: the figure's title (files only); default none.
    """
    if path is None:
        return Animator(xlabel='epoch', xlim=[1, num_epochs] if num_epochs > 1 else None,
                        legend=['train loss', 'train acc', 'test acc'])
    return Animator(xlabel='epoch', ylabel='loss, accuracy',
                    xlim=[1, num_epochs] if num_epochs > 1 else None,
                    legend=['train loss', 'train acc', 'test acc'], path=path, overwrite=True,
                    title=title, figsize=(6.0, 3.6), dpi=120)


def model_title(model) -> str:
    """A figure's title for ``model`` (a registered name, or a network ``get_model`` built): the
    name and the section it comes from; for any other network, its class name."""
    from ..models import model_info
    names = [model] if isinstance(model, str) else [
        getattr(hook, "name", None)  # get_model's input-size check knows the registered name
        for hook in getattr(model, "_forward_pre_hooks", {}).values()]
    for name in names:
        try:
            section = model_info(name).section
        except (ValueError, TypeError):
            continue
        return f"{name}, section {section}" if section[:1].isdigit() else f"{name} ({section})"
    return model if isinstance(model, str) else type(model).__name__


class AnimatorCallback(Callback):
    """The book's plot: training loss and accuracy five times an epoch, test accuracy per epoch.

    Args:
        animator: the :class:`Animator` to draw on (see :func:`book_animator`); flushed at the end
            of training when it writes to a file.
    """

    def __init__(self, animator: Animator):
        self.animator = animator

    def on_batch_end(self, state):
        n = state.num_batches
        if (state.batch + 1) % max(n // 5, 1) == 0 or state.batch == n - 1:
            self.animator.add(state.epoch + (state.batch + 1) / n,
                              (state.train_loss, state.train_acc, None))

    def on_epoch_end(self, state):
        self.animator.add(state.epoch + 1, (None, None, state.history.final.test_acc))

    def on_train_end(self, state):
        if self.animator.path is not None:
            self.animator.flush()


class _StopOnInterrupt:
    """Turn the first Ctrl-C or SIGTERM (what schedulers and ``kill`` send) into a request to
    stop after the current batch; a second one interrupts at once. Only the main thread can
    install signal handlers."""

    SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM")
                    if hasattr(signal, name))

    def __init__(self):
        self.requested = False
        self.signal_name: Optional[str] = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.signal_name = signal.Signals(signum).name
        how = ("", "Ctrl-C") if signum == signal.SIGINT else (f" ({self.signal_name})",
                                                              self.signal_name)
        print(f"\nInterrupted{how[0]}: stopping after this batch ({how[1]} again to stop at "
              f"once)", flush=True)

    def __exit__(self, *exc):
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


def seed_everything(seed: int, epoch: int, train_iter=None) -> None:
    """Reseed MXNet's and NumPy's generators (and the loader's shuffling) for ``epoch``.

    MXNet's generator state cannot be read back, so a resumable run reseeds at every epoch from
    ``(seed, epoch)``: an interrupted-and-resumed run draws what an uninterrupted one draws.

    Args:
        seed: the run's seed.
        epoch: the 0-based epoch about to start.
        train_iter: the training loader; its ``set_epoch(epoch)`` is called when it has one.
            Default ``None``.
    """
    epoch_seed = (seed * 1_000_003 + epoch) % (2 ** 31)
    mx.random.seed(epoch_seed)
    onp.random.seed(epoch_seed)  # the book's DataLoader shuffles with NumPy's global generator
    if hasattr(train_iter, "set_epoch"):
        train_iter.set_epoch(epoch)


def _check_positive(value, name: str, kind=(int,)) -> None:
    check_positive(value, name, integer=kind == (int,))


def _forward_with_clear_shape_errors(net, X):
    try:
        return net(X)
    except mx.base.MXNetError as err:
        # A parameter whose shape was fixed by an earlier input: "Shape inconsistent, Provided =
        # [120,256], inferred shape=(120,400)". Other errors (dtypes, operators) pass unchanged.
        if "Shape inconsistent" not in str(err):
            raise
        raise ValueError(
            f"a batch of shape {tuple(X.shape)} does not fit the model: its parameters were "
            f"initialized for another input size. Build a fresh model for this input size or "
            f"load the data with the resize the model was made for. (MXNet: "
            f"{mxnet_error_summary(err)})"
        ) from None


def fit(net, train_iter, test_iter, num_epochs: int, *, lr: Optional[float] = None,
        trainer: Optional[gluon.Trainer] = None, loss: Optional[gluon.loss.Loss] = None,
        device: Union[mx.Context, Sequence[mx.Context], None] = None, initialize: bool = True,
        start_epoch: int = 0, history: Optional[History] = None, seed: Optional[int] = None,
        callbacks: Iterable[Callback] = (), kvstore: Union[str, "mx.kv.KVStore"] = "device",
        step_batch_size: Optional[int] = None, split_f: Optional[Callable] = None,
        step_f: Optional[Callable] = None, evaluate_f: Optional[Callable] = None,
        progress: bool = True) -> History:
    """Train ``net`` from ``start_epoch`` up to ``num_epochs`` (the body of ``train_ch6``).

    With several devices each batch is split across them. The first Ctrl-C (or SIGTERM) stops
    after the current batch and returns the history so far with ``interrupted=True``; a second
    one stops at once. The 1.0 edition's ``Trainer`` runs its model's ``training_step`` and
    ``validation_step`` through ``step_f`` and ``evaluate_f``.

    Args:
        net: the network.
        train_iter: the training batches ``(X, y)``, iterated once per epoch.
        test_iter: the test batches, evaluated after every epoch.
        num_epochs: the epoch to end after (a positive integer; the total, not those left).
        lr: the learning rate of the default SGD trainer; required without ``trainer``.
        trainer: the trainer; default ``None``, SGD with ``lr`` on ``kvstore`` (the book's).
        loss: the loss; default ``None``, softmax cross-entropy (the book's).
        device: a device or a list of them; default ``None``, :func:`try_gpu`.
        initialize: re-initialize the parameters (Xavier, ``force_reinit``) on the devices
            (default); ``False`` continues from loaded parameters.
        start_epoch: the 0-based epoch to start at (to resume), from 0 to ``num_epochs``.
        history: the :class:`History` to append to (resuming); default ``None``, a new one.
        seed: reseed both random generators and the loader's shuffling every epoch (see
            :func:`seed_everything`); default ``None``, no reseeding.
        callbacks: :class:`Callback` objects called at each stage.
        kvstore: the default trainer's kvstore (default ``"device"``).
        step_batch_size: what ``trainer.step`` divides the summed gradient by on every step, short
            last batch included; default ``None``, each batch's size. A ``dist_sync`` kvstore needs
            the global batch there (``distributed.trainer_batch_size``).
        split_f: ``split_f(X, y, devices)`` splits a batch across several devices; default ``None``,
            :func:`split_batch`.
        step_f: replaces :func:`train_step` (same arguments and result: the summed loss and the
            number of correct predictions); default ``None``.
        evaluate_f: ``evaluate_f(net, test_iter, device)`` replaces :func:`evaluate_accuracy_gpu`;
            default ``None``.
        progress: show a bar per epoch on stderr in a terminal, a line per epoch elsewhere
            (:class:`progress.Progress`; default True); stdout stays the caller's.

    Returns:
        The run's :class:`History`.

    Raises:
        TrainingDiverged: when the loss becomes NaN or infinite.
        ValueError: for a bad epoch count, learning rate, device or start epoch, an empty loader,
            or a batch the network does not fit.
    """
    _check_positive(num_epochs, "num_epochs")
    if not isinstance(start_epoch, int) or not 0 <= start_epoch <= num_epochs:
        raise ValueError(f"start_epoch must be an integer between 0 and num_epochs={num_epochs}; "
                         f"got {start_epoch!r}")
    if trainer is None:
        _check_positive(lr, "lr", (int, float))
    if step_batch_size is not None:
        _check_positive(step_batch_size, "step_batch_size")
    devices = [try_gpu()] if device is None else as_contexts(device)
    if any(d.device_type == "cpu" for d in devices):
        warn_if_gpu_unusable()
    if initialize:
        net.initialize(force_reinit=True, ctx=devices, init=init.Xavier())
    loss = loss or gluon.loss.SoftmaxCrossEntropyLoss()
    if trainer is None:
        trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': lr},
                                kvstore=kvstore)
    for data_iter, name in ((train_iter, "train_iter"), (test_iter, "test_iter")):
        if hasattr(data_iter, "__len__") and len(data_iter) == 0:
            raise ValueError(f"{name} has no batches: the data set is empty")
    history = history or History()
    history.devices = [str(d) for d in devices]
    history.interrupted = False
    state = TrainState(net, trainer, devices, num_epochs, history,
                       num_batches=len(train_iter), step_batch_size=step_batch_size,
                       split_f=split_f, step_f=step_f)
    callbacks = list(callbacks) + ([Progress()] if progress else [])
    for cb in callbacks:
        cb.on_train_begin(state)
    with _StopOnInterrupt() as stop:
        for epoch in range(start_epoch, num_epochs):
            state.epoch, state.metric, state.timer = epoch, Accumulator(3), Timer()
            if seed is not None:
                seed_everything(seed, epoch, train_iter)
            for cb in callbacks:
                cb.on_epoch_begin(state)
            wall = time.time()
            for i, (X, y) in enumerate(train_iter):
                state.batch = i
                _train_step(state, loss, X, y, first=(epoch == start_epoch and i == 0))
                for cb in callbacks:
                    cb.on_batch_end(state)
                if stop.requested:
                    break
            if stop.requested:
                history.interrupted, history.stopped_by = True, stop.signal_name
                break
            if state.metric[2] == 0:
                raise ValueError("train_iter yielded no batches: it is empty (or an iterator "
                                 "already used up; pass a loader, which can be iterated again)")
            test_acc = (evaluate_f or evaluate_accuracy_gpu)(net, test_iter, devices[0])
            history.epochs.append(EpochRecord(
                epoch + 1, state.train_loss, state.train_acc, test_acc, int(state.metric[2]),
                state.timer.sum(), time.time() - wall))
            for cb in callbacks:
                cb.on_epoch_end(state)
    for cb in callbacks:
        cb.on_train_end(state)
    return history


def split_batch(X, y, devices: Sequence[mx.Context]) -> Tuple[list, list]:
    """Split ``X`` and ``y`` into one shard per device (section 12.5); a batch that does not
    divide evenly gives the first devices one sample more.

    Args:
        X: the batch's inputs.
        y: the batch's labels.
        devices: the devices, one shard each.

    Returns:
        The list of input shards and the list of label shards, each shard on its device.
    """
    if len(devices) == 1:
        return [_to_device(X, devices[0])], [_to_device(y, devices[0])]
    # split_and_load's slicing, without its deprecated as_in_context (a warning per shard).
    return tuple([_to_device(shard, device) for shard, device in zip(
        gluon.utils.split_data(data, len(devices), even_split=False), devices)] for data in (X, y))


def train_step(net, trainer: gluon.Trainer, loss, X, y, devices: Sequence[mx.Context], *,
               check_shapes: bool = False, step_batch_size: Optional[int] = None,
               split_f: Optional[Callable] = None):
    """One training step on a batch, split across ``devices`` (section 13.1's ``train_batch_ch13``):
    forward, one loss per shard, backward and ``trainer.step(step_batch_size or batch size)``.

    Args:
        net: the network.
        trainer: its trainer.
        loss: the loss function.
        X: the batch's inputs.
        y: the batch's labels.
        devices: the devices to split the batch across.
        check_shapes: check that the batch fits the network and its output width fits the labels,
            with clear errors (:func:`fit` does on the first batch); default False.
        step_batch_size: what ``trainer.step`` gets; default ``None``, the batch's size.
        split_f: splits the batch; default ``None``, :func:`split_batch`.

    Returns:
        The summed loss and the number of correct predictions as Python floats (reading them waits
        for the step to finish, which is what the book times).
    """
    Xs, ys = (split_f or split_batch)(X, y, devices)
    with autograd.record():
        y_hats = [(_forward_with_clear_shape_errors(net, X_shard) if check_shapes
                   else net(X_shard)) for X_shard in Xs]
        if check_shapes:
            check_output_width(y_hats[0], ys[0])
        ls = [loss(y_hat, y_shard) for y_hat, y_shard in zip(y_hats, ys)]
    for l in ls:
        l.backward()
    trainer.step(step_batch_size or X.shape[0])
    loss_sum = sum(_scalar(l.sum()) for l in ls)
    correct = sum(accuracy(y_hat, y_shard) for y_hat, y_shard in zip(y_hats, ys))
    return loss_sum, correct


def check_output_width(y_hat, y) -> None:
    """Checked once, on the first batch: a network with fewer outputs than classes trains without
    an error (the loss picks out-of-range entries) and the book's ``accuracy`` broadcasts a
    ``(n, 1)`` output against ``(n,)`` labels into nonsense."""
    if y_hat.ndim != 2:
        raise ValueError(f"the network's output has shape {tuple(y_hat.shape)}; a classifier "
                         f"outputs (batch, number of classes)")
    classes = int(y.asnumpy().max()) + 1 if y.size else 0  # nd and np arrays alike
    if y_hat.shape[1] < max(classes, 2):
        raise ValueError(f"the network outputs {y_hat.shape[1]} value(s) per example, but the "
                         f"labels go up to {classes - 1}: it needs at least {max(classes, 2)} "
                         f"outputs (e.g. num_classes={max(classes, 10)} for Fashion-MNIST)")


def _train_step(state: TrainState, loss, X, y, first: bool) -> None:
    state.timer.start()
    step = state.step_f or train_step
    loss_sum, correct = step(state.net, state.trainer, loss, X, y, state.devices,
                             check_shapes=first, step_batch_size=state.step_batch_size,
                             split_f=state.split_f)
    if not math.isfinite(loss_sum):
        lr = getattr(state.trainer, "learning_rate", None)
        raise TrainingDiverged(
            f"the training loss became {loss_sum} at epoch {state.epoch + 1}, batch "
            f"{state.batch + 1}; try a smaller learning rate"
            + (f" than {lr}" if lr is not None else ""))
    state.metric.add(loss_sum, correct, X.shape[0])
    state.timer.stop()


# ---------------------------------------------------------------------------------------------
# The book's entry points
# ---------------------------------------------------------------------------------------------

def train_ch6(net, train_iter, test_iter, num_epochs, lr, device=try_gpu(), *,
              figure: Optional[str] = None, callbacks: Iterable[Callback] = (),
              seed: Optional[int] = None, loss: Optional[gluon.loss.Loss] = None) -> None:
    """Train a model with a GPU (section 6.6), as chapter 7 calls it.

    Draws the book's plot and prints its two result lines, and returns nothing, as the book's
    function does (a notebook cell shows exactly the book's output). The per-epoch results come
    from :func:`train_ch6_with_history`, which takes the same arguments.

    Args:
        net: the network; its parameters are (re-)initialized with Xavier on ``device``.
        train_iter: the training batches.
        test_iter: the test batches.
        num_epochs: the number of epochs (a positive integer).
        lr: the SGD learning rate (a positive number).
        device: where to train; default :func:`try_gpu` (the first GPU, else the CPU).
        figure: a file to write the plot to (headless); default ``None``, shown inline in a
            notebook.
        callbacks: more :class:`Callback` objects, after the plot's.
        seed: reseed the generators every epoch (see :func:`fit`); default ``None``.
        loss: replaces the book's softmax cross-entropy (e.g. with label smoothing); default
            ``None``.
    """
    train_ch6_with_history(net, train_iter, test_iter, num_epochs, lr, device, figure=figure,
                           callbacks=callbacks, seed=seed, loss=loss)


def train_ch6_with_history(net, train_iter, test_iter, num_epochs, lr, device=try_gpu(), *,
                           figure: Optional[str] = None, callbacks: Iterable[Callback] = (),
                           seed: Optional[int] = None,
                           loss: Optional[gluon.loss.Loss] = None) -> History:
    """:func:`train_ch6` (section 6.6), returning the :class:`History` of the run.

    Args:
        net, train_iter, test_iter, num_epochs, lr, device, figure, callbacks, seed, loss: as
            :func:`train_ch6`'s.
    """
    _check_positive(num_epochs, "num_epochs")
    _check_positive(lr, "lr", (int, float))
    animator = book_animator(num_epochs, path=figure, title=model_title(net))
    history = fit(net, train_iter, test_iter, num_epochs, lr=lr, device=device, seed=seed,
                  loss=loss, callbacks=[AnimatorCallback(animator), *callbacks])
    print_result(history, device)
    return history


def print_result(history: History, device) -> None:
    """Print ``train_ch6``'s two result lines for ``history`` (saying so when it was interrupted).

    Args:
        history: the run's results.
        device: the device or list of devices trained on, as the speed line names them.
    """
    final = history.final
    if final is None:
        print("training interrupted before the first epoch ended")
        return
    if history.interrupted:
        print(f"training interrupted during epoch {final.epoch + 1}; results of epoch "
              f"{final.epoch}:")
    print(format_result(final.train_loss, final.train_acc, final.test_acc))
    print(format_speed(history.examples_per_sec, as_contexts(device)))


def train_ch13(net, train_iter, test_iter, loss, trainer, num_epochs, devices=try_all_gpus(),
               split_f=split_batch) -> None:
    """Train a model with multiple GPUs (section 13.1), or any list of devices (``mx.cpu(0)``,
    ``mx.cpu(1)`` work too).

    Plots the book's curve and prints its two result lines; returns nothing, as the book's
    function does (:func:`train_ch13_with_history` returns the :class:`History`).

    Args:
        net: the network, which the caller initialized on ``devices`` (as in the book).
        train_iter: the training batches.
        test_iter: the test batches.
        loss: the loss function.
        trainer: the ``gluon.Trainer`` the caller built; one ``trainer.step`` covers each batch.
        num_epochs: the number of epochs (a positive integer).
        devices: the devices; default :func:`try_all_gpus` (every GPU, else the CPU).
        split_f: splits each batch across the devices, one loss per shard (default
            :func:`split_batch`).
    """
    train_ch13_with_history(net, train_iter, test_iter, loss, trainer, num_epochs, devices,
                            split_f)


def train_ch13_with_history(net, train_iter, test_iter, loss, trainer, num_epochs,
                            devices=try_all_gpus(), split_f=split_batch) -> History:
    """:func:`train_ch13` (section 13.1), returning the :class:`History` of the run.

    Args:
        net, train_iter, test_iter, loss, trainer, num_epochs, devices, split_f: as
            :func:`train_ch13`'s.
    """
    _check_positive(num_epochs, "num_epochs")
    if not isinstance(trainer, gluon.Trainer):
        raise ValueError(f"train_ch13 takes the gluon.Trainer the caller built (as the book's "
                         f"cells do); got {trainer!r}")
    devices = as_contexts(devices)
    history = fit(net, train_iter, test_iter, num_epochs, trainer=trainer, loss=loss,
                  device=devices, initialize=False, split_f=split_f,
                  callbacks=[AnimatorCallback(book_animator(num_epochs))])
    print_result(history, devices)
    return history


class _PrintEpochCh5(Callback):
    def on_epoch_end(self, state):
        print(format_epoch_ch5(state.history.final), flush=True)


def train_ch5(net, train_iter, test_iter, batch_size, trainer, ctx, num_epochs) -> None:
    """Train and evaluate a model with CPU or GPU (older edition, section 5.5).

    Prints ``training on <ctx>`` and one line per epoch. Returns nothing, as the book's function
    does (:func:`train_ch5_with_history` returns the :class:`History`).

    Args:
        net: the network, which the caller initialized (as the older edition's cells do).
        train_iter: the training batches.
        test_iter: the test batches.
        batch_size: passed to ``trainer.step`` on every step, as the book does.
        trainer: the ``gluon.Trainer`` the caller built.
        ctx: the device to train on.
        num_epochs: the number of epochs.
    """
    train_ch5_with_history(net, train_iter, test_iter, batch_size, trainer, ctx, num_epochs)


def train_ch5_with_history(net, train_iter, test_iter, batch_size, trainer, ctx,
                           num_epochs) -> History:
    """:func:`train_ch5` (older edition, section 5.5), returning the :class:`History`.

    Args:
        net, train_iter, test_iter, batch_size, trainer, ctx, num_epochs: as :func:`train_ch5`'s.
    """
    _check_positive(batch_size, "batch_size")
    print('training on', ctx)
    return fit(net, train_iter, test_iter, num_epochs, trainer=trainer, device=ctx,
               initialize=False, step_batch_size=batch_size, progress=False,
               callbacks=[_PrintEpochCh5(), Progress(lines=False)])  # the book prints the lines
