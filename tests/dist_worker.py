"""The program tests/test_distributed.py runs as a ps-lite cluster: section 7.5's LeNet with
``nn.BatchNorm`` trained on Fashion-MNIST under a kvstore, each worker on its own shard.

Every process of the cluster runs this file: the scheduler and the servers never return from the
``import mxnet`` below (MXNet serves inside it), the workers train. Unlike a real training run,
where only rank 0 writes, every worker writes its files to ``--out`` so the test can compare them:

- ``rank{r}.json``: rank, number of workers, pid and the loss of every step, rewritten each step;
- ``rank{r}-step1.npz`` and ``rank{r}-final.npz``: the trainable parameters (``grad_req != 'null'``)
  after the first step and at the end;
- ``rank{r}-running.npz``: the batch-norm running statistics at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy

import gluon_modern_cnn  # noqa: F401  (numpy aliases and set_np before mxnet is used)
from gluon_modern_cnn import distributed
from gluon_modern_cnn.data import FastImageLoader, load_fashion_mnist_arrays
from gluon_modern_cnn.models import lenet_bn

import mxnet as mx
from mxnet import autograd, gluon, init

#: Every worker (and the test's replay) starts from the same seed, so all draw the same weights.
SEED = 7


def build_net() -> gluon.nn.Sequential:
    """Section 7.5's concise LeNet, initialised as the book's ``train_ch6`` does (Xavier)."""
    mx.random.seed(SEED)
    net = lenet_bn()
    net.initialize(init=init.Xavier())
    return net


def shard_batches(data_dir: str, batch_size: int, steps: int, *, num_shards: int,
                  shard_index: int) -> List[Tuple[mx.np.ndarray, mx.np.ndarray]]:
    """The first ``steps`` training batches of one shard (every shard the same count)."""
    images, labels = load_fashion_mnist_arrays(True, root=data_dir, download=False)
    loader = FastImageLoader(images, labels, batch_size, shuffle=True, seed=SEED,
                             num_shards=num_shards, shard_index=shard_index,
                             last_batch="discard", prefetch=0)
    batches = []
    for X, y in loader:
        if len(batches) == steps:
            break
        batches.append((X, y))
    return batches


def parameters(net: gluon.Block, *, trainable: bool) -> Dict[str, numpy.ndarray]:
    """The trainable parameters, or (``trainable=False``) the batch-norm running statistics."""
    return {name: p.data().asnumpy() for name, p in net.collect_params().items()
            if (p.grad_req != "null") == trainable}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory for the per-worker files")
    parser.add_argument("--data", required=True, help="directory of the Fashion-MNIST files")
    parser.add_argument("--kvstore", default="dist_sync", choices=distributed.KVSTORE_TYPES)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64, help="samples per worker and step")
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--step-delay", type=float, default=0.0,
                        help="seconds to sleep after each step (keeps a cluster busy)")
    args = parser.parse_args()

    kv = distributed.create_kvstore(args.kvstore)
    rank = distributed.worker_info(kv).rank
    out = Path(args.out)
    batches = shard_batches(args.data, args.batch_size, args.steps, **distributed.shard_options(kv))
    net = build_net()
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": args.lr}, kvstore=kv)
    step_size = distributed.trainer_batch_size(kv, args.batch_size)
    progress = {"rank": rank, "num_workers": kv.num_workers, "pid": os.getpid(), "losses": []}
    for step, (X, y) in enumerate(batches, start=1):
        with autograd.record():
            l = loss(net(X), y)
        l.backward()
        trainer.step(step_size)
        progress["losses"].append(float(l.mean()))
        if step == 1:
            numpy.savez(out / f"rank{rank}-step1.npz", **parameters(net, trainable=True))
        tmp = out / f"rank{rank}.json.tmp"
        tmp.write_text(json.dumps(progress))
        os.replace(tmp, out / f"rank{rank}.json")  # the test polls this file: never half-written
        time.sleep(args.step_delay)
    numpy.savez(out / f"rank{rank}-final.npz", **parameters(net, trainable=True))
    numpy.savez(out / f"rank{rank}-running.npz", **parameters(net, trainable=False))


if __name__ == "__main__":
    main()
