"""The argument checks every entry point shares: one rule and one wording for "a positive number".

A bool is not a number here (``True`` is an ``int`` to Python), and neither infinity nor NaN is
positive: ``--lr inf`` would train to NaN and be written into settings.json as ``Infinity``.
"""
from __future__ import annotations

import argparse
import math
import numbers

import numpy

__all__ = ["check_positive", "check_positive_int", "check_int", "check_strict_positive_int",
           "check_bool", "describe_value", "positive_int_arg", "positive_float_arg"]


def check_positive(value, name: str, *, integer: bool = True):
    """Return ``value`` if it is a positive integer or a positive finite number, else raise.

    Args:
        value: the value to check (a bool is refused, as are infinity and NaN).
        name: what the value is, as the error message names it (e.g. ``"batch_size"``).
        integer: require an integer (default); ``False`` accepts any positive finite real.

    Returns:
        ``value`` unchanged.

    Raises:
        ValueError: naming ``name`` when ``value`` is not positive, finite or of the right kind.
    """
    kind = numbers.Integral if integer else numbers.Real
    if (isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value)
            or not value > 0):
        raise ValueError(f"{name} must be a positive {'integer' if integer else 'finite number'}; "
                         f"got {value!r}")
    return value


def check_positive_int(value, name: str) -> int:
    """:func:`check_positive` for integers.

    Args:
        value: the value to check.
        name: what the value is, as the error message names it.
    """
    return check_positive(value, name, integer=True)


def describe_value(value) -> str:
    """A value as an error message shows it: an array by its dtype and shape, else its type and repr.

    Args:
        value: any value (a ``numpy.ndarray`` is described by dtype and shape, not by its contents).
    """
    if isinstance(value, numpy.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    return f"{type(value).__name__} {value!r}"


def check_int(value, name: str) -> int:
    """``value`` as an ``int``, or a ``TypeError`` naming ``name`` when it is not an integer.

    Args:
        value: the value to check (any ``numbers.Integral``; a bool is not one).
        name: what the value is, as the error message names it.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {describe_value(value)}")
    return int(value)


def check_strict_positive_int(value, name: str) -> int:
    """:func:`check_positive_int` with a ``TypeError`` for a value that is not an integer.

    Args:
        value: the value to check.
        name: what the value is, as the error messages name it.

    Raises:
        TypeError: when ``value`` is not an integer.
        ValueError: when it is an integer but not positive.
    """
    return int(check_positive_int(check_int(value, name), name))


def check_bool(value, name: str) -> None:
    """A ``TypeError`` naming ``name`` unless ``value`` is ``True`` or ``False`` (numpy's too).

    Args:
        value: the value to check.
        name: what the value is, as the error message names it.
    """
    if not isinstance(value, (bool, numpy.bool_)):
        raise TypeError(f"{name} must be True or False, got {describe_value(value)}")


def _argument(text: str, parse, integer: bool):
    try:
        value = parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive {'integer' if integer else 'number'}, got {text!r}") from None
    try:
        return check_positive(value, "the value", integer=integer)
    except ValueError:
        kind = "integer" if integer else "finite number"
        raise argparse.ArgumentTypeError(f"expected a positive {kind}, got {text}") from None


def positive_int_arg(text: str) -> int:
    """An argparse ``type`` for positive integers.

    Args:
        text: the command-line text.

    Raises:
        argparse.ArgumentTypeError: when ``text`` is not a positive integer.
    """
    return _argument(text, int, True)


def positive_float_arg(text: str) -> float:
    """An argparse ``type`` for positive finite numbers (``inf`` and ``nan`` are refused).

    Args:
        text: the command-line text.

    Raises:
        argparse.ArgumentTypeError: when ``text`` is not a positive finite number.
    """
    return _argument(text, float, False)
