"""The older (gluonbook, ``nd``) edition: ``import gluon_modern_cnn.gluonbook as gb`` switches the
thread to legacy semantics; the edition's blocks print its shapes, its loader yields NDArrays and
its train_ch5 trains an nd network with the book's lines. Each check runs in a fresh interpreter,
since the switch holds for the whole thread."""
import subprocess
import sys
import textwrap

from gluon_modern_cnn import book

SCRIPT = """
import gluon_modern_cnn.gluonbook as gb   # the edition's `import gluonbook as gb`, first as there
import mxnet as mx
from mxnet import gluon, init, nd
from mxnet.gluon import nn
from gluon_modern_cnn.book_cells import _FewBatches
assert not mx.util.is_np_array() and not mx.util.is_np_shape()

# Seed 000, 5.13.1 and 5.13.2: the dense block prints each concatenation.
blk = gb.DenseBlock(num_convs=2, num_channels=10)
blk.initialize(force_reinit=True)
X = nd.random.uniform(shape=(4, 3, 8, 8))
Y = blk(X)
print("Out:", Y.shape)
blk = gb.transition_block(num_channels=10)
blk.initialize(force_reinit=True)
print("Out:", blk(Y).shape)
# 5.12.1: the residual block, with and without the 1x1 convolution.
blk = gb.Residual(3)
blk.initialize()
X = nd.random.uniform(shape=(4, 3, 6, 6))
print("Out:", blk(X).shape)
blk = gb.Residual(6, use_1x1conv=True, strides=2)
blk.initialize()
print("Out:", blk(X).shape)

# 5.11.3: the scratch-BN LeNet trained by train_ch5 on NDArray batches (shortened to 3 batches).
net = nn.Sequential()
net.add(nn.Conv2D(6, kernel_size=5), gb.BatchNorm(6, num_dims=4), nn.Activation('sigmoid'),
        nn.MaxPool2D(pool_size=2, strides=2), nn.Conv2D(16, kernel_size=5),
        gb.BatchNorm(16, num_dims=4), nn.Activation('sigmoid'),
        nn.MaxPool2D(pool_size=2, strides=2), nn.Dense(120), gb.BatchNorm(120, num_dims=2),
        nn.Activation('sigmoid'), nn.Dense(84), gb.BatchNorm(84, num_dims=2),
        nn.Activation('sigmoid'), nn.Dense(10))
lr, num_epochs, batch_size = 1.0, 2, 64
ctx = gb.try_gpu()
net.initialize(ctx=ctx, init=init.Xavier(), force_reinit=True)
steps = []
class Trainer(gluon.Trainer):
    def step(self, batch_size, ignore_stale_grad=False):
        steps.append(batch_size)
        super().step(batch_size, ignore_stale_grad)
trainer = Trainer(net.collect_params(), 'sgd', {'learning_rate': lr})
train_iter, test_iter = gb.load_data_fashion_mnist(batch_size, root=ROOT)
X, y = next(iter(train_iter))
print("batch:", type(X).__name__, X.shape, X.dtype.__name__, type(y).__name__, y.shape)
train_iter, test_iter = _FewBatches(train_iter, 3, 40), _FewBatches(test_iter, 2, 64)
result = gb.train_ch5(net, train_iter, test_iter, batch_size, trainer, ctx, num_epochs)
print("returned:", result, "steps:", steps)
print("moving_var starts at:", gb.BatchNorm(3, num_dims=2).moving_var.asnumpy().tolist())

# An mx.np array into this nd network: one message naming the switch.
try:
    net(mx.np.ones((2, 1, 28, 28)))
except (TypeError, ValueError) as err:
    print("mixed:", err)
"""


def test_the_older_edition_runs_with_nd_semantics(fashion_mnist_root):
    code = f"ROOT = {str(fashion_mnist_root)!r}\n" + textwrap.dedent(SCRIPT)
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    # The shapes seed 000 prints.
    assert lines[:3] == ["X.shape: (4, 3, 8, 8) --> Y.shape: (4, 10, 8, 8)",
                         "X.shape: (4, 13, 8, 8) --> Y.shape: (4, 10, 8, 8)",
                         "Out: (4, 23, 8, 8)"]
    assert lines[3:6] == ["Out: (4, 10, 4, 4)", "Out: (4, 3, 6, 6)", "Out: (4, 6, 3, 3)"]
    assert lines[6] == "batch: NDArray (64, 1, 28, 28) float32 NDArray (64,)"
    assert lines[7] == "training on cpu(0)"
    assert [book.EPOCH_PATTERN.match(line)["epoch"] for line in lines[8:10]] == ["1", "2"]
    # Returns None as the book's; every step divides by the book's batch_size (64), although the
    # shortened batches hold 40 examples.
    assert lines[10] == "returned: None steps: [64, 64, 64, 64, 64, 64]"
    assert lines[11] == "moving_var starts at: [[0.0, 0.0, 0.0]]"
    assert lines[12].startswith("mixed:") and "other book edition" in lines[12]
    assert "import gluon_modern_cnn.gluonbook as gb" in lines[12]


def test_an_nd_array_into_a_numpy_mode_network_names_the_edition_switch():
    code = textwrap.dedent("""
        import gluon_modern_cnn as d2l
        import mxnet as mx
        from mxnet.gluon import nn
        net = nn.Dense(3)
        net.initialize()
        net(mx.np.ones((2, 4)))
        try:
            net(mx.nd.ones((2, 4)))
        except TypeError as err:
            print(err)
        """)
    result = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    message = result.stdout.strip()
    assert message.startswith("`fully_connected` got an array of the other book edition. This "
                              "thread runs numpy (`npx.set_np()`) semantics; it got an `mx.nd` "
                              "array (the older edition's)")
    assert "import gluon_modern_cnn.gluonbook as gb" in message and ".as_np_ndarray()" in message
