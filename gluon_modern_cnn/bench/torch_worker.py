"""The PyTorch side of the peer benchmark: the book's own PyTorch cells, timed.

Runs under PyTorch's interpreter (its own environment; PyTorch is never a dependency of the
package), so it imports nothing of the package, only the standard library, ``torch`` and what the
cells import. ``python torch_worker.py`` reads a task as JSON on stdin and prints one result as
JSON on the last line of stdout:

    {"book_dir": ".../d2l-0.17", "model": "resnet18", "config": "fp32", "batch_size": 256,
     "input_size": 96, "lr": 0.05, "threads": 2, "warmup": 3, "repeats": 5, "steps": null}

(``steps`` null: as many per timed repeat as take about a second, as the package's harness.)

The network is the one the section's ``pytorch`` cells build (``#@tab pytorch``, ``#@tab all`` or
a ``#@tab`` list naming pytorch in the 0.17 edition's Markdown), executed in order up to the cell
that assigns the model's ``net``; cells that load data or train are left out. The step is the one
the book's ``d2l.train_ch6`` (PyTorch) runs: Xavier-uniform initialization of the linear and
convolutional layers, SGD, cross-entropy, then the loss and accuracy read back, on one batch in
memory. ``config``: ``fp32``; ``fp32-cl`` (channels-last memory format); ``bf16-cl`` (bfloat16
autocast and channels-last).
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import sys
import time
import types

# Run as a script, this folder would come first on sys.path, and its profile.py would shadow the
# standard library's (which torch imports).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

CONFIGS = ("fp32", "fp32-cl", "bf16-cl")
#: The package harness's rule for steps per timed repeat (harness.MIN_REPEAT_SECONDS and
#: MAX_AUTO_STEPS; repeated here because this file imports nothing of the package).
MIN_REPEAT_SECONDS = 1.0
MAX_AUTO_STEPS = 50

#: model -> (section file, which cell assigning ``net`` builds it: 1 = the first).
BOOK_NETS = {
    "alexnet": ("alexnet.md", 1),
    "vgg11_small": ("vgg.md", 2),
    "nin": ("nin.md", 1),
    "googlenet": ("googlenet.md", 1),
    "lenet_bn_scratch": ("batch-norm.md", 1),
    "lenet_bn": ("batch-norm.md", 2),
    "resnet18": ("resnet.md", 1),
    "densenet": ("densenet.md", 1),
}

_CELL = re.compile(r"```\{\.python \.input\}\n(.*?)```", re.S)
_LEAVE_OUT = ("load_data_fashion_mnist", "train_ch6", "train_ch13")


def pytorch_cells(text: str):
    """The code cells of a section that PyTorch runs, in order."""
    for cell in _CELL.findall(text):
        first = cell.lstrip().splitlines()[0] if cell.strip() else ""
        if first.startswith("#@tab"):
            tabs = {t.strip() for t in first[len("#@tab"):].split(",")}
            if "pytorch" in tabs or "all" in tabs:
                yield cell


def net_cells(book_dir: str, model: str):
    """The cells that build ``model``'s network: up to its ``net = ...`` cell, without training."""
    if model not in BOOK_NETS:
        raise ValueError(f"no PyTorch cells known for {model!r}; known: {', '.join(BOOK_NETS)}")
    name, which = BOOK_NETS[model]
    path = os.path.join(book_dir, name)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    cells, seen = [], 0
    for cell in pytorch_cells(text):
        if any(word in cell for word in _LEAVE_OUT):
            continue
        cells.append(cell)
        if re.search(r"^net = ", cell, re.M):
            seen += 1
            if seen == which:
                return cells
    raise ValueError(f"{path} has fewer than {which} PyTorch cells that build `net`")


def build_net(book_dir: str, model: str):
    """Execute the book's cells; their shape printouts are discarded."""
    d2l = types.ModuleType("d2l")  # the cells import `from d2l import torch as d2l`
    d2l.torch = types.ModuleType("d2l.torch")
    sys.modules.setdefault("d2l", d2l)
    sys.modules.setdefault("d2l.torch", d2l.torch)
    namespace = {"__name__": f"book_{model}"}
    with contextlib.redirect_stdout(io.StringIO()):
        for cell in net_cells(book_dir, model):
            exec(compile(cell, f"<{model} cell>", "exec"), namespace)
    return namespace["net"]


def measure(task: dict) -> dict:
    import torch
    from torch import nn
    config = task["config"]
    if config not in CONFIGS:
        raise ValueError(f"config must be one of {', '.join(CONFIGS)}; got {config!r}")
    torch.set_num_threads(int(task["threads"]))
    torch.manual_seed(0)
    net = build_net(task["book_dir"], task["model"])

    def init_weights(m):  # d2l.train_ch6 (PyTorch)
        if type(m) in (nn.Linear, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
    net.apply(init_weights)
    channels_last = config.endswith("-cl")
    X = torch.rand(task["batch_size"], 1, task["input_size"], task["input_size"])
    y = torch.randint(0, 10, (task["batch_size"],))
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        X = X.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(net.parameters(), lr=task["lr"])
    loss = nn.CrossEntropyLoss()
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if config == "bf16-cl" \
        else contextlib.nullcontext
    net.train()

    def step():
        optimizer.zero_grad()
        with autocast():
            y_hat = net(X)
            l = loss(y_hat, y)
        l.backward()
        optimizer.step()
        with torch.no_grad():  # the book's metric.add(l * X.shape[0], accuracy(y_hat, y), ...)
            float(l * X.shape[0])
            float((y_hat.argmax(axis=1).type(y.dtype) == y).type(y.dtype).sum())

    for _ in range(task["warmup"]):
        tic = time.perf_counter()
        step()
        last = time.perf_counter() - tic
    # As the package's harness: a repeat of about a second unless ``steps`` is given.
    steps = task.get("steps") or max(1, min(MAX_AUTO_STEPS, math.ceil(MIN_REPEAT_SECONDS / last)))
    rates = []
    for _ in range(task["repeats"]):
        tic = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(steps * task["batch_size"] / (time.perf_counter() - tic))
    return {"examples_per_sec": rates, "steps": steps, "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "mkldnn_bf16": bool(getattr(torch.backends.mkldnn, "is_available", lambda: False)()),
            "cpu_capability": getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")()}


def main() -> int:
    task = json.loads(sys.stdin.read())
    try:
        result = measure(task)
    except (ValueError, OSError) as err:
        print(json.dumps({"error": str(err)}), flush=True)
        return 2
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
