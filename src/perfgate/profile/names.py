"""Function names as pprof prints them, and the `gates:` function patterns that select them."""

from __future__ import annotations

import re
from collections.abc import Iterable

from perfgate.errors import ConfigError
from perfgate.patterns import compile_function_pattern


def pprof_function_name(name: str, system_name: str) -> str:
    """The name pprof reports for a function (its symbolizer's Demangle step, default mode).

    A function whose name differs from its system name keeps it. Otherwise pprof demangles the
    system name; a name that is not mangled but "looks like demangled C++" (has <, >, [, ] or
    ::) loses its (...) and <...> groups. Go's generic instances are caught by that:
    `walkList[go.shape.interface { End() token.Pos }]` becomes `walkList[go.shape.interface
    { End token.Pos }]`. Go writes name == system name, so this applies to every Go function.
    Limitation: real C++/Rust mangled symbols (_Z..., _R..., only in cgo binaries) stay mangled
    here, while pprof demangles them.
    """
    if name and system_name != name:
        return name
    if _looks_like_demangled_cpp(system_name):
        system_name = _remove_matching(_remove_matching(system_name, "(", ")"), "<", ">")
    return system_name


def _looks_like_demangled_cpp(name: str) -> bool:
    if ".<" in name or "])." in name:  # Java "class.<init>", Go "pkg.(*T[...]).M"
        return False
    return any(c in name for c in "<>[]") or "::" in name


def _remove_matching(name: str, start: str, end: str) -> str:
    """Remove every outermost start...end group (pprof's removeMatching); unbalanced: unchanged."""
    nesting = first = 0
    current = 0
    while True:
        found = [i for i in (name.find(start, current), name.find(end, current)) if i != -1]
        if not found:
            return name
        current = min(found)
        if name[current] == start:
            nesting += 1
            if nesting == 1:
                first = current
        else:
            nesting -= 1
            if nesting < 0:
                return name
            if nesting == 0:
                name = name[:first] + name[current + 1:]
                current = first - 1
        current += 1


def binary_node_name(mapping_file: str) -> str:
    """pprof's name for a frame without a function: [basename of the binary], else <unknown>."""
    if not mapping_file:
        return "<unknown>"
    trimmed = mapping_file.rstrip("/")
    return "[" + (trimmed.rsplit("/", 1)[-1] if trimmed else "/") + "]"


def go_regex(pattern: str) -> re.Pattern[str] | None:
    if not pattern:
        return None
    try:
        return re.compile(f"(?:{pattern})")
    except re.error:
        return None  # pprof ignores a drop_frames pattern it cannot compile


_RESERVED_PAREN_NAMES = ("(anonymous namespace)", "operator()")
_PAREN_RX = re.compile("|".join(re.escape(name) for name in (*_RESERVED_PAREN_NAMES, "(")))


def simplify_function_name(name: str) -> str:
    """pprof's simplifyFunc: drop a leading '.' and an argument list, keeping reserved names."""
    name = name.removeprefix(".")
    for match in _PAREN_RX.finditer(name):
        if match.group(0) not in _RESERVED_PAREN_NAMES:
            return name[: match.start()]
    return name


def match_functions(pattern: str, names: Iterable[str]) -> tuple[str, ...]:
    """The names a function pattern selects, in the order given (patterns.compile_function_pattern).

    A regex that does not compile is a ConfigError (config validation compiles every pattern first).
    """
    if not pattern:
        return ()
    try:
        matches = compile_function_pattern(pattern)
    except ValueError as error:
        raise ConfigError(f"function pattern {error}") from None
    return tuple(name for name in names if matches(name))
