"""Function patterns of `function_share` rules: a glob, or `re:REGEX`. Compiled once, at config time."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable

REGEX_PREFIX = "re:"


def compile_function_pattern(pattern: str) -> Callable[[str], bool]:
    """The predicate a pattern stands for. `re:REGEX` is searched anywhere in the name (like pprof's -focus);
    anything else is a case-sensitive glob over the whole name (* ? [...]), and a name equal to the pattern
    always matches (Go generic names contain brackets). ValueError naming the problem for a bad regex."""
    if pattern.startswith(REGEX_PREFIX):
        try:
            regex = re.compile(pattern[len(REGEX_PREFIX):])
        except (re.error, RecursionError, OverflowError) as error:
            raise ValueError(f"{pattern!r} is not a valid regular expression: {error}") from None
        return lambda name: regex.search(name) is not None
    return lambda name: name == pattern or fnmatch.fnmatchcase(name, pattern)
