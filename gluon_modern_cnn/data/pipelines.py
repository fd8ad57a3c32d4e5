"""The two pipelines that deliver Fashion-MNIST batches (D2L section 3.5), bit-identical:

- the book's: a ``gluon.data.Dataset`` of samples, per-sample ``Resize`` and ``ToTensor`` in a
  ``gluon.data.DataLoader`` (with worker threads instead of the book's processes);
- the fast one, :class:`FastImageLoader`: the images stay one uint8 array and each batch is resized
  in one vectorised operation, with seeded per-epoch shuffling, sharding for distributed workers
  and background prefetch.

:mod:`.loaders` chooses between them.
"""
from __future__ import annotations

import math
import os
import queue
import threading
from typing import Iterator, Optional, Sequence, Tuple, TypeVar

import numpy

from ..checks import check_bool, check_int, check_strict_positive_int, describe_value
from ..runtime.compat import import_mxnet, np_thread
from .fashion_mnist import PathLike, load_fashion_mnist_arrays

mx = import_mxnet()
from mxnet import gluon  # noqa: E402  (needs import_mxnet() first, for numpy >= 1.24)
from mxnet.gluon.data.dataloader import default_batchify_fn  # noqa: E402

__all__ = ["FashionMNISTDataset", "FashionMNIST", "get_dataloader_workers", "FastImageLoader"]

# ---------------------------------------------------------------------------------------------
# The book's pipeline
# ---------------------------------------------------------------------------------------------

class FashionMNISTDataset(gluon.data.Dataset):
    """Fashion-MNIST samples as the book's ``gluon.data.vision.FashionMNIST`` gives them (D2L 3.5).

    Each sample is ``(image, label)``: image an ``mxnet.numpy`` uint8 array of shape (28, 28, 1),
    label a ``numpy.int32``; so the book's ``transform_first(Resize + ToTensor)`` behaves as in the
    book and batches of labels are int32 as there.

    Args:
        train: the training split (default) or the test split.
        root: the folder with the four files; default ``None``, :func:`resolve_data_root`.
        download: download missing files (default True).
    """

    def __init__(self, train: bool = True, *, root: Optional[PathLike] = None,
                 download: bool = True):
        super().__init__()
        self.train = train
        self.images, self.labels = load_fashion_mnist_arrays(train, root=root, download=download)
        self._mx_images = mx.np.array(self.images[..., None], dtype=numpy.uint8)

    def __len__(self) -> int:
        return len(self.labels)

    @np_thread  # DataLoader worker threads index the dataset first: give them numpy semantics
    def __getitem__(self, idx: int):
        return self._mx_images[idx], self.labels[idx]


def get_dataloader_workers() -> int:
    """Worker threads for the book's per-sample pipeline: the book's 4, at most one per core.

    Threads, not the book's processes: MXNet's operators release the GIL, so at resize=224 threads
    deliver as many images/s as processes did (measured on 2 cores); they need no shared memory
    (process workers stalled into MXNet's 120 s worker timeout there), and Ctrl-C interrupts only
    the main thread, with one traceback.
    """
    return min(4, os.cpu_count() or 1)


def _book_transform(resize: Optional[int]):
    """The book's per-sample transform: ``Resize(resize)`` (if given) then ``ToTensor()``."""
    transforms = gluon.data.vision.transforms
    trans = [transforms.ToTensor()]
    if resize:
        trans.insert(0, transforms.Resize(resize))
    return transforms.Compose(trans)


class _PerThreadTransform:
    """The book's transform with one instance per thread.

    ``Compose`` hybridizes its blocks, and a hybridized block called from several threads at once
    races while building its cached graph; the book's worker processes each had their own copy.
    """

    def __init__(self, resize: Optional[int]):
        self._resize = resize
        self._local = threading.local()

    def __call__(self, image):
        trans = getattr(self._local, "trans", None)
        if trans is None:
            trans = self._local.trans = _book_transform(self._resize)
        return trans(image)


def _book_loader(dataset: "FashionMNISTDataset", batch_size: int, resize: Optional[int], shuffle: bool,
                 num_workers: int):
    """The DataLoader of D2L section 3.5, with worker threads instead of processes."""
    trans = _PerThreadTransform(resize) if num_workers else _book_transform(resize)
    # Thread workers batch with the plain batchify (no shared-memory copies across processes).
    return gluon.data.DataLoader(dataset.transform_first(trans), batch_size, shuffle=shuffle,
                                 num_workers=num_workers, thread_pool=True,
                                 batchify_fn=default_batchify_fn)


# ---------------------------------------------------------------------------------------------
# The fast pipeline
# ---------------------------------------------------------------------------------------------

T = TypeVar("T")


class _Failure:
    """An exception raised in the prefetch thread, carried to the consumer."""

    def __init__(self, error: BaseException):
        self.error = error


_END = object()


def _prefetched(items: Iterator[T], depth: int) -> Iterator[T]:
    """Yield ``items``, computed up to ``depth`` ahead in a daemon thread with numpy semantics.

    Stopping early (``break``, an exception, Ctrl-C in the consumer) stops the thread; only the
    main thread ever sees KeyboardInterrupt, so interrupting prints one traceback.
    """
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    @np_thread
    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as err:  # hand every failure to the consumer, which re-raises it
            put(_Failure(err))

    thread = threading.Thread(target=produce, name="fashion-mnist-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()


class FastImageLoader:
    """Mini-batches of a uint8 image array, resized a whole batch at a time.

    Yields ``(X, y)`` as ``mxnet.numpy`` arrays: X float32 of shape (batch, C, H, W) in [0, 1],
    bit-identical to the book's per-sample ``Resize(resize)`` + ``ToTensor()``, and y int32.

    Shuffling draws each epoch's order from ``(seed, epoch)``: iterating advances the epoch, and
    ``set_epoch(k)`` makes the next pass epoch ``k``, so a run resumed at epoch k sees the batches
    an uninterrupted run would.

    Args:
        images: a numpy uint8 array of shape (N, H, W) or (N, H, W, C).
        labels: one integer label per image.
        batch_size: examples per batch.
        resize: the side each image is resized to, in pixels; default ``None``, kept as it is.
        shuffle: shuffle every epoch (default False).
        seed: the shuffling seed (>= 0); default ``None``, drawn once (kept in ``loader.seed``).
            Required for sharded shuffling: every worker must pass the same one.
        num_shards: with more than 1 (default 1), every worker takes every ``num_shards``-th
            sample of the same order; the shards partition the data (sizes differ by at most one,
            batch counts not at all).
        shard_index: this worker's shard, in ``[0, num_shards)`` (default 0).
        last_batch: ``"keep"`` (default) a short last batch, or ``"discard"`` it.
        prefetch: batches prepared ahead in a background thread (default 2; 0: no thread).

    Raises:
        TypeError: for images that are not such an array, or arguments of the wrong type.
        ValueError: for labels that do not match, bad sizes, shards or options, or shards that
            would read different numbers of batches.
    """

    def __init__(self, images: numpy.ndarray, labels: Sequence[int], batch_size: int, *,
                 resize: Optional[int] = None, shuffle: bool = False, seed: Optional[int] = None,
                 num_shards: int = 1, shard_index: int = 0, last_batch: str = "keep",
                 prefetch: int = 2):
        if not isinstance(images, numpy.ndarray) or images.dtype != numpy.uint8 \
                or images.ndim not in (3, 4):
            raise TypeError("images must be a numpy uint8 array of shape (N, H, W) or "
                            f"(N, H, W, C), got {describe_value(images)}")
        labels = numpy.asarray(labels)
        if labels.shape != images.shape[:1] or not numpy.issubdtype(labels.dtype, numpy.integer):
            raise ValueError(f"labels must be {len(images)} integers (one per image), got "
                             f"{describe_value(labels)}")
        self.batch_size = check_strict_positive_int(batch_size, "batch_size")
        self.resize = None if resize is None else check_strict_positive_int(resize, "resize")
        check_bool(shuffle, "shuffle")
        self.num_shards = check_strict_positive_int(num_shards, "num_shards")
        self.shard_index = check_int(shard_index, "shard_index")
        if not 0 <= self.shard_index < self.num_shards:
            raise ValueError(f"shard_index must be in [0, num_shards) = [0, {self.num_shards}), "
                             f"got {shard_index}")
        if shuffle and self.num_shards > 1 and seed is None:
            raise ValueError("Sharded shuffling needs seed=: every worker must draw the same order "
                             "for the shards to partition the data; pass the same seed to all.")
        if last_batch not in ("keep", "discard"):
            raise ValueError(f"last_batch must be 'keep' or 'discard', got {last_batch!r}")
        self.prefetch = check_int(prefetch, "prefetch")
        if self.prefetch < 0:
            raise ValueError(f"prefetch must be >= 0 (0 = no background thread), got {prefetch}")
        self.shuffle = shuffle
        self.last_batch = last_batch
        # Fixed when not given, so that every epoch's order can be reproduced from `loader.seed`.
        if seed is not None and check_int(seed, "seed") < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.seed = int(seed) if seed is not None else int(numpy.random.SeedSequence().entropy)
        self._images = images if images.ndim == 4 else images[..., None]
        self._labels = labels.astype(numpy.int32, copy=False)
        self._epoch = 0
        # Shard sizes differ by at most one: the first shard is the largest, the last the smallest.
        counts = {self._num_batches(0), self._num_batches(self.num_shards - 1)}
        if len(counts) > 1:
            raise ValueError(
                f"{len(labels)} samples over {self.num_shards} shards give shards different "
                f"numbers of batches of {self.batch_size} ({sorted(counts)}); synchronous workers "
                f"would wait for each other forever. Choose another batch_size or last_batch.")

    @property
    def epoch(self) -> int:
        """The epoch the next pass over the loader will be."""
        return self._epoch

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass epoch ``epoch`` (its order depends only on seed and epoch)."""
        self._epoch = _check_epoch(epoch)

    def indices(self, epoch: Optional[int] = None) -> numpy.ndarray:
        """The sample indices this shard reads in ``epoch`` (default: the next pass), in order."""
        epoch = self._epoch if epoch is None else _check_epoch(epoch)
        count = len(self._labels)
        order = (numpy.random.default_rng([self.seed, epoch]).permutation(count) if self.shuffle
                 else numpy.arange(count))
        return order[self.shard_index::self.num_shards][:self._num_samples()]

    def _num_samples(self, shard_index: Optional[int] = None) -> int:
        """How many samples a shard (default: this one) reads per epoch."""
        shard = self.shard_index if shard_index is None else shard_index
        count = len(range(shard, len(self._labels), self.num_shards))
        return count - count % self.batch_size if self.last_batch == "discard" else count

    def _num_batches(self, shard_index: Optional[int] = None) -> int:
        return math.ceil(self._num_samples(shard_index) / self.batch_size)

    def __len__(self) -> int:
        return self._num_batches()

    def __iter__(self) -> Iterator[Tuple["mx.np.ndarray", "mx.np.ndarray"]]:
        order = self.indices()
        self._epoch += 1
        batches = (self._batch(order[start:start + self.batch_size])
                   for start in range(0, len(order), self.batch_size))
        return _prefetched(batches, self.prefetch) if self.prefetch else batches

    def _batch(self, idx: numpy.ndarray):
        pixels = self._images[idx]
        if self.resize:
            # The uint8 NHWC batch through the operator behind the book's Resize: identical pixels.
            resized = mx.npx.image.resize(mx.np.array(pixels, dtype=numpy.uint8),
                                          (self.resize, self.resize))
            pixels = numpy.from_dlpack(_DLPackView(resized))  # no copy (asnumpy costs as much)
        # ToTensor's float32(x) / 255 (exact for all 256 values) in numpy, NHWC -> NCHW in the same
        # pass: several times faster than MXNet's to_tensor here. Handed to MXNet without a copy.
        count, height, width, channels = pixels.shape
        X = numpy.empty((count, channels, height, width), dtype=numpy.float32)
        numpy.divide(pixels.transpose(0, 3, 1, 2), numpy.float32(255), out=X, dtype=numpy.float32)
        X = mx.nd.from_numpy(X, zero_copy=True, array_cls=mx.np.ndarray)
        y = mx.np.array(self._labels[idx], dtype=numpy.int32)
        return X, y


class _DLPackView:
    """Lets ``numpy.from_dlpack`` read an MXNet array in place (MXNet 1.9 has no ``__dlpack__``)."""

    def __init__(self, array):
        self._array = array

    def __dlpack__(self, **kwargs):
        return mx.nd.to_dlpack_for_read(self._array)  # waits for the array to be computed

    def __dlpack_device__(self):
        return 1, 0  # kDLCPU, device 0


#: The dataset's former name here; ``gluon_modern_cnn.FashionMNIST`` is the 1.0 edition's data module.
FashionMNIST = FashionMNISTDataset


def _check_epoch(epoch) -> int:
    if check_int(epoch, "epoch") < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    return int(epoch)
