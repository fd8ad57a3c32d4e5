"""The program tests/test_distributed.py runs as a ps-lite cluster: section 7.5's LeNet with
``nn.BatchNorm`` trained on Fashion-MNIST under a kvstore, each worker on its own shard, by the
package's own loop (``training.fit`` with the kvstore and ``distributed.trainer_batch_size``).

Every process of the cluster runs this file: the scheduler and the servers never return from the
``import gluon_modern_cnn`` below (MXNet serves inside its ``import mxnet``), the workers train.
Unlike ``gluon-modern-cnn train``, where only rank 0 writes, every worker writes its files to
``--out`` so the test can compare them:

- ``rank{r}.json``: rank, number of workers, pid and the mean loss of every step, rewritten each
  step;
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
from typing import Dict

import numpy

import gluon_modern_cnn  # noqa: F401  (numpy aliases and set_np; servers stay inside its import)
from gluon_modern_cnn.runtime import distributed
from gluon_modern_cnn.data import FastImageLoader, load_fashion_mnist_arrays
from gluon_modern_cnn.models import lenet_bn
from gluon_modern_cnn.training import Callback, fit

import mxnet as mx
from mxnet import gluon, init

#: Every worker (and the test's replay) starts from the same seed, so all draw the same weights.
SEED = 7


def build_net() -> gluon.nn.Sequential:
    """Section 7.5's concise LeNet, initialised as the book's ``train_ch6`` does (Xavier)."""
    mx.random.seed(SEED)
    net = lenet_bn()
    net.initialize(init=init.Xavier())
    return net


def shard_loader(data_dir: str, batch_size: int, steps: int, *, num_shards: int,
                 shard_index: int, train: bool = True) -> FastImageLoader:
    """A loader of ``steps`` batches of ``batch_size`` per epoch on one shard of the first
    ``steps * batch_size * num_shards`` images (every shard the same count)."""
    images, labels = load_fashion_mnist_arrays(train, root=data_dir, download=False)
    count = steps * batch_size * num_shards
    if count > len(labels):
        raise ValueError(f"{steps} steps of {batch_size} images on {num_shards} workers need "
                         f"{count} images; the split has {len(labels)}")
    return FastImageLoader(images[:count], labels[:count], batch_size, shuffle=train, seed=SEED,
                           num_shards=num_shards, shard_index=shard_index, prefetch=0)


def parameters(net: gluon.Block, *, trainable: bool) -> Dict[str, numpy.ndarray]:
    """The trainable parameters, or (``trainable=False``) the batch-norm running statistics."""
    return {name: p.data().asnumpy() for name, p in net.collect_params().items()
            if (p.grad_req != "null") == trainable}


class _Record(Callback):
    """Writes the per-step progress file and the parameters after the first step."""

    def __init__(self, out: Path, rank: int, num_workers: int, step_delay: float):
        self.out, self.rank, self.step_delay = out, rank, step_delay
        self.progress = {"rank": rank, "num_workers": num_workers, "pid": os.getpid(),
                         "losses": []}
        self.seen = (0.0, 0.0)  # the epoch's loss sum and sample count before this step

    def on_epoch_begin(self, state):
        self.seen = (0.0, 0.0)

    def on_batch_end(self, state):
        loss_sum, count = state.metric[0], state.metric[2]
        self.progress["losses"].append((loss_sum - self.seen[0]) / (count - self.seen[1]))
        self.seen = (loss_sum, count)
        if len(self.progress["losses"]) == 1:
            numpy.savez(self.out / f"rank{self.rank}-step1.npz",
                        **parameters(state.net, trainable=True))
        tmp = self.out / f"rank{self.rank}.json.tmp"
        tmp.write_text(json.dumps(self.progress))
        os.replace(tmp, self.out / f"rank{self.rank}.json")  # the test polls it: never half-done
        time.sleep(self.step_delay)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory for the per-worker files")
    parser.add_argument("--data", required=True, help="directory of the Fashion-MNIST files")
    parser.add_argument("--kvstore", default="dist_sync", choices=distributed.KVSTORE_TYPES)
    parser.add_argument("--steps", type=int, default=10, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64, help="samples per worker and step")
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--step-delay", type=float, default=0.0,
                        help="seconds to sleep after each step (keeps a cluster busy)")
    args = parser.parse_args()

    kv = distributed.create_kvstore(args.kvstore)
    info = distributed.worker_info(kv)
    out = Path(args.out)
    shards = distributed.shard_options(kv)
    train_iter = shard_loader(args.data, args.batch_size, args.steps, **shards)
    test_iter = shard_loader(args.data, args.batch_size, 1, **shards, train=False)
    net = build_net()
    fit(net, train_iter, test_iter, args.epochs, lr=args.lr, device=mx.cpu(), initialize=False,
        kvstore=kv, step_batch_size=distributed.trainer_batch_size(kv, args.batch_size),
        callbacks=[_Record(out, info.rank, info.num_workers, args.step_delay)])
    numpy.savez(out / f"rank{info.rank}-final.npz", **parameters(net, trainable=True))
    numpy.savez(out / f"rank{info.rank}-running.npz", **parameters(net, trainable=False))


if __name__ == "__main__":
    main()
