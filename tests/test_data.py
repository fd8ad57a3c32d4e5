"""Fashion-MNIST: real data, file checks, downloads, the book's pipeline and the fast one."""
import gzip
import http.server
import os
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time

import mxnet as mx
import numpy
import pytest
from mxnet import gluon

from gluon_modern_cnn import data

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def book_batch(images: numpy.ndarray, resize):
    """The reference: D2L 3.5's transforms applied per sample with MXNet's own blocks."""
    trans = [gluon.data.vision.transforms.ToTensor()]
    if resize:
        trans.insert(0, gluon.data.vision.transforms.Resize(resize))
    trans = gluon.data.vision.transforms.Compose(trans)
    return numpy.stack([trans(mx.np.array(image[..., None])).asnumpy() for image in images])


def all_batches(loader):
    """The (X, y) batches of one pass, as numpy arrays."""
    return [(X.asnumpy(), y.asnumpy()) for X, y in loader]


@pytest.fixture
def linked_root(tmp_path, fashion_mnist_root):
    """A writable root holding symlinks to the four real files."""
    for name in FILES:
        (tmp_path / f"{name}.gz").symlink_to(fashion_mnist_root / f"{name}.gz")
    return tmp_path


@pytest.fixture(scope="module")
def t10k_arrays(fashion_mnist_root):
    """The real test split: (images, labels)."""
    return data.load_fashion_mnist_arrays(False, root=fashion_mnist_root)


def plain_content(fashion_mnist_root, name) -> bytes:
    return gzip.decompress((fashion_mnist_root / f"{name}.gz").read_bytes())


# ---------------------------------------------------------------------------------------------
# The real data
# ---------------------------------------------------------------------------------------------

@pytest.mark.smoke
def test_real_data_has_the_official_shapes_counts_and_classes(fashion_mnist_root):
    for train, count in ((True, 6000), (False, 1000)):
        images, labels = data.load_fashion_mnist_arrays(train, root=fashion_mnist_root)
        assert images.shape == (10 * count, 28, 28) and images.dtype == numpy.uint8
        assert labels.shape == (10 * count,) and labels.dtype == numpy.int32
        assert numpy.bincount(labels).tolist() == [count] * 10
        assert not images.flags.writeable and not labels.flags.writeable
    # Item 0 of each split is an ankle boot and train[1] a T-shirt (PROVENANCE.md check (g)).
    assert data.get_fashion_mnist_labels([labels[0]]) == ["ankle boot"]
    train_images, train_labels = data.load_fashion_mnist_arrays(True, root=fashion_mnist_root)
    assert data.get_fashion_mnist_labels(train_labels[:2]) == ["ankle boot", "t-shirt"]
    assert abs(train_images.mean() / 255 - 0.2860) < 5e-4


def test_arrays_are_decoded_once_and_reread_when_the_file_changes(linked_root, fashion_mnist_root):
    target = linked_root / "t10k-images-idx3-ubyte.gz"
    target.unlink()
    real = (fashion_mnist_root / target.name).read_bytes()
    target.write_bytes(real)
    first = data.load_fashion_mnist_arrays(False, root=linked_root)[0]
    assert data.load_fashion_mnist_arrays(False, root=linked_root)[0] is first
    with open(target, "r+b") as file:  # the same file, rewritten in place
        file.truncate(5000)
    with pytest.raises(data.DataFileError, match="truncated"):
        data.load_fashion_mnist_arrays(False, root=linked_root)


def in_new_thread(func):
    """Run ``func`` in a fresh thread (which starts without numpy semantics); return its result."""
    result = []
    thread = threading.Thread(target=lambda: result.append(func()))
    thread.start()
    thread.join()
    return result[0]


def numpy_semantics() -> bool:
    return mx.util.is_np_array() and mx.util.is_np_shape()


def test_dataset_samples_are_the_books(fashion_mnist_root, t10k_arrays):
    dataset = data.FashionMNIST(train=False, root=fashion_mnist_root)
    assert len(dataset) == 10000
    image, label = dataset[3]
    assert isinstance(image, mx.np.ndarray) and image.shape == (28, 28, 1)
    assert image.dtype == numpy.uint8
    assert isinstance(label, numpy.integer) and label == t10k_arrays[1][3]
    numpy.testing.assert_array_equal(image.asnumpy()[..., 0], t10k_arrays[0][3])
    # DataLoader worker threads index the dataset first; that gives them numpy semantics.
    assert not in_new_thread(numpy_semantics)
    assert in_new_thread(lambda: (dataset[0], numpy_semantics())[1])


# ---------------------------------------------------------------------------------------------
# Broken and foreign files
# ---------------------------------------------------------------------------------------------

def idx_images(count: int, pixels: bytes, magic: int = 0x803) -> bytes:
    return struct.pack(">IIII", magic, count, 28, 28) + pixels


@pytest.mark.parametrize("broken, message", [
    (lambda real: gzip.compress(real, compresslevel=1)[:100000], "truncated gzip file"),
    (lambda real: real[:-784], "is truncated: 7839232 bytes decompressed, expected 7840016"),
    (lambda real: real + b"\0", "has trailing data"),
    (lambda real: idx_images(10000, real[16:], magic=0x801),
     "magic number 0x00000801, expected 0x00000803"),
    (lambda real: idx_images(100, real[16:16 + 100 * 784]),
     r"holds 100 images \(header count\), expected 10000"),
    (lambda real: real[:16] + bytes([real[16] ^ 1]) + real[17:], "different content"),
    (lambda real: b"\x1f\x8b not gzip at all", "corrupt gzip file"),
], ids=["truncated-gzip", "truncated-plain", "trailing", "wrong-magic", "wrong-count",
        "wrong-content", "not-gzip"])
def test_a_broken_file_is_named_explained_and_left_untouched(linked_root, fashion_mnist_root,
                                                             monkeypatch, broken, message):
    monkeypatch.setattr(data.fashion_mnist, "MIRRORS", ())  # a broken file must not trigger any download
    real = plain_content(fashion_mnist_root, "t10k-images-idx3-ubyte")
    target = linked_root / "t10k-images-idx3-ubyte.gz"
    target.unlink()
    target.write_bytes(broken(real))
    before = target.read_bytes()
    with pytest.raises(data.DataFileError, match=message) as err:
        data.load_fashion_mnist_arrays(False, root=linked_root)
    assert str(target) in str(err.value) and "move or delete it" in str(err.value)
    assert "magic 0x00000803, 10000 images of 28x28 pixels" in str(err.value)
    assert err.value.path == target
    assert target.read_bytes() == before


def test_a_broken_symlink_is_reported_not_downloaded_over(tmp_path, monkeypatch):
    monkeypatch.setattr(data.fashion_mnist, "MIRRORS", ())
    link = tmp_path / "t10k-images-idx3-ubyte.gz"
    link.symlink_to(tmp_path / "gone.gz")
    with pytest.raises(FileNotFoundError, match=f"{link} is a broken symbolic link"):
        data.load_fashion_mnist_arrays(False, root=tmp_path)
    assert link.is_symlink()


def test_plain_idx_files_are_read_too(linked_root, fashion_mnist_root, t10k_arrays):
    for name in FILES[2:]:
        (linked_root / f"{name}.gz").unlink()
        (linked_root / name).write_bytes(plain_content(fashion_mnist_root, name))
    images, labels = data.load_fashion_mnist_arrays(False, root=linked_root)
    numpy.testing.assert_array_equal(images, t10k_arrays[0])
    numpy.testing.assert_array_equal(labels, t10k_arrays[1])


# ---------------------------------------------------------------------------------------------
# Downloading from a local fake mirror
# ---------------------------------------------------------------------------------------------

class FakeMirrors:
    """Two mirrors, /a/ and /b/, on a local HTTP server that logs every request."""

    def __init__(self):
        self.routes = {}      # path -> bytes to serve, or an int HTTP status
        self.requests = []
        self.on_request = None
        mirrors = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                mirrors.requests.append(self.path)
                if mirrors.on_request:
                    mirrors.on_request(self.path)
                body = mirrors.routes.get(self.path, 404)
                if isinstance(body, int):
                    self.send_error(body)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def templates(self):
        return (f"{self.url}/a/{{file}}", f"{self.url}/b/{{file}}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirrors(monkeypatch):
    fake = FakeMirrors()
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setattr(data.fashion_mnist, "MIRRORS", fake.templates())
    yield fake
    fake.close()


def serve_real(mirrors, fashion_mnist_root, mirror, names):
    for name in names:
        mirrors.routes[f"/{mirror}/{name}.gz"] = (fashion_mnist_root / f"{name}.gz").read_bytes()


def test_download_writes_verified_files_and_nothing_else(tmp_path, mirrors, fashion_mnist_root,
                                                         t10k_arrays):
    serve_real(mirrors, fashion_mnist_root, "a", FILES[2:])
    root = tmp_path / "new" / "fashion-mnist"
    images, labels = data.load_fashion_mnist_arrays(False, root=root)
    numpy.testing.assert_array_equal(images, t10k_arrays[0])
    numpy.testing.assert_array_equal(labels, t10k_arrays[1])
    assert sorted(p.name for p in root.iterdir()) == sorted(f"{n}.gz" for n in FILES[2:])
    assert mirrors.requests == [f"/a/{n}.gz" for n in FILES[2:]]
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in root.iterdir())  # not the temp's 0600


@pytest.mark.parametrize("first_mirror", ["missing", "truncated", "wrong-file", "not-idx"])
def test_download_falls_through_to_the_next_mirror(tmp_path, mirrors, fashion_mnist_root,
                                                   t10k_arrays, first_mirror):
    name = "t10k-labels-idx1-ubyte"
    real = (fashion_mnist_root / f"{name}.gz").read_bytes()
    other = (fashion_mnist_root / "train-labels-idx1-ubyte.gz").read_bytes()
    mirrors.routes[f"/a/{name}.gz"] = {"missing": 404, "truncated": real[:-100],
                                       "wrong-file": other, "not-idx": b"<html>"}[first_mirror]
    mirrors.routes[f"/b/{name}.gz"] = real
    (tmp_path / "t10k-images-idx3-ubyte.gz").symlink_to(
        fashion_mnist_root / "t10k-images-idx3-ubyte.gz")
    images, labels = data.load_fashion_mnist_arrays(False, root=tmp_path)
    numpy.testing.assert_array_equal(labels, t10k_arrays[1])
    assert mirrors.requests == [f"/a/{name}.gz", f"/b/{name}.gz"]
    assert (tmp_path / f"{name}.gz").read_bytes() == real
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.gz" for n in FILES[2:])


def test_every_mirror_failing_says_where_to_put_the_files(tmp_path, mirrors, fashion_mnist_root):
    mirrors.routes["/b/t10k-images-idx3-ubyte.gz"] = b"\x1f\x8b\x08 corrupt"
    with pytest.raises(FileNotFoundError) as err:
        data.load_fashion_mnist_arrays(False, root=tmp_path)
    message = str(err.value)
    # Only after both mirrors were tried, and with their reasons.
    assert mirrors.requests == ["/a/t10k-images-idx3-ubyte.gz", "/b/t10k-images-idx3-ubyte.gz"]
    assert f"{mirrors.url}/a/t10k-images-idx3-ubyte.gz: HTTP Error 404" in message
    assert f"{mirrors.url}/b/t10k-images-idx3-ubyte.gz: served a bad file" in message
    for name in FILES:
        assert str(tmp_path / f"{name}.gz") in message
    assert "FASHION_MNIST_ROOT" in message and "root=" in message
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_download_disabled_fails_without_any_request(tmp_path, mirrors):
    with pytest.raises(FileNotFoundError, match=r"download=False(.|\n)*FASHION_MNIST_ROOT"):
        data.load_fashion_mnist_arrays(True, root=tmp_path, download=False)
    assert mirrors.requests == []


def test_download_keeps_existing_files_and_fetches_only_the_missing(
        tmp_path, mirrors, fashion_mnist_root):
    serve_real(mirrors, fashion_mnist_root, "a", FILES)
    user_file = tmp_path / "t10k-labels-idx1-ubyte"  # a plain copy the user put there
    user_file.write_bytes(plain_content(fashion_mnist_root, "t10k-labels-idx1-ubyte"))
    inode = user_file.stat().st_ino
    data.load_fashion_mnist_arrays(False, root=tmp_path)
    assert mirrors.requests == ["/a/t10k-images-idx3-ubyte.gz"]
    assert user_file.stat().st_ino == inode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t10k-images-idx3-ubyte.gz",
                                                          "t10k-labels-idx1-ubyte"]


def test_a_download_logged_to_a_file_has_lines_not_a_redrawn_bar(
        tmp_path, mirrors, fashion_mnist_root, capsys):
    serve_real(mirrors, fashion_mnist_root, "a", FILES)
    data.load_fashion_mnist_arrays(False, root=tmp_path)   # pytest's stderr is not a terminal
    err = capsys.readouterr().err
    assert "\r" not in err
    assert [line.split(" from ")[0] for line in err.splitlines()] == [
        "Downloading t10k-images-idx3-ubyte.gz", "Downloading t10k-labels-idx1-ubyte.gz"]


def test_a_file_appearing_during_the_download_is_not_overwritten(tmp_path, mirrors,
                                                                 fashion_mnist_root):
    name = "t10k-labels-idx1-ubyte.gz"
    serve_real(mirrors, fashion_mnist_root, "a", FILES)
    (tmp_path / "t10k-images-idx3-ubyte.gz").symlink_to(
        fashion_mnist_root / "t10k-images-idx3-ubyte.gz")
    # Someone else (another worker, the user) finishes the same file while we download it.
    theirs = gzip.compress(plain_content(fashion_mnist_root, "t10k-labels-idx1-ubyte"), mtime=0)
    mirrors.on_request = lambda path: (tmp_path / name).write_bytes(theirs)
    data.load_fashion_mnist_arrays(False, root=tmp_path)
    assert (tmp_path / name).read_bytes() == theirs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t10k-images-idx3-ubyte.gz", name]


# ---------------------------------------------------------------------------------------------
# Where the data lives
# ---------------------------------------------------------------------------------------------

def test_root_follows_argument_then_environment_then_mxnet_home(tmp_path, monkeypatch):
    monkeypatch.delenv("FASHION_MNIST_ROOT", raising=False)
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "mxhome"))
    assert data.resolve_data_root() == tmp_path / "mxhome" / "datasets" / "fashion-mnist"
    monkeypatch.setenv("FASHION_MNIST_ROOT", str(tmp_path / "env"))
    assert data.resolve_data_root() == tmp_path / "env"
    assert data.resolve_data_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert data.resolve_data_root("~/fm") == tmp_path / "fm"


def test_root_argument_errors(tmp_path):
    with pytest.raises(TypeError, match="root must be a path"):
        data.resolve_data_root(42)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file, not a directory"):
        data.resolve_data_root(tmp_path / "file")


def test_environment_variable_points_the_loaders_at_the_data(monkeypatch, fashion_mnist_root):
    monkeypatch.setenv("FASHION_MNIST_ROOT", str(fashion_mnist_root))
    monkeypatch.setattr(data.fashion_mnist, "MIRRORS", ())
    assert len(data.FashionMNIST(train=False)) == 10000


# ---------------------------------------------------------------------------------------------
# The book's pipeline and the fast one
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("resize", [None, 96, 224])
def test_both_pipelines_give_the_books_batches_exactly(fashion_mnist_root, t10k_arrays, resize):
    expected = book_batch(t10k_arrays[0][:256], resize)
    size = resize or 28
    assert expected.shape == (256, 1, size, size)
    for fast in (False, True):
        _, test_iter = data.load_data_fashion_mnist(256, resize, root=fashion_mnist_root,
                                                    fast=fast)
        X, y = next(iter(test_iter))
        assert isinstance(X, mx.np.ndarray) and isinstance(y, mx.np.ndarray)
        assert X.dtype == numpy.float32 and y.dtype == numpy.int32
        numpy.testing.assert_array_equal(X.asnumpy(), expected)  # atol = 0
        numpy.testing.assert_array_equal(y.asnumpy(), t10k_arrays[1][:256])


def test_book_pipeline_shapes_shuffling_and_lengths(fashion_mnist_root, t10k_arrays):
    train_iter, test_iter = data.load_data_fashion_mnist(256, root=fashion_mnist_root)
    assert len(train_iter) == 235 and len(test_iter) == 40  # the last batch is kept
    X, y = next(iter(train_iter))
    assert X.shape == (256, 1, 28, 28) and 0 <= float(X.min()) and float(X.max()) <= 1
    assert not numpy.array_equal(y.asnumpy(), data.load_fashion_mnist_arrays(
        True, root=fashion_mnist_root)[1][:256])  # shuffled
    labels = numpy.concatenate([y.asnumpy() for _, y in test_iter])
    numpy.testing.assert_array_equal(labels, t10k_arrays[1])  # not shuffled, nothing lost


def test_book_pipeline_worker_threads_each_have_their_own_transform(fashion_mnist_root,
                                                                   monkeypatch):
    # A hybridized Compose called from two threads at once races while building its graph.
    users = {}
    build = data.pipelines._book_transform

    def recording_build(resize):
        trans = build(resize)

        def call(image):
            users.setdefault(id(trans), set()).add(threading.get_ident())
            return trans(image)
        return call

    monkeypatch.setattr(data.pipelines, "_book_transform", recording_build)
    _, test_iter = data.load_data_fashion_mnist(16, 96, root=fashion_mnist_root, num_workers=2)
    for i, _ in enumerate(test_iter):
        if i == 10:
            break
    assert len(set.union(*users.values())) == 2  # both workers transformed samples
    assert all(len(threads) == 1 for threads in users.values())


def test_fast_shuffled_batches_are_the_books_transform_of_the_drawn_samples(t10k_arrays):
    images, labels = t10k_arrays
    loader = data.FastImageLoader(images, labels, 64, resize=96, shuffle=True, seed=3)
    order = loader.indices()
    X, y = next(iter(loader))
    numpy.testing.assert_array_equal(X.asnumpy(), book_batch(images[order[:64]], 96))
    numpy.testing.assert_array_equal(y.asnumpy(), labels[order[:64]])


def test_fast_shuffling_is_reproducible_and_resumable(t10k_arrays):
    images, labels = t10k_arrays

    def loader(seed):
        return data.FastImageLoader(images, labels, 1000, shuffle=True, seed=seed)

    run = loader(7)
    epochs = [all_batches(run) for _ in range(3)]
    assert run.epoch == 3
    assert len({tuple(b[0][1][:20]) for b in epochs}) == 3  # each epoch its own order
    for batches in epochs:  # each epoch visits every sample once
        assert numpy.bincount(numpy.concatenate([y for _, y in batches])).tolist() == [1000] * 10
    same = loader(7)
    for batches in epochs[:2]:
        for (X, y), (X2, y2) in zip(batches, all_batches(same)):
            numpy.testing.assert_array_equal(X, X2)
            numpy.testing.assert_array_equal(y, y2)
    resumed = loader(7)
    resumed.set_epoch(2)  # a run restarted at epoch 2 sees what the uninterrupted run saw
    for (X, y), (X2, y2) in zip(epochs[2], all_batches(resumed)):
        numpy.testing.assert_array_equal(X, X2)
        numpy.testing.assert_array_equal(y, y2)
    numpy.testing.assert_array_equal(run.indices(2), resumed.indices(2))
    assert not numpy.array_equal(loader(8).indices(0), run.indices(0))
    unseeded = data.FastImageLoader(images, labels, 1000, shuffle=True)
    numpy.testing.assert_array_equal(unseeded.indices(4), loader(unseeded.seed).indices(4))


@pytest.mark.parametrize("shuffle", [False, True])
def test_shards_partition_the_data(t10k_arrays, shuffle):
    images, labels = t10k_arrays
    shards = [data.FastImageLoader(images, labels, 500, shuffle=shuffle, seed=11, num_shards=3,
                                   shard_index=i) for i in range(3)]
    parts = [shard.indices(5) for shard in shards]
    assert sorted(len(p) for p in parts) == [3333, 3333, 3334]
    assert sorted(numpy.concatenate(parts).tolist()) == list(range(10000))
    assert {len(shard) for shard in shards} == {7}
    shards[1].set_epoch(5)
    batches = all_batches(shards[1])
    assert len(batches) == 7
    numpy.testing.assert_array_equal(numpy.concatenate([y for _, y in batches]),
                                     labels[parts[1]])


def test_shards_with_unequal_batch_counts_are_refused(t10k_arrays):
    # 3334/3333/3333 samples in batches of 3333: 2, 1 and 1 batches would hang synchronous workers.
    with pytest.raises(ValueError, match=r"different numbers of batches of 3333 \(\[1, 2\]\)"):
        data.FastImageLoader(*t10k_arrays, 3333, num_shards=3)
    assert len(data.FastImageLoader(*t10k_arrays, 3333, num_shards=3, last_batch="discard")) == 1


def test_fast_loader_options_reach_through_load_data(fashion_mnist_root):
    train_iter, test_iter = data.load_data_fashion_mnist(
        100, root=fashion_mnist_root, fast=True, seed=5, num_shards=2, shard_index=1, prefetch=0)
    assert (train_iter.shuffle, test_iter.shuffle) == (True, False)
    assert (train_iter.seed, train_iter.num_shards, train_iter.shard_index) == (5, 2, 1)
    assert (len(train_iter), len(test_iter)) == (300, 50)
    numpy.testing.assert_array_equal(test_iter.indices(), numpy.arange(1, 10000, 2))


def prefetch_threads():
    return [t for t in threading.enumerate() if t.name == "fashion-mnist-prefetch"]


def test_prefetch_thread_stops_with_the_consumer(t10k_arrays):
    loader = data.FastImageLoader(*t10k_arrays, 100, resize=96, prefetch=3)
    for i, _ in enumerate(loader):
        assert len(prefetch_threads()) == 1
        if i == 2:
            break
    deadline = time.time() + 5
    while prefetch_threads() and time.time() < deadline:
        time.sleep(0.01)
    assert prefetch_threads() == []


def test_an_error_while_preparing_a_batch_reaches_the_consumer(t10k_arrays, monkeypatch):
    loader = data.FastImageLoader(*t10k_arrays, 100)
    prepare = data.FastImageLoader._batch
    calls = []

    def failing(self, idx):
        calls.append((threading.current_thread().name, numpy_semantics()))
        if len(calls) == 3:
            raise RuntimeError("disk on fire")
        return prepare(self, idx)

    monkeypatch.setattr(data.FastImageLoader, "_batch", failing)
    received = []
    with pytest.raises(RuntimeError, match="disk on fire"):
        for batch in loader:
            received.append(batch)
    assert len(received) == 2 and set(calls) == {("fashion-mnist-prefetch", True)}


CTRL_C_SCRIPT = textwrap.dedent("""
    import sys
    from gluon_modern_cnn import data
    train_iter, _ = data.load_data_fashion_mnist(
        128, 96, root=sys.argv[1], fast=sys.argv[2] == "fast")
    while True:
        for i, (X, y) in enumerate(train_iter):
            X.wait_to_read()
            if i == 1:
                print("ready", flush=True)
""")


@pytest.mark.parametrize("pipeline", ["book", "fast"])
def test_ctrl_c_prints_one_traceback(fashion_mnist_root, tmp_path, pipeline):
    script = tmp_path / "train.py"
    script.write_text(CTRL_C_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(fashion_mnist_root), pipeline],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own process group, as in a terminal
    try:
        assert proc.stdout.readline() == "ready\n"
        time.sleep(0.5)
        stderr = None
        for _ in range(3):
            # What Ctrl-C sends: SIGINT to every process of the group. Python discards a
            # KeyboardInterrupt that lands in a destructor ("Exception ignored in ... __del__"),
            # and the loop goes on; a user then presses Ctrl-C again, and so does this test.
            os.killpg(proc.pid, signal.SIGINT)
            try:
                _, stderr = proc.communicate(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue
        assert stderr is not None, "the process survived three Ctrl-C"
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    ignored = stderr.count("Exception ignored in")
    assert stderr.count("Traceback") - ignored == 1, stderr
    assert stderr.rstrip().endswith("KeyboardInterrupt"), stderr
    assert "Exception in thread" not in stderr and "Process" not in stderr


# ---------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, message", [
    ({"batch_size": 0}, ValueError, "batch_size must be a positive integer; got 0"),
    ({"batch_size": -8}, ValueError, "batch_size must be a positive integer"),
    ({"batch_size": 2.5}, TypeError, "batch_size must be an int, got float 2.5"),
    ({"batch_size": "256"}, TypeError, "batch_size must be an int, got str"),
    ({"batch_size": True}, TypeError, "batch_size must be an int, got bool"),
    ({"batch_size": 8, "resize": 0}, ValueError, "resize must be a positive integer; got 0"),
    ({"batch_size": 8, "resize": -96}, ValueError, "resize must be a positive integer"),
    ({"batch_size": 8, "resize": "224"}, TypeError, "resize must be an int, got str"),
    ({"batch_size": 8, "resize": (224, 224)}, TypeError, "resize must be an int, got tuple"),
    ({"batch_size": 8, "fast": "yes"}, TypeError, "fast must be True or False"),
    ({"batch_size": 8, "seed": 1}, ValueError, "seed only apply to the fast pipeline"),
    ({"batch_size": 8, "num_shards": 2, "shard_index": 1}, ValueError,
     "num_shards, shard_index only apply to the fast pipeline"),
    ({"batch_size": 8, "num_workers": -1}, ValueError, "num_workers must be >= 0"),
    ({"batch_size": 8, "num_workers": 2, "fast": True}, ValueError,
     "num_workers applies to the book's pipeline only"),
    ({"batch_size": 8, "fast": True, "num_shards": 2, "shard_index": 2}, ValueError,
     r"shard_index must be in \[0, num_shards\) = \[0, 2\), got 2"),
    ({"batch_size": 8, "fast": True, "num_shards": 0}, ValueError, "num_shards must be a positive"),
    ({"batch_size": 8, "fast": True, "prefetch": -1}, ValueError, "prefetch must be >= 0"),
    ({"batch_size": 8, "fast": True, "seed": -1}, ValueError, "seed must be >= 0"),
])
def test_bad_arguments_get_clear_errors(fashion_mnist_root, kwargs, error, message):
    with pytest.raises(error, match=message):
        data.load_data_fashion_mnist(root=fashion_mnist_root, **kwargs)


def test_fast_loader_argument_errors(t10k_arrays):
    images, labels = t10k_arrays
    with pytest.raises(TypeError, match="numpy uint8 array"):
        data.FastImageLoader(images.astype(numpy.float32), labels, 8)
    with pytest.raises(ValueError, match="labels must be 10000 integers"):
        data.FastImageLoader(images, labels[:-1], 8)
    with pytest.raises(ValueError, match="Sharded shuffling needs seed="):
        data.FastImageLoader(images, labels, 8, shuffle=True, num_shards=2)
    with pytest.raises(ValueError, match="last_batch must be 'keep' or 'discard'"):
        data.FastImageLoader(images, labels, 8, last_batch="rollover")
    loader = data.FastImageLoader(images, labels, 8)
    with pytest.raises(ValueError, match="epoch must be >= 0"):
        loader.set_epoch(-1)
    with pytest.raises(TypeError, match="epoch must be an int"):
        loader.set_epoch(1.0)


def test_text_labels():
    assert data.get_fashion_mnist_labels(mx.np.array([0, 9, 3])) == ["t-shirt", "ankle boot",
                                                                     "dress"]
    assert data.get_fashion_mnist_labels(range(10)) == list(data.TEXT_LABELS)
    with pytest.raises(ValueError, match="10 is not a Fashion-MNIST label"):
        data.get_fashion_mnist_labels([10])


def test_dataloader_workers_fit_the_machine():
    assert 1 <= data.get_dataloader_workers() <= min(4, os.cpu_count())


@pytest.mark.parametrize("kwargs", [{"num_workers": 0}, {"num_workers": 2}, {"fast": True}])
def test_with_nd_semantics_the_loader_yields_ndarray_batches(fashion_mnist_root, kwargs):
    import gluon_modern_cnn as gmc
    with gmc.legacy_mode():
        train_iter, test_iter = data.load_data_fashion_mnist(64, root=fashion_mnist_root,
                                                             **kwargs)
        X, y = next(iter(train_iter))
        assert type(X) is mx.nd.NDArray and type(y) is mx.nd.NDArray
        assert X.shape == (64, 1, 28, 28) and y.shape == (64,) and len(test_iter) == 157
        assert not mx.util.is_np_array()   # iterating left the thread's semantics alone
    assert mx.util.is_np_array()


def test_the_loader_factory_takes_a_height_width_pair(fashion_mnist_root):
    X, y = next(iter(data.fashion_mnist_loader(False, 4, (32, 48), root=fashion_mnist_root,
                                               num_workers=0)))
    assert X.shape == (4, 1, 32, 48) and y.shape == (4,)
    square = data.fashion_mnist_loader(False, 4, (40, 40), fast=True, root=fashion_mnist_root)
    assert next(iter(square))[0].shape == (4, 1, 40, 40)
    with pytest.raises(ValueError, match=r"the fast pipeline resizes to squares; resize=\(32, 48\) "
                                         r"needs the book's pipeline \(fast=False\)"):
        data.fashion_mnist_loader(False, 4, (32, 48), fast=True, root=fashion_mnist_root)
    with pytest.raises(ValueError, match=r"resize must be a side or a \(height, width\) pair"):
        data.fashion_mnist_loader(False, 4, (32, 48, 1), root=fashion_mnist_root)
