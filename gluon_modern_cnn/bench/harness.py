"""Timing training steps the way the book reports them, and end to end.

The book's ``train_ch6`` prints ``examples/sec`` computed from the time of the training steps only
(section 6.6): the timer is started before a batch is sent to the device and stopped once the
step's loss and accuracy are read. :func:`run_benchmarks` measures that figure with the package's
:func:`~gluon_modern_cnn.training.train_step` (the step the training loop runs) and, in the same
loop, the end-to-end figure whose clock also runs while the next batch is being loaded.

Protocol: ``warmup`` steps are run and discarded (graph construction, oneDNN primitive creation,
the loader's start-up), then ``repeats`` timed repeats of ``steps`` consecutive steps each; every
figure is summarized by its median and interquartile range over the repeats. Several
configurations (the book's code and the fast path, say) are measured side by side, one repeat of
each per round, with a sample of the machine's fp32 peak in every round, so that load from other
processes affects all of them alike.
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from ..runtime.compat import import_mxnet
from ..checks import check_positive_int
from ..training.precision import PRECISIONS
from ..training.run_plan import DEFAULT_SEED, resolve_settings
from .stats import summarize

__all__ = ["BenchConfig", "Network", "Prepared", "book_config", "fast_config", "chapter_models",
           "build_network", "prepare", "run_benchmark", "run_benchmarks", "measure_memory",
           "run_peak", "MIN_WARMUP", "MIN_REPEATS", "DTYPES", "DATA_KINDS", "LOADERS",
           "MIN_REPEAT_SECONDS", "MAX_AUTO_STEPS", "MEMORY_STEPS"]

#: The issue's minimum protocol: at least 3 warm-up steps excluded, at least 5 timed repeats.
MIN_WARMUP = 3
MIN_REPEATS = 5
#: Types the harness trains in: float16 and float64 by ``net.cast``; bfloat16 (a hybridized twin
#: only) by ``precision.use_bfloat16``, with float32 parameters: under ``npx.set_np()`` MXNet 1.9
#: has no bfloat16 array type, only AMP's graph rewriting.
DTYPES = ("float32", "bfloat16", "float16", "float64")
DATA_KINDS = ("synthetic", "real")
LOADERS = ("book", "fast")
#: A timed repeat lasts at least this long when ``steps`` is left to the harness.
MIN_REPEAT_SECONDS = 1.0
#: ... but has at most this many steps.
MAX_AUTO_STEPS = 50


@dataclass(frozen=True)
class BenchConfig:
    """What to measure. ``None`` fields take the book's value for the model (its batch size, input
    size and learning rate) when the configuration is resolved.

    ``data="real"`` trains on Fashion-MNIST through ``loader="book"`` (the book's per-sample
    ``Resize`` + ``ToTensor`` DataLoader with ``num_workers`` threads) or ``loader="fast"`` (the
    package's batch-vectorised loader with ``prefetch`` batches prepared ahead); ``"synthetic"``
    reuses one random batch already on the device, so it measures computation only.
    ``steps`` per timed repeat defaults to as many as last :data:`MIN_REPEAT_SECONDS` (judged from
    the last warm-up step), so that fast models are not timed at the clock's resolution.

    Args:
        model: a registered model's name.
        label: the configuration's name in records and reports; "": hybridized or imperative.
        batch_size, input_size, lr: None: the book's for the model (``resolve_settings``).
        hybridize, static_alloc, static_shape: ``net.hybridize`` and its two options.
        data: ``synthetic`` (computation only) or ``real`` (Fashion-MNIST).
        loader: with real data, ``book`` (per-sample) or ``fast`` (batch-vectorised).
        num_workers: the book loader's worker threads; None: the book's default.
        prefetch: batches the fast loader prepares ahead.
        dtype: ``float32``, ``bfloat16`` (hybridized twins), ``float16`` or ``float64``.
        device: a ``--device`` spec (``cpu``, ``gpu0``).
        warmup: untimed steps first (at least :data:`MIN_WARMUP`).
        repeats: timed repeats (at least :data:`MIN_REPEATS`).
        steps: steps per timed repeat; None: chosen as said above.
        seed: seeds initialization and the synthetic batch.
        data_root: the Fashion-MNIST folder; None: the usual search.
    """

    model: str
    label: str = ""
    batch_size: Optional[int] = None
    input_size: Optional[int] = None
    lr: Optional[float] = None
    hybridize: bool = False
    static_alloc: bool = False
    static_shape: bool = False
    data: str = "synthetic"
    loader: str = "book"
    num_workers: Optional[int] = None
    prefetch: int = 2
    dtype: str = "float32"
    device: str = "cpu"
    warmup: int = MIN_WARMUP
    repeats: int = MIN_REPEATS
    steps: Optional[int] = None
    seed: int = DEFAULT_SEED
    data_root: Optional[str] = None

    def resolved(self) -> "BenchConfig":
        """This configuration checked, with the book's values filled in."""
        from ..models import model_info
        info = model_info(self.model)
        _check_choice(self.data, DATA_KINDS, "data")
        _check_choice(self.loader, LOADERS, "loader")
        _check_choice(self.dtype, DTYPES, "dtype")
        for name in ("warmup", "repeats", "steps", "prefetch", "seed"):
            value = getattr(self, name)
            if value is None and name == "steps":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer; got {value!r}")
        if self.warmup < MIN_WARMUP or self.repeats < MIN_REPEATS or self.steps == 0:
            raise ValueError(
                f"a benchmark needs at least {MIN_WARMUP} warm-up steps, {MIN_REPEATS} timed "
                f"repeats and 1 step per repeat (medians and IQRs of fewer are not worth "
                f"recording); got warmup={self.warmup}, repeats={self.repeats}, steps={self.steps}")
        if (self.static_alloc or self.static_shape) and not self.hybridize:
            raise ValueError("static_alloc/static_shape are options of hybridize(); pass "
                             "hybridize=True as well")
        if self.dtype == "bfloat16":
            if not self.hybridize:
                raise ValueError("bfloat16 rewrites the hybridized graph of a _hybrid twin; pass "
                                 "hybridize=True (--hybridize or --static)")
            from ..runtime.devices import parse_devices
            from ..training.precision import check_bfloat16_support
            check_bfloat16_support(parse_devices(self.device))
        if self.static_shape and not self.static_alloc:
            raise ValueError("static_shape=True requires static_alloc=True (an MXNet rule)")
        if self.data == "real" and info.in_channels != 1:
            raise ValueError(f"real data is Fashion-MNIST (1 channel) but {self.model!r} expects "
                             f"{info.in_channels} channels; use data='synthetic'")
        if self.num_workers is not None and self.loader != "book":
            raise ValueError("num_workers applies to loader='book'; the fast loader uses prefetch")
        if self.input_size is not None:
            check_positive_int(self.input_size, "input_size")
        input_size = self.input_size or info.input_size
        # The model's own rules, as a training run checks them: its book settings filled in, a
        # twin to hybridize, sizes that fit. float16/float64 (by net.cast) are the harness's own.
        run = resolve_settings(self.model, lr=self.lr, batch_size=self.batch_size, num_epochs=1,
                               resize=input_size, hybridize=self.hybridize, seed=self.seed,
                               dtype=self.dtype if self.dtype in PRECISIONS else "float32")
        return dataclasses.replace(
            self, batch_size=run.batch_size, lr=float(run.lr), input_size=input_size,
            label=self.label or ("hybridized" if self.hybridize else "imperative"))

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "BenchConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown benchmark setting(s) {', '.join(unknown)}; valid: "
                             f"{', '.join(sorted(known))}")
        return cls(**data)


def _check_choice(value, choices, name: str) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def book_config(model: str, **overrides) -> BenchConfig:
    """The book's code as written: the ``nn.Block`` model run imperatively, fed by the book's
    per-sample data pipeline.

    Args:
        model: a registered model or its twin (the book's model is taken either way).
        **overrides: any other :class:`BenchConfig` field.
    """
    from ..models import model_info
    settings = dict(model=model_info(model).book_model, label="book", data="real", loader="book")
    return BenchConfig(**{**settings, **overrides})


def fast_config(model: str, **overrides) -> BenchConfig:
    """The package's fast path for ``model``: its hybridizable twin hybridized with
    ``static_alloc`` and ``static_shape``, fed by the batch-vectorised loader with prefetch.
    A model without a hybridizable twin keeps its own code and gets the fast loader only.

    Args:
        model: a registered model or its book version (the twin is taken where there is one).
        **overrides: any other :class:`BenchConfig` field.
    """
    from ..models import model_info
    fast_model = model_info(model).hybrid_model or model
    hybrid = model_info(fast_model).hybrid
    settings = dict(model=fast_model, label="fast", data="real", loader="fast", hybridize=hybrid,
                    static_alloc=hybrid, static_shape=hybrid)
    return BenchConfig(**{**settings, **overrides})


def chapter_models() -> List[str]:
    """The models chapter 7 trains (sections 7.1 to 7.7), in the book's order."""
    from ..book import SECTIONS
    return [run.model for key, section in SECTIONS.items() if key.startswith("7.")
            for run in section.trainings]


@dataclass
class Network:
    """A model ready to train: the net, the book's SGD trainer and loss, devices, FLOPs.

    Args:
        net: the initialized (and, as configured, cast and hybridized) network.
        trainer: the book's ``gluon.Trainer`` with SGD at the configuration's ``lr``.
        loss: the book's ``SoftmaxCrossEntropyLoss``.
        devices: the contexts a batch is split over.
        flops_per_example: training FLOPs per image (forward and backward).
    """

    net: Any
    trainer: Any
    loss: Any
    devices: List[Any]
    flops_per_example: int


@dataclass
class Prepared:
    """A network and the stream of batches it trains on, as :func:`prepare` sets them up.

    Args:
        config: the resolved configuration.
        network: the network it trains.
        batches: an endless stream of ``(X, y)`` batches.
    """

    config: BenchConfig
    network: Network
    batches: Iterator[Tuple[Any, Any]]

    @property
    def devices(self) -> List[Any]:
        return self.network.devices

    @property
    def flops_per_example(self) -> int:
        return self.network.flops_per_example

    def step(self, X, y, *, first: bool = False) -> None:
        """One training step exactly as the training loop runs it (see ``training.train_step``)."""
        from ..training.loop import train_step
        if self.config.dtype not in ("float32", "bfloat16"):  # bfloat16 takes float32 input
            X = X.astype(self.config.dtype)
        n = self.network
        train_step(n.net, n.trainer, n.loss, X, y, n.devices, check_shapes=first)

    @property
    def queue_depth(self) -> int:
        """Batches the loader prepares ahead: MXNet's DataLoader keeps ``2 * num_workers`` in
        flight, the fast loader ``prefetch``; synthetic data none."""
        if self.config.data != "real":
            return 0
        if self.config.loader == "fast":
            return self.config.prefetch
        from ..data import get_dataloader_workers
        workers = self.config.num_workers
        return 2 * (get_dataloader_workers() if workers is None else workers)

    def close(self) -> None:
        """Stop the loader's background threads."""
        close = getattr(self.batches, "close", None)
        if close is not None:
            close()


def _network_key(config: BenchConfig) -> tuple:
    """Configurations that differ only in their data can train one shared network."""
    return (config.model, config.batch_size, config.input_size, config.lr, config.hybridize,
            config.static_alloc, config.static_shape, config.dtype, config.device, config.seed)


def build_network(config: BenchConfig) -> Network:
    """Build and initialize (Xavier, as ``train_ch6``) ``config``'s model, count its training
    FLOPs per example, cast and hybridize it as configured, and make the book's SGD trainer.

    Args:
        config: a resolved configuration (:meth:`BenchConfig.resolved`).
    """
    from ..runtime.devices import parse_devices
    from ..tools.flops import count_flops
    from ..models import get_model, model_info
    mx = import_mxnet()
    from mxnet import gluon, init
    config = config.resolved()
    mx.random.seed(config.seed)
    devices = parse_devices(config.device)
    info = model_info(config.model)
    net = get_model(config.model)
    net.initialize(init.Xavier(), ctx=devices)
    # Counted on the benchmarked net itself (before hybridization): a second instance would add
    # its parameters to the memory peak.
    with devices[0]:  # the counting pass's input is created on the default device
        flops = count_flops(net, (1, info.in_channels, config.input_size, config.input_size),
                            training=True)
    if config.dtype not in ("float32", "bfloat16"):
        # Deferred initialization draws float32 values, so the parameters must exist before they
        # are cast: one forward pass on zeros creates them.
        with mx.autograd.predict_mode():
            net(mx.np.zeros((1, info.in_channels, config.input_size, config.input_size),
                            ctx=devices[0]))
        net.cast(config.dtype)
    if config.hybridize:
        net.hybridize(static_alloc=config.static_alloc, static_shape=config.static_shape)
    if config.dtype == "bfloat16":  # the CPU was checked by resolved()
        from ..training.precision import use_bfloat16
        use_bfloat16(net, devices, check=False)
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": config.lr})
    return Network(net, trainer, gluon.loss.SoftmaxCrossEntropyLoss(), devices, flops)


def _synthetic(config: BenchConfig, in_channels: int, device) -> Iterator[Tuple[Any, Any]]:
    mx = import_mxnet()
    shape = (config.batch_size, in_channels, config.input_size, config.input_size)
    X = mx.np.random.uniform(size=shape, ctx=device)
    y = mx.np.random.randint(0, 10, size=(config.batch_size,), ctx=device).astype("int32")
    while True:
        yield X, y


def _real(config: BenchConfig) -> Iterator[Tuple[Any, Any]]:
    from ..data import fashion_mnist_loader
    resize = config.input_size if config.input_size != 28 else None
    options = dict(fast=True, prefetch=config.prefetch, seed=config.seed) \
        if config.loader == "fast" else dict(num_workers=config.num_workers)
    train_iter = fashion_mnist_loader(True, config.batch_size, resize, root=config.data_root,
                                      **options)
    while True:  # epochs follow each other; starting a new one is part of the end-to-end time
        yield from train_iter


def prepare(config: BenchConfig, network: Optional[Network] = None) -> Prepared:
    """``config`` (resolved) with its network (built unless given) and its stream of batches.

    Args:
        config: what to measure.
        network: a network built for a configuration that differs only in its data; None:
            build one.
    """
    from ..models import model_info
    config = config.resolved()
    network = network or build_network(config)
    batches = (_real(config) if config.data == "real"
               else _synthetic(config, model_info(config.model).in_channels, network.devices[0]))
    return Prepared(config, network, batches)


def _run_steps(prepared: Prepared, count: int, *, first: bool = False) -> Tuple[int, float, float]:
    """Run ``count`` steps; return (examples, seconds in training steps, wall-clock seconds)."""
    examples, step_seconds = 0, 0.0
    start = time.perf_counter()
    for i in range(count):
        X, y = next(prepared.batches)
        tic = time.perf_counter()
        if first and i == 0:
            _first_step(prepared, X, y)
        else:
            prepared.step(X, y)
        step_seconds += time.perf_counter() - tic
        examples += X.shape[0]
    return examples, step_seconds, time.perf_counter() - start


def _first_step(prepared: Prepared, X, y) -> None:
    """The first step, with MXNet's failures for an unsupported dtype explained."""
    mx = import_mxnet()
    dtype = prepared.config.dtype
    try:
        prepared.step(X, y, first=True)
    except mx.base.MXNetError as err:
        if dtype == "float32":
            raise
        if dtype == "bfloat16":
            from ..training.precision import explain_bfloat16_failure
            raise ValueError(explain_bfloat16_failure(err)) from None
        from ..runtime.compat import mxnet_error_summary
        summary = mxnet_error_summary(err).rstrip(".!")
        raise ValueError(f"training in {dtype} failed on {prepared.config.device}: {summary}. "
                         f"MXNet 1.9's CPU operators train in float32 and float64 only; float16 "
                         f"needs a GPU.") from None


def _settle(*, window: float = 0.05, busy: float = 0.1, timeout: float = 10.0) -> None:
    """Wait until this process's background threads are idle: its CPU time grows by less than
    ``busy`` of a ``window`` (the loaders refilling their queues after a repeat would otherwise
    compete with the next configuration's timed steps)."""
    deadline = time.perf_counter() + timeout
    last = time.process_time()
    while time.perf_counter() < deadline:
        time.sleep(window)
        now = time.process_time()
        if now - last < busy * window:
            return
        last = now


def _rss_bytes() -> int:
    """The resident set size of this process now (Linux ``/proc/self/statm``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _peak_rss_bytes() -> int:
    """The high-water mark of this process's resident set size (``getrusage``)."""
    import resource
    import sys
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS reports bytes, Linux KiB


_MEMORY_METHOD = "getrusage ru_maxrss: the process's resident-set high-water mark"


def run_benchmarks(configs: Sequence[BenchConfig], *, measure_peak: bool = True,
                   run_id: Optional[str] = None,
                   progress: Optional[Callable[[str], None]] = None) -> List[Dict[str, Any]]:
    """Measure ``configs`` side by side in this process; return one record per configuration.

    After every configuration's warm-up steps come ``repeats`` rounds; each round times one
    repeat of every configuration in turn and, with ``measure_peak``, one sample of the fp32 peak
    (see ``peak.PeakProbe``). Load from other processes therefore hits all of them alike, and
    ratios between them are paired round by round. Configurations that differ only in their data
    share one network. Every timed repeat (and peak sample) starts once the process is idle, after
    the loaders have refilled their queues; a real-data repeat of short steps then first takes as
    many untimed steps as its loader prepares ahead, so that the batches queued while the others
    ran are not timed as free.

    Memory: the records hold the RSS before any model was built and the high-water mark after
    the warm-up (before the peak probe's buffers exist); with several configurations that mark is
    shared (``measure_memory`` in a fresh process gives one configuration's own).

    Args:
        configs: the configurations to measure side by side.
        measure_peak: sample the machine's fp32 peak in every round.
        run_id: the id the records share; None: a new one.
        progress: called with a line of text as each configuration is measured.
    """
    from .peak import PeakProbe
    from .records import new_record
    mx = import_mxnet()
    say = progress or (lambda message: None)
    configs = [c.resolved() for c in configs]
    if not configs:
        raise ValueError("no configurations to measure")
    repeats = {c.repeats for c in configs}
    if len(repeats) > 1:
        raise ValueError(f"configurations measured side by side need the same number of repeats; "
                         f"got {sorted(repeats)}")
    started = time.perf_counter()
    load_before = os.getloadavg()
    baseline_rss = _rss_bytes()
    networks: Dict[tuple, Network] = {}
    prepared: List[Prepared] = []
    try:
        for config in configs:
            key = _network_key(config)
            if key not in networks:
                networks[key] = build_network(config)
            prepared.append(prepare(config, networks[key]))
        for i, p in enumerate(prepared):
            say(f"{p.config.model} [{p.config.label}]: {p.config.warmup} warm-up steps")
            _run_steps(p, p.config.warmup - 1, first=True)
            _, _, last_warmup = _run_steps(p, 1)
            if p.config.steps is None:
                steps = min(MAX_AUTO_STEPS, max(1, math.ceil(MIN_REPEAT_SECONDS / last_warmup)))
                p.config = dataclasses.replace(p.config, steps=steps)
        mx.npx.waitall()
        peak_rss = _peak_rss_bytes()
        probe = PeakProbe(device=prepared[0].devices[0]) if measure_peak else None
        rates: List[Tuple[List[float], List[float]]] = [([], []) for _ in prepared]
        for r in range(configs[0].repeats):
            if probe is not None:
                _settle()
                probe.sample()
            for p, (step_rates, wall_rates) in zip(prepared, rates):
                _settle()
                if p.config.steps > 1 and p.queue_depth:
                    _run_steps(p, p.queue_depth)
                examples, step_seconds, wall_seconds = _run_steps(p, p.config.steps)
                step_rates.append(examples / step_seconds)
                wall_rates.append(examples / wall_seconds)
                say(f"{p.config.model} [{p.config.label}]: round {r + 1}/{p.config.repeats}: "
                    f"{step_rates[-1]:.1f} examples/sec (steps), {wall_rates[-1]:.1f} (end to end)")
    finally:
        for p in prepared:
            p.close()
    mx.npx.waitall()
    peak = probe.result() if probe is not None else None
    load = {"before": list(load_before), "after": list(os.getloadavg())}
    labels = [p.config.label for p in prepared]
    records = []
    for p, (step_rates, wall_rates) in zip(prepared, rates):
        step, end_to_end = summarize(step_rates), summarize(wall_rates)
        gflops = step.scaled(p.flops_per_example / 1e9)
        records.append(new_record(
            "train", run_id=run_id, config=p.config.to_dict(),
            flops_per_example=p.flops_per_example,
            examples_per_sec={"step": step.to_dict(), "end_to_end": end_to_end.to_dict()},
            gflops=gflops.to_dict(), peak=peak.to_dict() if peak else None,
            utilization=gflops.median / peak.gflops if peak else None,
            paired_with=[label for label in labels if label != p.config.label],
            memory={"baseline_rss_bytes": baseline_rss, "peak_rss_bytes": peak_rss,
                    "method": _MEMORY_METHOD + ", after the warm-up",
                    "configs_in_process": len(prepared), "fresh_process": False},
            load_average=load, duration_seconds=time.perf_counter() - started))
    return records


def run_benchmark(config: BenchConfig, *, measure_peak: bool = True, run_id: Optional[str] = None,
                  progress: Optional[Callable[[str], None]] = None) -> Dict[str, Any]:
    """Measure one configuration in this process (see :func:`run_benchmarks`); its record.

    Args:
        config, measure_peak, run_id, progress: as :func:`run_benchmarks` takes them.
    """
    return run_benchmarks([config], measure_peak=measure_peak, run_id=run_id,
                          progress=progress)[0]


#: Steps :func:`measure_memory` runs: the first allocates, the second reuses MXNet's storage pool.
MEMORY_STEPS = 2


def measure_memory(config: BenchConfig, *, run_id: Optional[str] = None) -> Dict[str, Any]:
    """A ``memory`` record: this process's RSS before the model was built and its high-water mark
    after :data:`MEMORY_STEPS` training steps (meaningful in a fresh process; not timed).

    Args:
        config: what to measure.
        run_id: the id of the run the record belongs to.
    """
    from .records import new_record
    mx = import_mxnet()
    baseline_rss = _rss_bytes()
    prepared = prepare(config)
    try:
        _run_steps(prepared, MEMORY_STEPS, first=True)
    finally:
        prepared.close()
    mx.npx.waitall()
    return new_record("memory", run_id=run_id, config=prepared.config.to_dict(),
                      memory={"baseline_rss_bytes": baseline_rss,
                              "peak_rss_bytes": _peak_rss_bytes(),
                              "steps": MEMORY_STEPS, "method": _MEMORY_METHOD,
                              "fresh_process": False})


def run_peak(*, device: str = "cpu", run_id: Optional[str] = None) -> Dict[str, Any]:
    """A ``peak`` record: the machine's fp32 peak (``peak.measure_peak``) and the load average.

    Args:
        device: a ``--device`` spec of the device to measure.
        run_id: the id of the run the record belongs to.
    """
    from ..runtime.devices import parse_devices
    from .peak import measure_peak
    from .records import new_record
    load_before = os.getloadavg()
    peak = measure_peak(device=parse_devices(device)[0])
    return new_record("peak", run_id=run_id, peak=peak.to_dict(),
                      load_average={"before": list(load_before), "after": list(os.getloadavg())})
