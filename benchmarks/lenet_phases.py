#!/usr/bin/env python
"""Where a LeNet fast-path training step spends its time: forward and loss, backward, the
trainer's parameter updates, and reading the loss and accuracy back, each phase waited for
(``npx.waitall``) so that its time is its own. Prints microseconds per example (medians of 50
steps of batch 256 after 10 warm-up steps) with the 1-minute load average.

    OMP_NUM_THREADS=1 python benchmarks/lenet_phases.py lenet_bn_hybrid
"""
from __future__ import annotations

import os
import statistics
import sys
import time

PHASES = ("forward+loss", "backward", "trainer.step", "read-back", "total")


def main(argv=None) -> int:
    import gluon_modern_cnn  # noqa: F401
    import mxnet as mx
    from mxnet import autograd, gluon, init
    from gluon_modern_cnn.registry import get_model
    from gluon_modern_cnn.training import accuracy
    name = (argv or sys.argv[1:] or ["lenet_bn_hybrid"])[0]
    batch = 256
    mx.random.seed(0)
    net = get_model(name)
    net.initialize(init.Xavier())
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.9})
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    X = mx.np.random.uniform(size=(batch, 1, 28, 28))
    y = mx.np.random.randint(0, 10, size=(batch,)).astype("int32")
    wait = mx.npx.waitall
    times = {phase: [] for phase in PHASES}
    for step in range(60):
        wait()
        t0 = time.perf_counter()
        with autograd.record():
            y_hat = net(X)
            l = loss(y_hat, y)
        wait()
        t1 = time.perf_counter()
        l.backward()
        wait()
        t2 = time.perf_counter()
        trainer.step(batch)
        wait()
        t3 = time.perf_counter()
        float(l.sum())
        accuracy(y_hat, y)
        t4 = time.perf_counter()
        if step >= 10:
            for phase, seconds in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)):
                times[phase].append(seconds * 1e6 / batch)
    medians = {phase: statistics.median(v) for phase, v in times.items()}
    print(f"{name}, load {os.getloadavg()[0]:.1f}, microseconds per example: "
          + ", ".join(f"{p} {m:.1f} ({m / medians['total']:.1%})" for p, m in medians.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
