"""Checkers of single values (each returns the value and a problem or None) and their JSON Schema fragments."""

from __future__ import annotations

import difflib
import json
import math
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from perfgate import placeholders
from perfgate.config.model import MAX_SERVICE_PIDS


@dataclass(frozen=True)
class Field:
    """A leaf key: its default and a checker returning (value, problem or None)."""

    default: Any
    check: Callable[[Any], tuple[Any, str | None]]


def with_schema(check: Callable, schema: dict[str, Any], *, optional: bool = False) -> Callable:
    """Attach the JSON Schema of what `check` accepts: schema/perfgate.schema.json is generated from these
    (perfgate.config_schema; `make generate`). Every checker needs one."""
    if optional:
        schema = {"anyOf": [schema, {"type": "null"}]}
    check.json_schema = schema  # type: ignore[attr-defined]
    return check


def describe(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, str) else repr(value) if value is not None else "null"
    return text if len(text) <= 80 else text[:77] + "..."


def _finite(value: int | float) -> bool:
    """NaN and infinities (YAML's .nan, .inf) are no thresholds; nor is an integer beyond a float."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def integer(minimum: int | None = None, *, maximum: int | None = None, optional: bool = False) -> Callable:
    def check(value: Any) -> tuple[Any, str | None]:
        if value is None and optional:
            return None, None
        low = "" if minimum is None else f" >= {minimum}"
        high = "" if maximum is None else f" <= {maximum}"
        expected = f"expected an integer{low}{' and' if low and high else ''}{high}, got {describe(value)}"
        if isinstance(value, bool) or not isinstance(value, int):
            return value, expected
        too_low = minimum is not None and value < minimum
        too_high = maximum is not None and value > maximum
        return value, expected if too_low or too_high else None

    schema: dict[str, Any] = {"type": "integer"}
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return with_schema(check, schema, optional=optional)


def number(minimum: float | None = None, *, maximum: float | None = None, optional: bool = False,
           exclusive_min: bool = False) -> Callable:
    def check(value: Any) -> tuple[Any, str | None]:
        if value is None and optional:
            return None, None
        low = "" if minimum is None else (f" > {minimum:g}" if exclusive_min else f" >= {minimum:g}")
        high = "" if maximum is None else f" <= {maximum:g}"
        expected = f"expected a finite number{low}{' and' if low and high else ''}{high}, got {describe(value)}"
        if isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value):
            return value, expected
        too_low = minimum is not None and (value <= minimum if exclusive_min else value < minimum)
        too_high = maximum is not None and value > maximum
        return (float(value), expected if too_low or too_high else None)

    schema: dict[str, Any] = {"type": "number"}
    if minimum is not None:
        schema["exclusiveMinimum" if exclusive_min else "minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return with_schema(check, schema, optional=optional)


def boolean() -> Callable:
    def check(value: Any) -> tuple[Any, str | None]:
        if not isinstance(value, bool):
            return value, f"expected true or false, got {describe(value)}"
        return value, None

    return with_schema(check, {"type": "boolean"})


def text(*, optional: bool = False, choices: tuple[str, ...] = ()) -> Callable:
    def check(value: Any) -> tuple[Any, str | None]:
        if value is None and optional:
            return None, None
        if choices and value not in choices:
            return value, f"expected one of {', '.join(choices)}, got {describe(value)}"
        if not isinstance(value, str) or not value:
            return value, f"expected a non-empty string, got {describe(value)}"
        return value, None

    return with_schema(check, {"enum": list(choices)} if choices else {"type": "string", "minLength": 1},
                       optional=optional)


def _strings(value: Any) -> list[str] | None:
    """None and a single string as a list; None when the value is not a list of strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def string_list() -> Callable:
    def check(value: Any) -> tuple[Any, str | None]:
        names = _strings(value)
        if names is None:
            return value, f"expected a list of strings, got {describe(value)}"
        return tuple(names), None

    return with_schema(check, {"type": ["string", "array", "null"], "items": {"type": "string"}})


def choice_list(choices: tuple[str, ...]) -> Callable:
    """A list of names, each one of `choices` (a single name is a list of one); no repeats."""

    def check(value: Any) -> tuple[Any, str | None]:
        names = _strings(value)
        if names is None:
            return value, f"expected a list of names from {', '.join(choices)}, got {describe(value)}"
        value = names
        unknown = [v for v in value if v not in choices]
        if unknown:
            return value, (f"unknown name {describe(unknown[0])} (expected names from {', '.join(choices)})"
                           + did_you_mean(unknown[0], choices))
        return tuple(dict.fromkeys(value)), None

    return with_schema(check, {"anyOf": [{"enum": list(choices)}, {"type": "null"},
                                         {"type": "array", "items": {"enum": list(choices)}}]})


def command() -> Callable:
    """A command as an argv list, or a string split like a POSIX shell would (no shell runs it)."""

    def check(value: Any) -> tuple[Any, str | None]:
        if value is None:
            return (), None
        if isinstance(value, str):
            try:
                return tuple(shlex.split(value)), None
            except ValueError as error:
                return value, f"cannot split the command: {error}"
        if isinstance(value, list) and value and all(isinstance(v, str | int | float) for v in value):
            return tuple(str(v) for v in value), None
        if _unquoted_placeholder(value):
            return value, ("YAML read a placeholder such as {binary} as a mapping: quote the command, e.g. "
                           "command: \"{binary} -grpc-addr {address}\"")
        return value, f"expected a command (a string or a list of strings), got {describe(value)}"

    return with_schema(check, {"type": ["string", "array", "null"], "minItems": 1,
                               "items": {"type": ["string", "number", "boolean"]}})


def _unquoted_placeholder(value: Any) -> bool:
    """`{binary}` unquoted in YAML is a mapping {"binary": None}, alone or as an item of an argv list."""
    items = value if isinstance(value, list) else [value]
    return any(isinstance(item, dict) and any(f"{{{key}}}" in (*placeholders.SERVICE_PLACEHOLDERS, placeholders.OUTPUT)
                                              for key in item) for item in items)


def string_map() -> Callable:
    def check(value: Any) -> tuple[Any, str | None]:
        if value is None:
            return MappingProxyType({}), None
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            return value, f"expected a mapping of names to strings, got {describe(value)}"
        bad = [k for k, v in value.items() if not isinstance(v, str | int | float | bool)]
        if bad:
            return value, f"expected string values, got a nested value under {bad[0]!r}"
        return MappingProxyType({k: str(v) for k, v in value.items()}), None

    return with_schema(check, {"type": ["object", "null"],
                               "additionalProperties": {"type": ["string", "number", "boolean"]}})


def request_data() -> Callable:
    def check(value: Any) -> tuple[Any, str | None]:
        if value is None:
            return None, None
        if isinstance(value, dict) or (isinstance(value, list) and value and all(isinstance(v, dict) for v in value)):
            try:
                return json.dumps(value, sort_keys=True, allow_nan=False), None
            except ValueError:
                return value, "numbers in the request must be finite (no .nan or .inf)"
        return value, ("expected a mapping (one request message) or a non-empty list of mappings, "
                       f"got {describe(value)}")

    return with_schema(check, {"type": ["object", "array", "null"], "minItems": 1, "items": {"type": "object"}})


def pid_list() -> Callable:
    def check(value: Any) -> tuple[Any, str | None]:
        if value is None:
            return (), None
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                                  for v in value):
            return value, f"expected a list of process ids, got {describe(value)}"
        if len(value) > MAX_SERVICE_PIDS:
            return value, (f"expected at most {MAX_SERVICE_PIDS} process ids (the kernel script's limit), "
                           f"got {len(value)}")
        return tuple(value), None

    return with_schema(check, {"type": ["array", "null"], "maxItems": MAX_SERVICE_PIDS,
                               "items": {"type": "integer", "minimum": 1}})


def did_you_mean(word: Any, candidates: Any) -> str:
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
