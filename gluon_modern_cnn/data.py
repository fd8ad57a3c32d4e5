"""Fashion-MNIST for the chapter's training cells: ``d2l.load_data_fashion_mnist`` without d2l.

The book (D2L section 3.5) loads the data with ``gluon.data.vision.FashionMNIST``, which checks the
sha1 of the *compressed* files against MXNet's own re-packaging and so rejects correct copies
compressed by anyone else. This module reads the IDX files itself and verifies what matters, the
decompressed content (magic, counts, sizes, length and the md5 of the official files).

Two pipelines deliver the same batches:

- ``load_data_fashion_mnist(batch_size, resize)`` is the book's: per-sample ``Resize`` and
  ``ToTensor`` in a ``gluon.data.DataLoader``.
- ``load_data_fashion_mnist(..., fast=True)`` returns ``FastImageLoader``s: the images stay one
  uint8 array and each batch is resized in one vectorised operation, bit-identical to the book's
  pipeline, with seeded per-epoch shuffling, sharding for distributed workers and background
  prefetch.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import math
import numbers
import os
import queue
import struct
import sys
import tempfile
import threading
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple, TypeVar, Union

import numpy

from ._compat import import_mxnet, np_thread
from .checks import check_positive_int
from .files import sync_file

mx = import_mxnet()
from mxnet import gluon  # noqa: E402  (needs import_mxnet() first, for numpy >= 1.24)
from mxnet.gluon.data.dataloader import default_batchify_fn  # noqa: E402

__all__ = [
    "IMAGE_SIZE", "TEXT_LABELS", "MIRRORS", "ROOT_ENV_VAR", "DataFileError", "resolve_data_root",
    "fashion_mnist_files", "load_fashion_mnist_arrays", "FashionMNISTDataset", "FashionMNIST", "get_dataloader_workers",
    "FastImageLoader", "load_data_fashion_mnist", "get_fashion_mnist_labels",
]

PathLike = Union[str, "os.PathLike[str]"]

#: Height and width of a Fashion-MNIST image.
IMAGE_SIZE = 28

#: The book's names of the ten classes, in label order (D2L section 3.5).
TEXT_LABELS = ("t-shirt", "trouser", "pullover", "dress", "coat",
               "sandal", "shirt", "sneaker", "bag", "ankle boot")

#: Download sources, tried in order; ``{file}`` is a name such as ``train-images-idx3-ubyte.gz``.
MIRRORS: Tuple[str, ...] = (
    "https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/gluon/dataset/fashion-mnist/{file}",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/{file}",
)

#: Environment variable naming the directory that holds the four files.
ROOT_ENV_VAR = "FASHION_MNIST_ROOT"

_DOWNLOAD_TIMEOUT = 30.0  # seconds without data before a mirror counts as failed
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class _IDXSpec:
    """What one official IDX file holds once decompressed."""

    name: str                 # file name without ".gz"
    magic: int
    shape: Tuple[int, ...]    # (count,) for labels, (count, 28, 28) for images
    md5: str                  # of the decompressed content (zalando's official files)

    @property
    def header_size(self) -> int:
        return 4 * (1 + len(self.shape))

    @property
    def size(self) -> int:
        return self.header_size + math.prod(self.shape)

    @property
    def kind(self) -> str:
        return "images" if len(self.shape) == 3 else "labels"

    def describe(self) -> str:
        items = f"{self.shape[0]} {self.kind}"
        if self.kind == "images":
            items += f" of {self.shape[1]}x{self.shape[2]} pixels"
        return (f"magic 0x{self.magic:08x}, {items}, {self.size} bytes decompressed, "
                f"md5 {self.md5}")


# Decompressed hashes from PROVENANCE.md of the project's data (zalando's official files).
_SPECS = {
    (True, "images"): _IDXSpec("train-images-idx3-ubyte", 0x803, (60000, 28, 28),
                               "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
    (True, "labels"): _IDXSpec("train-labels-idx1-ubyte", 0x801, (60000,),
                               "9018921c3c673c538a1fc5bad174d6f9"),
    (False, "images"): _IDXSpec("t10k-images-idx3-ubyte", 0x803, (10000, 28, 28),
                                "8181f5470baa50b63fa0f6fddb340f0a"),
    (False, "labels"): _IDXSpec("t10k-labels-idx1-ubyte", 0x801, (10000,),
                                "15d484375f8d13e6eb1aabb0c3f46965"),
}


class DataFileError(ValueError):
    """A data file exists but does not hold what the official file holds."""

    def __init__(self, path: Path, problem: str, spec: _IDXSpec):
        self.path = Path(path)
        self.problem = problem  # without the advice, for the list of failed downloads
        super().__init__(
            f"{self.path}: {problem}. Expected the official Fashion-MNIST file {spec.name} "
            f"(gzip-compressed or plain): {spec.describe()}. The file was left untouched: move or "
            f"delete it and call again to download a fresh copy, or replace it with a correct one.")


# ---------------------------------------------------------------------------------------------
# Where the files live
# ---------------------------------------------------------------------------------------------

def resolve_data_root(root: Optional[PathLike] = None) -> Path:
    """The directory holding the four Fashion-MNIST files.

    ``root`` if given, else ``$FASHION_MNIST_ROOT``, else MXNet's convention
    ``$MXNET_HOME/datasets/fashion-mnist`` (``MXNET_HOME`` defaults to ``~/.mxnet``), the directory
    the book's ``gluon.data.vision.FashionMNIST`` uses. The directory need not exist yet.
    """
    if root is None:
        root = os.environ.get(ROOT_ENV_VAR) or os.path.join(mx.base.data_dir(), "datasets",
                                                            "fashion-mnist")
    elif not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a path (str or os.PathLike), got {type(root).__name__}: "
                        f"{root!r}")
    path = Path(root).expanduser()
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"The Fashion-MNIST root {path} is a file, not a directory; pass "
                                 f"root= or set {ROOT_ENV_VAR} to the directory holding the files.")
    return path


def _candidates(root: Path, spec: _IDXSpec) -> Tuple[Path, Path]:
    return root / f"{spec.name}.gz", root / spec.name


def _existing(root: Path, spec: _IDXSpec) -> Optional[Path]:
    """The file present for ``spec`` (``name.gz`` first, then plain ``name``), if any."""
    for path in _candidates(root, spec):
        if path.exists():
            return path
        if path.is_symlink():
            raise FileNotFoundError(f"{path} is a broken symbolic link (to {os.readlink(path)}); "
                                    f"point it at the file or remove it.")
    return None


def _where_to_put(root: Path) -> str:
    paths = "\n".join(f"  {_candidates(root, spec)[0]}" for spec in _SPECS.values())
    return (f"Put the four files (https://github.com/zalandoresearch/fashion-mnist; gzip-compressed "
            f"or not) at:\n{paths}\n"
            f"or point {ROOT_ENV_VAR}=DIR (or root=, or --data-root on the command line) at "
            f"their folder.")


# ---------------------------------------------------------------------------------------------
# Reading and verifying IDX files
# ---------------------------------------------------------------------------------------------

def _read_content(path: Path, spec: _IDXSpec) -> bytes:
    """The decompressed bytes of ``path`` (gzip detected by content), at most one byte too many."""
    limit = spec.size + 1  # enough to tell "too long" without reading an arbitrarily large file
    with open(path, "rb") as file:
        compressed = file.read(2) == _GZIP_MAGIC
        file.seek(0)
        if not compressed:
            return file.read(limit)
        try:
            with gzip.GzipFile(fileobj=file) as stream:
                return stream.read(limit)
        except EOFError as err:
            raise DataFileError(path, f"is a truncated gzip file ({err})", spec) from err
        except (OSError, zlib.error) as err:
            raise DataFileError(path, f"is a corrupt gzip file ({err})", spec) from err


def _decode(content: bytes, path: Path, spec: _IDXSpec) -> numpy.ndarray:
    """Check ``content`` against ``spec`` and return its items as a read-only uint8 array."""
    def fail(problem: str) -> DataFileError:
        return DataFileError(path, problem, spec)

    if len(content) < 4:
        raise fail(f"is truncated: {len(content)} bytes, not even an IDX magic number")
    (magic,) = struct.unpack(">I", content[:4])
    if magic != spec.magic:
        raise fail(f"has magic number 0x{magic:08x}, expected 0x{spec.magic:08x} "
                   f"(an IDX file of {spec.kind})")
    if len(content) < spec.header_size:
        raise fail(f"is truncated: {len(content)} bytes, shorter than the "
                   f"{spec.header_size}-byte IDX header")
    dims = struct.unpack(f">{len(spec.shape)}I", content[4:spec.header_size])
    if dims[0] != spec.shape[0]:
        raise fail(f"holds {dims[0]} {spec.kind} (header count), expected {spec.shape[0]}")
    if dims[1:] != spec.shape[1:]:
        raise fail(f"holds items of size {'x'.join(map(str, dims[1:]))}, "
                   f"expected {'x'.join(map(str, spec.shape[1:]))}")
    if len(content) != spec.size:
        found = (f"more than {spec.size}" if len(content) > spec.size else str(len(content)))
        state = "has trailing data" if len(content) > spec.size else "is truncated"
        raise fail(f"{state}: {found} bytes decompressed, expected {spec.size}")
    digest = hashlib.md5(content).hexdigest()
    if digest != spec.md5:
        raise fail(f"has the right layout but different content (md5 {digest})")
    items = numpy.frombuffer(content, dtype=numpy.uint8, offset=spec.header_size)
    return items.reshape(spec.shape)  # frombuffer on bytes is read-only: cached arrays stay intact


_cache: dict = {}
_cache_lock = threading.Lock()


def _read_verified(path: Path, spec: _IDXSpec) -> numpy.ndarray:
    """Decode ``path`` once per process; a file that changed (size, mtime, inode) is read again."""
    stat = path.stat()
    key = (os.path.realpath(path), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, spec)
    with _cache_lock:
        if key not in _cache:
            for old in [k for k in _cache if k[0] == key[0] and k[-1] == spec]:
                del _cache[old]  # keep one decoded copy per file, not one per version
            _cache[key] = _decode(_read_content(path, spec), path, spec)
        return _cache[key]


# ---------------------------------------------------------------------------------------------
# Downloading
# ---------------------------------------------------------------------------------------------

def _fetch(url: str, file, spec: _IDXSpec) -> None:
    """Stream ``url`` into the open binary ``file`` with a progress bar (in a terminal; elsewhere,
    a log file or CI, a line when it starts, without the carriage returns of a bar)."""
    from tqdm import tqdm  # only needed when downloading

    from .progress import is_interactive
    with urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        name = url.rsplit('/', 1)[-1]
        interactive = is_interactive(sys.stderr)
        if not interactive:
            print(f"Downloading {name} from {url}", file=sys.stderr, flush=True)
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                  desc=f"Downloading {name}", disable=not interactive) as bar:
            received = 0
            while True:
                chunk = response.read(1 << 20)
                if not chunk:
                    break
                received += len(chunk)
                if received > spec.size + (1 << 20):  # larger than even the uncompressed file
                    raise ValueError(f"served more than {spec.size} bytes")
                file.write(chunk)
                bar.update(len(chunk))


def _download(root: Path, spec: _IDXSpec) -> Tuple[Optional[Path], List[str]]:
    """Try every mirror; return (path of the verified file or None, reasons the mirrors failed)."""
    target = _candidates(root, spec)[0]
    failures: List[str] = []
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        return None, [f"cannot create {root}: {err}"]
    for template in MIRRORS:
        url = template.format(file=target.name)
        fd, tmp_name = tempfile.mkstemp(dir=root, prefix=f".{target.name}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as file:
                _fetch(url, file, spec)
            try:
                _decode(_read_content(tmp, spec), tmp, spec)
            except DataFileError as err:
                failures.append(f"{url}: served a bad file: {err.problem}")
                continue
            os.chmod(tmp, 0o644)
            sync_file(tmp)  # on disk before it gets its name, as files.atomic_write does
            _publish(tmp, target)
            return target, failures
        except Exception as err:  # any network or server failure: try the next mirror
            failures.append(f"{url}: {err}")
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return None, failures


def _publish(tmp: Path, target: Path) -> None:
    """Give the verified ``tmp`` its final name without ever replacing an existing file."""
    try:
        os.link(tmp, target)  # fails if ``target`` appeared meanwhile (another process or the user)
    except FileExistsError:
        pass  # that file is used as it is (and verified when read)
    except OSError:  # file systems without hard links
        if not target.exists():
            os.replace(tmp, target)


def fashion_mnist_files(train: bool = True, *, root: Optional[PathLike] = None,
                        download: bool = True) -> Tuple[Path, Path]:
    """Paths of the (images, labels) files of one split, downloading any that are missing.

    Existing files are used as they are (``name.gz`` or plain ``name``); a missing file is
    downloaded from ``MIRRORS`` in order into a temporary file that gets its name only once its
    content is verified. When every mirror fails, ``FileNotFoundError`` says where to put the files.
    """
    _check_bool(train, "train")
    _check_bool(download, "download")
    base = resolve_data_root(root)
    paths = []
    for kind in ("images", "labels"):
        spec = _SPECS[(train, kind)]
        found = _existing(base, spec)
        if found is None:
            if download and MIRRORS:
                found, failures = _download(base, spec)
            else:
                failures = ["downloading is disabled (download=False)" if not download
                            else "no download mirrors are configured"]
            if found is None:
                tried = "\n".join(f"  - {reason}" for reason in failures)
                raise FileNotFoundError(
                    f"The Fashion-MNIST file {spec.name}.gz is not in {base} and could not be "
                    f"downloaded:\n{tried}\n{_where_to_put(base)}")
        paths.append(found)
    return paths[0], paths[1]


def load_fashion_mnist_arrays(train: bool = True, *, root: Optional[PathLike] = None,
                              download: bool = True) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """The verified (images, labels) of one split as read-only numpy arrays.

    Images are uint8 of shape (N, 28, 28), labels int32 of shape (N,) (the dtype MXNet's own
    ``FashionMNIST`` gives them). Decoded once per process and file.
    """
    image_path, label_path = fashion_mnist_files(train, root=root, download=download)
    images = _read_verified(image_path, _SPECS[(train, "images")])
    labels = _read_verified(label_path, _SPECS[(train, "labels")]).astype(numpy.int32)
    labels.setflags(write=False)
    return images, labels


# ---------------------------------------------------------------------------------------------
# The book's pipeline
# ---------------------------------------------------------------------------------------------

class FashionMNISTDataset(gluon.data.Dataset):
    """Fashion-MNIST samples as the book's ``gluon.data.vision.FashionMNIST`` gives them (D2L 3.5).

    Each sample is ``(image, label)``: image an ``mxnet.numpy`` uint8 array of shape (28, 28, 1),
    label a ``numpy.int32``; so the book's ``transform_first(Resize + ToTensor)`` behaves as in the
    book and batches of labels are int32 as there.
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
    an uninterrupted run would. With ``num_shards`` > 1 every worker takes every ``num_shards``-th
    sample of the same order, starting at ``shard_index``; the shards partition the data (sizes
    differ by at most one, batch counts not at all). ``prefetch`` batches are prepared ahead in a
    background thread.
    """

    def __init__(self, images: numpy.ndarray, labels: Sequence[int], batch_size: int, *,
                 resize: Optional[int] = None, shuffle: bool = False, seed: Optional[int] = None,
                 num_shards: int = 1, shard_index: int = 0, last_batch: str = "keep",
                 prefetch: int = 2):
        if not isinstance(images, numpy.ndarray) or images.dtype != numpy.uint8 \
                or images.ndim not in (3, 4):
            raise TypeError("images must be a numpy uint8 array of shape (N, H, W) or "
                            f"(N, H, W, C), got {_describe(images)}")
        labels = numpy.asarray(labels)
        if labels.shape != images.shape[:1] or not numpy.issubdtype(labels.dtype, numpy.integer):
            raise ValueError(f"labels must be {len(images)} integers (one per image), got "
                             f"{_describe(labels)}")
        self.batch_size = _check_positive_int(batch_size, "batch_size")
        self.resize = None if resize is None else _check_positive_int(resize, "resize")
        _check_bool(shuffle, "shuffle")
        self.num_shards = _check_positive_int(num_shards, "num_shards")
        self.shard_index = _check_int(shard_index, "shard_index")
        if not 0 <= self.shard_index < self.num_shards:
            raise ValueError(f"shard_index must be in [0, num_shards) = [0, {self.num_shards}), "
                             f"got {shard_index}")
        if shuffle and self.num_shards > 1 and seed is None:
            raise ValueError("Sharded shuffling needs seed=: every worker must draw the same order "
                             "for the shards to partition the data; pass the same seed to all.")
        if last_batch not in ("keep", "discard"):
            raise ValueError(f"last_batch must be 'keep' or 'discard', got {last_batch!r}")
        self.prefetch = _check_int(prefetch, "prefetch")
        if self.prefetch < 0:
            raise ValueError(f"prefetch must be >= 0 (0 = no background thread), got {prefetch}")
        self.shuffle = shuffle
        self.last_batch = last_batch
        # Fixed when not given, so that every epoch's order can be reproduced from `loader.seed`.
        if seed is not None and _check_int(seed, "seed") < 0:
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


# ---------------------------------------------------------------------------------------------
# The book's entry points
# ---------------------------------------------------------------------------------------------

Loader = Union[gluon.data.DataLoader, FastImageLoader]


class LegacyBatches:
    """A loader's batches as legacy ``NDArray``s, for code running with ``nd`` semantics (the
    older edition, ``legacy_mode()``). Each batch is made under numpy semantics, which the
    dataset, the book's transform and the batching use also when they run in the calling thread
    (``num_workers=0``), and converted afterwards."""

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
    shuffled training ``gluon.data.DataLoader`` and an unshuffled test one, with ``num_workers``
    worker threads (default ``get_dataloader_workers()``). ``fast=True`` returns
    ``FastImageLoader``s that give bit-identical batches much faster and accept ``seed``,
    ``num_shards``, ``shard_index`` and ``prefetch`` (both loaders are sharded; only the training
    one is shuffled). Called with ``nd`` semantics (the older edition), the batches are legacy
    ``NDArray``s.
    """
    if not mx.util.is_np_array():
        # Called with nd semantics (the older edition, legacy_mode()): NDArray batches.
        with mx.util.np_shape(True), mx.util.np_array(True):
            loaders = load_data_fashion_mnist(
                batch_size, resize, root=root, download=download, num_workers=num_workers,
                fast=fast, seed=seed, num_shards=num_shards, shard_index=shard_index,
                prefetch=prefetch)
        return tuple(LegacyBatches(loader) for loader in loaders)
    batch_size = _check_positive_int(batch_size, "batch_size")
    resize = None if resize is None else _check_positive_int(resize, "resize")
    _check_bool(fast, "fast")
    if not fast:
        fast_only = {"seed": seed is not None, "num_shards": num_shards != 1,
                     "shard_index": shard_index != 0, "prefetch": prefetch != 2}
        given = [name for name, used in fast_only.items() if used]
        if given:
            raise ValueError(f"{', '.join(given)} only apply to the fast pipeline; pass fast=True "
                             f"or leave them out.")
        workers = get_dataloader_workers() if num_workers is None else num_workers
        if _check_int(workers, "num_workers") < 0:
            raise ValueError(f"num_workers must be >= 0 (0 = load in the main thread), "
                             f"got {workers}")
        return tuple(_book_loader(FashionMNISTDataset(train, root=root, download=download),
                                  batch_size, resize, train, workers) for train in (True, False))
    if num_workers is not None:
        raise ValueError("num_workers applies to the book's pipeline only; the fast pipeline "
                         "prepares batches in one background thread (see prefetch=).")
    return tuple(FastImageLoader(*load_fashion_mnist_arrays(train, root=root, download=download),
                                 batch_size, resize=resize, shuffle=train, seed=seed,
                                 num_shards=num_shards, shard_index=shard_index, prefetch=prefetch)
                 for train in (True, False))


#: The dataset's former name here; ``gluon_modern_cnn.FashionMNIST`` is the 1.0 edition's data module.
FashionMNIST = FashionMNISTDataset


def get_fashion_mnist_labels(labels: Iterable) -> List[str]:
    """Return the text labels of numeric labels (D2L section 3.5)."""
    names = []
    for label in labels:
        index = int(label)
        if not 0 <= index < len(TEXT_LABELS):
            raise ValueError(f"{label} is not a Fashion-MNIST label; labels are 0 to "
                             f"{len(TEXT_LABELS) - 1}")
        names.append(TEXT_LABELS[index])
    return names


# ---------------------------------------------------------------------------------------------
# Argument checks
# ---------------------------------------------------------------------------------------------

def _describe(value) -> str:
    if isinstance(value, numpy.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    return f"{type(value).__name__} {value!r}"


def _check_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {_describe(value)}")
    return int(value)


def _check_positive_int(value, name: str) -> int:
    return int(check_positive_int(_check_int(value, name), name))  # TypeError for a non-int


def _check_epoch(epoch) -> int:
    if _check_int(epoch, "epoch") < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    return int(epoch)


def _check_bool(value, name: str) -> None:
    if not isinstance(value, (bool, numpy.bool_)):
        raise TypeError(f"{name} must be True or False, got {_describe(value)}")
