"""The exit-code contract under fuzzing: shared Hypothesis settings and strategies.

`make test` runs each property with a small, fixed budget (derandomized: the same examples every run,
so a failure is reproducible and CI never flakes); `make test-fast` (PERFGATE_FUZZ=fast) 10 fixed
examples each, to stay under a minute; `make fuzz` (PERFGATE_FUZZ=long) runs thousands of random ones.
Every example is bounded in time (the deadline) and in memory (the strategies stay small; the loaders' own
caps do the rest).
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

settings.register_profile("ci", max_examples=40, deadline=3000, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                 HealthCheck.function_scoped_fixture])
settings.register_profile("fast", parent=settings.get_profile("ci"), max_examples=10)
settings.register_profile("long", max_examples=3000, deadline=10_000, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                 HealthCheck.function_scoped_fixture])
FUZZ = settings.get_profile(os.environ.get("PERFGATE_FUZZ", "ci"))

# Values a hostile JSON or YAML document can hold: edge numbers (NaN, infinities, huge and negative
# integers), control characters and workflow-command text in strings, nesting.
EDGE_NUMBERS = st.sampled_from([0, -1, 1, 2**63, -(2**63), 10**30, 0.5, -0.0, 1e308])
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | EDGE_NUMBERS
           | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=20) | st.sampled_from(["::add-mask::x", "../x", "/etc/passwd", "OK", "", "\x00"]))
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=20)


def paths(document: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (keys and indexes) to a value inside a JSON-like document, the root included."""
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += paths(value, (*prefix, index))
    return found


def replaced(document: Any, path: tuple, value: Any) -> Any:
    """A copy of `document` with the value at `path` replaced (the root when path is empty)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(document, dict):
        return {**document, head: replaced(document[head], rest, value)}
    copy = list(document)
    copy[head] = replaced(document[head], rest, value)
    return copy


@st.composite
def mutations(draw: st.DrawFn, document: Any, count: int = 3) -> Any:
    """`document` with up to `count` values replaced by hostile ones, or removed."""
    for _ in range(draw(st.integers(min_value=1, max_value=count))):
        where = draw(st.sampled_from(paths(document)))
        if where and draw(st.booleans()) and isinstance(parent := _at(document, where[:-1]), dict):
            document = replaced(document, where[:-1], {k: v for k, v in parent.items() if k != where[-1]})
        else:
            document = replaced(document, where, draw(JSON_VALUES))
    return document


def _at(document: Any, path: tuple) -> Any:
    for step in path:
        document = document[step]
    return document
