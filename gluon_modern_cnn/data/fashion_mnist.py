"""The Fashion-MNIST files: where they live, downloading them, reading and verifying them.

The book (D2L section 3.5) loads the data with ``gluon.data.vision.FashionMNIST``, which checks the
sha1 of the *compressed* files against MXNet's own re-packaging and so rejects correct copies
compressed by anyone else. This module reads the IDX files itself and verifies what matters, the
decompressed content (magic, counts, sizes, length and the md5 of the official files).

The batches are made by :mod:`.pipelines`, chosen by :mod:`.loaders`.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import math
import os
import struct
import sys
import tempfile
import threading
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Tuple, Union

import numpy

from ..checks import check_bool
from ..runtime.compat import import_mxnet
from ..runtime.files import sync_file

mx = import_mxnet()  # for MXNet's data directory, the default root

__all__ = [
    "IMAGE_SIZE", "TEXT_LABELS", "MIRRORS", "ROOT_ENV_VAR", "DataFileError", "resolve_data_root",
    "fashion_mnist_files", "load_fashion_mnist_arrays", "get_fashion_mnist_labels",
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
    """A data file exists but does not hold what the official file holds.

    Args:
        path: the file.
        problem: what is wrong with it, without the advice (kept as ``problem``, for the list of
            failed downloads).
        spec: what the official file holds, which the message describes.
    """

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
    """The directory holding the four Fashion-MNIST files. The directory need not exist yet.

    Args:
        root: the directory (``~`` is expanded); default ``None``: ``$FASHION_MNIST_ROOT``, else
            MXNet's convention ``$MXNET_HOME/datasets/fashion-mnist`` (``MXNET_HOME`` defaults to
            ``~/.mxnet``), the directory the book's ``gluon.data.vision.FashionMNIST`` uses.

    Raises:
        TypeError: when ``root`` is not a path.
        NotADirectoryError: when it names a file.
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

    from ..runtime.console import is_interactive
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
    content is verified.

    Args:
        train: the training split (default) or the test split.
        root: the folder with the files; default ``None``, :func:`resolve_data_root`.
        download: download missing files (default True).

    Raises:
        FileNotFoundError: when a file is missing and cannot be downloaded, saying where to put
            the files.
    """
    check_bool(train, "train")
    check_bool(download, "download")
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

    Args:
        train: the training split (default) or the test split.
        root: the folder with the files; default ``None``, :func:`resolve_data_root`.
        download: download missing files (default True).

    Raises:
        DataFileError: for a file whose content is not the official one.
        FileNotFoundError: as :func:`fashion_mnist_files`.
    """
    image_path, label_path = fashion_mnist_files(train, root=root, download=download)
    images = _read_verified(image_path, _SPECS[(train, "images")])
    labels = _read_verified(label_path, _SPECS[(train, "labels")]).astype(numpy.int32)
    labels.setflags(write=False)
    return images, labels


def get_fashion_mnist_labels(labels: Iterable) -> List[str]:
    """Return the text labels of numeric labels (D2L section 3.5).

    Args:
        labels: numeric labels, 0 to 9 (anything ``int()`` takes, e.g. an array's elements).

    Raises:
        ValueError: for a value outside 0 to 9.
    """
    names = []
    for label in labels:
        index = int(label)
        if not 0 <= index < len(TEXT_LABELS):
            raise ValueError(f"{label} is not a Fashion-MNIST label; labels are 0 to "
                             f"{len(TEXT_LABELS) - 1}")
        names.append(TEXT_LABELS[index])
    return names
