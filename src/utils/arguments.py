"""What an argument must be, read from its annotation: the rules behind the config check and constructor checks.

A constructor states what an argument means and the smallest value that can work in its own signature:
``batch_size: Annotated[int, Meaning("the number of images per batch", at_least=1)] = 64``. The config check
(:mod:`src.utils.config_check`) reads that before anything is built; :func:`checked` enforces it when the
class is built from Python. Plain annotations (``int``, ``Optional[int]``, ``Literal[...]``, ``tuple[...]``)
give the type a config value must have.

Why not pydantic or typeguard: neither is a dependency of this project, both reject what Hydra legitimately
passes (ListConfig for a tuple, an int for a float), and their messages span several lines; here a value
either fits or yields one phrase (``must be a positive integer (…)``) for a one-line message.
"""
from __future__ import annotations

import functools
import inspect
import numbers
import os
import types
import typing
from collections import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Annotated, Any, Literal, Union

from src.utils.errors import ConfigError

# Bare and subscripted forms: get_origin(typing.Sequence[int]) is collections.abc.Sequence.
_SEQUENCES = {list, tuple, abc.Sequence, abc.MutableSequence, abc.Iterable, abc.Collection,
              typing.Sequence, typing.MutableSequence, typing.Iterable, typing.Collection}
_MAPPINGS = {dict, abc.Mapping, abc.MutableMapping, typing.Mapping, typing.MutableMapping}


@dataclass(frozen=True)
class Meaning:
    """What an argument means (for messages), the smallest value that can work, and an example for a fix."""

    what: str
    at_least: float | None = None
    example: Any = None


def _member(annotation: Any, group: set | dict) -> bool:
    try:
        return annotation in group
    except TypeError:  # an unhashable annotation is none of the builtins
        return False


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def meaning_of(annotation: Any) -> Meaning | None:
    """The Meaning in ``annotation`` (also inside ``Optional[…]``), or None."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return next((m for m in annotation.__metadata__ if isinstance(m, Meaning)), None)
    if origin is Union or origin is types.UnionType:
        return next(filter(None, map(meaning_of, typing.get_args(annotation))), None)
    return None


def fits(value: Any, annotation: Any) -> bool:
    """Whether ``value`` (a plain config value: scalar, list or dict) can be passed where ``annotation`` is.

    Annotations this cannot judge accept anything (a wrong guess here would stop a run that works): forward
    references that did not resolve, and other classes given a list or a mapping (they may be built from it).
    """
    if annotation is Any or annotation is inspect.Parameter.empty:
        return True
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        meaning = meaning_of(annotation)
        low = meaning.at_least if meaning else None
        return fits(value, args[0]) and (low is None or not _is_number(value) or value >= low)
    if annotation is None or annotation is type(None):
        return value is None
    if origin is Union or origin is types.UnionType:
        return any(fits(value, arg) for arg in args)
    if origin is Literal:
        return any(value == arg and type(value) is type(arg) for arg in args)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if annotation is float:
        return _is_number(value)
    if annotation is str:
        return isinstance(value, str)
    if _member(annotation, _SEQUENCES) or _member(origin, _SEQUENCES):
        if isinstance(value, (str, bytes)) or not isinstance(value, typing.Sequence):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(fits(v, a) for v, a in zip(value, args))
        return all(fits(v, args[0]) for v in value) if args else True
    if _member(annotation, _MAPPINGS) or _member(origin, _MAPPINGS):
        return isinstance(value, Mapping)
    if isinstance(annotation, type) and issubclass(annotation, (PurePath, os.PathLike)):
        return isinstance(value, (str, os.PathLike))
    if isinstance(annotation, type) and isinstance(value, (str, numbers.Number, type(None))):
        return isinstance(value, annotation)  # e.g. lr=fast where a float or a Tensor is wanted
    return True


def expectation(annotation: Any) -> str:
    """What ``annotation`` asks for, in words: "a positive integer", "an integer or null", "one of uniform, normal"."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        meaning = meaning_of(annotation)
        if meaning is None or meaning.at_least is None or args[0] not in (int, float):
            return expectation(args[0])
        noun = "integer" if args[0] is int else "number"
        if meaning.at_least == 1 and args[0] is int:
            return "a positive integer"
        if meaning.at_least == 0:
            return f"a non-negative {noun}"
        return f"{'an' if noun == 'integer' else 'a'} {noun} ≥ {show(meaning.at_least)}"
    if annotation is None or annotation is type(None):
        return "null"
    if origin is Union or origin is types.UnionType:
        literals = [value for arg in args if typing.get_origin(arg) is Literal for value in typing.get_args(arg)]
        others = [arg for arg in args if typing.get_origin(arg) is not Literal and arg is not type(None)]
        words = [expectation(Literal[tuple(dict.fromkeys(literals))])] if literals else []
        words += [expectation(arg) for arg in others] + (["null"] if type(None) in args else [])
        return " or ".join(dict.fromkeys(words))
    if origin is Literal:
        return "one of " + ", ".join(dict.fromkeys(show(arg) for arg in args))
    named = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if _member(annotation, named):
        return named[annotation]
    if _member(annotation, _SEQUENCES) or _member(origin, _SEQUENCES):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} ({', '.join(expectation(a) for a in args)})"
        return f"a list (each item {expectation(args[0])})" if args else "a list"
    if _member(annotation, _MAPPINGS) or _member(origin, _MAPPINGS):
        return "a mapping"
    return f"a {getattr(annotation, '__name__', annotation)}"


def problem(value: Any, annotation: Any) -> str | None:
    """None when ``value`` fits ``annotation``; else what it must be: "must be a positive integer (what it is)"."""
    if fits(value, annotation):
        return None
    meaning = meaning_of(annotation)
    return f"must be {expectation(annotation)}" + (f" ({meaning.what})" if meaning else "")


def show(value: Any) -> str:
    """``value`` as one would type it on the command line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, typing.Sequence) and not isinstance(value, str):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return str(value)


@functools.cache
def annotations(function: Callable) -> dict[str, Any]:
    """The evaluated annotations of ``function``'s parameters (of a class: of its ``__init__``).

    One that cannot be evaluated (a name imported only for type checkers) is left out, which means
    "anything goes" to :func:`fits`.
    """
    function = inspect.unwrap(function.__init__ if isinstance(function, type) else function)
    try:
        return typing.get_type_hints(function, include_extras=True)
    except Exception:  # get_type_hints gives all or nothing; evaluate one by one to keep the ones that work
        namespace = getattr(function, "__globals__", {})
        hints = {}
        for name, annotation in getattr(function, "__annotations__", {}).items():
            try:
                hints[name] = eval(annotation, namespace) if isinstance(annotation, str) else annotation
            except Exception:
                continue
        return hints


def checked(init: Callable) -> Callable:
    """Decorate ``__init__`` to raise ConfigError for an argument that does not fit its ``Annotated[…, Meaning]``.

    Only arguments with a :class:`Meaning` are checked: those are the ones whose impossible values the class
    knows; plain type annotations stay duck-typed for Python callers.
    """
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        hints = annotations(init)
        for name, value in signature.bind(*args, **kwargs).arguments.items():
            annotation = hints.get(name)
            if meaning_of(annotation) and (why := problem(value, annotation)):
                raise ConfigError(f"{name}={show(value)}: {why}.")
        init(*args, **kwargs)

    return wrapper
