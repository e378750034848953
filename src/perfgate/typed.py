"""Does a frozen dataclass read back from JSON hold what its annotations say? Every problem names its field.

Records and verdicts come from files a pull request can write. Constructing a dataclass checks no
types, so a string where a count belongs, a NaN or a 400-digit integer would pass the loader and
break a later stage with a traceback. `type_problems` walks the object against its annotations:
integers are ints (not bools) within 64 bits, numbers are finite, strings are strings, tuples and
mappings hold what they declare, and nested dataclasses are checked the same way.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

INT_LIMIT = 2**63
_INFINITY_KEY = "__allow_infinity__"
_NAMESPACE_KEY = "__namespace__"
MAX_PROBLEMS = 5
_SCALARS = (int, float, str, bool)


def type_problems(obj: Any, namespace: Mapping[str, Any] | None = None, *, allow_infinity: bool = False) -> list[str]:
    """['repetitions[2].load.rps: expected a finite number, got nan', ...] (at most MAX_PROBLEMS).

    `namespace` resolves annotations the dataclasses' modules import only for type checking;
    `allow_infinity` admits ±inf as a number (a verdict's unbounded intervals), never NaN.
    """
    problems: list[str] = []
    ns = {**(namespace or {}), _INFINITY_KEY: allow_infinity}
    ns[_NAMESPACE_KEY] = tuple(sorted((namespace or {}).items(), key=lambda kv: kv[0]))  # _hints' cache key
    _check(obj, type(obj), "", problems, ns)
    return problems[:MAX_PROBLEMS]


def _check(value: Any, hint: Any, path: str, problems: list[str], ns: dict[str, Any]) -> None:
    if len(problems) >= MAX_PROBLEMS:
        return
    problem = _problem(value, hint, path, problems, ns)
    if problem:
        problems.append(f"{path or 'the file'}: expected {problem}, got {_short(value)}")


def _problem(value: Any, hint: Any, path: str, problems: list[str], ns: dict[str, Any]) -> str | None:
    origin, args = _shape(hint)
    if hint is Any:
        return _json_value_problem(value)
    if origin is typing.Literal:  # the kind only: a Literal annotation may list fewer values than are used
        kinds = {type(arm) for arm in args}
        return None if type(value) in kinds else " or ".join(sorted(_name(kind) for kind in kinds))
    if origin in (typing.Union, types.UnionType):
        fits = [arm for arm in args if not _problem(value, arm, path, [], ns)]
        if not fits:
            return " or ".join(_name(arm) for arm in args)
        return _problem(value, fits[0], path, problems, ns)
    if origin is tuple:
        return _sequence_problem(value, args, path, problems, ns)
    if origin in (dict, Mapping) or (isinstance(origin, type) and issubclass(origin, Mapping)):
        return _mapping_problem(value, args, path, problems, ns)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, hint):
            return _name(hint)
        for name, field_hint in _hints(hint, ns[_NAMESPACE_KEY]).items():
            _check(getattr(value, name), field_hint, f"{path}.{name}" if path else name, problems, ns)
        return None
    return _scalar_problem(value, hint, allow_infinity=ns.get(_INFINITY_KEY, False))


def _scalar_problem(value: Any, hint: Any, *, allow_infinity: bool) -> str | None:
    if hint is type(None):
        return None if value is None else "null"
    if hint is bool:
        return None if isinstance(value, bool) else "true or false"
    if hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool) and -INT_LIMIT < value < INT_LIMIT
        return None if ok else "an integer (64-bit)"
    if hint is float:
        infinite = allow_infinity and isinstance(value, float) and math.isinf(value)
        return None if infinite or _finite_number(value) else "a finite number"
    if hint is str:
        return None if isinstance(value, str) else "a string"
    if hint is Path:
        return None if isinstance(value, Path) else "a path"
    return None if isinstance(hint, type) and isinstance(value, hint) else _name(hint)


def _sequence_problem(value: Any, args: tuple, path: str, problems: list[str], ns: dict[str, Any]) -> str | None:
    if not isinstance(value, tuple):
        return "a list"
    if len(args) == 2 and args[1] is Ellipsis:
        if args[0] in _SCALARS:  # a column of numbers or strings: its items' paths are spelled only for a problem
            infinity = ns.get(_INFINITY_KEY, False)
            for index, item in enumerate(value):
                if len(problems) >= MAX_PROBLEMS:
                    break
                problem = _scalar_problem(item, args[0], allow_infinity=infinity)
                if problem:
                    problems.append(f"{path}[{index}]: expected {problem}, got {_short(item)}")
            return None
        for index, item in enumerate(value):
            _check(item, args[0], f"{path}[{index}]", problems, ns)
        return None
    if len(value) != len(args):
        return f"a list of {len(args)}"
    for index, (item, arm) in enumerate(zip(value, args, strict=True)):
        _check(item, arm, f"{path}[{index}]", problems, ns)
    return None


def _mapping_problem(value: Any, args: tuple, path: str, problems: list[str], ns: dict[str, Any]) -> str | None:
    if not isinstance(value, Mapping):
        return "an object"
    key_hint, value_hint = args or (Any, Any)
    for key, item in value.items():
        if _problem(key, key_hint, path, [], ns):
            return f"an object with {_name(key_hint)} keys"
        _check(item, value_hint, f"{path}.{key}", problems, ns)
    return None


def _json_value_problem(value: Any) -> str | None:
    """Any JSON value, but without non-finite numbers or integers beyond 64 bits anywhere inside."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return "finite numbers only"
        if isinstance(item, int) and not isinstance(item, bool) and not -INT_LIMIT < item < INT_LIMIT:
            return "64-bit integers only"
        if isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return None


def _finite_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) if isinstance(value, float) else -INT_LIMIT < value < INT_LIMIT


@functools.cache
def _shape(hint: Any) -> tuple[Any, tuple]:
    """typing's (origin, args) of an annotation, once per annotation: a record holds thousands of values."""
    return typing.get_origin(hint), typing.get_args(hint)


@functools.cache
def _hints(cls: type, ns: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls, localns=dict(ns))
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _name(hint: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false", type(None): "null"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
