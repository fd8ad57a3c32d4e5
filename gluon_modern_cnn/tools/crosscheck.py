"""Cross-check against the book: replay each section's deterministic cells, compare with its print.

For every section with printed shapes (model construction and shape traces, not training) the
book's cells run in the book's order in a fresh MXNet name scope, so layer names are numbered as in
a fresh notebook; the package's lines are printed beside the book's (whitespace-normalised, since the
code prints a tab after ``output shape:``) with a verdict per section.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import mxnet as mx
from mxnet import np

from .. import book
from ..models.alexnet import alexnet
from ..models.densenet import DenseBlock, transition_block
from ..models.googlenet import googlenet
from ..models.nin import nin
from ..models.resnet import Residual, gluonbook_resnet, resnet
from ..models.vgg import conv_arch, vgg
from .summary import trace_lines

__all__ = ["LineCheck", "SectionCheck", "replay", "crosscheck", "format_report", "REPLAYS"]


def _shape(array) -> List[str]:
    return [str(tuple(array.shape))]


def _replay_alexnet():
    return [trace_lines(alexnet(), (1, 1, 224, 224))]


def _replay_vgg():
    return [trace_lines(vgg(conv_arch), (1, 1, 224, 224))]


def _replay_nin():
    return [trace_lines(nin(), (1, 1, 224, 224))]


def _replay_googlenet():
    return [trace_lines(googlenet(), (1, 1, 96, 96))]


def _replay_residual_blocks():
    blk = Residual(3)
    blk.initialize()
    X = np.random.uniform(size=(4, 3, 6, 6))
    same = _shape(blk(X))
    blk = Residual(6, use_1x1conv=True, strides=2)
    blk.initialize()
    return [same, _shape(blk(X))]


def _replay_resnet():
    return _replay_residual_blocks() + [trace_lines(resnet(), (1, 1, 224, 224))]


def _replay_gluonbook_resnet():
    return _replay_residual_blocks() + [trace_lines(gluonbook_resnet(), (1, 1, 28, 28))]


def _replay_densenet_blocks():
    blk = DenseBlock(2, 10)
    blk.initialize()
    X = np.random.uniform(size=(4, 3, 8, 8))
    Y = blk(X)
    blk = transition_block(10)
    blk.initialize()
    return [_shape(Y), _shape(blk(Y))]


#: Section -> the replay of its deterministic cells, one list of lines per `book.PrintedOutput`.
REPLAYS: Dict[str, Callable[[], List[List[str]]]] = {
    "7.1": _replay_alexnet,
    "7.2": _replay_vgg,
    "7.3": _replay_nin,
    "7.4": _replay_googlenet,
    "7.6": _replay_resnet,
    "7.7": _replay_densenet_blocks,
    "5.12": _replay_gluonbook_resnet,
    "5.13": _replay_densenet_blocks,
}


@dataclass(frozen=True)
class LineCheck:
    """One printed line: the book's beside the package's.

    Args:
        book: the book's line, or ``None`` when the package printed more lines.
        package: the package's line, or ``None`` when it printed fewer lines.
        names_match: compare whole lines, whitespace-normalised (default); ``False`` compares only
            the shapes, for a printed output whose layer names cannot match.
    """
    book: Optional[str]
    package: Optional[str]
    names_match: bool = True

    @property
    def ok(self) -> bool:
        if self.book is None or self.package is None:
            return False
        if self.names_match:
            return book.normalize_whitespace(self.book) == book.normalize_whitespace(self.package)
        return _shape_part(self.book) == _shape_part(self.package)


def _shape_part(line: str) -> str:
    match = book.SHAPE_LINE_PATTERN.match(book.normalize_whitespace(line))
    return match.group("shape") if match else book.normalize_whitespace(line)


@dataclass
class SectionCheck:
    """One section's verdict: its lines compared, or why it could not be or need not be.

    Args:
        key: the section's number (``"7.6"``).
        title: its title.
        lines: one :class:`LineCheck` per line, in order (default none).
        error: what went wrong replaying it; default ``None``.
        nothing_to_check: why the section has nothing deterministic to check (then there are no
            lines); default ``None``.
    """
    key: str
    title: str
    lines: List[LineCheck] = field(default_factory=list)
    error: Optional[str] = None
    #: Why the section has nothing deterministic to check (then there are no lines).
    nothing_to_check: Optional[str] = None

    @property
    def ok(self) -> bool:
        if self.nothing_to_check is not None:
            return True
        return self.error is None and bool(self.lines) and all(c.ok for c in self.lines)


def _why_nothing_to_check(key: str) -> str:
    """Why section ``key`` has no replay: it prints only what training produces, or (the 1.0
    edition) its source keeps no printed output at all."""
    if book.edition(key) == "1.0":
        return ("the 1.0 edition's source keeps no printed output to compare with; its cells run "
                "in tests/test_book_cells.py and its layer_summary traces are checked in "
                "tests/test_edition10.py")
    trained = ", ".join(sorted({run.model for run in book.section(key).trainings}))
    return (f"the section prints only training results ({trained}: loss, accuracies, speed, "
            f"learned parameters), which depend on the random initialization and the hardware; "
            f"`gluon-modern-cnn reproduce {key}` compares them with the book's")


def replay(key: str) -> List[List[str]]:
    """Run section ``key``'s deterministic cells in a fresh name scope; the lines they print.

    Args:
        key: a section in :data:`REPLAYS` (``"7.1"``).

    Returns:
        One list of lines per printed output of the section.

    Raises:
        ValueError: for a section without deterministic output, saying why and naming those with
            one.
    """
    if key not in REPLAYS:
        reason = f" ({_why_nothing_to_check(key)})" if key in book.SECTIONS else ""
        raise ValueError(f"section {key} has no deterministic output to cross-check{reason}; "
                         f"sections with printed shapes: {', '.join(REPLAYS)}")
    with mx.name.NameManager():
        return REPLAYS[key]()


def _check_section(key: str) -> SectionCheck:
    sec = book.section(key)
    result = SectionCheck(key, sec.title)
    try:
        produced = replay(key)
    except Exception as err:  # a broken model must show up as a mismatch, not end the report
        result.error = f"{type(err).__name__}: {err}"
        return result
    for expected, lines in zip(sec.outputs, produced):
        for i in range(max(len(expected.lines), len(lines))):
            result.lines.append(LineCheck(
                expected.lines[i] if i < len(expected.lines) else None,
                lines[i] if i < len(lines) else None, expected.names_match))
    if len(produced) != len(sec.outputs):
        result.error = (f"the replay produced {len(produced)} outputs, "
                        f"the book printed {len(sec.outputs)}")
    return result


def crosscheck(sections: Optional[Iterable[str]] = None, *,
               edition: Optional[str] = None) -> List[SectionCheck]:
    """Replay and compare sections with the book.

    Args:
        sections: the section keys; default ``None``, every section of the book (those without
            deterministic output listed with the reason), or with ``edition`` that edition's
            sections with printed shapes.
        edition: only sections of this edition: ``gluonbook`` or ``0.17`` (the 1.0 source keeps
            no printed output); default ``None``, any.

    Raises:
        ValueError: for an unknown edition, an edition without printed shapes, a section of
            another edition, or a section without deterministic output.
    """
    if edition is not None:
        editions = sorted(set(book.EDITIONS.values()))
        if edition not in editions:
            raise ValueError(f"unknown edition {edition!r}; editions: {', '.join(editions)}")
        with_output = [key for key in REPLAYS if book.edition(key) == edition]
        if not with_output:
            raise ValueError(f"the {edition} edition's source keeps no printed shapes to compare "
                             f"with; its cells run in tests/test_book_cells.py and its shape "
                             f"traces are checked in tests/test_edition10.py")
        sections = list(sections) if sections is not None else with_output
        others = [key for key in sections if book.edition(key) != edition]
        if others:
            raise ValueError(f"section {others[0]} is of the {book.edition(others[0])} edition, "
                             f"not {edition}")
    elif sections is None:
        return [_check_section(key) if key in REPLAYS else
                SectionCheck(key, sec.title, nothing_to_check=_why_nothing_to_check(key))
                for key, sec in book.SECTIONS.items()]
    keys = list(sections) if sections is not None else list(REPLAYS)
    for key in keys:
        if key not in REPLAYS:
            replay(key)  # raises the ValueError naming the valid sections
    return [_check_section(key) for key in keys]


def format_report(checks: Sequence[SectionCheck]) -> str:
    """The package's lines beside the book's, a verdict per section and a summary line.

    Args:
        checks: what :func:`crosscheck` returned.
    """
    out: List[str] = []
    for check in checks:
        if check.nothing_to_check is not None:
            out.append(f"== {check.key} {check.title}: NOTHING TO CHECK")
            out.append(f"   {check.nothing_to_check}")
            continue
        verdict = "MATCH" if check.ok else "MISMATCH"
        out.append(f"== {check.key} {check.title}: {verdict}")
        width = max([len(book.normalize_whitespace(c.book or "")) for c in check.lines] + [4])
        out.append(f"   {'book':<{width}}  | package")
        for c in check.lines:
            mark = "ok" if c.ok else "!!"
            left = book.normalize_whitespace(c.book) if c.book is not None else "(nothing)"
            right = book.normalize_whitespace(c.package) if c.package is not None else "(nothing)"
            note = "" if c.names_match else "  (shapes compared)"
            out.append(f"{mark} {left:<{width}}  | {right}{note}")
        if check.error:
            out.append(f"!! {check.error}")
    failed = [c.key for c in checks if not c.ok]
    unchecked = [c.key for c in checks if c.nothing_to_check is not None]
    checked = len(checks) - len(unchecked)
    out.append(f"{checked - len(failed)} of {checked} sections match the book"
               + (f"; mismatches in {', '.join(failed)}" if failed else "")
               + (f"; nothing deterministic to check in {', '.join(unchecked)}" if unchecked
                  else ""))
    return "\n".join(out)
