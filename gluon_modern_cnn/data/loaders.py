"""The one Fashion-MNIST loader factory, and the book's entry point on it (D2L section 3.5).

:func:`fashion_mnist_loader` makes one split's loader, the book's pipeline or the fast one
(:mod:`.pipelines`); :func:`load_data_fashion_mnist` (the book's, both splits), the training
runs (``training.experiment``), the benchmarks (``bench.harness``) and the older edition
(``gluonbook.load_data_fashion_mnist``) all call it.
"""
from __future__ import annotations

from typing import Optional, Tuple, Union

from ..checks import check_bool, check_int, check_strict_positive_int
from ..runtime.compat import import_mxnet
from .fashion_mnist import PathLike, load_fashion_mnist_arrays
from .pipelines import FashionMNISTDataset, FastImageLoader, _book_loader, get_dataloader_workers

mx = import_mxnet()
from mxnet import gluon  # noqa: E402  (needs import_mxnet() first, for numpy >= 1.24)

__all__ = ["Loader", "LegacyBatches", "fashion_mnist_loader", "load_data_fashion_mnist"]

Loader = Union[gluon.data.DataLoader, FastImageLoader]


def fashion_mnist_loader(train: bool, batch_size: int, resize: Optional[int] = None, *,
                         fast: bool = False, root: Optional[PathLike] = None,
                         download: bool = True, num_workers: Optional[int] = None,
                         subset: Optional[int] = None, seed: Optional[int] = None,
                         num_shards: int = 1, shard_index: int = 0, prefetch: int = 2) -> Loader:
    """One split of Fashion-MNIST (the training split shuffled), by the book's pipeline or, with
    ``fast=True``, as a :class:`FastImageLoader` (D2L section 3.5).

    Args:
        train: the training split (shuffled) or the test split.
        batch_size: examples per batch.
        resize: the side the images are resized to (the book's ``Resize``); ``None`` keeps 28.
            A ``(height, width)`` pair (the 1.0 edition's ``FashionMNIST(resize=...)``) may be
            non-square on the book's pipeline only.
        fast: the fast pipeline instead of the book's per-sample one.
        root: the folder with the four files (see :func:`resolve_data_root`).
        download: download missing files.
        num_workers: worker threads of the book's pipeline (default
            :func:`get_dataloader_workers`; 0 loads in the calling thread).
        subset: the fast pipeline on the first ``subset`` images only.
        seed, num_shards, shard_index, prefetch: the fast pipeline's shuffling seed, a cluster
            worker's shard and the batches prepared ahead (see :class:`FastImageLoader`).
    """
    batch_size = check_strict_positive_int(batch_size, "batch_size")
    check_bool(fast, "fast")
    if isinstance(resize, (tuple, list)):
        if len(resize) != 2:
            raise ValueError(f"resize must be a side or a (height, width) pair; got {resize!r}")
        height, width = (check_strict_positive_int(side, "resize") for side in resize)
        resize = height if height == width else (height, width)
        if fast and height != width:
            raise ValueError(f"the fast pipeline resizes to squares; resize={resize!r} needs the "
                             f"book's pipeline (fast=False)")
    elif resize is not None:
        resize = check_strict_positive_int(resize, "resize")
    if not fast:
        fast_only = {"seed": seed is not None, "num_shards": num_shards != 1,
                     "shard_index": shard_index != 0, "prefetch": prefetch != 2,
                     "subset": subset is not None}
        given = [name for name, used in fast_only.items() if used]
        if given:
            raise ValueError(f"{', '.join(given)} only apply to the fast pipeline; pass fast=True "
                             f"or leave them out.")
        workers = get_dataloader_workers() if num_workers is None else num_workers
        if check_int(workers, "num_workers") < 0:
            raise ValueError(f"num_workers must be >= 0 (0 = load in the main thread), "
                             f"got {workers}")
        # transforms.Resize takes (width, height).
        size = resize[::-1] if isinstance(resize, tuple) else resize
        return _book_loader(FashionMNISTDataset(train, root=root, download=download),
                            batch_size, size, train, workers)
    if num_workers is not None:
        raise ValueError("num_workers applies to the book's pipeline only; the fast pipeline "
                         "prepares batches in one background thread (see prefetch=).")
    images, labels = load_fashion_mnist_arrays(train, root=root, download=download)
    if train and subset is not None and subset > len(images):
        raise ValueError(f"subset={subset} is more than the {len(images)} training images; give "
                         f"at most {len(images)}, or leave it out to use them all")
    return FastImageLoader(images[:subset], labels[:subset], batch_size, resize=resize,
                           shuffle=train, seed=seed, num_shards=num_shards,
                           shard_index=shard_index, prefetch=prefetch)


class LegacyBatches:
    """A loader's batches as legacy ``NDArray``s, for code running with ``nd`` semantics (the
    older edition, ``legacy_mode()``). Each batch is made under numpy semantics, which the
    dataset, the book's transform and the batching use also when they run in the calling thread
    (``num_workers=0``), and converted afterwards.

    Args:
        loader: the loader whose batches are converted (its length is this one's).
    """

    def __init__(self, loader):
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        batches = iter(self.loader)
        while True:
            with mx.util.np_shape(True), mx.util.np_array(True):
                try:
                    batch = next(batches)
                except StopIteration:
                    return
            yield tuple(part.as_nd_ndarray() for part in batch)


def load_data_fashion_mnist(batch_size: int, resize: Optional[int] = None, *,
                            root: Optional[PathLike] = None, download: bool = True,
                            num_workers: Optional[int] = None, fast: bool = False,
                            seed: Optional[int] = None, num_shards: int = 1, shard_index: int = 0,
                            prefetch: int = 2) -> Tuple[Loader, Loader]:
    """Load Fashion-MNIST and return ``(train_iter, test_iter)`` (D2L section 3.5).

    By default the book's pipeline: ``Resize(resize)`` (if given) then ``ToTensor()`` per sample, a
    shuffled training ``gluon.data.DataLoader`` and an unshuffled test one. Called with ``nd``
    semantics (the older edition), the batches are legacy ``NDArray``s. Each split comes from
    :func:`fashion_mnist_loader`.

    Args:
        batch_size: examples per batch.
        resize: the side the images are resized to, in pixels; ``None`` keeps 28.
        root: the folder with the four files (see :func:`resolve_data_root`).
        download: download missing files (default True).
        num_workers: worker threads of the book's pipeline (default
            :func:`get_dataloader_workers`).
        fast: return :class:`FastImageLoader` objects, which give bit-identical batches much faster
            (default False).
        seed, num_shards, shard_index, prefetch: the fast pipeline's shuffling seed, a cluster
            worker's shard (both loaders are sharded; only the training one is shuffled) and the
            batches prepared ahead (see :class:`FastImageLoader`).
    """
    if resize is not None:
        check_strict_positive_int(resize, "resize")  # the book's function takes one side
    if not mx.util.is_np_array():
        # Called with nd semantics (the older edition, legacy_mode()): NDArray batches.
        with mx.util.np_shape(True), mx.util.np_array(True):
            loaders = load_data_fashion_mnist(
                batch_size, resize, root=root, download=download, num_workers=num_workers,
                fast=fast, seed=seed, num_shards=num_shards, shard_index=shard_index,
                prefetch=prefetch)
        return tuple(LegacyBatches(loader) for loader in loaders)
    return tuple(fashion_mnist_loader(train, batch_size, resize, fast=fast, root=root,
                                      download=download, num_workers=num_workers, seed=seed,
                                      num_shards=num_shards, shard_index=shard_index,
                                      prefetch=prefetch)
                 for train in (True, False))
