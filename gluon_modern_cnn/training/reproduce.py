"""Reproduce a section's training results with the book's hyperparameters, beside the book's numbers.

For every training cell of a section (``book.SECTIONS``) the runner trains the book's model with the
book's ``lr``, ``num_epochs``, ``batch_size`` and ``resize`` on Fashion-MNIST and writes
``results.json`` and ``results.md``: the package's final loss, train and test accuracy and
examples/sec beside what the book printed, with the device and the machine. Each model's curve,
history and parameters go to a subfolder.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import mxnet as mx

from .. import book
from .checkpoint import atomic_write
from .experiment import prepare_output, run_training
from ..runtime.devices import resolve_devices
from .run_plan import DEFAULT_SEED, plan_run, resolve_settings
from ..runtime.files import claim_run_folder
from ..runtime.machine import machine_info, machine_summary
from ..models import model_info

__all__ = ["reproduce", "section_settings", "format_results", "compare_with_book"]

_METRICS = ("loss", "train_acc", "test_acc")


def compare_with_book(run: book.TrainingRun, history) -> Dict[str, Any]:
    """The package's results at the epoch the book's printed results refer to, and differences.

    Args:
        run: the book's training cell (its printed lines and hyperparameters).
        history: the package's run of it.
    """
    printed = book.parse_result(run.lines)
    epoch = int(printed.get("epoch", run.hyperparameters.num_epochs))
    records = history.epochs
    ours = records[min(epoch, len(records)) - 1] if records else None
    package = {} if ours is None else {
        "epoch": ours.epoch, "loss": ours.train_loss, "train_acc": ours.train_acc,
        "test_acc": ours.test_acc, "examples_per_sec": history.examples_per_sec}
    difference = {m: package[m] - printed[m] for m in _METRICS if m in printed and m in package}
    return {"book": dict(printed, epoch=epoch) if printed else {}, "package": package,
            "difference": difference,
            "test_acc_per_epoch": [round(r.test_acc, 4) for r in records]}


def section_settings(run: book.TrainingRun, name: str, *, num_epochs: Optional[int] = None,
                     hybridize: bool = False, seed: Optional[int] = DEFAULT_SEED):
    """The settings of the section's own training cell (its lr, epochs, batch size and resize),
    not those of the section the model is registered under: 5.11 trains the scratch-BN LeNet for
    5 epochs, 7.5 for 10.

    Args:
        run: the section's training cell.
        name: the model to train (the book's, or its twin).
        num_epochs: fewer epochs than the book's, for a quick check.
        hybridize: hybridize the (twin) model.
        seed: the run's seed.
    """
    hp = run.hyperparameters
    resize = {} if hp.resize is None else {"resize": hp.resize}
    return resolve_settings(name, lr=hp.lr, batch_size=hp.batch_size,
                            num_epochs=hp.num_epochs if num_epochs is None else num_epochs,
                            hybridize=hybridize, seed=seed, **resize)


def reproduce(section_key: str, *, models: Optional[Sequence[str]] = None,
              device: Union[str, mx.Context, Sequence[mx.Context], None] = None, data_root=None,
              out: Union[str, Path] = "reproduction", num_epochs: Optional[int] = None,
              hybridize: bool = False, seed: Optional[int] = DEFAULT_SEED,
              overwrite: bool = False) -> List[Dict[str, Any]]:
    """Train the section's models with the book's settings and write the comparison to ``out``.

    ``models`` selects among the section's trained models (default: all); ``hybridize`` trains
    their hybridizable twins instead (same architecture, faster); ``num_epochs`` shortens a run
    for a quick check (the comparison is then at the last epoch trained). Results of an earlier
    reproduction in ``out`` are kept unless ``overwrite``.

    Args:
        section_key: a section of the chapter that trains, e.g. ``"7.6"``.
        models: some of the section's trained models; None: all.
        device: the devices every model trains on, decided once (:func:`resolve_devices`).
        data_root: the Fashion-MNIST folder.
        out: the folder for ``results.json``, ``results.md`` and a subfolder per model.
        num_epochs: fewer epochs than the book's.
        hybridize: train the hybridizable twins.
        seed: every run's seed.
        overwrite: replace an earlier reproduction in ``out``.

    Returns:
        One result per model trained: the book's figures, the package's, their differences.
    """
    sec = book.section(section_key)
    runs = [r for r in sec.trainings if models is None or r.model in models]
    if not runs:
        trained = ", ".join(r.model for r in sec.trainings) or "none"
        raise ValueError(f"section {section_key} trains {trained}; nothing matches {models}")
    out = Path(out)
    no_twin = [r.model for r in runs if hybridize and model_info(r.model).hybrid_model is None]
    if no_twin:
        raise ValueError(f"--hybridize trains the hybridizable twins; {', '.join(no_twin)} "
                         f"(the 1.0 edition's networks) have none: leave out --hybridize")
    names = [model_info(r.model).hybrid_model if hybridize else r.model for r in runs]
    devices = resolve_devices(device)  # once for every model (try_gpu warns once)
    # Every run planned (and so checked) before anything in ``out`` is replaced.
    plans = [plan_run(section_settings(run, name, num_epochs=num_epochs, hybridize=hybridize,
                                       seed=seed),
                      device=devices, data_root=data_root, out=out / name)
             for run, name in zip(runs, names)]
    with claim_run_folder(out):  # one reproduction at a time in a folder
        if (out / "results.json").exists() and not overwrite:
            raise FileExistsError(f"{out} already holds reproduction results; choose another --out "
                                  f"folder or pass --overwrite to replace them")
        for plan in plans:  # check every model's folder before the first one starts training
            prepare_output(plan.out, overwrite=overwrite)
        machine = machine_info()
        results = []
        for run, name, plan in zip(runs, names, plans):
            settings = plan.settings
            print(f"== section {section_key}: {name}, lr {settings.lr}, {settings.num_epochs} "
                  f"epoch{'s' if settings.num_epochs != 1 else ''}, "
                  f"batch {settings.batch_size}, resize {settings.resize}", flush=True)
            start = time.time()
            outcome = run_training(plan)
            result = {"section": section_key, "model": name, "book_model": run.model,
                      "hyperparameters": settings.to_dict(), "loop": run.loop,
                      "devices": [str(d) for d in outcome.devices],
                      "wall_seconds": round(time.time() - start, 1),
                      "interrupted": outcome.history.interrupted,
                      "stopped_by": outcome.history.stopped_by,
                      **compare_with_book(run, outcome.history)}
            results.append(result)
            _write(out, section_key, results, machine)
            if outcome.history.interrupted:
                break
        return results


def _write(out: Path, section_key: str, results: List[Dict[str, Any]], machine) -> None:
    record = {"section": section_key, "title": book.section(section_key).title,
              "machine": machine, "results": results}
    atomic_write(out / "results.json", lambda tmp: Path(tmp).write_text(
        json.dumps(record, indent=2)))
    atomic_write(out / "results.md", lambda tmp: Path(tmp).write_text(
        format_results(record)))


def _cell(value, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def format_results(record: Dict[str, Any]) -> str:
    """A Markdown report of a ``results.json`` record.

    Args:
        record: what :func:`reproduce` writes to ``results.json``.
    """
    lines = [f"# Section {record['section']}: {record['title']}", "",
             f"Machine: {machine_summary(record['machine'])}.", ""]
    for r in record["results"]:
        hp = r["hyperparameters"]
        book_speed = r["book"].get("examples_per_sec")
        lines += [f"## {r['model']}", "",
                  f"lr {hp['lr']}, {hp['num_epochs']} "
                  f"epoch{'s' if hp['num_epochs'] != 1 else ''}, batch size {hp['batch_size']}, "
                  f"resize {hp['resize']}; trained on {', '.join(r['devices'])} in "
                  f"{r['wall_seconds']:.0f} s" + (" (interrupted)" if r["interrupted"] else "")
                  + ".", "",
                  "| | book | package | difference |", "| --- | --- | --- | --- |"]
        if r["book"].get("epoch") != r["package"].get("epoch"):
            lines[-2:-2] = [f"Compared at the book's epoch {r['book'].get('epoch')} and the "
                            f"package's last epoch {r['package'].get('epoch')}.", ""]
        for metric in _METRICS:
            lines.append(f"| {metric.replace('_', ' ')} | {_cell(r['book'].get(metric))} | "
                         f"{_cell(r['package'].get(metric))} | "
                         f"{_cell(r['difference'].get(metric), '+.3f')} |")
        lines.append(f"| examples/sec | {_cell(book_speed, '.1f')} on {r['book'].get('device', '-')}"
                     f" | {_cell(r['package'].get('examples_per_sec'), '.1f')} on "
                     f"{', '.join(r['devices'])} | |")
        lines += ["", "Test accuracy per epoch: "
                  + ", ".join(f"{a:.3f}" for a in r["test_acc_per_epoch"]), ""]
    return "\n".join(lines)
